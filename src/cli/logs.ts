/**
 * `logs <module> <task-id>`: prints the lines a task wrote with `taskContext().log()`, one a
 * line: time (ISO 8601, UTC), try and text.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { ExitCode, type LogsCommand } from "./args.ts";
import { asClient } from "./client_command.ts";

/**
 * Prints the task's log lines to stdout; a note on stderr when there are none.
 *
 * @returns The exit code: 0 (also when the task wrote no lines, or they expired), 1 when Redis
 * fails.
 */
export async function printTaskLogs(
  worker: Worker<unknown>,
  command: LogsCommand,
): Promise<number> {
  return await asClient(worker, undefined, async () => {
    const lines = await worker.logsById(command.taskId);
    if (lines.length === 0) {
      console.error(
        `streaq: task ${command.taskId} has no log lines (it wrote none, is unknown, or they expired with its result)`,
      );
    }
    for (const line of lines) {
      console.log(`${line.time.toISOString()}  try ${line.tries}  ${line.message}`);
    }
    return ExitCode.OK;
  });
}
