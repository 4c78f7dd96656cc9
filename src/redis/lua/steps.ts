/**
 * The Lua library's general steps: Redis's clock, due times, stream entries, stored results,
 * and deliveries (ownership, acknowledgement). Each is a {@linkcode LuaFunction} with explicit
 * parameters; a script includes the ones it calls with `lua(...)` (`./compose.ts`). Keys and
 * fields are interpolated from `../keys.ts`.
 *
 * @module
 */

import { STREAM_FIELD, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";

/**
 * `redisTime()`: Redis's clock, in ms since the epoch (one `TIME` call). Due times are on this
 * clock (see `src/redis/_redis_time.ts`).
 */
export const redisTime = luaFunction(
  "redisTime",
  [],
  `
-- Redis's clock, in ms since the epoch.
local function redisTime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`,
);

/**
 * `dueTime(arg, now)`: the due time (ms since the epoch) of an argument as `dueArg()` in
 * `src/redis/_redis_time.ts` sends it: `'+ms'` is that long after `now` (a `redisTime()`),
 * anything else is an instant.
 */
export const dueTime = luaFunction(
  "dueTime",
  [],
  `
-- The due time (ms) of arg as dueArg() sends it: '+ms' is that long after now (redisTime()),
-- anything else an instant. Returns a number.
local function dueTime(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end
`,
);

/** `addStreamEntry(stream, id)`: appends an entry delivering task `id` to `stream`. */
export const addStreamEntry = luaFunction(
  "addStreamEntry",
  [],
  `
-- Appends to stream an entry that delivers the task id. Returns nothing.
local function addStreamEntry(stream, id)
  redis.call('XADD', stream, '*', '${STREAM_FIELD.taskId}', id)
end
`,
);

/**
 * `enterStream(taskKey, stream, id, now)`: puts a task into its stream: records when it entered
 * (`expire` counts from it) and appends its entry.
 */
export const enterStream = luaFunction(
  "enterStream",
  [],
  `
-- Puts the task id (hash taskKey) into stream: notes when it entered (now, ms) and appends its
-- entry (as addStreamEntry does; not called, as every function a script includes is created
-- anew by each call). Returns nothing.
local function enterStream(taskKey, stream, id, now)
  redis.call('HSET', taskKey, '${TASK_FIELD.entered}', now)
  redis.call('XADD', stream, '*', '${STREAM_FIELD.taskId}', id)
end
`,
);

/**
 * `entryTaskId(entry)`: the task id of a stream entry (`{entryId, fields}` as XREADGROUP and
 * XAUTOCLAIM return it), or nil for an entry without one, which can never run.
 */
export const entryTaskId = luaFunction(
  "entryTaskId",
  [],
  `
-- The task id of a stream entry {entryId, fields}, or nil for an entry without one (or with an
-- empty one), which can never run.
local function entryTaskId(entry)
  local fields = entry[2]
  -- An entry as streaq writes it (its task id first), without a call of type(), a C function.
  if fields and fields[1] == '${STREAM_FIELD.taskId}' and fields[2] ~= '' then
    return fields[2]
  end
  if type(fields) ~= 'table' then return nil end
  for j = 1, #fields, 2 do
    if fields[j] == '${STREAM_FIELD.taskId}' and fields[j + 1] ~= '' then return fields[j + 1] end
  end
  return nil
end
`,
);

/**
 * `storeResult(key, value, ttl)`: stores an encoded result for `ttl` ms: `''` keeps it forever,
 * `'0'` does not store it at all.
 */
export const storeResult = luaFunction(
  "storeResult",
  [],
  `
-- Stores value under key for ttl ms (a string): '' keeps it forever, '0' stores nothing.
-- Returns nothing.
local function storeResult(key, value, ttl)
  if ttl == '' then
    redis.call('SET', key, value)
  elseif ttl ~= '0' then
    redis.call('SET', key, value, 'PX', ttl)
  end
end
`,
);

/**
 * `ownsDelivery(stream, group, entryId, me, fresh)`: whether consumer `me` still holds the
 * delivery of `entryId`. A fresh delivery (claimed too recently for another worker to have taken
 * it over, see `FRESH_CLAIM` in `src/run/fetch.ts`) is held without asking Redis.
 */
export const ownsDelivery = luaFunction(
  "ownsDelivery",
  [],
  `
-- Whether consumer me of group still holds the delivery of entryId in stream: true at once when
-- fresh (a boolean: claimed too recently to be another worker's), else as XPENDING says.
local function ownsDelivery(stream, group, entryId, me, fresh)
  if fresh then return true end
  local pending = redis.call('XPENDING', stream, group, entryId, entryId, 1)
  return pending[1] ~= nil and pending[1][2] == me
end
`,
);

/**
 * `ackAndDelete(stream, group, entryIds)`: acknowledges and deletes entries of one stream, a
 * thousand per command.
 */
export const ackAndDelete = luaFunction(
  "ackAndDelete",
  [],
  `
-- Acknowledges (for group) and deletes the entries entryIds (a list) of stream, a thousand per
-- command: one XDEL for many entries, as after deleting an entry Redis looks for the next one
-- past the deleted entries left in its node once per call rather than once per entry.
-- Returns nothing.
local function ackAndDelete(stream, group, entryIds)
  for from = 1, #entryIds, 1000 do
    local to = math.min(from + 999, #entryIds)
    redis.call('XACK', stream, group, unpack(entryIds, from, to))
    redis.call('XDEL', stream, unpack(entryIds, from, to))
  end
end
`,
);

/**
 * `ackAndTrim(stream, group, entryIds)`: acknowledges and deletes entries of one stream, as
 * {@linkcode ackAndDelete} does, for a call that finishes many deliveries at once. Every entry
 * older than the oldest delivery still pending was delivered (XREADGROUP hands entries out in
 * order, and the group starts at '0') and is pending no more, so it is acknowledged, and every
 * acknowledgement deletes its entry in the same call: only the entries just acknowledged can be
 * among them. One `XTRIM MINID` removes those in a single pass over the stream's first node,
 * where XDEL seeks each entry from the start of its node, past the deleted ones before it: tens
 * of thousands of instructions an entry on a busy stream. Entries not older than the oldest
 * pending delivery (a long task still runs before them) are deleted by XDEL.
 */
export const ackAndTrim = luaFunction(
  "ackAndTrim",
  [],
  `
-- Acknowledges (for group) and deletes the entries entryIds (a list) of stream: those older than
-- the oldest delivery still pending with one XTRIM MINID, the others with XDEL, a thousand per
-- command. Returns nothing.
local function ackAndTrim(stream, group, entryIds)
  for from = 1, #entryIds, 1000 do
    redis.call('XACK', stream, group, unpack(entryIds, from, math.min(from + 999, #entryIds)))
  end
  local rest = entryIds
  local oldest = redis.call('XPENDING', stream, group, '-', '+', 1)[1]
  if oldest then
    redis.call('XTRIM', stream, 'MINID', oldest[1])
    -- Ids are 'ms-seq' in decimal without leading zeros: a longer ms is a later one, and two ids
    -- of one length with the dash at one place compare as strings (most, with no C call).
    local first = oldest[1]
    local dash, length = string.find(first, '-', 1, true), #first
    local ms, seq = string.sub(first, 1, dash - 1), tonumber(string.sub(first, dash + 1))
    rest = {}
    for _, id in ipairs(entryIds) do
      local d = string.find(id, '-', 1, true)
      if d > dash then
        rest[#rest + 1] = id
      elseif d == dash then
        if #id == length then
          if id > first then rest[#rest + 1] = id end
        else
          local m = string.sub(id, 1, d - 1)
          if m > ms or (m == ms and tonumber(string.sub(id, d + 1)) > seq) then
            rest[#rest + 1] = id
          end
        end
      end
    end
  end
  for from = 1, #rest, 1000 do
    redis.call('XDEL', stream, unpack(rest, from, math.min(from + 999, #rest)))
  end
end
`,
);

/**
 * `noteOpening(flow, ms)`: notes in `flow` (`readFlow`) that a task was set aside until a window
 * or a block that ends in `ms`: the call's caller fetches again by then (`flow.opensIn`, the
 * earliest of the call). The wake time `releaseRated` returns is read before the call claims
 * anything, so without this a worker that filled a window in the call would not know when it
 * opens.
 */
export const noteOpening = luaFunction(
  "noteOpening",
  [],
  `
-- Notes in flow (readFlow) that a task was set aside until ms from now: flow.opensIn is the
-- earliest such time of the call. Returns nothing.
local function noteOpening(flow, ms)
  if flow.opensIn == nil or ms < flow.opensIn then flow.opensIn = ms end
end
`,
);

/**
 * `windowOpens(log, duration, now)`: in how many ms the rate window whose starts are logged in
 * the sorted set `log` (scored by start time) has room for one more start: when its oldest start
 * leaves it; `duration` when it has none logged (the tasks just put back start now).
 */
export const windowOpens = luaFunction(
  "windowOpens",
  [],
  `
-- In how many ms the rate window logged in log (starts scored by time, duration ms long) has
-- room again: when its oldest start leaves it; duration when none is logged. now: Redis's clock.
local function windowOpens(log, duration, now)
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  return oldest[2] and tonumber(oldest[2]) + duration - now + 1 or duration
end
`,
);
