/**
 * The checks of the public option bags (`./options.ts`): the accepted names, derived from the
 * interfaces so that the compiler catches a mismatch, and the values, with messages naming the
 * option and what was received.
 *
 * @module
 */

import { checkCrontab } from "./cron/crontab.ts";
import { checkDuration, checkInteger, checkKnownKeys, checkName, describe } from "./_validate.ts";
import { checkDedupe, checkTaskId } from "./_check_dedupe.ts";
import { checkConnectionOptions } from "./redis/connection_options.ts";
import { checkRetryPolicy } from "./run/retry_policy.ts";
import type { CronOptions, StartOptions, TaskOptions, WorkerOptions } from "./options.ts";

/**
 * The names of an options interface, from a record that the compiler holds to the interface:
 * an option missing from it, or one the interface lacks, is a type error, not a refusal at run
 * time of an option the types accept.
 */
function optionNames<T>(names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names);
}

const WORKER_OPTIONS = optionNames<WorkerOptions<unknown>>({
  redisUrl: true,
  redisOptions: true,
  redis: true,
  sentinel: true,
  cluster: true,
  redisTimeout: true,
  queueName: true,
  shards: true,
  concurrency: true,
  syncConcurrency: true,
  prefetch: true,
  priorities: true,
  tz: true,
  handleSignals: true,
  gracePeriod: true,
  idleTimeout: true,
  id: true,
  serializer: true,
  deserializer: true,
  signingSecret: true,
  lifespan: true,
  clock: true,
  logger: true,
  logLevel: true,
  logFormat: true,
  retry: true,
  events: true,
});

/** The cap of the events stream when the `events` option is `true`. */
export const DEFAULT_EVENTS_MAX_LEN = 10_000;

/**
 * The cap of the events stream the `events` option asks for, or 0 for none.
 *
 * @throws {TypeError} For a value other than a boolean or `{ maxLen }`.
 * @throws {RangeError} For a `maxLen` that is not an integer ≥ 1.
 */
export function eventsMaxLen(events: unknown): number {
  if (events === undefined || events === false) return 0;
  if (events === true) return DEFAULT_EVENTS_MAX_LEN;
  if (typeof events !== "object" || events === null || Array.isArray(events)) {
    throw new TypeError(
      `Cannot create worker as 'events' must be true, false or { maxLen }: received ${
        describe(events)
      }`,
    );
  }
  checkKnownKeys("create worker", events, ["maxLen"]);
  const { maxLen } = events as { maxLen?: unknown };
  if (maxLen === undefined) return DEFAULT_EVENTS_MAX_LEN;
  checkInteger("create worker", "events.maxLen", maxLen, 1);
  return maxLen as number;
}

/** The most shards a queue may have (`shards` worker option). */
export const MAX_SHARDS = 64;

/** Checks the `shards` worker option: an integer from 1 to {@linkcode MAX_SHARDS}. */
function checkShards(shards: unknown): void {
  if (shards === undefined) return;
  if (
    typeof shards !== "number" || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS
  ) {
    throw new RangeError(
      `Cannot create worker as 'shards' must be an integer from 1 to ${MAX_SHARDS}: received ${
        describe(shards)
      }`,
    );
  }
}

