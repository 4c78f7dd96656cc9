/**
 * Protection of state-changing requests (abort, unschedule) against cross-site request
 * forgery, as a signed double-submit cookie: each browser gets a random nonce in an HTTP-only,
 * `SameSite=Strict` cookie, and pages embed the HMAC of that nonce under a secret of this
 * process. A POST must carry the HMAC (form field `csrf` or header `X-CSRF-Token`) matching
 * its cookie; another site can neither read the token nor forge it for a cookie it planted.
 *
 * @module
 */

import { cookie, hmac, randomToken, readCookie, sameSecret } from "./_crypto.ts";

const CSRF_COOKIE = "streaq_csrf";
/** Name of the form field carrying the token. */
export const CSRF_FIELD = "csrf";
/** Name of the header carrying the token. */
export const CSRF_HEADER = "x-csrf-token";

/** Issues and verifies CSRF tokens with a secret of this process. */
export class Csrf {
  readonly #key: Promise<CryptoKey>;
  readonly #cookiePath: string;

  constructor(cookiePath: string) {
    this.#cookiePath = cookiePath;
    this.#key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  /** The token for the pages answering `request`, and the cookie to set if it had none. */
  async issue(request: Request): Promise<{ token: string; setCookie?: string }> {
    const nonce = readCookie(request, CSRF_COOKIE);
    if (nonce !== null && isNonce(nonce)) return { token: await this.#sign(nonce) };
    const fresh = randomToken();
    return {
      token: await this.#sign(fresh),
      setCookie: cookie(CSRF_COOKIE, fresh, this.#cookiePath, request),
    };
  }

  /** Whether `submitted` is the token of the cookie that `request` carries. */
  async verify(request: Request, submitted: string | null): Promise<boolean> {
    const nonce = readCookie(request, CSRF_COOKIE);
    if (!submitted || nonce === null || !isNonce(nonce)) return false;
    return await sameSecret(submitted, await this.#sign(nonce));
  }

  async #sign(nonce: string): Promise<string> {
    return await hmac(await this.#key, `csrf ${nonce}`);
  }
}

function isNonce(value: string): boolean {
  return /^[A-Za-z0-9_-]{16,128}$/.test(value);
}

/** The token a state-changing request carries: header first, then the form field. */
export async function submittedToken(request: Request): Promise<string | null> {
  const header = request.headers.get(CSRF_HEADER);
  if (header) return header;
  const type = request.headers.get("content-type") ?? "";
  if (
    !type.startsWith("application/x-www-form-urlencoded") &&
    !type.startsWith("multipart/form-data")
  ) {
    return null;
  }
  try {
    const value = (await request.formData()).get(CSRF_FIELD);
    return typeof value === "string" ? value : null;
  } catch {
    return null;
  }
}
