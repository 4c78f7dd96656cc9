/**
 * The option bags of the public API: {@linkcode WorkerOptions}, {@linkcode TaskOptions} and
 * {@linkcode StartOptions}, documented like a manual, with their checks.
 *
 * @module
 */

import type { Deserializer, Serializer } from "./payload/codec.ts";
import type { LogFormat, Logger, LogLevel } from "./logger.ts";
import { checkCrontab } from "./cron/crontab.ts";
import { checkDuration, checkInteger, checkKnownKeys, checkName, describe } from "./_validate.ts";
import { checkDedupe, checkTaskId } from "./_check_dedupe.ts";
import {
  checkConnectionOptions,
  type RedisClient,
  type RedisClusterOptions,
  type RedisConnectionOptions,
  type RedisSentinelOptions,
} from "./redis/connection_options.ts";
import { checkRetryPolicy } from "./run/retry_policy.ts";

export type {
  RedisClient,
  RedisClusterOptions,
  RedisConnectionOptions,
  RedisNodeAddress,
  RedisSentinelOptions,
} from "./redis/connection_options.ts";

/**
 * Options of a {@linkcode Worker}. Every one is optional.
 *
 * @typeParam Context What the `lifespan` yields.
 * @typeParam Priority The names in `priorities`: declared `as const`, an unknown priority is a
 * compile error wherever a priority is given.
 */
