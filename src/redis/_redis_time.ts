/**
 * One clock for due times: Redis's own. A delay (of a task, or of a retry) is sent as a
 * duration and turned into a due time inside the script that stores it, with Redis `TIME`; the
 * scripts that compare due times with the present read `TIME` too. So a task is never due early
 * because the clock of the process that enqueued it, or of the worker that promotes it, is
 * ahead. A point in time the user gives (a `Date`, a crontab's occurrence) is stored as given.
 * Only tasks due later read the clock: a task to run now costs no `TIME` call.
 *
 * Calling `TIME` before writing needs effect replication, the only mode of Redis 7.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";

/**
 * Redis's clock (ms since the epoch), one round trip: for what must be computed here rather
 * than in a script, a crontab's next occurrence.
 */
export async function redisNow(client: QueueContext): Promise<number> {
  const [seconds, micros] = await client.redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** When a task is due: at an instant (ms since the epoch), or `{ in: ms }` from now. */
export type Due = { readonly at: number } | { readonly in: number };

/**
 * The script argument for a due time, read by the Lua piece `dueTime` (`src/redis/lua/steps.ts`): `'+ms'`
 * for a delay (whole milliseconds, rounded up: never earlier than asked), else the instant.
 */
export function dueArg(due: Due): string | number {
  return "in" in due ? `+${Math.ceil(due.in)}` : due.at;
}
