/**
 * Repeating tasks: cron jobs registered by workers, tasks enqueued with a crontab schedule,
 * their listing, and unscheduling. A repeating task keeps one task hash for its whole life;
 * after each occurrence the completion script puts it back in the delayed set for the next one
 * (see `src/run/complete.ts`), so each occurrence is fetched, and run, by exactly one worker.
 *
 * @module
 */

import { TASK_FIELD } from "../redis/keys.ts";
import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { nextOccurrence } from "../cron/crontab.ts";
import { makeTaskResult, type TaskResult } from "../result.ts";
import { redisNow } from "../redis/_redis_time.ts";
import { runScript, script, type ScriptArg } from "../redis/_script.ts";
import { argvSlots, layout, pushRecord } from "../redis/lua/layout.ts";
import { describe } from "../_validate.ts";

/** The id of the repeating task behind the cron job `name`: one per queue. */
export function cronTaskId(name: string): string {
  return `cron:${name}`;
}

/** The fixed arguments of {@linkcode REGISTER_CRONS_SCRIPT}; {@linkcode CRON_JOB}s follow. */
export const REGISTER_CRONS_ARGS = layout("now", "wakeChannel");

/** A cron job to register: its repeating task, and its first occurrence (`due`, ms). */
export const CRON_JOB = layout("id", "fn", "payload", "priority", "crontab", "timeZone", "due");

const CRON_ARG = argvSlots(REGISTER_CRONS_ARGS, 1);
const JOB = argvSlots(CRON_JOB, "a");

/**
 * Registers cron jobs. A job whose crontab, time zone or function is unchanged is left alone,
 * so any number of workers can register the same jobs and each occurrence stays single. A
 * changed crontab replaces the old schedule, including the occurrence waiting in the delayed
 * set; an occurrence already queued or running finishes, and its successor follows the new
 * crontab.
 *
 * KEYS: [1] delayed set, [2] schedules set, then per job: [task hash]
 * ARGV: {@linkcode REGISTER_CRONS_ARGS} (now, wake channel), then a {@linkcode CRON_JOB} per
 *       job (task id, fn, payload, priority, crontab, time zone, next occurrence)
 * Returns the number of jobs created or changed.
 */
export const REGISTER_CRONS_SCRIPT = script(
  `
local changed, earliest = 0, nil
for i = 3, #KEYS do
  local key, a = KEYS[i], ${REGISTER_CRONS_ARGS.size + 1} + (i - 3) * ${CRON_JOB.size}
  local id, fn, crontab, tz, due = ${JOB.id}, ${JOB.fn}, ${JOB.crontab}, ${JOB.timeZone}, ${JOB.due}
  local current = redis.call('HMGET', key, '${TASK_FIELD.fn}', '${TASK_FIELD.crontab}', '${TASK_FIELD.timeZone}')
  if current[1] ~= fn or current[2] ~= crontab or current[3] ~= tz then
    local waiting = redis.call('ZSCORE', KEYS[1], id)
    redis.call('HSET', key, '${TASK_FIELD.fn}', fn, '${TASK_FIELD.data}', ${JOB.payload}, '${TASK_FIELD.priority}', ${JOB.priority},
      '${TASK_FIELD.crontab}', crontab, '${TASK_FIELD.timeZone}', tz)
    if not current[1] or waiting then
      redis.call('HSET', key, '${TASK_FIELD.created}', ${CRON_ARG.now}, '${TASK_FIELD.tries}', 0, '${TASK_FIELD.due}', due, '${TASK_FIELD.scheduled}', due)
      redis.call('ZADD', KEYS[1], due, id)
      if earliest == nil or tonumber(due) < earliest then earliest = tonumber(due) end
    end
    redis.call('SADD', KEYS[2], id)
    changed = changed + 1
  else
    redis.call('HSET', key, '${TASK_FIELD.priority}', ${JOB.priority})
  end
end
if earliest ~= nil then redis.call('PUBLISH', ${CRON_ARG.wakeChannel}, earliest) end
return changed
`,
);

/**
 * Stops a repeating task. Waiting for its next occurrence: removed at once. Queued: its hash
 * goes, so the fetch drops the entry. Running: it finishes and is not scheduled again.
 *
 * KEYS: [1] task hash, [2] delayed set, [3] schedules set
 * ARGV: [1] task id
 * Returns 1 if a repeating task was stopped, 0 if the id names none.
 */
export const UNSCHEDULE_SCRIPT = script(
  `
redis.call('SREM', KEYS[3], ARGV[1])
local fields = redis.call('HMGET', KEYS[1], '${TASK_FIELD.crontab}', '${TASK_FIELD.runner}')
if not fields[1] then return 0 end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 and fields[2] and fields[2] ~= '' then
  redis.call('HDEL', KEYS[1], '${TASK_FIELD.crontab}')
else
  redis.call('DEL', KEYS[1])
end
return 1
`,
);

