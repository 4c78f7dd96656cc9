/**
 * The streaq command line: runs the Worker that a module exports, in this process or in
 * several supervised processes, restarts it when files change, and shows its queue in the
 * terminal or in the browser.
 *
 * ```sh
 * deno run -P jsr:@streaq/streaq/cli run worker.ts              # one worker, in this process
 * deno run -P jsr:@streaq/streaq/cli run worker.ts --workers 4  # four supervised processes
 * deno run -P jsr:@streaq/streaq/cli run worker.ts --burst      # drain the queue, then exit
 * deno run -P jsr:@streaq/streaq/cli run worker.ts:emails --watch --verbose
 * deno run -P jsr:@streaq/streaq/cli run worker.ts --workers 4 --log-format json \
 *   --deno-flags="--unstable-kv --v8-flags=--max-old-space-size=512" --permission-set=worker
 * deno run -P jsr:@streaq/streaq/cli status worker.ts           # live queue view
 * deno run -P jsr:@streaq/streaq/cli metrics worker.ts --json    # the queue's metrics, once
 * deno run -P jsr:@streaq/streaq/cli web worker.ts --port 8080   # the dashboard
 * deno run -P jsr:@streaq/streaq/cli clean worker.ts --failed --older-than 7d
 * deno run -P jsr:@streaq/streaq/cli drain worker.ts             # remove the waiting tasks
 * deno run -P jsr:@streaq/streaq/cli obliterate worker.ts        # remove the whole queue
 * deno run -P jsr:@streaq/streaq/cli pause worker.ts --function sendEmail  # hold one function
 * deno run -P jsr:@streaq/streaq/cli resume worker.ts --function sendEmail
 * deno run -P jsr:@streaq/streaq/cli retry worker.ts --function sendEmail --since 2h
 * ```
 *
 * `-P` reads the `permissions` of your `deno.json`: a worker needs network access to Redis,
 * environment access and (optionally) `sys` `hostname`; the command line also reads the
 * module, and runs `deno` for `--workers` and `--watch`. Worker processes do not inherit the
 * command line's own Deno flags (a program cannot see them): pass them with `--deno-flags`, and
 * a permission set with `--permission-set`. Exit codes: 0 done (including a
 * graceful shutdown on SIGINT or SIGTERM), 1 failure at run time, 2 usage error. `--help`
 * prints everything.
 *
 * @example Running the command line from a script
 * ```ts
 * import { main } from "@streaq/streaq/cli";
 *
 * // The same as `streaq run worker.ts --burst`: drains the queue, then resolves to 0.
 * const code = await main(["run", "./worker.ts", "--burst"]);
 * if (code !== 0) console.error(`streaq exited with code ${code}`);
 * ```
 *
 * @module
 */

import { type Command, ExitCode, parseCommandLine, UsageError } from "./args.ts";
import { HELP, VERSION } from "./help.ts";
import { loadWorker } from "./load.ts";
import { runInProcess, runSupervised } from "./run.ts";
import { ShutdownSignals } from "./signals.ts";
import { showStatus } from "./status.ts";
import { runMaintenance } from "./maintenance.ts";
import { serveWeb } from "./web.ts";
import { retryTasks } from "./retry.ts";
import { printTaskLogs } from "./logs.ts";
import { printMetrics } from "./metrics.ts";
import { printEvents } from "./events.ts";
import { runPauseCommand } from "./pause.ts";

/**
 * Runs the command line with `args` (what follows the module in `deno run ... cli ...`) and
 * resolves to its exit code: 0 done, 1 failure at run time, 2 usage error. Messages go to
 * stdout (help, version, status) and stderr (errors, logs).
 *
 * @param args The arguments, for example `["run", "worker.ts", "--workers", "2"]`.
 * @returns The exit code.
 *
 * @example Printing the version
 * ```ts
 * import { main } from "@streaq/streaq/cli";
 *
 * const code = await main(["--version"]); // prints "streaq 0.1.0"
 * console.assert(code === 0);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(args);
  } catch (error) {
    return usageFailure(error);
  }
  switch (command.command) {
    case "help":
      console.log(HELP);
      return ExitCode.OK;
    case "version":
      console.log(`streaq ${VERSION}`);
      return ExitCode.OK;
  }
  // Listening from now on: a signal that comes while the module loads still shuts down cleanly.
  using signals = new ShutdownSignals();
  let loaded;
  try {
    loaded = await loadWorker(command.target);
  } catch (error) {
    return usageFailure(error);
  }
  switch (command.command) {
    case "run":
      return command.workers > 1 || command.watch
        ? await runSupervised(loaded, command, signals)
        : await runInProcess(loaded, command, signals);
    case "status":
      try {
        await showStatus(loaded.worker, { once: command.once, signal: signals.signal });
        return ExitCode.OK;
      } catch (error) {
        console.error(
          `streaq: cannot read the status of queue ${loaded.worker.queueName}: ${error}`,
        );
        return ExitCode.FAILURE;
      } finally {
        await loaded.worker.close();
      }
    case "web":
      return await serveWeb(loaded, command, signals);
    case "clean":
    case "drain":
    case "obliterate":
      return await runMaintenance(loaded.worker, command);
    case "pause":
    case "resume":
      return await runPauseCommand(loaded.worker, command);
    case "retry":
      return await retryTasks(loaded.worker, command);
    case "logs":
      return await printTaskLogs(loaded.worker, command);
    case "metrics":
      return await printMetrics(loaded.worker, command);
    case "events":
      return await printEvents(loaded.worker, command, signals.signal);
  }
}

function usageFailure(error: unknown): number {
  if (!(error instanceof UsageError)) throw error;
  console.error(`streaq: ${error.message}\nRun with --help for usage.`);
  return ExitCode.USAGE;
}

if (import.meta.main) {
  // Exit explicitly: the user's module may hold timers or servers that would keep it alive.
  Deno.exit(await main(Deno.args));
}
