/**
 * The task graph in Lua, shared by the enqueue, completion and abort scripts, so that a
 * dependent is settled in the same atomic step that settles its dependency (the model is
 * described in `src/client/graph.ts`). `P` is the queue's key prefix (`Keys.prefix`); keys are
 * built from it with the parts of `../keys.ts`, and share the queue's hash tag, so scripts stay
 * on one Cluster slot.
 *
 * @module
 */

import { KEY, REMOTE_DEPENDENTS, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { enterStream, redisTime } from "./steps.ts";

/**
 * How a stored result says the task ended: its first byte, written by `src/payload/envelope.ts`
 * and read by {@linkcode releaseDependents} and {@linkcode linkDependencies}.
 */
export const ENDED = { success: "1", failure: "0", cancelled: "c" } as const;

/** How a task is tied to its source (`TASK_FIELD.link`): a pipeline stage or a fallback. */
export const LINK = { pipe: "pipe", fallback: "else" } as const;

/**
 * What `TASK_FIELD.dependencyFailure` starts with when the dependency did not simply fail (then
 * it is the dependency's id alone): it was aborted, or unknown at enqueue.
 */
export const DEPENDENCY_FAILURE = { cancelled: "cancel:", unknown: "unknown:" } as const;

/**
 * `placeReady(P, id, now)`: moves a task whose dependencies are settled out of waiting: into the
 * delayed set when it is due later on Redis's clock (and not failing), else into its own
 * priority's stream. Returns the due time when it went to the delayed set, else nil.
 */
export const placeReady = luaFunction(
  "placeReady",
  [redisTime, enterStream],
  `
-- Moves task id, whose dependencies are settled, out of waiting: into the delayed set when it
-- is due later on Redis's clock (and not failing), else into its own priority's stream (entered
-- at now). Returns the due time when it went to the delayed set, else nil.
local function placeReady(P, id, now)
  local key = P .. '${KEY.task}' .. id
  redis.call('HDEL', key, '${TASK_FIELD.waiting}')
  redis.call('DEL', P .. '${KEY.deps}' .. id)
  redis.call('SREM', P .. '${KEY.waiting}', id)
  local f = redis.call('HMGET', key, '${TASK_FIELD.priority}', '${TASK_FIELD.due}', '${TASK_FIELD.dependencyFailure}')
  if f[2] and not f[3] and tonumber(f[2]) > redisTime() then
    redis.call('ZADD', P .. '${KEY.delayed}', f[2], id)
    return tonumber(f[2])
  end
  redis.call('HDEL', key, '${TASK_FIELD.due}')
  enterStream(key, P .. '${KEY.stream}' .. f[1], id, now)
  return nil
end
`,
);

/**
 * `settleEdge(P, id, dep, ended, result)`: applies how dependency `dep` ended (a byte of
 * {@linkcode ENDED}) to the waiting task `id`: a failure or cancellation marks it failing, a
 * success feeds a pipeline stage's input or a fallback's passthrough. Returns true when `id` is
 * ready to be placed.
 */
export const settleEdge = luaFunction(
  "settleEdge",
  [],
  `
-- Applies how dependency dep ended (a byte of ENDED, with its stored result) to the waiting
-- task id. Returns true when id is ready to be placed.
local function settleEdge(P, id, dep, ended, result)
  local key = P .. '${KEY.task}' .. id
  local mode = redis.call('HGET', key, '${TASK_FIELD.link}')
  if ended == '${ENDED.cancelled}' then
    redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', '${DEPENDENCY_FAILURE.cancelled}' .. dep)
    return true
  end
  if mode == '${LINK.fallback}' then
    -- A fallback runs when its task failed; when it succeeded, it passes the result on.
    if ended == '${ENDED.success}' then redis.call('HSET', key, '${TASK_FIELD.input}', result, '${TASK_FIELD.passthrough}', 1) end
    return true
  end
  if ended ~= '${ENDED.success}' then
    redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', dep)
    return true
  end
  if mode == '${LINK.pipe}' and redis.call('HGET', key, '${TASK_FIELD.source}') == dep then
    redis.call('HSET', key, '${TASK_FIELD.input}', result)
  end
  redis.call('SREM', P .. '${KEY.deps}' .. id, dep)
  return redis.call('SCARD', P .. '${KEY.deps}' .. id) == 0
end
`,
);

/**
 * `releaseDependents(P, dep, result, now)`: settles every waiting dependent of `dep`, which
 * ended with the stored `result`. Returns the earliest due time of those that went to the
 * delayed set, or nil.
 */
export const releaseDependents = luaFunction(
  "releaseDependents",
  [settleEdge, placeReady],
  `
-- Settles every waiting dependent of dep, which ended with the stored result given, and queues
-- the result for the other shards waiting for dep (members 'shard <k>'). Returns the earliest
-- due time of those that went to the delayed set, or nil.
local function releaseDependents(P, dep, result, now)
  local ended, earliest = string.sub(result, 1, 1), nil
  local dependents = redis.call('SMEMBERS', P .. '${KEY.dependents}' .. dep)
  if #dependents == 0 then return nil end
  for _, id in ipairs(dependents) do
    local shard = string.match(id, '^${REMOTE_DEPENDENTS}(%d+)$')
    if shard then
      -- Tasks of another shard wait for dep: a worker relays its outcome there.
      redis.call('XADD', P .. '${KEY.outbox}', '*', 'x', dep, 's', shard, 'r', result)
    elseif redis.call('HEXISTS', P .. '${KEY.task}' .. id, '${TASK_FIELD.waiting}') == 1
        and settleEdge(P, id, dep, ended, result) then
      local due = placeReady(P, id, now)
      if due and (earliest == nil or due < earliest) then earliest = due end
    end
  end
  redis.call('DEL', P .. '${KEY.dependents}' .. dep)
  return earliest
end
`,
);

/**
 * `linkDependencies(P, id, after)`: links the new task `id` to the dependencies listed in
 * `after` (ids separated by spaces). A dependency already finished is settled at once; an
 * unknown one marks the task failing. Returns true when the task must wait.
 */
export const linkDependencies = luaFunction(
  "linkDependencies",
  [settleEdge],
  `
-- Links a new task id to the dependencies listed in after (ids separated by spaces). A
-- dependency already finished is settled at once; an unknown one marks the task failing.
-- Returns true when the task must wait.
local function linkDependencies(P, id, after)
  local key = P .. '${KEY.task}' .. id
  for dep in string.gmatch(after, '%S+') do
    if redis.call('EXISTS', P .. '${KEY.task}' .. dep) == 1 then
      redis.call('SADD', P .. '${KEY.deps}' .. id, dep)
      redis.call('SADD', P .. '${KEY.dependents}' .. dep, id)
      redis.call('SET', P .. '${KEY.linked}', 1)
    else
      -- A task of another shard (sharded queue) has a mirror here: '' while it runs there (it
      -- is linked, and settled when its outcome is relayed), then its result.
      local result = redis.call('GET', P .. '${KEY.mirror}' .. dep)
      if result == '' then
        redis.call('SADD', P .. '${KEY.deps}' .. id, dep)
        redis.call('SADD', P .. '${KEY.dependents}' .. dep, id)
        redis.call('SET', P .. '${KEY.linked}', 1)
      else
        result = result or redis.call('GET', P .. '${KEY.result}' .. dep)
        if result then
          settleEdge(P, id, dep, string.sub(result, 1, 1), result)
        else
          redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', '${DEPENDENCY_FAILURE.unknown}' .. dep)
        end
      end
    end
  end
  local settled = redis.call('HEXISTS', key, '${TASK_FIELD.dependencyFailure}') == 1 or redis.call('HEXISTS', key, '${TASK_FIELD.passthrough}') == 1
  if settled or redis.call('SCARD', P .. '${KEY.deps}' .. id) == 0 then
    redis.call('DEL', P .. '${KEY.deps}' .. id)
    return false
  end
  redis.call('HSET', key, '${TASK_FIELD.waiting}', 1)
  redis.call('SADD', P .. '${KEY.waiting}', id)
  return true
end
`,
);