/** A cron job of a worker, ready to be registered. */
export interface CronRegistration {
  readonly name: string;
  readonly crontab: string;
  readonly priority: string;
}

/** Registers a worker's cron jobs in one round trip. */
export async function registerCrons(
  client: QueueContext,
  crons: readonly CronRegistration[],
): Promise<number> {
  if (crons.length === 0) return 0;
  const { keys } = client;
  const now = client.now();
  const args: ScriptArg[] = [];
  pushRecord(args, REGISTER_CRONS_ARGS, { now, wakeChannel: keys.wakeChannel });
  // The first occurrences follow Redis's clock, the one due times are compared with.
  const present = await redisNow(client);
  for (const cron of crons) {
    const id = cronTaskId(cron.name);
    const payload = await client.envelope.sealArgs(id, cron.name, []);
    const due = nextOccurrence(cron.crontab, client.timeZone, present);
    pushRecord(args, CRON_JOB, {
      id,
      fn: cron.name,
      payload,
      priority: cron.priority,
      crontab: cron.crontab,
      timeZone: client.timeZone,
      due,
    });
  }
  return await runScript(
    client.redis,
    REGISTER_CRONS_SCRIPT,
    [keys.delayed, keys.schedules, ...crons.map((c) => keys.task(cronTaskId(c.name)))],
    args,
  ) as number;
}

/** Stops the repeating task with this id; true if there was one. */
export async function unscheduleById(client: QueueContext, id: string): Promise<boolean> {
  const { keys } = client;
  const stopped = await runScript(
    client.redis,
    UNSCHEDULE_SCRIPT,
    [keys.task(id), keys.delayed, keys.schedules],
    [id],
  );
  return stopped === 1;
}

/**
 * Stops the repeating task with this id, or else the cron job of this name (whose id is
 * `cron:<name>`): users know a cron job by the name they registered it under.
 */
export async function unscheduleByIdOrName(
  client: QueueContext,
  idOrName: string,
): Promise<boolean> {
  if (typeof idOrName !== "string" || idOrName === "") {
    throw new TypeError(
      `Cannot unschedule as 'taskId' must be a task id or a cron job's name: received ${
        describe(idOrName)
      }`,
    );
  }
  if (await unscheduleById(client, idOrName)) return true;
  return !idOrName.startsWith(cronTaskId("")) &&
    await unscheduleById(client, cronTaskId(idOrName));
}

/** A repeating task as listed by `worker.schedules()`. */
export interface ScheduleInfo {
  /** The id of the repeating task (`cron:<name>` for a cron job). */
  readonly taskId: string;
  /** The registered name of its function. */
  readonly fnName: string;
  /** True for a cron job registered by a worker, false for a task enqueued with a crontab. */
  readonly cronJob: boolean;
  /** Its crontab. */
  readonly crontab: string;
  /** The time zone its crontab is evaluated in. */
  readonly timeZone: string;
  /** The priority its occurrences run at. */
  readonly priority: string;
  /** When its next occurrence is due; null while an occurrence is queued or running. */
  readonly nextRun: Date | null;
  /** The result of its last occurrence, while it is kept. */
  readonly lastResult: TaskResult<unknown> | null;
}

/** Lists the queue's repeating tasks, soonest first. */
export async function listSchedules(client: QueueContext): Promise<ScheduleInfo[]> {
  const { keys } = client;
  const ids = await client.redis.smembers(keys.schedules);
  const pipeline = client.redis.pipeline();
  for (const id of ids) {
    pipeline.hmget(
      keys.task(id),
      TASK_FIELD.fn,
      TASK_FIELD.crontab,
      TASK_FIELD.timeZone,
      TASK_FIELD.priority,
    );
    pipeline.zscore(keys.delayed, id);
    pipeline.getBuffer(keys.result(id));
  }
  const replies = await pipeline.exec() ?? [];
  const found: ScheduleInfo[] = [];
  for (let i = 0; i < ids.length; i++) {
    const [fn, crontab, tz, priority] = replies[i * 3][1] as (string | null)[];
    if (!fn || !crontab) continue;
    const due = replies[i * 3 + 1][1] as string | null;
    const blob = replies[i * 3 + 2][1] as Buffer | null;
    let lastResult: TaskResult<unknown> | null = null;
    if (blob) {
      try {
        lastResult = makeTaskResult(await client.envelope.openResult(ids[i], blob));
      } catch {
        // An unreadable last result (another secret, another codec) is left out.
      }
    }
    found.push({
      taskId: ids[i],
      fnName: fn,
      cronJob: ids[i] === cronTaskId(fn),
      crontab,
      timeZone: tz ?? "UTC",
      priority: priority ?? client.priorities[0],
      nextRun: due === null ? null : new Date(Number(due)),
      lastResult,
    });
  }
  return found.sort((a, b) =>
    (a.nextRun?.getTime() ?? Infinity) - (b.nextRun?.getTime() ?? Infinity)
  );
}
