/**
 * The task graph in Redis: tasks that wait for others (`after`), pipeline stages that take the
 * previous result as input (`pipe`), and fallbacks that run only when a task fails
 * (`otherwise`). The Lua here is shared by the enqueue, completion and abort scripts, so a
 * dependent is settled in the same atomic step that settles its dependency.
 *
 * A waiting task keeps a hash with `wait` set, a set `deps:<id>` of the dependencies it still
 * waits for, and is listed in the `waiting` set; each dependency lists its dependents in
 * `dependents:<id>`. When a dependency finishes, each waiting dependent is settled: satisfied
 * ones are placed in their own priority's stream (or the delayed set, if they are due later);
 * one whose dependency failed, was aborted or was unknown is marked `depfail` and placed in its
 * stream too, so that a worker writes its failure through the ordinary completion path. That
 * makes failure transitive and leaves nothing stranded.
 *
 * Stored results start with one byte saying how the task ended (see `src/payload/envelope.ts`), which
 * is what these scripts read: `1` succeeded, `0` failed, `c` cancelled.
 *
 * @module
 */

import { KEY, TASK_FIELD } from "../redis/keys.ts";
import { REDIS_TIME_LUA } from "../redis/_redis_time.ts";

/**
 * Lua helpers. `P` is the queue's key prefix (`Keys.prefix`); the key names built from it here
 * mirror those of `src/redis/keys.ts` (`task:`, `deps:`, `dependents:`, `stream:`, `waiting`,
 * `delayed`). All share the queue's hash tag, so scripts stay on one Cluster slot.
 */
export const GRAPH_LUA = REDIS_TIME_LUA + `
-- Moves a task whose dependencies are settled out of waiting: into the delayed set when it is
-- due later on Redis's clock (and not failing), else into its own priority's stream. Returns
-- the due time when it went to the delayed set.
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
  redis.call('HSET', key, '${TASK_FIELD.entered}', now)
  redis.call('XADD', P .. '${KEY.stream}' .. f[1], '*', 'id', id)
  return nil
end

-- Applies how dependency dep ended ('1', '0' or 'c') to the waiting task id. Returns true when
-- id is ready to be placed.
local function settleEdge(P, id, dep, ended, result)
  local key = P .. '${KEY.task}' .. id
  local mode = redis.call('HGET', key, '${TASK_FIELD.link}')
  if ended == 'c' then
    redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', 'cancel:' .. dep)
    return true
  end
  if mode == 'else' then
    -- A fallback runs when its task failed; when it succeeded, it passes the result on.
    if ended == '1' then redis.call('HSET', key, '${TASK_FIELD.input}', result, '${TASK_FIELD.passthrough}', 1) end
    return true
  end
  if ended ~= '1' then
    redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', dep)
    return true
  end
  if mode == 'pipe' and redis.call('HGET', key, '${TASK_FIELD.source}') == dep then
    redis.call('HSET', key, '${TASK_FIELD.input}', result)
  end
  redis.call('SREM', P .. '${KEY.deps}' .. id, dep)
  return redis.call('SCARD', P .. '${KEY.deps}' .. id) == 0
end

-- Settles every waiting dependent of dep, which ended with the stored result given. Returns
-- the earliest due time of those that went to the delayed set, or nil.
local function releaseDependents(P, dep, result, now)
  local ended, earliest = string.sub(result, 1, 1), nil
  local dependents = redis.call('SMEMBERS', P .. '${KEY.dependents}' .. dep)
  if #dependents == 0 then return nil end
  for _, id in ipairs(dependents) do
    if redis.call('HEXISTS', P .. '${KEY.task}' .. id, '${TASK_FIELD.waiting}') == 1
        and settleEdge(P, id, dep, ended, result) then
      local due = placeReady(P, id, now)
      if due and (earliest == nil or due < earliest) then earliest = due end
    end
  end
  redis.call('DEL', P .. '${KEY.dependents}' .. dep)
  return earliest
end

-- Links a new task id to the dependencies listed in after (ids separated by spaces). A
-- dependency already finished is settled at once; an unknown one marks the task failing.
-- Returns true when the task must wait.
local function linkDependencies(P, id, after)
  local key = P .. '${KEY.task}' .. id
  for dep in string.gmatch(after, '%S+') do
    if redis.call('EXISTS', P .. '${KEY.task}' .. dep) == 1 then
      redis.call('SADD', P .. '${KEY.deps}' .. id, dep)
      redis.call('SADD', P .. '${KEY.dependents}' .. dep, id)
    else
      local result = redis.call('GET', P .. '${KEY.result}' .. dep)
      if result then
        settleEdge(P, id, dep, string.sub(result, 1, 1), result)
      else
        redis.call('HSET', key, '${TASK_FIELD.dependencyFailure}', 'unknown:' .. dep)
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
`;

/** How a stored result says the task ended: its first byte. */
export const ENDED = { success: "1", failure: "0", cancelled: "c" } as const;

/** The reason a dependent fails, from its `depfail` field, for the failure's message. */
export function dependencyFailure(depfail: string): { cancelled: boolean; message: string } {
  if (depfail.startsWith("unknown:")) {
    return {
      cancelled: false,
      message: `unknown dependency ${
        depfail.slice(8)
      }: no task with that id existed when it was enqueued`,
    };
  }
  if (depfail.startsWith("cancel:")) {
    return {
      cancelled: true,
      message: `dependency failed: ${depfail.slice(7)} was aborted`,
    };
  }
  return { cancelled: false, message: `dependency failed: ${depfail} did not succeed` };
}
