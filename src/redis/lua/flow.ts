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
  BLOCKED_FUNCTION,
  GROUP_FUNCTION,
  KEY,
  LIMIT_FUNCTION,
  PAUSED_FUNCTION,
  PAUSED_QUEUE,
  RATE_FUNCTION,
  STREAM_FIELD,
  TASK_FIELD,
} from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { ackAndDelete, noteOpening, redisTime, windowOpens } from "./steps.ts";
import { holdForGroup, releaseGroupSlot } from "./groups.ts";

/** At most this many set-aside tasks of one function go back per call once nothing holds them. */
const RELEASE_BATCH = 1000;

/**
 * `readFlow(P)`: the flow control in force on the queue whose key prefix is `P`: nil while
 * nothing is paused or limited, else `{ queue = <whole queue paused>, functions = {name = true},
 * limits = {name = N}, limited = <a function is limited>, rates = {name = {max, duration}},
 * blocked = {name = until}, timed = <a function is rate-limited or blocked>, groups = {name =
 * slots per group}, grouped = <a function is grouped>, groupRates = {name = {max, duration}},
 * groupRated = <a function has a rate limit per group>, any = <a function is paused, limited or
 * grouped>, P = P }`.
 */
export const readFlow = luaFunction(
  "readFlow",
  [],
  `
-- The flow control in force on the queue of key prefix P: nil when nothing is paused or limited
-- (one HGETALL of a missing key), else a table: queue (the whole queue is paused), functions (a
-- set of the paused function names), limits (concurrency limit by function name), limited
-- (whether any function is limited), rates ({max, duration} by function name), blocked (until
-- when, by function name, after StreaqRateLimited), timed (whether any function is rate-limited
-- or blocked), groups (slots per group by grouped function name), grouped (whether any function
-- is grouped), groupRates ({max, duration} per group, by function name), groupRated (whether any
-- function has a rate limit per group), any (whether any function is paused, limited or grouped) and P.
local function readFlow(P)
  local all = redis.call('HGETALL', P .. '${KEY.flow}')
  if #all == 0 then return nil end
  local flow = { queue = false, functions = {}, limits = {}, limited = false, rates = {},
    blocked = {}, timed = false, groups = {}, grouped = false,
    groupRates = {}, groupRated = false, any = false, P = P }
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
    elseif string.sub(f, 1, ${RATE_FUNCTION.length}) == '${RATE_FUNCTION}' then
      local max, duration = string.match(all[i + 1], '^(%d+) (%d+)$')
      if max then
        flow.rates[string.sub(f, ${RATE_FUNCTION.length + 1})] =
          { max = tonumber(max), duration = tonumber(duration) }
        flow.timed = true
        flow.any = true
      end
    elseif string.sub(f, 1, ${BLOCKED_FUNCTION.length}) == '${BLOCKED_FUNCTION}' then
      flow.blocked[string.sub(f, ${BLOCKED_FUNCTION.length + 1})] = tonumber(all[i + 1]) or 0
      flow.timed = true
      flow.any = true
    elseif string.sub(f, 1, ${GROUP_FUNCTION.length}) == '${GROUP_FUNCTION}' then
      -- '<slots>', or '<slots> <max> <duration>' with a rate limit per group.
      local fn = string.sub(f, ${GROUP_FUNCTION.length + 1})
      local slots, max, duration = string.match(all[i + 1], '^(%d+) (%d+) (%d+)$')
      if slots then
        flow.groupRates[fn] = { max = tonumber(max), duration = tonumber(duration) }
        flow.groupRated = true
      else
        slots = string.match(all[i + 1], '^%d+')
      end
      flow.groups[fn] = math.max(tonumber(slots) or 1, 1)
      flow.grouped = true
      flow.any = true
    end
  end
  return flow
end
`,
);

/**
 * `holdIfHeldBack(flow, taskKey, stream, group, entryId, id, starting)`: for a just-claimed
 * delivery, takes a slot of its function if it is limited and records a start if it is
 * rate-limited, or sets it aside if the function is paused, all its slots are taken, or its rate
 * window is full (or the delivery is only read ahead, `starting` false: a rate-limited delivery is
 * claimed only to start at once, so that starts are counted when they happen): its task id goes
 * to the end of the function's held list and its entry is acknowledged and deleted. Its try is
 * not counted (nothing was started). Returns whether it was set aside.
 */
