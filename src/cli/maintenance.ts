/**
 * The maintenance commands of the command line: `clean`, `drain` and `obliterate` call the
 * Worker's methods of the same names on the module's queue and print how many things they
 * removed. They run no worker: `obliterate` refuses while one is alive, unless `--force`.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { type CleanCommand, type DrainCommand, ExitCode, type ObliterateCommand } from "./args.ts";
import { asClient } from "./client_command.ts";

/**
 * Runs one maintenance command and prints what it removed on stdout (a refusal or a failure on
 * stderr). Closes the worker's connections.
 *
 * @returns The exit code: 0 done, 1 refused or failed.
 */
export async function runMaintenance(
  // deno-lint-ignore no-explicit-any
  worker: Worker<any>,
  command: CleanCommand | DrainCommand | ObliterateCommand,
): Promise<number> {
  const queue = worker.queueName;
  return await asClient(worker, `cannot ${command.command} queue ${queue}`, async () => {
    switch (command.command) {
      case "clean": {
        const { olderThan, status, fnName } = command;
        const removed = await worker.clean({ olderThan, status, fnName });
        console.log(`removed ${removed} result${removed === 1 ? "" : "s"} from queue ${queue}`);
        break;
      }
      case "drain": {
        const removed = await worker.drain();
        console.log(
          `removed ${removed} waiting task${removed === 1 ? "" : "s"} from queue ${queue}`,
        );
        break;
      }
      case "obliterate": {
        const removed = await worker.obliterate({ force: command.force });
        console.log(`removed queue ${queue}: ${removed} key${removed === 1 ? "" : "s"}`);
        break;
      }
    }
    return ExitCode.OK;
  });
}
