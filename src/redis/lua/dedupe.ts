/**
 * Deduplication keys in Lua, for the enqueue script: whether a new task is stood for by a task
 * enqueued before it with the same key (`dedupe` in `StartOptions`), in one of three modes.
 * Nothing here runs for a task without a key: the enqueue script calls {@linkcode dedupeTask}
 * only for one that has a key.
 *
 * @module
 */

import { KEY, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { dueTime, redisTime } from "./steps.ts";

/** The modes of a deduplication key, as the enqueue script receives them. */
export const DEDUPE_MODE = {
  /** Stood for by the key's task while that task's hash exists (queued, delayed, waiting, running). */
  pending: "pending",
  /** Stood for by the key's task for a window after it was enqueued (the key expires). */
  throttle: "throttle",
  /** The key's task, while it has not started, takes the new arguments and is pushed back. */
  debounce: "debounce",
} as const;

/**
 * `dedupeTask(P, delayedKey, id, fn, payload, dueArg, key, mode, window)`: applies the
 * deduplication key `key` of function `fn` to the new task `id` (arguments `payload`, due as
 * `dueArg` sends it). Returns the id of the task that stands for it (the new task is then not
 * stored), or nil when the new task is to be stored (and the key now names it).
 *
 * A debounce replaces the arguments of the key's task only while it waits in the delayed set
 * for its first try: once it was promoted (its window passed), started or finished, the new task
 * is stored, so the last arguments always run.
 */
export const dedupeTask = luaFunction(
  "dedupeTask",
  [redisTime, dueTime],
  `
-- Applies the deduplication key of function fn to the new task id. Returns the id of the task
-- that stands for it, or nil when the new task is to be stored (the key then names it).
local function dedupeTask(P, delayedKey, id, fn, payload, dueArg, key, mode, window)
  local dk = P .. '${KEY.dedupe}' .. fn .. ' ' .. key
  local holder = redis.call('GET', dk)
  if mode == '${DEDUPE_MODE.pending}' then
    if holder and redis.call('EXISTS', P .. '${KEY.task}' .. holder) == 1 then return holder end
    redis.call('SET', dk, id)
  elseif mode == '${DEDUPE_MODE.throttle}' then
    if holder then return holder end
    redis.call('SET', dk, id, 'PX', window)
  else
    if holder and redis.call('ZSCORE', delayedKey, holder) then
      local taskKey = P .. '${KEY.task}' .. holder
      local f = redis.call('HMGET', taskKey, '${TASK_FIELD.fn}', '${TASK_FIELD.tries}')
      if f[1] == fn and f[2] == '0' then
        local due = dueTime(dueArg, redisTime())
        redis.call('HSET', taskKey, '${TASK_FIELD.data}', payload, '${TASK_FIELD.due}', due, '${TASK_FIELD.scheduled}', due)
        redis.call('ZADD', delayedKey, due, holder)
        redis.call('SET', dk, holder, 'PX', window)
        return holder
      end
    end
    redis.call('SET', dk, id, 'PX', window)
  end
  return nil
end
`,
);
