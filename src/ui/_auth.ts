/**
 * Who may see the dashboard: a bearer token (also accepted once as `?token=`, which then sets
 * a cookie), HTTP basic credentials, or a function of the request.
 *
 * @module
 */

import { cookie, type CookieScope, hmac, hmacKey, readCookie, sameSecret } from "./_crypto.ts";

/**
 * How the dashboard checks requests:
 * - `{ token }`: an `Authorization: Bearer <token>` header, or `?token=<token>` in a page's
 *   URL, which sets an HTTP-only cookie and redirects to the URL without it (for browsers);
 *   no credentials give 401, a wrong token 403;
 * - `{ basic: { username, password } }`: HTTP basic authentication (401 and a browser
 *   prompt until the right credentials come);
 * - a function of the request: true lets it through, false answers 403.
 */
export type DashboardAuth =
  | { readonly token: string }
  | { readonly basic: { readonly username: string; readonly password: string } }
  | ((request: Request) => boolean | Promise<boolean>);

/** What the check decided. */
export type AuthDecision =
  | { readonly kind: "allow" }
  /** Credentials accepted from the query: set the cookie and redirect to `location`. */
  | { readonly kind: "login"; readonly location: string; readonly setCookie: string }
  | { readonly kind: "deny"; readonly status: 401 | 403; readonly challenge?: string };

const AUTH_COOKIE = "streaq_auth";
const COOKIE_MAX_AGE = 7 * 24 * 3600;
const ALLOW: AuthDecision = { kind: "allow" };

/** Checks requests against a {@linkcode DashboardAuth}. */
export class Authenticator {
  readonly #auth: DashboardAuth | undefined;
  readonly #cookies: CookieScope;
  #session: Promise<string> | undefined;

  constructor(auth: DashboardAuth | undefined, cookies: CookieScope) {
    checkAuth(auth);
    this.#auth = auth;
    this.#cookies = cookies;
  }

  /** Decides whether `request` may proceed. */
  async check(request: Request, url: URL): Promise<AuthDecision> {
    const auth = this.#auth;
    if (auth === undefined) return ALLOW;
    if (typeof auth === "function") {
      return await auth(request) === true ? ALLOW : { kind: "deny", status: 403 };
    }
    if ("basic" in auth) return await checkBasic(request, auth.basic);
    return await this.#checkToken(request, url, auth.token);
  }

  async #checkToken(request: Request, url: URL, token: string): Promise<AuthDecision> {
    const queried = url.searchParams.get("token");
    if (queried !== null) {
      if (!await sameSecret(queried, token)) return { kind: "deny", status: 403 };
      const clean = new URL(url);
      clean.searchParams.delete("token");
      const value = await this.#sessionValue(token);
      return {
        kind: "login",
        location: clean.pathname + clean.search,
        setCookie: cookie(AUTH_COOKIE, value, this.#cookies, request, COOKIE_MAX_AGE),
      };
    }
    const header = request.headers.get("authorization");
    if (header !== null) {
      const match = /^Bearer\s+(.+)$/i.exec(header.trim());
      return match && await sameSecret(match[1], token) ? ALLOW : { kind: "deny", status: 403 };
    }
    const session = readCookie(request, AUTH_COOKIE);
    // A stale cookie (the token changed) counts as no credentials, so the login form shows.
    if (session !== null && await sameSecret(session, await this.#sessionValue(token))) {
      return ALLOW;
    }
    return { kind: "deny", status: 401, challenge: 'Bearer realm="streaq"' };
  }

  /** The cookie value standing for the token: derived from it, so the token never leaves. */
  #sessionValue(token: string): Promise<string> {
    this.#session ??= hmacKey(token).then((key) => hmac(key, "streaq dashboard session"));
    return this.#session;
  }
}

async function checkBasic(
  request: Request,
  expected: { readonly username: string; readonly password: string },
): Promise<AuthDecision> {
  const deny: AuthDecision = {
    kind: "deny",
    status: 401,
    challenge: 'Basic realm="streaq", charset="UTF-8"',
  };
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(request.headers.get("authorization") ?? "");
  if (!match) return deny;
  let decoded: string;
  try {
    const binary = atob(match[1]);
    decoded = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return deny;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return deny;
  const [userOk, passwordOk] = await Promise.all([
    sameSecret(decoded.slice(0, colon), expected.username),
    sameSecret(decoded.slice(colon + 1), expected.password),
  ]);
  return userOk && passwordOk ? ALLOW : deny;
}

function checkAuth(auth: unknown): void {
  if (auth === undefined || typeof auth === "function") return;
  const fail = (what: string): never => {
    throw new TypeError(`Cannot create dashboard as 'auth' ${what}`);
  };
  if (auth === null || typeof auth !== "object") {
    fail(`must be { token }, { basic } or a function: received ${String(auth)} (${typeof auth})`);
  }
  const value = auth as Record<string, unknown>;
  if ("token" in value) {
    if (typeof value.token !== "string" || value.token.length < 8) {
      fail(
        `token must be a string of at least 8 characters: received ${
          typeof value.token === "string" ? `${value.token.length} characters` : typeof value.token
        }`,
      );
    }
  } else if ("basic" in value) {
    const basic = value.basic as Record<string, unknown> | null;
    if (
      !basic || typeof basic.username !== "string" || typeof basic.password !== "string" ||
      basic.username.includes(":") || basic.password.length === 0
    ) {
      fail("basic must be { username, password } with non-empty strings, no ':' in the username");
    }
  } else {
    fail(
      `must be { token }, { basic } or a function: received an object with keys ${
        Object.keys(value).join(", ") || "none"
      }`,
    );
  }
}
