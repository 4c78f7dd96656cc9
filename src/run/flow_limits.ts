/**
 * The concurrency limits of a worker's functions, written into the queue's flow hash when a run
 * starts (`src/redis/keys.ts`, `KEY.flow`), where the claim scripts read them
 * (`src/redis/lua/flow.ts`). The limit is part of a function's definition, so the worker that
 * runs the function states it: each run sets the limits of its limited functions and removes
 * those of its other functions (a limit taken out of the code goes with the next deploy). Workers
 * of one queue running different versions disagree; the last one started wins.
 *
 * Grouped functions (the `group` or `groups` option) state the slots of each of their groups the
 * same way (`src/redis/lua/groups.ts`); when they are raised, the groups with tasks waiting get the
 * new slots at once (the first 1,000 groups; the others at their next outcome).
 *
 * The same call puts back tasks set aside for want of a slot that a change left waiting with
 * slots free (a limit raised or removed): otherwise only a finishing task would release them.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import {
  GROUP_FUNCTION,
  KEY,
  LIMIT_FUNCTION,
  PAUSED_FUNCTION,
  RATE_FUNCTION,
  STREAM_FIELD,
  TASK_FIELD,
} from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { handOnGroupSlots } from "../redis/lua/groups.ts";

/** At most this many set-aside tasks go back to their streams per run start. */
const RELEASE_BATCH = 1000;

/** What {@linkcode writeLimits} needs of each registered function. */
export interface LimitedFunction {
  readonly name: string;
  readonly limit?: {
    readonly concurrency?: number;
    readonly max?: number;
    readonly duration?: number;
  };
  /** Its `group` option: with it or `groups`, the function is grouped. */
  readonly group?: unknown;
  readonly groups?: {
    readonly concurrency?: number;
    readonly max?: number;
    readonly duration?: number;
  };
}

/**
 * Sets or removes the limits of functions, then puts back, for each function not paused, as
 * many of its set-aside tasks as it has free slots (all of them without a limit).
 *
 * KEYS: [1] flow hash
 * ARGV: [1] the queue's key prefix, [2] at most this many tasks put back, then per function
 *       its name, its concurrency limit ('' for none), its rate limit ('<max> <duration>', ''
 *       for none) and the slots of each of its groups, with its rate limit per group ('<slots>' or
 *       '<slots> <max> <duration>'; '' when it declares no groups: a function grouped by the
 *       enqueue of a task with a group key gets 1); tasks waiting for a
 *       rate window are left to the claim scripts
 * Returns how many tasks it put back.
 */
const WRITE_LIMITS_SCRIPT = script(lua(
  handOnGroupSlots,
  `
local P, budget, moved = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV, 4 do
  local fn, limit, rate, groupSlots = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  if groupSlots ~= '' then
    -- '<slots>', or '<slots> <max> <duration>' with a rate limit per group.
    local before = tonumber(string.match(redis.call('HGET', KEYS[1], '${GROUP_FUNCTION}' .. fn) or '', '^%d+'))
    local slots = tonumber(string.match(groupSlots, '^%d+'))
    redis.call('HSET', KEYS[1], '${GROUP_FUNCTION}' .. fn, groupSlots)
    if before and before < slots then
      -- More slots per group: the groups with tasks waiting get them now, not at their next
      -- outcome (the first RELEASE_BATCH groups; the others at their next outcome).
      for _, grp in ipairs(redis.call('ZRANGE', P .. '${KEY.groups}' .. fn, 0, ${RELEASE_BATCH} - 1)) do
        handOnGroupSlots(P, fn, grp, slots, string.find(groupSlots, ' ', 1, true) ~= nil)
      end
    end
  elseif redis.call('HEXISTS', KEYS[1], '${GROUP_FUNCTION}' .. fn) == 1 then
    redis.call('HSET', KEYS[1], '${GROUP_FUNCTION}' .. fn, 1)
  end
  if not string.find(groupSlots, ' ', 1, true) then
    -- No rate limit per group (any more): the groups that waited for their window go on now, as
    -- nothing else would wake them.
    local wake = P .. '${KEY.groupWake}' .. fn
    local slots = tonumber(string.match(groupSlots, '^%d+')) or 1
    for _, grp in ipairs(redis.call('ZRANGE', wake, 0, ${RELEASE_BATCH} - 1)) do
      redis.call('ZREM', wake, grp)
      handOnGroupSlots(P, fn, grp, slots, false)
    end
  end
  if limit then
    redis.call('HSET', KEYS[1], '${LIMIT_FUNCTION}' .. fn, limit)
  else
    redis.call('HDEL', KEYS[1], '${LIMIT_FUNCTION}' .. fn)
  end
  if rate ~= '' then
    redis.call('HSET', KEYS[1], '${RATE_FUNCTION}' .. fn, rate)
  else
    redis.call('HDEL', KEYS[1], '${RATE_FUNCTION}' .. fn)
  end
  local held = P .. '${KEY.held}' .. fn
  if rate == '' and redis.call('HEXISTS', KEYS[1], '${PAUSED_FUNCTION}' .. fn) == 0 and redis.call('LLEN', held) > 0 then
    local free = budget - moved
    if limit then
      free = math.min(free, limit - redis.call('ZCARD', P .. '${KEY.active}' .. fn))
    end
    for _ = 1, free do
      local id = redis.call('LPOP', held)
      if not id then break end
      local priority = redis.call('HGET', P .. '${KEY.task}' .. id, '${TASK_FIELD.priority}')
      if priority then
        redis.call('XADD', P .. '${KEY.stream}' .. priority, '*', '${STREAM_FIELD.taskId}', id)
        moved = moved + 1
      end
    end
  end
end
return moved
`,
));

/**
 * Sets the concurrency limits of `functions` in the queue's flow hash, removes those of the ones
 * without a limit, and puts back tasks left waiting with slots free, in one script call.
 *
 * @param client The queue's context.
 * @param functions The functions this worker runs.
 */
export async function writeLimits(
  client: QueueContext,
  functions: Iterable<LimitedFunction>,
): Promise<void> {
  const args: (string | number)[] = [client.keys.prefix, RELEASE_BATCH];
  for (const f of functions) {
    const { concurrency, max, duration } = f.limit ?? {};
    const grouped = f.group !== undefined || f.groups !== undefined;
    const { concurrency: slots = 1, max: groupMax, duration: groupDuration } = f.groups ?? {};
    args.push(
      f.name,
      concurrency ?? "",
      max === undefined ? "" : `${max} ${duration}`,
      !grouped ? "" : groupMax === undefined ? slots : `${slots} ${groupMax} ${groupDuration}`,
    );
  }
  if (args.length === 2) return;
  await runScript(client.redis, WRITE_LIMITS_SCRIPT, [client.keys.flow], args);
}
