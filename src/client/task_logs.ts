/**
 * Reading the log lines a task wrote with `taskContext().log()` (written by
 * `src/run/task_logs.ts`): one `LRANGE` of its list.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { TaskLogLine } from "../result.ts";

/**
 * The log lines of the task with this id, oldest first: the newest 100 it wrote, while they are
 * kept (as long as its result); empty for a task that wrote none or is unknown.
 */
export async function logsById(client: QueueContext, id: string): Promise<TaskLogLine[]> {
  return parseLogLines(await client.redis.lrange(client.keys.logs(id), 0, -1));
}

/** Parses stored lines, `<ms> <try> <text>`. */
export function parseLogLines(stored: readonly string[]): TaskLogLine[] {
  return stored.map((line) => {
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    return {
      time: new Date(Number(line.slice(0, first))),
      tries: Number(line.slice(first + 1, second)),
      message: line.slice(second + 1),
    };
  });
}
