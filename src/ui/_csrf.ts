/**
 * Protection of state-changing requests (abort, unschedule) against cross-site request
 * forgery, as a signed double-submit cookie: each browser gets a random nonce in an HTTP-only,
 * `SameSite=Strict` cookie, and pages embed the HMAC of that nonce under a secret of this
 * process. A POST must carry the HMAC (form field `csrf` or header `X-CSRF-Token`) matching
 * its cookie; another site can neither read the token nor forge it for a cookie it planted.
 *
 * @module
 */

import { cookie, type CookieScope, hmac, randomToken, readCookie, sameSecret } from "./_crypto.ts";

const CSRF_COOKIE = "streaq_csrf";
/** Name of the form field carrying the token. */
export const CSRF_FIELD = "csrf";
/** Name of the header carrying the token. */
export const CSRF_HEADER = "x-csrf-token";

/** Issues and verifies CSRF tokens with a secret of this process. */
export class Csrf {
  readonly #key: Promise<CryptoKey>;
  readonly #cookies: CookieScope;

  constructor(cookies: CookieScope) {
    this.#cookies = cookies;
    this.#key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  /** The token for the pages answering `request`, and the cookie to set if it had none. */
  async issue(request: Request): Promise<{ token: string; setCookie?: string }> {
    const nonce = readCookie(request, CSRF_COOKIE);
    if (nonce !== null && isNonce(nonce)) return { token: await this.#sign(nonce) };
    const fresh = randomToken();
    return {
      token: await this.#sign(fresh),
      setCookie: cookie(CSRF_COOKIE, fresh, this.#cookies, request),
    };
  }

  /**
   * Whether a state-changing request carries the token of its cookie, reading as little as it
   * can: a body declared larger than {@linkcode MAX_FORM_BYTES} is refused unread, and so is
   * any body of a request without a valid cookie, or with the token in its header (which the
   * dashboard's script sends). Only a plain form POST (no script) has its body read, and at
   * most {@linkcode MAX_FORM_BYTES} of it: an attacker cannot make the process buffer a body.
   */
  async check(request: Request): Promise<CsrfCheck> {
    if (Number(request.headers.get("content-length")) > MAX_FORM_BYTES) return "too large";
    const nonce = readCookie(request, CSRF_COOKIE);
    if (nonce === null || !isNonce(nonce)) return "invalid";
    let submitted = request.headers.get(CSRF_HEADER);
    if (submitted === null) {
      const form = await readForm(request);
      if (form === "too large") return form;
      submitted = form?.get(CSRF_FIELD)?.toString() ?? null;
    }
    return submitted && await sameSecret(submitted, await this.#sign(nonce)) ? "valid" : "invalid";
  }

  async #sign(nonce: string): Promise<string> {
    return await hmac(await this.#key, `csrf ${nonce}`);
  }
}

function isNonce(value: string): boolean {
  return /^[A-Za-z0-9_-]{16,128}$/.test(value);
}

/** The largest request body the dashboard reads: its forms send a token and nothing else. */
export const MAX_FORM_BYTES = 8 * 1024;

/** What {@linkcode Csrf.check} found. */
export type CsrfCheck = "valid" | "invalid" | "too large";

/**
 * The form a request carries, read up to {@linkcode MAX_FORM_BYTES} (a body streamed without a
 * declared length is cut off there, unbuffered), or null when it is not a form or not valid.
 */
async function readForm(request: Request): Promise<FormData | "too large" | null> {
  const type = request.headers.get("content-type") ?? "";
  if (
    !type.startsWith("application/x-www-form-urlencoded") &&
    !type.startsWith("multipart/form-data")
  ) {
    return null;
  }
  const body = await readAtMost(request, MAX_FORM_BYTES);
  if (body === null) return "too large";
  try {
    return await new Response(body, { headers: { "content-type": type } }).formData();
  } catch {
    return null;
  }
}

/** The body of `request` if it holds at most `max` bytes, else null (the rest is not read). */
async function readAtMost(
  request: Request,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}
