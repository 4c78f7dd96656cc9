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
  /** Stood for by the key's task for a window after it was enqueued (its field names the window's end). */
  throttle: "throttle",
  /** The key's task, while it has not started, takes the new arguments and is pushed back. */
  debounce: "debounce",
} as const;

/**
 * How the arguments sent with a debounced task may be used (`bound`, the last parameter of
 * {@linkcode dedupeTask}): by any task, only by the new task (signed for its id), or only by the
 * task the key names (signed for it: a replacement sent again, see `src/client/enqueue.ts`).
 */
export const PAYLOAD_BINDING = { any: "any", ownId: "own", holder: "holder" } as const;

/**
 * How a key's spec starts, by mode (see {@linkcode dedupeSpec}): `pending` and `throttle`, each on
 * a task whose id was given (`id`) or generated, and `debounce`. On a generated id the key's check
 * also stands for the check that the id is new (the enqueue script's `EXISTS`), which saves Redis
 * a call per task: a generated id is sent twice only by a send retried with the same task, and the
 * key then still names it (its field outlives its task, see {@linkcode SWEEP_DEDUPE_KEYS}) or
 * names a newer task with the same key.
 */
export const SPEC_KIND = {
  pending: "p",
  pendingNewId: "P",
  throttle: "t",
  throttleNewId: "T",
  debounce: "d",
} as const;

/**
 * A deduplication key's mode as the enqueue script receives it, in a task's `links` (the key
 * itself has a slot of its own: `dedupeKey` in `src/client/_enqueue_script.ts`). The spec starts
 * with a letter, which tells it from the JSON array of a task with other links (`[`): `p` in
 * `pending` mode, the common case, which the script reads without making a string; `t<window>`
 * in `throttle` mode (capitals on a generated id); `d<window> <binding>` in `debounce` mode. A
 * spec is one of a few strings per batch, so Redis's Lua keeps one copy of each.
 */
export function dedupeSpec(
  mode: string,
  window: number,
  bound: string,
  generatedId = false,
): string {
  if (mode === DEDUPE_MODE.pending) {
    return generatedId ? SPEC_KIND.pendingNewId : SPEC_KIND.pending;
  }
  if (mode === DEDUPE_MODE.throttle) {
    return (generatedId ? SPEC_KIND.throttleNewId : SPEC_KIND.throttle) + window;
  }
  return `${SPEC_KIND.debounce}${window} ${bound}`;
}

/**
 * A field of every `pending`-mode hash, written once per script call that uses the hash: its value
 * is longer than Redis's `hash-max-listpack-value` (64 bytes by default), so Redis stores the hash
 * as a hash table from its first field on. As a listpack (up to 512 fields by default) every key's
 * lookup scanned the whole hash: about 28,000 instructions a key at 500 fields, a hundred times
 * the hash table's. Its name has a space, which no key has.
 */
export const HASH_TABLE_MARK = {
  field: " table",
  value: "keeps this hash a hash table: a value longer than hash-max-listpack-value".padEnd(
    100,
    ".",
  ),
} as const;

/**
 * What {@linkcode dedupeTask} returns, besides an id standing for the new task or nil: its
 * arguments must be sealed for the task named after this prefix and sent again (`reseal`), or a
 * replacement sent again found the task it was sealed for no longer replaceable (`stale`).
 */
export const DEDUPE_ANSWER = { reseal: "!", stale: "" } as const;

/**
 * `heldBy(value)`: the task a field of a function's deduplication hash names, and, for a key with
 * a window, until when (ms, Redis's clock); nil for a key in `pending` mode, which stands while
 * its task's hash exists. A field is `<id>` (`pending`) or `<until> <id>` (`throttle`).
 */
export const heldBy = luaFunction(
  "heldBy",
  [],
  `
-- The task a deduplication field names, and until when for a key with a window (else nil).
local function heldBy(value)
  local space = string.find(value, ' ', 1, true)
  if not space then return value, nil end
  return string.sub(value, space + 1), tonumber(string.sub(value, 1, space - 1))
end
`,
);

/**
 * `dedupeTask(P, delayedKey, call, id, fn, payload, dueArg, spec, key, found)`: applies the
 * deduplication key `key` of function `fn`, in the mode of `spec` ({@linkcode dedupeSpec}), to
 * the new task `id` (arguments `payload`, due as `dueArg` sends it, usable as
 * {@linkcode PAYLOAD_BINDING} says). `found` says that the caller's own `HSETNX` of the key, in
 * `pending` or `throttle` mode, found it taken (the enqueue script claims a key itself once this
 * function has made what the key needs in `call`). `call` is the script call's scratch table:
 * `hashes`, the function's hash by function, made and marked once per call (see
 * `HASH_TABLE_MARK`), `now`, Redis's clock once read, and `windows`, by throttle spec, the end of
 * its window as a field value starts with it (`ends`) and whether the spec is on a generated id
 * (`newId`). Returns the id of the task that stands for it (the new task is then not stored), a
 * {@linkcode DEDUPE_ANSWER}, or nil when the new task is to be stored (and the key now names it);
 * and second, whether the key's check stood for the check that the id is new (a generated id,
 * see `SPEC_KIND`).
 *
 * A debounce replaces the arguments of the key's task only while it waits in the delayed set
 * for its first try: once it was promoted (its window passed), started or finished, the new task
 * is stored, so the last arguments always run.
 */
