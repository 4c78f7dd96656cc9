/**
 * `web <module>`: the dashboard of the module's Worker (`src/ui/`) on its own server, bound to
 * loopback, until SIGINT or SIGTERM.
 *
 * @module
 */

import { ExitCode, type WebCommand } from "./args.ts";
import type { LoadedWorker } from "./load.ts";
import type { ShutdownSignals } from "./signals.ts";

/**
 * Serves the dashboard until a signal stops it.
 *
 * @returns The exit code: 0 after a shutdown, 2 for a listening address that needs `auth`
 * (the command line has none: mount `createDashboard` with `auth` in your own server), 1 when
 * the server cannot start.
 */
export async function serveWeb(
  { worker }: LoadedWorker,
  command: WebCommand,
  signals: ShutdownSignals,
): Promise<number> {
  // Loaded only here: the other commands do not need the dashboard's code.
  const { serveDashboard } = await import("../ui/serve.ts");
  try {
    let server;
    try {
      server = serveDashboard(worker, {
        hostname: command.hostname,
        port: command.port,
        trustProxy: command.trustProxy,
        signal: signals.signal,
      });
    } catch (error) {
      const usage = error instanceof TypeError;
      console.error(
        `streaq: cannot serve the dashboard: ${error instanceof Error ? error.message : error}`,
      );
      return usage ? ExitCode.USAGE : ExitCode.FAILURE;
    }
    await server.finished;
    return ExitCode.OK;
  } finally {
    await worker.close();
  }
}