/** Checks worker options; the time zone and log level are checked by the logger. */
export function checkWorkerOptions(options: WorkerOptions<unknown>): void {
  const where = "create worker";
  checkKnownKeys(where, options, WORKER_OPTIONS);
  checkConnectionOptions(options);
  checkName(where, "queueName", options.queueName);
  checkName(where, "id", options.id);
  checkInteger(where, "concurrency", options.concurrency, 1);
  checkShards(options.shards);
  checkInteger(where, "syncConcurrency", options.syncConcurrency, 1);
  checkInteger(where, "prefetch", options.prefetch, 0);
  checkDuration(where, "gracePeriod", options.gracePeriod);
  checkDuration(where, "idleTimeout", options.idleTimeout, { min: 1000 });
  checkRetryPolicy(where, options.retry);
  eventsMaxLen(options.events);
  if (options.queueName !== undefined && /[{}]/.test(options.queueName)) {
    throw new TypeError(
      `Cannot create worker as 'queueName' must not contain braces (they are the Redis hash tag): received ${
        describe(options.queueName)
      }`,
    );
  }
  const { priorities } = options;
  if (priorities !== undefined) {
    if (!Array.isArray(priorities) || priorities.length === 0) {
      throw new TypeError(
        `Cannot create worker as 'priorities' must be a non-empty array of names: received ${
          describe(priorities)
        }`,
      );
    }
    priorities.forEach((p, i) => checkName(where, `priorities[${i}]`, p));
    if (new Set(priorities).size !== priorities.length) {
      throw new TypeError(
        `Cannot create worker as 'priorities' must not repeat a name: received ${
          describe(priorities)
        }`,
      );
    }
  }
  if ((options.serializer === undefined) !== (options.deserializer === undefined)) {
    throw new TypeError(
      "Cannot create worker as 'serializer' and 'deserializer' go together: received only one of them",
    );
  }
  for (const key of ["serializer", "deserializer", "lifespan", "clock"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function") {
      throw new TypeError(
        `Cannot create worker as '${key}' must be a function: received ${describe(options[key])}`,
      );
    }
  }
}

const TASK_OPTION_NAMES = {
  name: true,
  timeout: true,
  maxTries: true,
  expire: true,
  ttl: true,
  failureTtl: true,
  keepResults: true,
  unique: true,
  limit: true,
  silent: true,
  thread: true,
  retry: true,
} as const;
const TASK_OPTIONS = optionNames<TaskOptions>({ ...TASK_OPTION_NAMES, group: true, groups: true });
const CRON_OPTIONS = optionNames<CronOptions>({
  ...TASK_OPTION_NAMES,
  maxScheduleDrift: true,
  priority: true,
});

/** Checks task options at registration; `cron` for the options of a cron job. */
export function checkTaskOptions(
  fnName: string,
  options: CronOptions & TaskOptions,
  cron?: { priorities: readonly string[] },
): void {
  const where = `register ${cron ? "cron job" : "task"} ${fnName}`;
  if (!cron && "maxScheduleDrift" in options) {
    throw new TypeError(
      `Cannot register task ${fnName} as 'maxScheduleDrift' applies only to cron jobs (worker.cron): received maxScheduleDrift ${
        describe(options.maxScheduleDrift)
      }`,
    );
  }
  checkKnownKeys(where, options, cron ? CRON_OPTIONS : TASK_OPTIONS);
  checkDuration(where, "maxScheduleDrift", options.maxScheduleDrift);
  if (cron && options.priority !== undefined && !cron.priorities.includes(options.priority)) {
    throw new RangeError(
      `Cannot ${where} as 'priority' must be one of ${cron.priorities.join(", ")}: received ${
        describe(options.priority)
      }`,
    );
  }
  checkDuration(where, "timeout", options.timeout, { min: 1 });
  checkInteger(where, "maxTries", options.maxTries, 1);
  checkRetryPolicy(where, options.retry, options.maxTries);
  checkDuration(where, "expire", options.expire, { min: 1 });
  checkDuration(where, "ttl", options.ttl, { allowNull: true });
  checkDuration(where, "failureTtl", options.failureTtl, { allowNull: true });
  checkInteger(where, "keepResults", options.keepResults, 1);
  checkTaskLimit(where, options.limit);
  checkGroups(where, options.group, options.groups);
  if (options.unique && options.timeout === undefined) {
    throw new TypeError(
      `Cannot ${where} as 'unique' needs a 'timeout' (it bounds the lock): received unique: true and no timeout`,
    );
  }
}

const START_OPTIONS = optionNames<StartOptions>({
  delay: true,
  schedule: true,
  priority: true,
  after: true,
  id: true,
  dedupe: true,
  group: true,
});

/**
 * What a refused start option's message says was refused, by function name: made once per name
 * (up to a bound, as `enqueueUnsafe` takes any name), not once per task of a batch.
 */
const ENQUEUE_WHERE = new Map<string, string>();
const ENQUEUE_WHERE_MAX = 1_000;

