/**
 * {@linkcode createDashboard}: the dashboard as a standard request handler. It routes
 * requests below its base path, checks authentication and CSRF tokens, and answers pages,
 * page fragments (for the live refresh), JSON and its own assets.
 *
 * @module
 */

import type { TaskResult } from "../result.ts";
import type { Worker } from "../worker.ts";
import type { QueueReads } from "../client/queue_reads.ts";
import { ASSETS } from "./_assets.ts";
import { type AuthDecision, Authenticator, type DashboardAuth } from "./_auth.ts";
import { HttpError, type Page, type PageContext, queueReadsOf } from "./_context.ts";
import { httpsCheck } from "./_crypto.ts";
import { Csrf, MAX_FORM_BYTES } from "./_csrf.ts";
import { errorPage, layout, signInPage } from "./_layout.ts";
import { type Action, actionFor } from "./_actions.ts";
import {
  assetResponse,
  type ExtraHeaders,
  htmlResponse,
  jsonResponse,
  localPath,
  redirect,
  wantsJson,
} from "./_responses.ts";
import { formatError, formatValue } from "./format.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./_prometheus.ts";
import { eventStreamResponse } from "./_events_stream.ts";
import { overviewPage } from "./pages/overview.ts";
import { schedulesPage } from "./pages/schedules.ts";
import { taskPage } from "./pages/task.ts";
import { tasksPage } from "./pages/tasks.ts";
import { workersPage } from "./pages/workers.ts";

export type { DashboardAuth } from "./_auth.ts";

/** Options of {@linkcode createDashboard}. */
export interface DashboardOptions {
  /**
   * The path the dashboard is mounted at, such as `"/admin/queues"`: it answers that path and
   * everything below it, and 404 elsewhere; its links and cookies stay below it.
   *
   * @default {"/"}
   */
  basePath?: string;
  /**
   * Who may use the dashboard: `{ token }`, `{ basic: { username, password } }`, or a
   * function of the request. Without it, anyone who can reach the handler can; mount it
   * behind your own authentication or serve it on a loopback address only.
   *
   * @default {undefined}
   */
  auth?: DashboardAuth;
  /**
   * Renders the value a task returned, as text (it is escaped).
   *
   * @default {formatValue}
   */
  formatResult?: (value: unknown, result: TaskResult<unknown>) => string;
  /**
   * Renders the error a task failed with, as text (it is escaped).
   *
   * @default {formatError} (the stack and the causes)
   */
  formatError?: (error: unknown, result: TaskResult<unknown>) => string;
  /**
   * The name in the header and the window title.
   *
   * @default {"streaq"}
   */
  title?: string;
  /**
   * Whether the dashboard's cookies (the sign-in session and the CSRF nonce) carry the
   * `Secure` flag, which keeps browsers from sending them over plain http. `"auto"` sets it
   * when the request arrived over https: behind a TLS-terminating proxy the request the
   * dashboard sees is http, so say `true` there, or set {@linkcode trustProxy}. `true` over
   * plain http makes browsers drop the cookies (no sign-in, no actions).
   *
   * @default {"auto"}
   *
   * @example Behind a proxy that terminates TLS
   * ```ts
   * import { Worker } from "@streaq/streaq";
   * import { createDashboard } from "@streaq/streaq/ui";
   *
   * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
   * const dashboard = createDashboard(worker, {
   *   auth: { token: "a-long-random-token" },
   *   secureCookies: true,
   * });
   * // The proxy forwards https://queues.example.com to this port.
   * if (import.meta.main) Deno.serve({ hostname: "127.0.0.1", port: 8080 }, dashboard);
   * ```
   */
  secureCookies?: boolean | "auto";
  /**
   * With `secureCookies: "auto"`, also count a request as https when its
   * `X-Forwarded-Proto` header says `https`. Only set it when every request comes through a
   * proxy that sets (or overwrites) that header: a client that reaches the dashboard directly
   * could send it too. Never trusted by default.
   *
   * @default {false}
   *
   * @example Trusting the proxy's X-Forwarded-Proto header
   * ```ts
   * import { Worker } from "@streaq/streaq";
   * import { createDashboard } from "@streaq/streaq/ui";
   *
   * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
   * const dashboard = createDashboard(worker, {
   *   auth: { token: "a-long-random-token" },
   *   trustProxy: true,
   * });
   * if (import.meta.main) Deno.serve({ hostname: "127.0.0.1", port: 8080 }, dashboard);
   * ```
   */
  trustProxy?: boolean;
}