export const holdIfHeldBack = luaFunction(
  "holdIfHeldBack",
  [redisTime, ackAndDelete, holdForGroup, windowOpens, noteOpening],
  `
-- For the delivery entryId of stream (task id, hash taskKey), with flow as readFlow returns it,
-- about to be started (starting) or read ahead: a delivery of a limited function takes one of
-- its slots (joins its active set) if one is free or it already holds one (reclaimed from a dead
-- worker); one of a rate-limited function that is starting counts a start in its window if the
-- window has room. One of a paused function, or held back by its slots or its window, is set
-- aside: its id goes to the end of the function's held list, its entry is acknowledged and
-- deleted, no try is counted. A task of a grouped function with a group key first takes or keeps
-- a slot of its group, or is set aside in the group's held list (holdForGroup). Returns true if
-- it was set aside.
local function holdIfHeldBack(flow, taskKey, stream, group, entryId, id, starting)
  if not flow.any then return false end
  local fn, grp
  if flow.grouped then
    local f = redis.pcall('HMGET', taskKey, '${TASK_FIELD.fn}', '${TASK_FIELD.group}')
    if f.err then return false end
    fn, grp = f[1], f[2]
  else
    fn = redis.pcall('HGET', taskKey, '${TASK_FIELD.fn}')
  end
  if type(fn) ~= 'string' then return false end
  if grp and flow.groups[fn] and not flow.functions[fn]
    and holdForGroup(flow, fn, grp, id, stream, group, entryId, starting) then
    return true
  end
  local limit, rate = flow.limits[fn], flow.rates[fn]
  local active = limit and flow.P .. '${KEY.active}' .. fn
  local hold = false
  if flow.functions[fn] then
    -- Not running while paused: a slot it held (reclaimed from a dead worker) is given up.
    if limit then redis.call('ZREM', active, id) end
    hold = true
  elseif limit and redis.call('ZSCORE', active, id) then
    -- Reclaimed from a dead worker: it keeps its slot, and its start was counted then.
    return false
  else
    if limit and redis.call('ZCARD', active) >= limit then hold = true end
    local blockedUntil = flow.blocked[fn]
    local now = (limit or rate or blockedUntil) and redisTime()
    if blockedUntil and blockedUntil > now then
      hold = true
      noteOpening(flow, blockedUntil - now)
    end
    if not hold and rate then
      if not starting then
        hold = true
      else
        local log = flow.P .. '${KEY.starts}' .. fn
        redis.call('ZREMRANGEBYSCORE', log, '-inf', now - rate.duration)
        if redis.call('ZCARD', log) >= rate.max then
          hold = true
          noteOpening(flow, windowOpens(log, rate.duration, now))
        else
          redis.call('ZADD', log, now, id .. ' ' .. now)
          redis.call('PEXPIRE', log, rate.duration)
        end
      end
    end
    if not hold then
      if limit then redis.call('ZADD', active, now, id) end
      return false
    end
  end
  redis.call('RPUSH', flow.P .. '${KEY.held}' .. fn, id)
  ackAndDelete(stream, group, {entryId})
  return true
end
`,
);

/**
 * `releaseSlot(flow, taskKey, id)`: before a delivery's outcome is written, frees the slot its
 * task holds in its group, if it has one ({@linkcode releaseGroupSlot}), then the slot of its
 * function, if it is limited, and puts the oldest task set aside for want of a slot back in its
 * stream (unless the function is paused: its resume does that).
 */
