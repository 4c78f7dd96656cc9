/**
 * {@linkcode serveDashboard}: the dashboard on its own HTTP server, bound to loopback unless
 * told otherwise. This is what `streaq web` runs.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { createDashboard, type DashboardOptions } from "./dashboard.ts";

/** Options of {@linkcode serveDashboard}: where to listen, and the dashboard's own options. */
export interface ServeDashboardOptions extends DashboardOptions {
  /**
   * The address to listen on. Any other than a loopback address needs `auth`: a dashboard
   * reachable from the network must not be open to it.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The TCP port; `0` picks a free one (read it from the returned server's `addr`).
   *
   * @default {8080}
   */
  port?: number;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /**
   * Called once the server listens.
   *
   * @default {undefined} (prints the dashboard's URL)
   */
  onListen?: (address: Deno.NetAddr) => void;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const LOOPBACK_HOSTS = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/i;

/**
 * Serves the dashboard of a worker's queue with `Deno.serve`. Without `auth` it listens only
 * on a loopback address and answers only requests addressed to a loopback host name, so that
 * other sites cannot reach it through DNS rebinding.
 *
 * @param worker The worker whose queue to show.
 * @param options Where to listen, plus {@linkcode DashboardOptions}.
 * @returns The running server; `await server.shutdown()` stops it.
 * @throws {TypeError} For a non-loopback `hostname` without `auth`, or an invalid option.
 *
 * @example Serving the dashboard of a worker module on port 8080
 * ```ts
 * import { Worker } from "@streaq/streaq";
 * import { serveDashboard, type ServeDashboardOptions } from "@streaq/streaq/ui";
 *
 * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
 * const options: ServeDashboardOptions = { port: 8080 };
 * if (import.meta.main) {
 *   const server = serveDashboard(worker, options);
 *   await server.finished;
 * }
 * ```
 */
export function serveDashboard<C>(
  worker: Worker<C>,
  options: ServeDashboardOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const { hostname = "127.0.0.1", port = 8080, signal, onListen, ...dashboard } = options;
  const open = dashboard.auth === undefined;
  if (open && !LOOPBACK.has(hostname)) {
    throw new TypeError(
      `Cannot serve the dashboard on ${
        JSON.stringify(hostname)
      } without 'auth': a dashboard reachable from the network needs a token, basic credentials or an auth function`,
    );
  }
  const handler = createDashboard(worker, dashboard);
  const base = (dashboard.basePath ?? "/").replace(/\/+$/, "");
  return Deno.serve({
    hostname,
    port,
    signal,
    onListen: onListen ?? ((addr) => {
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      console.log(`streaq dashboard: http://${host}:${addr.port}${base}/`);
    }),
  }, (request) => {
    if (open && !LOOPBACK_HOSTS.test(request.headers.get("host") ?? "")) {
      return new Response("Forbidden: this dashboard answers loopback host names only\n", {
        status: 403,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    return handler(request);
  });
}