export interface WorkerOptions<Context = undefined, Priority extends string = string> {
  /**
   * The Redis to connect to. The URL may carry a password, a database number and the `rediss:`
   * scheme for TLS.
   *
   * A worker connects in one of four ways, in this order of precedence: `redis` (a client to
   * share), `cluster`, `sentinel`, or `redisUrl` (the default when none is given). They exclude
   * each other: giving two is an error rather than one being silently ignored.
   *
   * @default {"redis://localhost:6379"}
   */
  redisUrl?: string;
  /**
   * Extra ioredis options for the connections the worker opens (with `cluster`: for each node
   * connection, under the cluster's own `redisOptions`). Not allowed with `redis`.
   */
  redisOptions?: RedisConnectionOptions;
  /**
   * An existing ioredis `Redis` or `Cluster` to share. The worker uses it for commands and
   * duplicates it for the blocking read and subscriptions; `close()` never closes the client
   * passed in here, and `redisTimeout` does not change it (configure its own
   * `commandTimeout` and `maxRetriesPerRequest`).
   */
  redis?: RedisClient;
  /**
   * Connect through Redis Sentinel: `{ masterName, nodes: [{ host, port }], ...ioredis options }`.
   * After a failover the worker reconnects to the new master.
   */
  sentinel?: RedisSentinelOptions;
  /**
   * Connect to Redis Cluster: `{ nodes: [{ host, port }], ...ioredis cluster options }`. All keys
   * of a queue share the hash tag `{queueName}`, so each queue lives in one slot and several
   * queues spread over the shards.
   */
  cluster?: RedisClusterOptions;
  /**
   * How long a Redis command of this worker (an enqueue, a status query, a completion) may wait
   * for an answer, time spent reconnecting included, before it fails with a `StreaqError`
   * saying so. It bounds calls made while Redis is down or failing over, which ioredis would
   * otherwise keep waiting. A command that gave up may still reach Redis once it is back (an
   * enqueue is idempotent, so retrying one is safe). The blocking read of a running worker is
   * not limited by it.
   *
   * @default {10_000}
   */
  redisTimeout?: number;
  /**
   * Namespace of every key; several queues can share one Redis, and on Redis Cluster each
   * queue lives in its own slot.
   *
   * @default {"default"}
   */
  queueName?: string;
  /**
   * How many tasks run at once in this process. Minimum 1.
   *
   * @default {16}
   */
  concurrency?: number;
  /**
   * How many threads (Web Workers) run synchronous task functions at once. Minimum 1.
   *
   * @default {concurrency}
   */
  syncConcurrency?: number;
  /**
   * How many more tasks are fetched and held ready in memory while all slots are busy. They
   * are heart-beaten like running tasks and handed back at shutdown. `0` disables prefetch.
   *
   * @default {concurrency}
   */
  prefetch?: number;
  /**
   * The priorities tasks can be enqueued with, from the lowest to the highest. A task of a
   * higher priority is always fetched before one of a lower priority. Enqueueing uses the
   * lowest unless told otherwise.
   *
   * @default {["normal"]}
   */
  priorities?: readonly Priority[];
  /**
   * The IANA time zone of crontabs and log timestamps.
   *
   * @default {"UTC"}
   */
  tz?: string;
  /**
   * Whether SIGINT and SIGTERM start a graceful shutdown while the worker runs.
   *
   * @default {true}
   */
  handleSignals?: boolean;
  /**
   * After a shutdown starts, how long running tasks may take to finish (never longer than their
   * own `timeout`) before they are aborted and handed back to the queue.
   *
   * @default {0}
   */
  gracePeriod?: number;
  /**
   * A task whose worker stops heart-beating for this long is delivered again to another worker.
   * Heartbeats happen every third of it. Minimum 1000.
   *
   * @default {60_000}
   */
  idleTimeout?: number;
  /**
   * This worker's id, unique within the queue.
   *
   * @default {8 random hex digits}
   */
  id?: string;
  /**
   * Encodes arguments and results: returns a `Uint8Array` or a `string`, sync or async.
   *
   * @default {a tagged JSON codec that keeps Date, Map, Set, BigInt, Uint8Array, undefined and errors}
   */
  serializer?: Serializer;
  /** Decodes what `serializer` produced; it receives the same kind (string or bytes). */
  deserializer?: Deserializer;
  /**
   * A secret for HMAC-SHA256 signatures over the task id, function name and payload. When set,
   * unsigned or tampered payloads are never deserialized: such tasks fail.
   */
  signingSecret?: string | Uint8Array;
  /**
   * Runs once when the worker starts: the value it yields becomes `worker.context`, and the code
   * after the `yield` (a `finally` block) runs at shutdown.
   */
  lifespan?: () => AsyncGenerator<Context, void, undefined>;
  /**
   * The worker's clock, in milliseconds since the epoch: the enqueue, start and finish times it
   * stores, and `expire`. Due times do not use it: delays and retry back-offs are counted, and
   * compared, on Redis's clock (see `docs/reliability.md`, "Clock skew"). This option lets tests give a
   * worker a skewed clock.
   *
   * @default {Date.now}
   */
  clock?: () => number;
  /**
   * Where log lines go.
   *
   * @default {console}
   */
  logger?: Logger;
  /**
   * The least important lines written.
   *
   * @default {"info"}
   */
  logLevel?: LogLevel;
  /**
   * How log lines are written: `"text"` (time, `[streaq <queue>/<worker id>]`, message) for
   * people, or `"json"`, one JSON object a line for log collectors, with `time`, `level`,
   * `queue`, `workerId`, `message` and, where a line is about a task, `taskId`, `fnName`,
   * `tries` and `durationMs`. Times are ISO 8601 with milliseconds in the worker's `tz` either
   * way. Control characters in text lines are escaped (`\n` is written as `\\n`).
   *
   * @default {"text"}
   */
  logFormat?: LogFormat;
  /**
   * The retry policy of every task registered on this worker that has no `retry` of its own
   * (a task's own policy replaces it as a whole). Tasks keep it when another worker includes
   * them. See {@linkcode RetryPolicy}.
   *
   * @default {none: only `StreaqRetry` retries}
   */
  retry?: RetryPolicy;
}

/**
 * A back-off that waits the same `delay` before every retry, optionally with jitter.
 * A plain number of milliseconds is the same without jitter.
 */
export interface FixedBackoff {
  /** Fixed. */
  type: "fixed";
  /** Milliseconds before each retry. */
  delay: number;
  /**
   * `"full"`: a random wait between 0 and `delay`; `"equal"`: between `delay / 2` and `delay`.
   *
   * @default {"none"}
   */
  jitter?: RetryJitter;
}

/**
 * A back-off that doubles after each try: `delay` after the first, `2 × delay` after the second,
 * `4 × delay` after the third, never more than `max`; jitter applies to the capped wait.
 */
