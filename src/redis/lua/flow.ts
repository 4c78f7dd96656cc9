/**
 * Flow control in Lua: what the claim scripts (fetch and completion) do about pauses and
 * concurrency limits. Both read the queue's flow hash once per call ({@linkcode readFlow}: one
 * `HGETALL` that finds nothing while nothing is paused or limited, so the features unused cost
 * one cheap command per call and nothing per task).
 *
 * - A paused queue claims nothing.
 * - A delivery of a paused function, or of a limited function whose slots are all taken, is set
 *   aside in that function's held list ({@linkcode holdIfHeldBack}) without counting a try: it
 *   goes back to its stream when the function is resumed (`src/client/pause.ts`), or when a slot
 *   frees ({@linkcode releaseSlot}, in the completion script).
 * - A delivery of a limited function takes a slot when it is claimed (a member of the
 *   function's active set, by task id), and keeps it until its outcome is written. A delivery
 *   reclaimed from a dead worker finds its task already a member and keeps that slot, so a dead
 *   worker's slots are freed by the outcomes of its reclaimed deliveries, never leaked.
 *
 * @module
 */

import {
  KEY,
  LIMIT_FUNCTION,
  PAUSED_FUNCTION,
  PAUSED_QUEUE,
  STREAM_FIELD,
  TASK_FIELD,
} from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { redisTime } from "./steps.ts";

/**
 * `readFlow(P)`: the flow control in force on the queue whose key prefix is `P`: nil while
 * nothing is paused or limited, else `{ queue = <whole queue paused>, functions = {name = true},
 * limits = {name = N}, limited = <a function is limited>, any = <a function is paused or
 * limited>, P = P }`.
 */
export const readFlow = luaFunction(
  "readFlow",
  [],
  `
-- The flow control in force on the queue of key prefix P: nil when nothing is paused or limited
-- (one HGETALL of a missing key), else a table: queue (the whole queue is paused), functions (a
-- set of the paused function names), limits (concurrency limit by function name), limited
-- (whether any function is limited), any (whether any function is paused or limited) and P.
local function readFlow(P)
  local all = redis.call('HGETALL', P .. '${KEY.flow}')
  if #all == 0 then return nil end
  local flow = { queue = false, functions = {}, limits = {}, limited = false, any = false, P = P }
  for i = 1, #all, 2 do
    local f = all[i]
    if f == '${PAUSED_QUEUE}' then
      flow.queue = true
    elseif string.sub(f, 1, ${PAUSED_FUNCTION.length}) == '${PAUSED_FUNCTION}' then
      flow.functions[string.sub(f, ${PAUSED_FUNCTION.length + 1})] = true
      flow.any = true
    elseif string.sub(f, 1, ${LIMIT_FUNCTION.length}) == '${LIMIT_FUNCTION}' then
      flow.limits[string.sub(f, ${LIMIT_FUNCTION.length + 1})] = tonumber(all[i + 1])
      flow.limited = true
      flow.any = true
    end
  end
  return flow
end
`,
);

/**
 * `holdIfHeldBack(flow, taskKey, stream, group, entryId, id)`: for a just-claimed delivery, takes
 * a slot of its function if it is limited, or sets it aside if the function is paused or all its
 * slots are taken: its task id goes to the end of the function's held list and its entry is
 * acknowledged and deleted. Its try is not counted (nothing was started). Returns whether it was
 * set aside.
 */
export const holdIfHeldBack = luaFunction(
  "holdIfHeldBack",
  [redisTime],
  `
-- For the delivery entryId of stream (task id, hash taskKey), with flow as readFlow returns it:
-- a delivery of a limited function takes one of its slots (joins its active set) if one is free
-- or already holds one (reclaimed from a dead worker); one of a paused function, or of a limited
-- function without a free slot, is set aside: its id goes to the end of the function's held
-- list, its entry is acknowledged and deleted, no try is counted. Returns true if it was set
-- aside.
local function holdIfHeldBack(flow, taskKey, stream, group, entryId, id)
  if not flow.any then return false end
  local fn = redis.pcall('HGET', taskKey, '${TASK_FIELD.fn}')
  if type(fn) ~= 'string' then return false end
  local limit = flow.limits[fn]
  local active = limit and flow.P .. '${KEY.active}' .. fn
  if flow.functions[fn] then
    -- Not running while paused: a slot it held (reclaimed from a dead worker) is given up.
    if limit then redis.call('ZREM', active, id) end
  elseif not limit then
    return false
  elseif redis.call('ZSCORE', active, id) then
    return false
  elseif redis.call('ZCARD', active) < limit then
    redis.call('ZADD', active, redisTime(), id)
    return false
  end
  redis.call('RPUSH', flow.P .. '${KEY.held}' .. fn, id)
  redis.call('XACK', stream, group, entryId)
  redis.call('XDEL', stream, entryId)
  return true
end
`,
);

/**
 * `releaseSlot(flow, taskKey, id)`: before a delivery's outcome is written, frees the slot its
 * task holds, if its function is limited, and puts the oldest task set aside for want of a slot
 * back in its stream (unless the function is paused: its resume does that).
 */
export const releaseSlot = luaFunction(
  "releaseSlot",
  [],
  `
-- Frees the concurrency slot that task id (hash taskKey, still there) holds, if its function is
-- limited in flow (as readFlow returns it), and then puts the oldest task set aside for that
-- function back at the end of its priority's stream, unless the function is paused. Held tasks
-- whose hash is gone are dropped on the way. Returns nothing.
local function releaseSlot(flow, taskKey, id)
  local fn = redis.call('HGET', taskKey, '${TASK_FIELD.fn}')
  if not fn or not flow.limits[fn] then return end
  if redis.call('ZREM', flow.P .. '${KEY.active}' .. fn, id) == 0 then return end
  if flow.functions[fn] then return end
  local held = flow.P .. '${KEY.held}' .. fn
  while true do
    local nextId = redis.call('LPOP', held)
    if not nextId then return end
    local priority = redis.call('HGET', flow.P .. '${KEY.task}' .. nextId, '${TASK_FIELD.priority}')
    if priority then
      redis.call('XADD', flow.P .. '${KEY.stream}' .. priority, '*', '${STREAM_FIELD.taskId}', nextId)
      return
    end
  end
end
`,
);
