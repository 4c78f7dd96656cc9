/**
 * Requests to a dashboard handler as a browser makes them, for the dashboard's handler tests: a
 * GET, a session (the CSRF cookie and token the first page hands out) and a POST with them.
 *
 * @module
 */

import assert from "node:assert/strict";

/** A dashboard handler (`createDashboard`). */
export type Handler = (request: Request) => Promise<Response>;

/** Where the tests pretend the dashboard is served. */
export const ORIGIN = "http://127.0.0.1:8080";

/** A GET of `path` below {@linkcode ORIGIN}. */
export function get(handler: Handler, path: string, headers: HeadersInit = {}): Promise<Response> {
  return handler(new Request(ORIGIN + path, { headers }));
}

/** The `name=value` part of each Set-Cookie header. */
export function cookies(response: Response): string[] {
  return response.headers.getSetCookie().map((c) => c.split(";")[0]);
}

/** A browser session: the CSRF cookie and token the first page hands out, and that page. */
export async function session(
  handler: Handler,
  base = "",
): Promise<{ cookie: string; token: string; page: string }> {
  const response = await get(handler, `${base}/`);
  assert.equal(response.status, 200);
  const [cookie] = cookies(response).filter((c) => c.startsWith("streaq_csrf="));
  assert.ok(cookie, "the first page sets the CSRF cookie");
  const page = await response.text();
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1];
  assert.ok(token, "the page carries the CSRF token");
  return { cookie, token, page };
}

/** A POST of `path`, with the session's cookie and token when given. */
export function post(
  handler: Handler,
  path: string,
  { cookie, token, accept = "application/json" }: {
    cookie?: string;
    token?: string;
    accept?: string;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept };
  if (cookie) headers.cookie = cookie;
  if (token) headers["x-csrf-token"] = token;
  return handler(new Request(ORIGIN + path, { method: "POST", headers }));
}