export interface ExponentialBackoff {
  /** Exponential. */
  type: "exponential";
  /** Milliseconds before the first retry. */
  delay: number;
  /** The longest wait in milliseconds, at least `delay`. Without it, no cap. */
  max?: number;
  /**
   * `"full"`: a random wait between 0 and the computed one; `"equal"`: between half of it and
   * all of it. Jitter spreads out the retries of many tasks that failed together.
   *
   * @default {"none"}
   */
  jitter?: RetryJitter;
}

/** How a back-off's wait is randomised: not at all, in `[0, wait]`, or in `[wait / 2, wait]`. */
export type RetryJitter = "none" | "full" | "equal";

/**
 * Milliseconds before the next try, given the number of the try that just failed (1 for the
 * first) and what it threw. It must return a finite number ≥ 0; if it throws or returns
 * anything else, the task fails, saying so.
 */
export type BackoffFunction = (tries: number, error: unknown) => number;

/** How long a retry waits: milliseconds, fixed or exponential with jitter, or a function. */
export type RetryBackoff = number | FixedBackoff | ExponentialBackoff | BackoffFunction;

/** A class of errors, matched with `instanceof`. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => unknown;

/**
 * Which errors a task retries by itself, how often and after how long: the `retry` option of a
 * task or cron job, and of a worker for all its tasks.
 *
 * `StreaqRetry` always retries, within the budget, and its own `delay` or `schedule` takes
 * precedence over `backoff`. The policy applies to what the task's function throws, never to
 * its `timeout`, an abort or a shutdown hand-back. A try that a crashed worker never finished
 * counts against the same budget.
 *
 * @example Retrying network errors and 503s with exponential back-off
 * ```ts
 * import { type RetryPolicy, Worker } from "@streaq/streaq";
 *
 * class HttpError extends Error {}
 *
 * const transient: RetryPolicy = {
 *   attempts: 5,
 *   backoff: { type: "exponential", delay: 1_000, max: 30_000, jitter: "full" },
 *   retryOn: [TypeError, HttpError], // fetch throws TypeError on network errors
 * };
 * const worker = new Worker({ retry: transient });
 * worker.task(async function ping(url: string): Promise<number> {
 *   const res = await fetch(url);
 *   if (res.status === 503) throw new HttpError(`${url}: 503`);
 *   return res.status;
 * });
 * ```
 */
export interface RetryPolicy {
  /**
   * The number of tries, the first included: another spelling of the task's `maxTries`, which
   * it cannot be given with. A task's own `maxTries` takes precedence over the worker's
   * `retry.attempts`. Minimum 1.
   *
   * @default {the task's maxTries, 3}
   */
  attempts?: number;
  /**
   * The wait before each retry: milliseconds, `{ type: "fixed", delay, jitter? }`,
   * `{ type: "exponential", delay, max?, jitter? }`, or a function of the try and the error.
   *
   * @default {tries² seconds, as for StreaqRetry: 1 s, 4 s, 9 s, ...}
   */
  backoff?: RetryBackoff;
  /**
   * Which errors retry: a list of error classes (matched with `instanceof`; in a task thread,
   * by class name), or a predicate. An error that does not match fails the task at once. An
   * empty list retries nothing but `StreaqRetry`.
   *
   * @default {every error}
   */
  retryOn?: readonly ErrorClass[] | ((error: unknown) => boolean);
}