export const dedupeTask = luaFunction(
  "dedupeTask",
  [redisTime, dueTime, heldBy],
  `
-- Applies the deduplication key of function fn to the new task id. Returns the id of the task
-- that stands for it, a DEDUPE_ANSWER (see dedupe.ts), or nil when the new task is to be stored
-- (the key then names it); and whether the key's check stood for the id's own.
local function dedupeTask(P, delayedKey, call, id, fn, payload, dueArg, spec, key, found)
  local kind = string.byte(spec, 1)
  local newId = kind == ${SPEC_KIND.pendingNewId.charCodeAt(0)} or kind == ${
    SPEC_KIND.throttleNewId.charCodeAt(0)
  }
  if kind ~= ${SPEC_KIND.debounce.charCodeAt(0)} then
    -- A field of the function's hash (cheaper than a key of its own); a key seen for the first
    -- time, the common case, costs one call: HSETNX. No string is made for a pending key.
    local hash, value = call.hashes[fn], id
    if not hash then
      hash = P .. '${KEY.dedupePending}' .. fn
      redis.call('HSETNX', hash, '${HASH_TABLE_MARK.field}', '${HASH_TABLE_MARK.value}')
      call.hashes[fn] = hash
    end
    if kind == ${SPEC_KIND.throttle.charCodeAt(0)} or kind == ${
    SPEC_KIND.throttleNewId.charCodeAt(0)
  } then
      -- 't<window>': the window's end is formatted once per spec and call, with '%d' (a Lua
      -- number's own formatting, printf's %.14g, costs Redis far more).
      local window = call.windows[spec]
      if not window then
        call.now = call.now or redisTime()
        window = {
          ends = string.format('%d', call.now + tonumber(string.sub(spec, 2))) .. ' ',
          newId = newId,
        }
        call.windows[spec] = window
      end
      value = window.ends .. id
    end
    if not found and redis.call('HSETNX', hash, key, value) == 1 then return nil, newId end
    local holder, untilMs = heldBy(redis.call('HGET', hash, key))
    -- The key names this very task: it was stored, and this is a send retried.
    if holder == id then return id, newId end
    if untilMs then
      call.now = call.now or redisTime()
      if untilMs > call.now then return holder, newId end
    elseif redis.call('EXISTS', P .. '${KEY.task}' .. holder) == 1 then
      return holder, newId
    end
    redis.call('HSET', hash, key, value)
    return nil, newId
  end
  -- Debounce: 'd<window> <bound>', a key of its own that expires with its window.
  local window, bound = string.match(spec, '^.(%S+) (%S+)$')
  local dk = P .. '${KEY.dedupe}' .. fn .. ' ' .. key
  if bound ~= '${PAYLOAD_BINDING.holder}' and redis.call('SET', dk, id, 'NX', 'PX', window) then
    return nil, false
  end
  local holder = redis.call('GET', dk)
  local replaceable = false
  if holder and redis.call('ZSCORE', delayedKey, holder) then
    local f = redis.call('HMGET', P .. '${KEY.task}' .. holder, '${TASK_FIELD.fn}', '${TASK_FIELD.tries}')
    replaceable = f[1] == fn and f[2] == '0'
  end
  if bound == '${PAYLOAD_BINDING.holder}' then
    -- A replacement sealed for task id: it is useless to any other task.
    if not (replaceable and holder == id) then return '${DEDUPE_ANSWER.stale}', false end
  elseif replaceable and bound == '${PAYLOAD_BINDING.ownId}' and holder ~= id then
    return '${DEDUPE_ANSWER.reseal}' .. holder, false
  end
  if replaceable then
    local due = dueTime(dueArg, redisTime())
    redis.call('HSET', P .. '${KEY.task}' .. holder, '${TASK_FIELD.data}', payload, '${TASK_FIELD.due}', due, '${TASK_FIELD.scheduled}', due)
    redis.call('ZADD', delayedKey, due, holder)
    redis.call('SET', dk, holder, 'PX', window)
    return holder, false
  end
  redis.call('SET', dk, id, 'PX', window)
  return nil, false
end
`,
);
