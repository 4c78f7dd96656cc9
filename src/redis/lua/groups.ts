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
import { redisTime } from "./steps.ts";

/**
 * `holdForGroup(flow, fn, grp, id, stream, group, entryId)`: for a just-claimed delivery of task
 * `id` of function `fn` in group `grp` (the function grouped, with `flow.groups[fn]` slots per
 * group): takes a slot of the group if one is free, keeps the one it holds already (a task whose
 * slot was handed to it, or reclaimed from a dead worker), or sets the delivery aside at the end
 * of the group's held list (acknowledged and deleted, no try counted). Returns whether it was set
 * aside.
 */
export const holdForGroup = luaFunction(
  "holdForGroup",
  [redisTime],
  `
-- The delivery entryId of stream (task id of function fn, group grp): takes or keeps a slot of
-- its group, or, with every slot taken by other tasks, is set aside at the end of the group's
-- held list. A slot whose task is gone (deleted while it waited in its stream) is taken back on
-- the way. Returns true if it was set aside.
local function holdForGroup(flow, fn, grp, id, stream, group, entryId)
  local P, name = flow.P, fn .. ' ' .. grp
  local active = P .. '${KEY.groupActive}' .. name
  if redis.call('ZSCORE', active, id) then return false end
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
    return false
  end
  redis.call('RPUSH', P .. '${KEY.held}' .. name, id)
  redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, 1, grp)
  redis.call('XACK', stream, group, entryId)
  redis.call('XDEL', stream, entryId)
  return true
end
`,
);

/**
 * `handOnGroupSlots(P, fn, grp, limit)`: while group `grp` of function `fn` (queue prefix `P`) has
 * fewer than `limit` tasks holding its slots, hands a slot to the oldest task set aside for the
 * group: it joins the group's slots first, then the end of its priority's stream, so a task
 * enqueued meanwhile cannot overtake it. Held tasks whose hash is gone are dropped on the way (and
 * leave the group's count).
 */
export const handOnGroupSlots = luaFunction(
  "handOnGroupSlots",
  [redisTime],
  `
-- Hands the free slots of group grp of function fn (limit slots; queue prefix P) to the oldest
-- tasks set aside for it, each put back at the end of its priority's stream. Returns nothing.
local function handOnGroupSlots(P, fn, grp, limit)
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
  handOnGroupSlots(P, fn, grp, flow.groups[fn])
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
  local limit = tonumber(redis.call('HGET', flowKey, field))
  if not limit then
    redis.call('HSET', flowKey, field, 1)
    limit = 1
  end
  redis.call('ZINCRBY', P .. '${KEY.groups}' .. fn, 1, grp)
  redis.call('RPUSH', P .. '${KEY.held}' .. fn .. ' ' .. grp, id)
  handOnGroupSlots(P, fn, grp, math.max(limit, 1))
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