/** Options of a task, given to `worker.task(fn, options)`. */
export interface TaskOptions {
  /**
   * The name the task is registered and enqueued under.
   *
   * @default {fn.name}
   */
  name?: string;
  /** A hard deadline in milliseconds; the task fails with a `TimeoutError` past it. */
  timeout?: number;
  /**
   * Attempts before the task gives up: retries, crashes and shutdown hand-backs all count.
   *
   * @default {3}
   */
  maxTries?: number;
  /** If the task has not started this many milliseconds after it became ready, it fails. */
  expire?: number;
  /**
   * How long the result is kept in milliseconds: `null` forever, `0` not stored at all (waiting
   * callers still receive it).
   *
   * @default {300_000}
   */
  ttl?: number | null;
  /**
   * How long the result of a failed try is kept in milliseconds (a task that threw, timed out,
   * was aborted or ran out of tries): `null` forever, `0` not stored. Failures are kept longer
   * than successes by default, so that someone can still read the error when they look.
   *
   * @default {604_800_000 (7 days), or `ttl` when that is longer; 0 when `ttl` is 0}
   */
  failureTtl?: number | null;
  /**
   * Keep at most this many results of this function (successes and failures together); when a
   * run finishes, the results beyond the newest `keepResults` are removed, oldest first, in the
   * same atomic step. Without it, only the TTLs bound them. Minimum 1.
   */
  keepResults?: number;
  /**
   * At most one instance of this task runs at a time across all workers; another that starts
   * meanwhile fails. Needs a `timeout`, which bounds the lock.
   *
   * @default {false}
   */
  unique?: boolean;
  /**
   * No log line per run.
   *
   * @default {false}
   */
  silent?: boolean;
  /**
   * Run a synchronous function in a task thread (a Web Worker), so that it neither blocks the
   * worker's event loop nor waits for it, and CPU-bound tasks use every core. `false` runs it
   * inline on the main thread. Async functions always run inline.
   *
   * @default {true for synchronous functions}
   */
  thread?: boolean;
  /**
   * Which errors the task retries by itself and after how long (see {@linkcode RetryPolicy}).
   * It replaces the worker's `retry` as a whole.
   *
   * @default {the worker's retry; else only `StreaqRetry` retries}
   */
  retry?: RetryPolicy;
}

/**
 * Options of a cron job, given to `worker.cron(crontab, fn, options)`.
 *
 * @typeParam Priority The worker's priorities.
 */
export interface CronOptions<Priority extends string = string> extends Omit<TaskOptions, "unique"> {
  /**
   * At most one instance runs at a time; a cron job's `timeout` bounds the lock.
   *
   * @default {true}
   */
  unique?: boolean;
  /**
   * Skip an occurrence (it fails, saying so) that starts more than this many milliseconds after
   * it was due, for example because no worker ran at the time. Without it, a late occurrence
   * runs as soon as a worker can.
   */
  maxScheduleDrift?: number;
  /**
   * The priority occurrences run at.
   *
   * @default {the lowest priority}
   */
  priority?: Priority;
}

/**
 * When and how an enqueued task is sent: `task.enqueue(...args).start(options)`.
 *
 * @typeParam Priority The worker's priorities.
 */
export interface StartOptions<Priority extends string = string> {
  /** Run no earlier than this many milliseconds from now. Excludes `schedule`. */
  delay?: number;
  /**
   * A point in time to run at (a past date runs now), or a crontab (`"*\/5 * * * *"`) to run at
   * each of its occurrences, in the worker's `tz`, until unscheduled. Excludes `delay`.
   */
  schedule?: Date | string;
  /**
   * One of the worker's `priorities`.
   *
   * @default {the lowest priority}
   */
  priority?: Priority;
  /**
   * Ids of tasks that must succeed before this one runs. If one of them fails, is aborted, or is
   * unknown when this task is enqueued, this task fails with "dependency failed" (or "unknown
   * dependency"), and so do the tasks waiting for it.
   */
  after?: string | readonly string[];
  /**
   * The task's own id, instead of a random one: 1 to 128 printable ASCII characters (`!` to
   * `~`: no spaces, control characters or other Unicode). An enqueue with the id of a task that is queued, delayed,
   * waiting for dependencies or running stores nothing and returns a handle to that task, with
   * `deduplicated: true`; so does one whose task finished while its result is kept (its `ttl`),
   * so a retried webhook never runs twice. Once the result has expired (or with `ttl: 0`), the
   * id starts a new task.
   */
  id?: string;
  /**
   * A deduplication key, separate from the id: enqueues of this function with the same `key`
   * collapse into one task, depending on `mode`. A deduplicated enqueue returns a handle to the
   * task that stands for it, with `deduplicated: true`.
   */
  dedupe?: DedupeOptions;
}

