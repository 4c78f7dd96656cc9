/**
 * Pausing and resuming a queue, or some of its functions, and reading the flow control in force
 * (pauses, and the concurrency limits that workers write, `src/run/flow_limits.ts`). A pause lives in Redis (the queue's
 * `paused` hash, `src/redis/keys.ts`), so it holds for every worker, survives their restarts, and
 * is read atomically by the scripts that claim work (`src/redis/lua/flow.ts`): a paused queue
 * claims nothing, and a delivery of a paused function is set aside in that function's held list,
 * its try not counted. Enqueueing goes on, and running tasks finish. A change is announced on
 * the queue's flow channel, so that workers waiting on a paused queue fetch again at once.
 *
 * Resuming a function puts its held tasks back in their streams, oldest first, in script calls
 * of at most {@linkcode RESUME_BATCH} tasks: a resume that stops half-way leaves the rest held,
 * and resuming again finishes it.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import {
  GROUP_FUNCTION,
  KEY,
  LIMIT_FUNCTION,
  PAUSED_FUNCTION,
  PAUSED_QUEUE,
  RATE_FUNCTION,
  TASK_FIELD,
} from "../redis/keys.ts";
import { redisNow } from "../redis/_redis_time.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { addStreamEntry, redisTime } from "../redis/lua/steps.ts";
import { checkKnownKeys, checkName, describe } from "../_validate.ts";

/** At most this many held tasks go back to their streams per script call of a resume. */
export const RESUME_BATCH = 1000;

/** Which work a pause or resume is about. */
export interface PauseOptions {
  /**
   * The functions (registered names) to pause or resume; without it, the whole queue. The two
   * are independent: resuming the queue leaves paused functions paused, and the other way round.
   *
   * @default {undefined}
   */
  functions?: readonly string[];
}

/** A paused function. */
export interface PausedFunction {
  /** Its registered name. */
  readonly name: string;
  /** When it was paused. */
  readonly since: Date;
  /** How many of its tasks workers have set aside, to go back to their streams on resume. */
  readonly held: number;
}

/** The pauses in force on a queue. */
export interface PauseState {
  /** When the whole queue was paused, or null while it is not. */
  readonly queue: Date | null;
  /** The paused functions, by name. */
  readonly functions: readonly PausedFunction[];
}

/**
 * Adds pauses and announces them.
 *
 * KEYS: [1] paused hash
 * ARGV: [1] flow channel, [2..] the fields to set (`PAUSED_QUEUE`, `PAUSED_FUNCTION` + name)
 * Returns how many of them were not paused already (an existing pause keeps its start time).
 */
const PAUSE_SCRIPT = script(lua(
  redisTime,
  `
local now, added = redisTime(), 0
for i = 2, #ARGV do added = added + redis.call('HSETNX', KEYS[1], ARGV[i], now) end
redis.call('PUBLISH', ARGV[1], 'pause')
return added
`,
));

/**
 * Removes pauses, puts back up to a batch of the held tasks of the functions resumed, and
 * announces it. A held task whose hash is gone (it was removed meanwhile) is dropped.
 *
 * KEYS: [1] paused hash
 * ARGV: [1] flow channel, [2] the queue's key prefix, [3] batch size, [4..] the fields to remove;
 *       those of functions name the held lists to empty
 * Returns how many held tasks remain in those lists.
 */
const RESUME_SCRIPT = script(lua(
  addStreamEntry,
  `
local P, budget, remaining = ARGV[2], tonumber(ARGV[3]), 0
for i = 4, #ARGV do
  local field = ARGV[i]
  redis.call('HDEL', KEYS[1], field)
  if string.sub(field, 1, ${PAUSED_FUNCTION.length}) == '${PAUSED_FUNCTION}' then
    local list = P .. '${KEY.held}' .. string.sub(field, ${PAUSED_FUNCTION.length + 1})
    if budget > 0 then
      local ids = redis.call('LRANGE', list, 0, budget - 1)
      for _, id in ipairs(ids) do
        local priority = redis.call('HGET', P .. '${KEY.task}' .. id, '${TASK_FIELD.priority}')
        if priority then addStreamEntry(P .. '${KEY.stream}' .. priority, id) end
      end
      if #ids > 0 then redis.call('LTRIM', list, #ids, -1) end
      budget = budget - #ids
    end
    remaining = remaining + redis.call('LLEN', list)
  end
end
redis.call('PUBLISH', ARGV[1], 'resume')
return remaining
`,
));