/** A standard request handler, as `Deno.serve`, Hono, Oak and Fresh take. */
export type DashboardHandler = (request: Request) => Promise<Response>;

const FRAGMENT_HEADER = "x-streaq-fragment";
/** Where the dashboard serves the queue's metrics to Prometheus, below its base path. */
const METRICS_PATH = "/metrics";
/** Where the page script listens for the queue's events (Server-Sent Events), below its base path. */
const EVENTS_PATH = "/events";

/**
 * Creates the dashboard of a worker's queue: a request handler serving the overview, the task
 * list, task pages, workers and schedules, as HTML that refreshes itself and as JSON below
 * `api/`, and the queue's metrics for Prometheus at `metrics` (behind the same `auth`). It
 * needs nothing but the worker's Redis connection: no CDN, no files.
 *
 * @param worker The worker whose queue to show (it need not be running).
 * @param options Base path, authentication, formatters, title and cookie security.
 * @returns The request handler.
 * @throws {TypeError} For an invalid option, naming it.
 *
 * @example Serving the dashboard on a loopback port, with a token
 * ```ts
 * import { Worker } from "@streaq/streaq";
 * import { createDashboard } from "@streaq/streaq/ui";
 *
 * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
 * const dashboard = createDashboard(worker, { auth: { token: "a-long-random-token" } });
 * if (import.meta.main) Deno.serve({ hostname: "127.0.0.1", port: 8080 }, dashboard);
 * ```
 */
export function createDashboard<C>(
  worker: Worker<C>,
  options: DashboardOptions = {},
): DashboardHandler {
  checkOptions(options);
  const dashboard = new Dashboard(worker as Worker<unknown>, options);
  return (request: Request) => dashboard.respond(request);
}

/** The dashboard of one worker's queue: routing, checks and responses. */
class Dashboard {
  readonly #worker: Worker<unknown>;
  readonly #reads: QueueReads;
  readonly #base: string;
  readonly #title: string;
  readonly #authenticator: Authenticator;
  readonly #csrf: Csrf;
  readonly #formatResult: PageContext["formatResult"];
  readonly #formatError: PageContext["formatError"];

  constructor(worker: Worker<unknown>, options: DashboardOptions) {
    this.#worker = worker;
    this.#reads = queueReadsOf(worker);
    this.#base = (options.basePath ?? "/").replace(/\/+$/, "");
    this.#title = options.title ?? "streaq";
    const cookies = {
      path: this.#base || "/",
      isHttps: httpsCheck(options.secureCookies ?? "auto", options.trustProxy ?? false),
    };
    this.#authenticator = new Authenticator(options.auth, cookies);
    this.#csrf = new Csrf(cookies);
    this.#formatResult = guard(options.formatResult ?? ((value) => formatValue(value)));
    this.#formatError = guard(options.formatError ?? ((error) => formatError(error)));
  }

