/**
 * `retry <module>`: reruns failed tasks of the module's Worker's queue, one by id or those of a
 * function or failed since a time, and prints how many were queued again.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { ExitCode, type RetryCommand } from "./args.ts";
import { asClient } from "./client_command.ts";

/**
 * Reruns what `command` names and prints the count.
 *
 * @returns The exit code: 0 when the rerun was made (a selection that matched nothing included),
 * 1 when the one task named cannot be rerun (the message says why) or Redis fails.
 */
export async function retryTasks(worker: Worker<unknown>, command: RetryCommand): Promise<number> {
  return await asClient(worker, undefined, async () => {
    if (command.taskId !== undefined) {
      const handle = await worker.retryById(command.taskId);
      console.log(`1 failed task queued again: ${handle.fnName} (${handle.id})`);
    } else {
      const count = await worker.retryFailed({ fnName: command.fnName, since: command.since });
      const of = command.fnName === undefined ? "" : ` of ${command.fnName}`;
      const since = command.since ? ` that failed since ${command.since.toISOString()}` : "";
      console.log(`${count} failed ${count === 1 ? "task" : "tasks"}${of}${since} queued again`);
    }
    return ExitCode.OK;
  });
}