/**
 * Pauses the whole queue, or the functions named: no worker starts paused work from within a
 * moment (it stays queued, its tries uncounted) until it is resumed.
 *
 * @param client The queue's context.
 * @param options `functions` to pause only those.
 * @returns How many of them were not paused already.
 * @throws {TypeError} For an unknown option or a function name that is not a string.
 */
export async function pauseWork(
  client: QueueContext,
  options: PauseOptions = {},
): Promise<number> {
  const fields = pauseFields("pause", options);
  const { redis, keys } = client;
  return Number(
    await runScript(redis, PAUSE_SCRIPT, [keys.flow], [keys.flowChannel, ...fields]),
  );
}

/**
 * Resumes the whole queue, or the functions named, putting their held tasks back in their
 * streams (oldest first).
 *
 * @param client The queue's context.
 * @param options `functions` to resume only those.
 * @throws {TypeError} For an unknown option or a function name that is not a string.
 */
export async function resumeWork(
  client: QueueContext,
  options: PauseOptions = {},
): Promise<void> {
  const fields = pauseFields("resume", options);
  const { redis, keys } = client;
  const args = [keys.flowChannel, keys.prefix, RESUME_BATCH, ...fields];
  while (Number(await runScript(redis, RESUME_SCRIPT, [keys.flow], args)) > 0) {
    // More held tasks than one call puts back: the next call goes on.
  }
}

/**
 * The pauses in force, with how many tasks each paused function has set aside.
 *
 * @param client The queue's context.
 * @returns The whole queue's pause, and the paused functions by name.
 */
export async function readPauseState(client: QueueContext): Promise<PauseState> {
  const { redis, keys } = client;
  const fields = await redis.hgetall(keys.flow);
  let queue: Date | null = null;
  const paused: { name: string; since: Date }[] = [];
  for (const [field, since] of Object.entries(fields)) {
    if (field === PAUSED_QUEUE) queue = new Date(Number(since));
    if (field.startsWith(PAUSED_FUNCTION)) {
      paused.push({ name: field.slice(PAUSED_FUNCTION.length), since: new Date(Number(since)) });
    }
  }
  paused.sort((a, b) => a.name.localeCompare(b.name));
  const held = paused.length === 0
    ? []
    : await Promise.all(paused.map(({ name }) => redis.llen(keys.held(name))));
  return { queue, functions: paused.map((p, i) => ({ ...p, held: held[i] })) };
}

/** A function's limits and their use, as `worker.limits()` reads them. */
export interface FunctionLimit {
  /** The function's registered name. */
  readonly name: string;
  /** At most this many of its tasks run at once across the queue; null without a limit. */
  readonly concurrency: number | null;
  /** Slots taken now: its tasks running or read ahead by a worker (0 without a limit). */
  readonly running: number;
  /** At most this many of its tasks start per `duration`; null without a rate limit. */
  readonly max: number | null;
  /** The rate limit's window (ms); null without a rate limit. */
  readonly duration: number | null;
  /** Its starts within the current window (0 without a rate limit). */
  readonly started: number;
  /**
   * Its tasks set aside until a slot frees or the window allows (or, while it is paused, until
   * it is resumed).
   */
  readonly waiting: number;
  /** Its groups, when its tasks carry group keys (the `group` option); null otherwise. */
  readonly groups: GroupsUse | null;
}

/** The groups of a grouped function, as `worker.limits()` reads them: counts, never a full list. */
export interface GroupsUse {
  /** At most this many tasks of each group hold a slot at once (`groups.concurrency`). */
  readonly concurrency: number;
  /** At most this many tasks of each group start per `duration`; null without a rate limit. */
  readonly max: number | null;
  /** The window of `max` (ms); null without a rate limit per group. */
  readonly duration: number | null;
  /** How many groups have tasks running, read ahead or waiting. */
  readonly active: number;
  /**
   * The groups with the most tasks holding a slot or waiting, most first (at most
   * {@linkcode BUSIEST_GROUPS}).
   */
  readonly busiest: readonly { readonly group: string; readonly tasks: number }[];
}

/** How many of the busiest groups `worker.limits()` lists per function. */
export const BUSIEST_GROUPS = 5;

/**
 * The limits in force (concurrency and rate), by function name, with the slots taken, the starts
 * in the current window and the tasks waiting.
 *
 * @param client The queue's context.
 * @returns The limited functions, by name.
 */