  /** Answers a request; never throws (a failure is a 500 page). */
  async respond(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let response: Response;
    try {
      response = await this.#handle(request, url);
    } catch (error) {
      const json = isApi(below(url.pathname, this.#base)) || wantsJson(request);
      if (error instanceof HttpError) {
        response = this.#failure(url, json, error.status, error.message);
      } else {
        this.#reads.logger.error(
          `dashboard: ${request.method} ${url.pathname} failed: ${error}`,
        );
        response = this.#failure(url, json, 500, `Internal error: ${(error as Error)?.message}`);
      }
    }
    return request.method === "HEAD"
      ? new Response(null, { status: response.status, headers: response.headers })
      : response;
  }

  async #handle(request: Request, url: URL): Promise<Response> {
    const path = below(url.pathname, this.#base);
    if (path === null) return this.#failure(url, false, 404, "Not found");
    if (path.startsWith("/assets/")) {
      const asset = ASSETS.get(path.slice("/assets/".length));
      if (asset && isRead(request)) return assetResponse(asset);
      return this.#failure(url, false, 404, "Not found");
    }
    if (path === METRICS_PATH) return await this.#scrape(request, url);
    const json = isApi(path) || wantsJson(request);
    const decision = await this.#authenticator.check(request, url);
    if (decision.kind !== "allow") return this.#denied(url, decision, json);
    if (path === EVENTS_PATH) {
      if (!isRead(request)) return methodNotAllowed(json, "GET, HEAD");
      return await eventStreamResponse(this.#reads, request);
    }
    const segments = (isApi(path) ? path.slice(4) : path).split("/").filter(Boolean)
      .map(decodeSegment);
    if (segments.includes(null)) return this.#failure(url, json, 404, "Not found");
    const action = actionFor(segments as string[], url);
    const load = page(segments as string[]);
    if (!action && !load) return this.#failure(url, json, 404, "Not found");
    if (request.method === "POST" && action) return await this.#act(request, url, action, json);
    if (!load || !isRead(request)) return methodNotAllowed(json, action ? "POST" : "GET, HEAD");
    return await this.#show(request, url, load, json);
  }

  /**
   * Runs an action once the request proved it comes from a page of the dashboard. A refused
   * request's body is left unread: its sender may be anyone.
   */
  async #act(request: Request, url: URL, action: Action, json: boolean): Promise<Response> {
    const check = await this.#csrf.check(request);
    if (check !== "valid") {
      await request.body?.cancel().catch(() => {});
      return check === "too large"
        ? this.#failure(
          url,
          json,
          413,
          `Request body too large: the dashboard's forms send at most ${MAX_FORM_BYTES} bytes`,
        )
        : this.#failure(url, json, 403, "Missing or invalid CSRF token: reload the page");
    }
    const done = await action(this.#worker);
    if (json) return jsonResponse(done, done.status);
    if (!done.ok) return this.#failure(url, json, done.status, done.message);
    return redirect(`${this.#base}${done.back}`, this.#root());
  }

  /**
   * The Prometheus endpoint: the queue's metrics as text, behind the same authentication as
   * the pages. A scraper gets plain answers: no sign-in form, no cookie, no redirect.
   */
  async #scrape(request: Request, url: URL): Promise<Response> {
    const decision = await this.#authenticator.check(request, url);
    if (decision.kind !== "allow") {
      const status = decision.kind === "deny" ? decision.status : 401;
      const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
      if (decision.kind === "deny" && decision.challenge) {
        headers["www-authenticate"] = decision.challenge;
      }
      return new Response(status === 401 ? "Sign in\n" : "Forbidden\n", { status, headers });
    }
    if (!isRead(request)) {
      return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const body = renderPrometheus(await this.#reads.metrics());
    return new Response(body, {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  }

  /** The overview's path: where a redirect goes when the one asked for is not a local path. */
  #root(): string {
    return `${this.#base}/`;
  }

  /** A page: whole, as the fragment the page's script refreshes, or as JSON. */
  async #show(request: Request, url: URL, load: PageLoader, json: boolean): Promise<Response> {
    const { token, setCookie } = json ? { token: "" } : await this.#csrf.issue(request);
    const ctx = this.#context(url, token);
    const found = await load(ctx);
    if (!found) return this.#failure(url, json, 404, "Not found");
    if (json) return jsonResponse(found.json);
    const cookies: ExtraHeaders = setCookie ? [["set-cookie", setCookie]] : [];
    const fragment = request.headers.get(FRAGMENT_HEADER) !== null;
    return htmlResponse(fragment ? found.body : layout(ctx, this.#title, found), 200, cookies);
  }

  #failure(
    url: URL,
    json: boolean,
    status: number,
    message: string,
    extra: ExtraHeaders = [],
  ): Response {
    if (json) return jsonResponse({ error: message }, status, extra);
    return htmlResponse(errorPage(this.#context(url, ""), message), status, extra);
  }

  #denied(url: URL, decision: AuthDecision, json: boolean): Response {
    if (decision.kind === "login") {
      return redirect(decision.location, this.#root(), [["set-cookie", decision.setCookie]]);
    }
    if (decision.kind !== "deny") throw new Error("unreachable");
    const extra: ExtraHeaders = decision.challenge
      ? [["www-authenticate", decision.challenge]]
      : [];
    // A browser without the token gets a form that sends it as ?token=, which sets the cookie.
    if (!json && decision.challenge?.startsWith("Bearer")) {
      // The form goes back to the page asked for, unless that path would lead to another host.
      const action = localPath(url.pathname, this.#root());
      return htmlResponse(signInPage(this.#context(url, ""), action), 401, extra);
    }
    const message = decision.status === 401 ? "Sign in" : "Forbidden";
    return this.#failure(url, json, decision.status, message, extra);
  }

  #context(url: URL, csrfToken: string): PageContext {
    return {
      reads: this.#reads,
      functions: [...this.#worker.registry.keys()].sort(),
      url,
      base: this.#base,
      csrfToken,
      now: this.#reads.now(),
      formatResult: this.#formatResult,
      formatError: this.#formatError,
    };
  }
}

type PageLoader = (ctx: PageContext) => Promise<Page | null>;

function isApi(path: string | null): boolean {
  return path === "/api" || (path?.startsWith("/api/") ?? false);
}

/** The loader of the page at these path segments, or undefined for an unknown path. */
function page(segments: string[]): PageLoader | undefined {
  const [first, second, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (first === undefined) return overviewPage;
  if (second === undefined) {
    const pages = {
      overview: overviewPage,
      tasks: tasksPage,
      workers: workersPage,
      schedules: schedulesPage,
    } as const;
    return Object.hasOwn(pages, first) ? pages[first as keyof typeof pages] : undefined;
  }
  return first === "tasks" ? (ctx) => taskPage(ctx, second) : undefined;
}

function methodNotAllowed(json: boolean, allow: string): Response {
  const extra: ExtraHeaders = [["allow", allow]];
  return json
    ? jsonResponse({ error: "Method not allowed" }, 405, extra)
    : htmlResponse("Method not allowed", 405, extra);
}

function isRead(request: Request): boolean {
  return request.method === "GET" || request.method === "HEAD";
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The path below `base` (starting with "/"), or null when `pathname` is not below it. */
function below(pathname: string, base: string): string | null {
  if (base === "") return pathname;
  if (pathname === base) return "/";
  return pathname.startsWith(base + "/") ? pathname.slice(base.length) : null;
}

/** A formatter that cannot break a page: its failure is shown instead. */
function guard(
  format: (value: unknown, result: TaskResult<unknown>) => string,
): (value: unknown, result: TaskResult<unknown>) => string {
  return (value, result) => {
    try {
      return String(format(value, result));
    } catch (error) {
      return `(the formatter failed: ${(error as Error)?.message ?? error})`;
    }
  };
}

function checkOptions(options: DashboardOptions): void {
  const { basePath, title, formatResult, formatError, secureCookies, trustProxy } = options;
  if (
    basePath !== undefined &&
    (typeof basePath !== "string" || !basePath.startsWith("/") || /[?#\s]/.test(basePath))
  ) {
    throw new TypeError(
      `Cannot create dashboard as 'basePath' must be a path starting with '/' (no query, fragment or spaces): received ${
        JSON.stringify(basePath)
      }`,
    );
  }
  if (title !== undefined && typeof title !== "string") {
    throw new TypeError(
      `Cannot create dashboard as 'title' must be a string: received ${typeof title}`,
    );
  }
  if (
    secureCookies !== undefined && typeof secureCookies !== "boolean" && secureCookies !== "auto"
  ) {
    throw new TypeError(
      `Cannot create dashboard as 'secureCookies' must be true, false or "auto": received ${
        JSON.stringify(secureCookies) ?? String(secureCookies)
      } (${typeof secureCookies})`,
    );
  }
  if (trustProxy !== undefined && typeof trustProxy !== "boolean") {
    throw new TypeError(
      `Cannot create dashboard as 'trustProxy' must be a boolean: received ${
        JSON.stringify(trustProxy) ?? String(trustProxy)
      } (${typeof trustProxy})`,
    );
  }
  for (const [name, value] of [["formatResult", formatResult], ["formatError", formatError]]) {
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(
        `Cannot create dashboard as '${name}' must be a function: received ${typeof value}`,
      );
    }
  }
}
