/**
 * Small Web Crypto and cookie helpers for the dashboard's authentication and CSRF checks.
 *
 * @module
 */

const encoder = new TextEncoder();

/** HMAC-SHA256 of `data` under `key`, base64url-encoded. */
export async function hmac(key: CryptoKey, data: string): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(data));
  return toBase64Url(new Uint8Array(signature));
}

/** An HMAC-SHA256 key from a secret (string or bytes). */
export function hmacKey(secret: string | Uint8Array): Promise<CryptoKey> {
  const bytes = typeof secret === "string" ? encoder.encode(secret) : secret;
  return crypto.subtle.importKey(
    "raw",
    bytes as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** Whether two secrets are equal, in time that does not depend on where they differ. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** `n` random bytes, base64url-encoded. */
export function randomToken(n = 24): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(n)));
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The value of one cookie of a request, or null. */
export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/**
 * Whether the dashboard is served over https, which decides the cookies' `Secure` flag:
 * `true` or `false` as configured, or with `"auto"` when the request URL is https, or (only
 * when `trustProxy`) when a TLS-terminating proxy says so in `X-Forwarded-Proto`. The header is
 * never trusted by default: a client reaching the server directly could set it.
 */
export function httpsCheck(
  secureCookies: boolean | "auto",
  trustProxy: boolean,
): (request: Request) => boolean {
  if (secureCookies !== "auto") return () => secureCookies;
  return (request) => {
    if (new URL(request.url).protocol === "https:") return true;
    if (!trustProxy) return false;
    // The first value is what the client used when several proxies each added theirs.
    const forwarded = request.headers.get("x-forwarded-proto")?.split(",")[0];
    return forwarded?.trim().toLowerCase() === "https";
  };
}

/** Where the dashboard's cookies apply, and whether a request came over https. */
export interface CookieScope {
  /** The path the cookies are sent to: the dashboard's base path. */
  readonly path: string;
  /** Whether `request` was served over https, so its cookies are `Secure`. */
  readonly isHttps: (request: Request) => boolean;
}

/** A `Set-Cookie` value that only this dashboard's pages receive, never sent cross-site. */
export function cookie(
  name: string,
  value: string,
  scope: CookieScope,
  request: Request,
  maxAge?: number,
): string {
  const secure = scope.isHttps(request) ? "; Secure" : "";
  const age = maxAge === undefined ? "" : `; Max-Age=${maxAge}`;
  return `${name}=${value}; Path=${scope.path}; HttpOnly; SameSite=Strict${age}${secure}`;
}