export const releaseSlot = luaFunction(
  "releaseSlot",
  [releaseGroupSlot],
  `
-- Frees the group slot and the concurrency slot that task id (hash taskKey, still there) holds,
-- if its function is grouped or limited in flow (as readFlow returns it), and then puts the
-- oldest task set aside for that function back at the end of its priority's stream, unless the
-- function is paused. Held tasks whose hash is gone are dropped on the way. Returns nothing.
local function releaseSlot(flow, taskKey, id)
  local fn, grp
  if flow.grouped then
    local f = redis.call('HMGET', taskKey, '${TASK_FIELD.fn}', '${TASK_FIELD.group}')
    fn, grp = f[1], f[2]
    if fn and grp and flow.groups[fn] then releaseGroupSlot(flow, fn, grp, id) end
  else
    fn = redis.call('HGET', taskKey, '${TASK_FIELD.fn}')
  end
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

/**
 * `releaseRated(flow)`: puts back in their streams the tasks of rate-limited or blocked functions
 * (not paused) set aside while their window was full or their block lasted, as many as their
 * windows (and free slots) have room for now; a block that has passed is removed. Returns in how
 * many ms the first window or block with tasks still waiting ends, or nil.
 */
export const releaseRated = luaFunction(
  "releaseRated",
  [redisTime, windowOpens],
  `
-- For each function in flow (readFlow) that is rate-limited or blocked (StreaqRateLimited), not
-- paused, with tasks set aside: a block that has passed is removed; then as many held tasks as
-- its window and its free slots have room for go back at the end of their streams (they start
-- when claimed; held tasks whose hash is gone are dropped). Returns in how many ms the earliest
-- full window or block with tasks still waiting ends, or nil.
local function releaseRated(flow)
  local wakeIn, now = nil, nil
  local names = {}
  for fn in pairs(flow.rates) do names[fn] = true end
  for fn in pairs(flow.blocked) do names[fn] = true end
  for fn in pairs(names) do
    local held = flow.P .. '${KEY.held}' .. fn
    local rate, blockedUntil, limit = flow.rates[fn], flow.blocked[fn], flow.limits[fn]
    now = now or redisTime()
    if blockedUntil and blockedUntil <= now then
      redis.call('HDEL', flow.P .. '${KEY.flow}', '${BLOCKED_FUNCTION}' .. fn)
      blockedUntil = nil
    end
    if not flow.functions[fn] and redis.call('LLEN', held) > 0 then
      local room, opens, windowRoom, log = ${RELEASE_BATCH}, nil, nil, nil
      if blockedUntil then
        room, opens = 0, blockedUntil - now
      elseif rate then
        log = flow.P .. '${KEY.starts}' .. fn
        redis.call('ZREMRANGEBYSCORE', log, '-inf', now - rate.duration)
        windowRoom = rate.max - redis.call('ZCARD', log)
        room = math.min(room, windowRoom)
        if room <= 0 then opens = windowOpens(log, rate.duration, now) end
      end
      -- With its slots all taken too, a task put back would only be set aside again.
      if limit then room = math.min(room, limit - redis.call('ZCARD', flow.P .. '${KEY.active}' .. fn)) end
      local released = 0
      while room > 0 do
        local nextId = redis.call('LPOP', held)
        if not nextId then break end
        local priority = redis.call('HGET', flow.P .. '${KEY.task}' .. nextId, '${TASK_FIELD.priority}')
        if priority then
          redis.call('XADD', flow.P .. '${KEY.stream}' .. priority, '*', '${STREAM_FIELD.taskId}', nextId)
          room = room - 1
          released = released + 1
        end
      end
      -- The tasks put back fill the window: those still set aside wait for its next opening,
      -- which the caller must wake for (no start, no completion need come before it).
      if windowRoom and released >= windowRoom and redis.call('LLEN', held) > 0 then
        opens = windowOpens(log, rate.duration, now)
      end
      if opens and (wakeIn == nil or opens < wakeIn) then wakeIn = opens end
    end
  end
  return wakeIn
end
`,
);

/**
 * `blockFunction(P, taskKey, id, ms)`: for a task that met a rate limit at run time
 * (`StreaqRateLimited`): no task of its function starts for `ms` (the later of this block and
 * any in force), and the task goes to the head of its function's held list, its try uncounted.
 * Workers are told (their read-ahead buffers must not start the function meanwhile).
 */
export const blockFunction = luaFunction(
  "blockFunction",
  [redisTime],
  `
-- Task id (hash taskKey) of the queue with key prefix P met a rate limit at run time: its
-- function starts nothing for ms (unless a later block is in force), the task goes first in
-- the function's held list, its try is given back, and the flow channel tells the workers.
-- Returns nothing.
local function blockFunction(P, taskKey, id, ms)
  local fn = redis.call('HGET', taskKey, '${TASK_FIELD.fn}')
  if not fn then return end
  local field, untilMs = '${BLOCKED_FUNCTION}' .. fn, redisTime() + ms
  local current = tonumber(redis.call('HGET', P .. '${KEY.flow}', field))
  if not current or current < untilMs then redis.call('HSET', P .. '${KEY.flow}', field, untilMs) end
  redis.call('HINCRBY', taskKey, '${TASK_FIELD.tries}', -1)
  redis.call('LPUSH', P .. '${KEY.held}' .. fn, id)
  redis.call('PUBLISH', P .. '${KEY.flowChanged}', 'block')
end
`,
);