/** How enqueues with the same key collapse: the `dedupe` start option. */
export interface DedupeOptions {
  /**
   * What is deduplicated, per function: 1 to 128 printable ASCII characters, as a task id.
   */
  key: string;
  /**
   * - `"pending"`: while the key's task is queued, delayed, waiting or running, an enqueue with
   *   the key returns it; once it finished, the next enqueue starts a new task.
   * - `"throttle"`: for `window` ms after the key's task was enqueued, an enqueue with the key
   *   returns it, even if it finished; after the window, the next enqueue starts a new task.
   * - `"debounce"`: the task runs `window` ms after the last enqueue with the key: a later
   *   enqueue, while the task has not started, replaces its arguments and pushes its start back
   *   to `window` ms from now. Once it was started (or its window passed), the next enqueue
   *   starts a new task, so the last arguments always run. A replacement keeps the task's
   *   priority. Excludes `delay`, `schedule`, `after` and pipeline stages after the first.
   *
   * @default {"pending"}
   */
  mode?: "pending" | "throttle" | "debounce";
  /** Milliseconds (≥ 1): required by `"throttle"` and `"debounce"`, refused by `"pending"`. */
  window?: number;
}

/** How long to wait for a result: `handle.result(options)`, `worker.resultById(id, options)`. */
export interface ResultOptions {
  /**
   * How long to wait in milliseconds; past it the promise rejects with an error named
   * `"TimeoutError"`. Without it, waits for as long as it takes.
   */
  timeout?: number;
  /** Stops waiting when it aborts; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** How long to wait for an abort: `handle.abort(options)`, `worker.abortById(id, options)`. */
export interface AbortOptions {
  /**
   * How long to wait in milliseconds for the task to be confirmed cancelled.
   *
   * @default {5000}
   */
  timeout?: number;
}

/**
 * Which failed tasks `worker.retryFailed` reruns; absent fields match every failed task.
 *
 * @example Rerunning what failed in the last hour
 * ```ts
 * import type { RetryFailedOptions } from "@streaq/streaq";
 *
 * const lastHour: RetryFailedOptions = {
 *   fnName: "sendEmail",
 *   since: new Date(Date.now() - 3_600_000),
 * };
 * ```
 */
export interface RetryFailedOptions {
  /**
   * Only failed tasks of the function registered under this name.
   *
   * @default {undefined} (every function)
   */
  fnName?: string;
  /**
   * Only tasks that failed at or after this time.
   *
   * @default {undefined} (whenever they failed, while their result is kept)
   */
  since?: Date;
}

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
});

/** Checks worker options; the time zone and log level are checked by the logger. */
export function checkWorkerOptions(options: WorkerOptions<unknown>): void {
  const where = "create worker";
  checkKnownKeys(where, options, WORKER_OPTIONS);
  checkConnectionOptions(options);
  checkName(where, "queueName", options.queueName);
  checkName(where, "id", options.id);
  checkInteger(where, "concurrency", options.concurrency, 1);
  checkInteger(where, "syncConcurrency", options.syncConcurrency, 1);
  checkInteger(where, "prefetch", options.prefetch, 0);
  checkDuration(where, "gracePeriod", options.gracePeriod);
  checkDuration(where, "idleTimeout", options.idleTimeout, { min: 1000 });
  checkRetryPolicy(where, options.retry);
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
  silent: true,
  thread: true,
  retry: true,
} as const;
const TASK_OPTIONS = optionNames<TaskOptions>(TASK_OPTION_NAMES);
const CRON_OPTIONS = optionNames<CronOptions>({
  ...TASK_OPTION_NAMES,
  maxScheduleDrift: true,
  priority: true,
});

/** Checks task options at registration; `cron` for the options of a cron job. */
export function checkTaskOptions(
  fnName: string,
  options: CronOptions,
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
});

/** Checks start options at enqueue. */
export function checkStartOptions(
  fnName: string,
  options: StartOptions,
  priorities: readonly string[],
): void {
  const where = `enqueue task ${fnName}`;
  checkKnownKeys(where, options, START_OPTIONS);
  checkTaskId(where, "id", options.id);
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