/** Checks start options at enqueue. */
export function checkStartOptions(
  fnName: string,
  options: StartOptions,
  priorities: readonly string[],
): void {
  let where = ENQUEUE_WHERE.get(fnName);
  if (where === undefined) {
    where = `enqueue task ${fnName}`;
    if (ENQUEUE_WHERE.size < ENQUEUE_WHERE_MAX) ENQUEUE_WHERE.set(fnName, where);
  }
  checkKnownKeys(where, options, START_OPTIONS);
  checkTaskId(where, "id", options.id);
  checkTaskId(where, "group", options.group);
  checkDedupe(where, options.dedupe);
  checkDuration(where, "delay", options.delay);
  if (options.delay !== undefined && options.schedule !== undefined) {
    throw new TypeError(
      `Cannot enqueue task ${fnName} as 'delay' and 'schedule' exclude each other: received delay ${
        describe(options.delay)
      } and schedule ${describe(options.schedule)}`,
    );
  }
  const { schedule } = options;
  if (typeof schedule === "string") {
    checkCrontab(`enqueue task ${fnName} with a 'schedule'`, schedule);
  } else if (schedule !== undefined && !(schedule instanceof Date && !isNaN(schedule.getTime()))) {
    throw new TypeError(
      `Cannot enqueue task ${fnName} as 'schedule' must be a valid Date or a crontab: received ${
        describe(schedule)
      }`,
    );
  }
  const { after } = options;
  const ids = typeof after === "string" ? [after] : after;
  if (
    after !== undefined &&
    (!Array.isArray(ids) || ids.some((id) => typeof id !== "string" || !/^\S+$/.test(id)))
  ) {
    throw new TypeError(
      `Cannot enqueue task ${fnName} as 'after' must be a task id or an array of task ids: received ${
        describe(after)
      }`,
    );
  }
  if (options.priority !== undefined && !priorities.includes(options.priority)) {
    throw new RangeError(
      `Cannot enqueue task ${fnName} as 'priority' must be one of ${
        priorities.join(", ")
      }: received ${describe(options.priority)}`,
    );
  }
}

/** Checks the `limit` task option: an object of known limits, each an integer ≥ 1 or a duration. */
function checkTaskLimit(where: string, limit: unknown): void {
  if (limit === undefined) return;
  if (typeof limit !== "object" || limit === null || Array.isArray(limit)) {
    throw new TypeError(
      `Cannot ${where} as 'limit' must be an object such as { concurrency: 5 }: received ${
        describe(limit)
      }`,
    );
  }
  checkKnownKeys(where, limit, ["concurrency", "max", "duration"]);
  const { concurrency, max, duration } = limit as Record<string, unknown>;
  checkInteger(where, "limit.concurrency", concurrency, 1);
  checkInteger(where, "limit.max", max, 1);
  checkDuration(where, "limit.duration", duration, { min: 1 });
  if ((max === undefined) !== (duration === undefined)) {
    throw new TypeError(
      `Cannot ${where} as 'limit.max' and 'limit.duration' go together (at most max starts per duration ms): received max ${
        describe(max)
      } and duration ${describe(duration)}`,
    );
  }
}

/** Checks the `group` and `groups` task options: a function, and limits of known names. */
function checkGroups(where: string, group: unknown, groups: unknown): void {
  if (group !== undefined && typeof group !== "function") {
    throw new TypeError(
      `Cannot ${where} as 'group' must be a function of the task's arguments returning its group key: received ${
        describe(group)
      }`,
    );
  }
  if (groups === undefined) return;
  if (typeof groups !== "object" || groups === null || Array.isArray(groups)) {
    throw new TypeError(
      `Cannot ${where} as 'groups' must be an object such as { concurrency: 2 }: received ${
        describe(groups)
      }`,
    );
  }
  checkKnownKeys(where, groups, ["concurrency", "max", "duration"], " with 'groups'");
  const { concurrency, max, duration } = groups as Record<string, unknown>;
  checkInteger(where, "groups.concurrency", concurrency, 1);
  checkInteger(where, "groups.max", max, 1);
  checkDuration(where, "groups.duration", duration, { min: 1 });
  if ((max === undefined) !== (duration === undefined)) {
    throw new TypeError(
      `Cannot ${where} as 'groups.max' and 'groups.duration' go together (at most max starts per duration ms for each group): received max ${
        describe(max)
      } and duration ${describe(duration)}`,
    );
  }
}
