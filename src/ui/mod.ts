/**
 * The streaq dashboard: queues, tasks, workers and cron jobs at a glance, in the browser.
 *
 * {@linkcode createDashboard} returns a standard `(request: Request) => Promise<Response>`
 * handler, so the dashboard mounts in `Deno.serve`, Hono, Oak or Fresh under any base path;
 * {@linkcode serveDashboard} runs it on its own server bound to loopback. Everything it shows
 * comes from the worker's Redis; its HTML, CSS and JavaScript are served by the handler itself
 * (no CDN), and its pages refresh their data every few seconds.
 *
 * Pages: an overview (tasks per status and priority, tasks finished per minute over the last
 * hour), the task list (filters by function, status and priority, pagination), a page per
 * task (arguments, timings, result or error, dependencies, abort), live workers, and repeating
 * tasks (next run, last outcome, unschedule). Each page's data is also served as JSON below
 * `api/` (`api/overview`, `api/tasks`, `api/tasks/<id>`, `api/workers`, `api/schedules`).
 *
 * Safe by default: the `auth` option takes a token, basic credentials or a function; abort
 * and unschedule are POST requests that need a CSRF token; every value is HTML-escaped and a
 * strict Content Security Policy allows no inline script.
 *
 * @example Mounting the dashboard under /admin/queues of a Deno.serve app
 * ```ts
 * import { Worker } from "@streaq/streaq";
 * import { createDashboard } from "@streaq/streaq/ui";
 *
 * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
 * const dashboard = createDashboard(worker, {
 *   basePath: "/admin/queues",
 *   auth: { basic: { username: "admin", password: Deno.env.get("ADMIN_PASSWORD") ?? "" } },
 * });
 *
 * if (import.meta.main) {
 *   Deno.serve({ hostname: "127.0.0.1", port: 8000 }, (request) => {
 *     const { pathname } = new URL(request.url);
 *     if (pathname === "/admin/queues" || pathname.startsWith("/admin/queues/")) {
 *       return dashboard(request);
 *     }
 *     return new Response("Hello");
 *   });
 * }
 * ```
 *
 * @example In Hono
 * ```ts ignore
 * import { Hono } from "hono";
 * import { createDashboard } from "@streaq/streaq/ui";
 * import { worker } from "./worker.ts";
 *
 * const app = new Hono();
 * const dashboard = createDashboard(worker, { basePath: "/queues", auth: { token: "s3cret-token" } });
 * app.all("/queues/*", (c) => dashboard(c.req.raw));
 * app.all("/queues", (c) => dashboard(c.req.raw));
 * ```
 *
 * @module
 */

export { createDashboard } from "./dashboard.ts";
export type { DashboardAuth, DashboardHandler, DashboardOptions } from "./dashboard.ts";
export { serveDashboard } from "./serve.ts";
export type { ServeDashboardOptions } from "./serve.ts";
export { formatError, formatValue } from "./format.ts";
