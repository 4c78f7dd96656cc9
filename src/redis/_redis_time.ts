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
 * The script argument for a due time, read by `dueTime` in {@linkcode REDIS_TIME_LUA}: `'+ms'`
 * for a delay (whole milliseconds, rounded up: never earlier than asked), else the instant.
 */
export function dueArg(due: Due): string | number {
  return "in" in due ? `+${Math.ceil(due.in)}` : due.at;
}

/** Lua helpers: `redisTime()` and `dueTime(arg, now)`. */
export const REDIS_TIME_LUA = `
-- Redis's clock, in ms since the epoch.
local function redisTime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The due time (ms since the epoch) of an argument as dueArg() sends it: '+ms' is that long
-- after now (redisTime()), anything else an instant.
local function dueTime(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end
`;
