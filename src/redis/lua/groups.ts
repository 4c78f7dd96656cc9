/**
 * Groups in Lua: fair turns and per-group concurrency for tasks that carry a group key (the
 * `group` start or task option). Each group of a function has its own slots (`groups.concurrency`,
 * 1 by default): a claimed delivery of a group whose slots are all taken is set aside in the
 * group's held list, without counting a try, and each slot freed by an outcome is handed to the
 * oldest task set aside for that group, which goes back to the end of its priority's stream.
 *
 * That is what makes groups fair: a group never has more tasks in the streams and running than
 * its slots, so a flood of one group is set aside by the claim that meets it (up to 1,000 per
 * fetch call, and the stream is read on behind it), and another group's task, enqueued after the
 * flood, starts before the flood's second task. The streams themselves are the round-robin: each
 * group's next task joins the end of the line when its previous one finishes. Nothing walks the
 * groups, so 100,000 active groups cost what they hold and no more.
 *
 * Both pieces run inside the flow-control pieces of `./flow.ts`, in the fetch and completion
 * scripts, and only while the queue's flow hash names a grouped function.
 *
 * @module
 */

import { GROUP_FUNCTION, KEY, STREAM_FIELD, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { ackAndDelete, noteOpening, redisTime, windowOpens } from "./steps.ts";

/**
 * `holdForGroupRate(flow, fn, grp, id, stream, group, entryId, starting)`: for a delivery that holds
 * a slot of its group, whose function has a rate limit per group (`flow.groupRates[fn]`): records
 * its start in the group's window if the window has room and it is starting now; else gives its slot
 * back, puts it first in its group's line (acknowledged and deleted, no try counted) and notes when
 * the group's window opens, when the claim scripts hand the group its slots again
 * ({@linkcode releaseGroupWaits}). Returns whether it was set aside.
 */
export const holdForGroupRate = luaFunction(
  "holdForGroupRate",
  [redisTime, ackAndDelete, noteOpening, windowOpens],
  `
-- Task id (function fn, group grp), holding a slot of its group: counts its start in the group's
-- window, or, with the window full (or when it is only read ahead, not starting), goes back first
-- in its group's line, slot given back, the group woken when its window opens. Returns true if it
-- was set aside.
local function holdForGroupRate(flow, fn, grp, id, stream, group, entryId, starting)
  local P, name, rate = flow.P, fn .. ' ' .. grp, flow.groupRates[fn]
  local now = redisTime()
  local opens = now
  if starting then
    local log = P .. '${KEY.groupStarts}' .. name
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - rate.duration)
    if redis.call('ZCARD', log) < rate.max then
      redis.call('ZADD', log, now, id .. ' ' .. now)
      redis.call('PEXPIRE', log, rate.duration)
      return false
    end
    local opensIn = windowOpens(log, rate.duration, now)
    opens = now + opensIn
    noteOpening(flow, opensIn)
  end
  -- Still counted in the groups set: it moves from holding a slot to waiting.
  redis.call('ZREM', P .. '${KEY.groupActive}' .. name, id)
  redis.call('LPUSH', P .. '${KEY.held}' .. name, id)
  redis.call('ZADD', P .. '${KEY.groupWake}' .. fn, opens, grp)
  ackAndDelete(stream, group, {entryId})
  return true
end
`,
);

/**
 * `holdForGroup(flow, fn, grp, id, stream, group, entryId, starting)`: for a just-claimed delivery of task
 * `id` of function `fn` in group `grp` (the function grouped, with `flow.groups[fn]` slots per
 * group): takes a slot of the group if one is free, keeps the one it holds already (a task whose
 * slot was handed to it, or reclaimed from a dead worker), or sets the delivery aside at the end
 * of the group's held list (acknowledged and deleted, no try counted); with a rate limit per
 * group, then counts its start ({@linkcode holdForGroupRate}). Returns whether it was set aside.
 */
export const holdForGroup = luaFunction(
  "holdForGroup",
  [redisTime, ackAndDelete, holdForGroupRate],
  `
-- The delivery entryId of stream (task id of function fn, group grp): takes or keeps a slot of
-- its group, or, with every slot taken by other tasks, is set aside at the end of the group's
-- held list. A slot whose task is gone (deleted while it waited in its stream) is taken back on
-- the way. Returns true if it was set aside.
local function holdForGroup(flow, fn, grp, id, stream, group, entryId, starting)
  local P, name = flow.P, fn .. ' ' .. grp
  local active = P .. '${KEY.groupActive}' .. name
  if redis.call('ZSCORE', active, id) then
    -- Reclaimed from a dead worker (its hash names a runner): its start was counted then.
    if not flow.groupRates[fn] or redis.call('HEXISTS', P .. '${KEY.task}' .. id, '${TASK_FIELD.runner}') == 1 then
      return false
    end
    return holdForGroupRate(flow, fn, grp, id, stream, group, entryId, starting)
  end
  local limit = flow.groups[fn]
  local taken = redis.call('ZCARD', active)
  if taken >= limit then
    -- A slot handed to a task that was deleted before it was claimed would never be freed: check
    -- the oldest holder (one EXISTS per set-aside, only while the group is full).
    local oldest = redis.call('ZRANGE', active, 0, 0)[1]
    if oldest and redis.call('EXISTS', P .. '${KEY.task}' .. oldest) == 0 then
      redis.call('ZREM', active, oldest)
      redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, -1, grp)
      taken = taken - 1
    end
  end
  if taken < limit then
    redis.call('ZADD', active, redisTime(), id)
    redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, 1, grp)
    if not flow.groupRates[fn] then return false end
    return holdForGroupRate(flow, fn, grp, id, stream, group, entryId, starting)
  end
  redis.call('RPUSH', P .. '${KEY.held}' .. name, id)
  redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, 1, grp)
  ackAndDelete(stream, group, {entryId})
  return true
end
`,
);

/**
 * `handOnGroupSlots(P, fn, grp, limit, rated)`: while group `grp` of function `fn` (queue prefix `P`) has
 * fewer than `limit` tasks holding its slots, hands a slot to the oldest task set aside for the
 * group: it joins the group's slots first, then the end of its priority's stream, so a task
 * enqueued meanwhile cannot overtake it. Held tasks whose hash is gone are dropped on the way (and
 * leave the group's count). With `rated` (a rate limit per group), nothing is handed while the
 * group's window is full.
 */
export const handOnGroupSlots = luaFunction(
  "handOnGroupSlots",
  [redisTime],
  `
-- Hands the free slots of group grp of function fn (limit slots; queue prefix P) to the oldest
-- tasks set aside for it, each put back at the end of its priority's stream. Returns nothing.
local function handOnGroupSlots(P, fn, grp, limit, rated)
  if rated then
    -- The group's window is full: its tasks wait in its line until it opens.
    local opens = tonumber(redis.call('ZSCORE', P .. '${KEY.groupWake}' .. fn, grp))
    if opens and opens > redisTime() then return end
  end
  local name = fn .. ' ' .. grp
  local active, held = P .. '${KEY.groupActive}' .. name, P .. '${KEY.held}' .. name
  local free = limit - redis.call('ZCARD', active)
  while free > 0 do
    local nextId = redis.call('LPOP', held)
    if not nextId then return end
    local priority = redis.call('HGET', P .. '${KEY.task}' .. nextId, '${TASK_FIELD.priority}')
    if priority then
      -- Counted already while it waited: it moves from waiting to holding a slot.
      redis.call('ZADD', active, redisTime(), nextId)
      redis.call('XADD', P .. '${KEY.stream}' .. priority, '*', '${STREAM_FIELD.taskId}', nextId)
      free = free - 1
    else
      redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, -1, grp)
    end
  end
end
`,
);

/**
 * `releaseGroupSlot(flow, fn, grp, id)`: before the outcome of task `id` (function `fn`, group
 * `grp`) is written, frees the group slot it holds and hands the group's free slots (usually that
 * one; more after its slots were raised) on ({@linkcode handOnGroupSlots}). A group with nothing
 * left leaves the function's groups set.
 */
export const releaseGroupSlot = luaFunction(
  "releaseGroupSlot",
  [handOnGroupSlots],
  `
-- Frees the slot task id holds in group grp of function fn (flow as readFlow returns it) and
-- hands the group's free slots on (handOnGroupSlots). Returns nothing.
local function releaseGroupSlot(flow, fn, grp, id)
  local P = flow.P
  if redis.call('ZREM', P .. '${KEY.groupActive}' .. fn .. ' ' .. grp, id) == 0 then return end
  local groups = P .. '${KEY.groups}' .. fn
  redis.call('ZINCRBY', groups, -1, grp)
  handOnGroupSlots(P, fn, grp, flow.groups[fn], flow.groupRates[fn] ~= nil)
  local left = tonumber(redis.call('ZSCORE', groups, grp))
  if left and left <= 0 then redis.call('ZREM', groups, grp) end
end
`,
);

/**
 * `enterGroup(P, fn, grp, id)`: a new task `id` of function `fn` in group `grp` (queue prefix
 * `P`), to run now, joins its group at enqueue rather than its stream: it goes to the end of the
 * group's held list, and into its stream at once only if the group has a free slot (which it then
 * holds). So the streams never hold more of a group's tasks than its slots, whatever the workers'
 * appetite, and the line is served in turns. A function with no group slots stated yet gets 1.
 */
export const enterGroup = luaFunction(
  "enterGroup",
  [handOnGroupSlots],
  `
-- Task id of function fn joins group grp at enqueue (queue prefix P): counted in the function's
-- groups set, pushed on the group's held list, and handed a slot (put in its stream) if one is
-- free. Returns nothing.
local function enterGroup(P, fn, grp, id)
  local flowKey, field = P .. '${KEY.flow}', '${GROUP_FUNCTION}' .. fn
  local value = redis.call('HGET', flowKey, field)
  if not value then
    redis.call('HSET', flowKey, field, 1)
    value = '1'
  end
  redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, 1, grp)
  redis.call('RPUSH', P .. '${KEY.held}' .. fn .. ' ' .. grp, id)
  -- '<slots>', or '<slots> <max> <duration>' with a rate limit per group.
  local limit = tonumber(string.match(value, '^%d+')) or 1
  handOnGroupSlots(P, fn, grp, math.max(limit, 1), string.find(value, ' ', 1, true) ~= nil)
end
`,
);

/**
 * `forgetGroupTask(P, id, wasHeld)`: for task `id` of the queue with key prefix `P`, about to be
 * removed while it waits (`drain`): gives up the group slot it holds (put back in its stream
 * with the slot handed to it), or, with `wasHeld`, accounts for it leaving its group's held list,
 * so that the function's groups set counts only what is left.
 */
export const forgetGroupTask = luaFunction(
  "forgetGroupTask",
  [],
  `
-- Task id (prefix P), about to be removed while waiting: leaves its group's slots (or, wasHeld,
-- its group's held list, which the caller popped it from) and the group's count. Returns nothing.
local function forgetGroupTask(P, id, wasHeld)
  local f = redis.pcall('HMGET', P .. '${KEY.task}' .. id, '${TASK_FIELD.fn}', '${TASK_FIELD.group}')
  if f.err or not f[1] or not f[2] then return end
  local fn, grp = f[1], f[2]
  if not wasHeld and redis.call('ZREM', P .. '${KEY.groupActive}' .. fn .. ' ' .. grp, id) == 0 then
    return
  end
  local groups = P .. '${KEY.groups}' .. fn
  if tonumber(redis.call('ZINCRBY', groups, -1, grp)) <= 0 then redis.call('ZREM', groups, grp) end
end
`,
);

/**
 * `releaseGroupWaits(flow)`: for each function with a rate limit per group (not paused), hands the
 * slots of the groups whose window has opened (up to 1,000 per function per call) back to their
 * lines. Returns in how many ms the next group's window opens, or nil.
 */
export const releaseGroupWaits = luaFunction(
  "releaseGroupWaits",
  [redisTime, handOnGroupSlots],
  `
-- Hands the slots of the groups whose rate window has opened back to their lines, for every
-- function in flow (readFlow) with a rate limit per group. Returns in how many ms the next window
-- of a group with tasks waiting opens, or nil.
local function releaseGroupWaits(flow)
  local wakeIn, now = nil, redisTime()
  for fn in pairs(flow.groupRates) do
    if not flow.functions[fn] then
      local wake = flow.P .. '${KEY.groupWake}' .. fn
      for _, grp in ipairs(redis.call('ZRANGEBYSCORE', wake, '-inf', now, 'LIMIT', 0, 1000)) do
        redis.call('ZREM', wake, grp)
        handOnGroupSlots(flow.P, fn, grp, flow.groups[fn], false)
      end
      local first = redis.call('ZRANGE', wake, 0, 0, 'WITHSCORES')
      if first[2] then
        local opensIn = math.max(1, tonumber(first[2]) - now)
        if wakeIn == nil or opensIn < wakeIn then wakeIn = opensIn end
      end
    end
  end
  return wakeIn
end
`,
);