export async function readLimits(client: QueueContext): Promise<FunctionLimit[]> {
  const { redis, keys } = client;
  const fields = await redis.hgetall(keys.flow);
  const byName = new Map<
    string,
    {
      concurrency: number | null;
      rate: string | null;
      groupSlots: number | null;
      groupRate: [number, number] | null;
    }
  >();
  const entry = (name: string) => {
    let e = byName.get(name);
    if (!e) {
      byName.set(name, e = { concurrency: null, rate: null, groupSlots: null, groupRate: null });
    }
    return e;
  };
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith(LIMIT_FUNCTION)) {
      entry(field.slice(LIMIT_FUNCTION.length)).concurrency = Number(value);
    } else if (field.startsWith(RATE_FUNCTION)) {
      entry(field.slice(RATE_FUNCTION.length)).rate = value;
    } else if (field.startsWith(GROUP_FUNCTION)) {
      // '<slots>', or '<slots> <max> <duration>' with a rate limit per group.
      const [slots, max, duration] = value.split(" ").map(Number);
      const e = entry(field.slice(GROUP_FUNCTION.length));
      e.groupSlots = Math.max(1, slots || 1);
      e.groupRate = max && duration ? [max, duration] : null;
    }
  }
  const names = [...byName.keys()].sort();
  if (names.length === 0) return [];
  const now = await redisNow(client);
  const pipeline = redis.pipeline();
  for (const name of names) {
    const rate = byName.get(name)!.rate;
    const duration = rate ? Number(rate.split(" ")[1]) : 0;
    pipeline.zcard(keys.active(name)).llen(keys.held(name))
      .zcount(keys.starts(name), now - duration, "+inf")
      .zcard(keys.groups(name))
      .zrange(keys.groups(name), 0, BUSIEST_GROUPS - 1, "REV", "WITHSCORES");
  }
  const replies = await pipeline.exec() ?? [];
  const PER = 5;
  return names.map((name, i) => {
    const { concurrency, rate, groupSlots, groupRate } = byName.get(name)!;
    const [max, duration] = rate ? rate.split(" ").map(Number) : [null, null];
    const top = (replies[PER * i + 4]?.[1] ?? []) as string[];
    const busiest = [];
    for (let j = 0; j + 1 < top.length; j += 2) {
      busiest.push({ group: top[j], tasks: Number(top[j + 1]) });
    }
    return {
      name,
      concurrency,
      running: Number(replies[PER * i]?.[1] ?? 0),
      max,
      duration,
      started: rate ? Number(replies[PER * i + 2]?.[1] ?? 0) : 0,
      waiting: Number(replies[PER * i + 1]?.[1] ?? 0),
      groups: groupSlots === null ? null : {
        concurrency: groupSlots,
        max: groupRate?.[0] ?? null,
        duration: groupRate?.[1] ?? null,
        active: Number(replies[PER * i + 3]?.[1] ?? 0),
        busiest,
      },
    };
  });
}

/**
 * A function's limits as short phrases: `2 of 3 running`, `5 of 100 started in 60000 ms`.
 *
 * @param limit The function's limits, as `worker.limits()` reads them.
 * @returns One phrase per limit.
 */
export function describeLimit(limit: FunctionLimit): string[] {
  const parts: string[] = [];
  if (limit.concurrency !== null) parts.push(`${limit.running} of ${limit.concurrency} running`);
  if (limit.max !== null) {
    parts.push(`${limit.started} of ${limit.max} started in ${limit.duration} ms`);
  }
  const { groups } = limit;
  if (groups) {
    const busiest = groups.busiest.map((g) => `${g.group} ${g.tasks}`).join(", ");
    parts.push(
      `${groups.active} group${
        groups.active === 1 ? "" : "s"
      } active, ${groups.concurrency} at once${
        groups.max === null ? "" : ` and ${groups.max} per ${groups.duration} ms`
      } each${busiest ? ` (busiest: ${busiest})` : ""}`,
    );
  }
  return parts;
}

/** The fields of the paused hash that `options` is about, checked. */
function pauseFields(verb: string, options: PauseOptions): string[] {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${verb} as the options must be an object: received ${describe(options)}`,
    );
  }
  checkKnownKeys(verb, options, ["functions"]);
  const { functions } = options;
  if (functions === undefined) return [PAUSED_QUEUE];
  if (!Array.isArray(functions) || functions.length === 0) {
    throw new TypeError(
      `Cannot ${verb} as 'functions' must be a non-empty array of function names: received ${
        describe(functions)
      }`,
    );
  }
  functions.forEach((name: unknown) => checkName(verb, "functions", name));
  return functions.map((name) => PAUSED_FUNCTION + name);
}
