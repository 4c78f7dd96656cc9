/**
 * The dashboard's responses: HTML with a strict Content Security Policy (scripts and styles
 * only from the dashboard itself), JSON, redirects and static assets.
 *
 * @module
 */

import type { Asset } from "./_assets.ts";
import type { Html } from "./_html.ts";

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Extra headers of a response: cookies to set, challenges. */
export type ExtraHeaders = [string, string][];

function headers(type: string, extra: ExtraHeaders): Headers {
  const result = new Headers({ ...SECURITY_HEADERS, "content-type": type });
  for (const [name, value] of extra) result.append(name, value);
  return result;
}

/** An HTML response. */
export function htmlResponse(
  body: Html | string,
  status = 200,
  extra: ExtraHeaders = [],
): Response {
  return new Response(String(body), {
    status,
    headers: headers("text/html; charset=utf-8", extra),
  });
}

/** A JSON response. */
export function jsonResponse(data: unknown, status = 200, extra: ExtraHeaders = []): Response {
  return new Response(JSON.stringify(data, jsonReplacer), {
    status,
    headers: headers("application/json; charset=utf-8", extra),
  });
}

/** BigInts (which JSON cannot hold) as decimal strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * A 303 redirect (after a POST, or after signing in) to `location` when it is a path of this
 * origin, else to `fallback`: a location taken from the request must not lead elsewhere.
 */
export function redirect(location: string, fallback: string, extra: ExtraHeaders = []): Response {
  return new Response(null, {
    status: 303,
    headers: headers("text/plain; charset=utf-8", [
      ["location", localPath(location, fallback)],
      ...extra,
    ]),
  });
}

/**
 * `candidate` when it is a path of this origin, else `fallback`. A browser reads `//host` and
 * `/\host` as another host, ignores tabs and newlines in a URL and turns backslashes into
 * slashes, so a path must start with one `/` not followed by `/` or `\`, and hold no control
 * character or backslash; anything else (a scheme, a host, an empty string) is refused.
 */
export function localPath(candidate: string, fallback: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what it refuses
  return /^\/(?![/\\])[^\\\x00-\x1f\x7f]*$/.test(candidate) ? candidate : fallback;
}

/** A static asset, cacheable for good: its name changes with its content. */
export function assetResponse(asset: Asset): Response {
  return new Response(asset.body, {
    headers: {
      "content-type": asset.type,
      "cache-control": "public, max-age=31536000, immutable",
      "x-content-type-options": "nosniff",
    },
  });
}

/** Whether the client asked for JSON rather than a page. */
export function wantsJson(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  return accept.includes("application/json") && !accept.includes("text/html");
}
