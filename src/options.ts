/**
 * The option bags of the public API: {@linkcode WorkerOptions}, {@linkcode TaskOptions} and
 * {@linkcode StartOptions}, documented like a manual. Their checks are in `./_check_options.ts`.
 *
 * @module
 */

import type { Deserializer, Serializer } from "./payload/codec.ts";
import type { LogFormat, Logger, LogLevel } from "./logger.ts";
import type {
  RedisClient,
  RedisClusterOptions,
  RedisConnectionOptions,
  RedisSentinelOptions,
} from "./redis/connection_options.ts";
import type { RetryPolicy } from "./retry_options.ts";
import type { EventsStreamOptions } from "./events.ts";

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
   * connection, under the cluster's own `redisOptions`). Not allowed with `redis`. ioredis's
   * `keyPrefix` is refused, here and in every other way to connect: streaq's scripts name the
   * queue's keys themselves, so a prefix would reach only some of them. The queue's name
   * (`queueName`) is what separates applications sharing a Redis.
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
   * How many hash tags (shards) the queue is spread over, 1 to 64: on Redis Cluster its work
   * spreads over up to that many masters. Every process using the queue (workers and
   * enqueuers) must give the same number; the first one stores it, and any other number is
   * refused with an error naming both. A task goes to a shard by its id; a task of a `unique` or
   * limited function by the function's name (all on one shard, so the limits hold exactly); a
   * grouped task by its group, a deduplicated one by its key; tasks sent together that wait for
   * one another go to one shard, and a task waiting for tasks of other shards is settled through
   * a relay of their outcomes. A worker divides its `concurrency` among the shards (it must be at least
   * `shards`). See `docs/sharding.md` for the guarantees and the weaker priority rule.
   *
   * @default {1}
   *
   * @example A queue spread over six shards
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker({
   *   cluster: { nodes: [{ host: "127.0.0.1", port: 7000 }] },
   *   queueName: "hot",
   *   shards: 6,
   *   concurrency: 48,
   * });
   * ```
   */
  shards?: number;
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
   * Left unset, it starts at `concurrency` and adapts: while the tasks finish faster than a
   * round trip to Redis and the worker runs out of ready tasks before a refill comes back, it
   * reads further ahead, up to what the worker runs in 10 ms (at most 16 times `concurrency`
   * held in all); as soon as a task runs long (20 ms, or two round trips if longer) or the
   * queue runs short, it falls back to `concurrency`, and once a task runs 100 ms what was read
   * ahead beyond that goes back to the queue, so that a worker never holds long tasks an idle
   * sibling could run. A value set here is kept as it is, and so is the default for a worker
   * with functions that have a `limit` or `groups` (a task read ahead holds one of their slots).
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
  /**
   * Whether this worker writes the queue's events (enqueued, started, progress, retried,
   * completed, failed, aborted, reclaimed) to a capped stream that `worker.events()` and the
   * dashboard read: `true` for a stream of about 10,000 events, or `{ maxLen }`. Each event is
   * written by the script that makes its change, in the same call.
   *
   * Off by default: events add about a fifth to the Redis CPU a task costs (three stream
   * appends per task; see docs/events.md). Each process writes events only for what it does
   * itself: give the option to the workers and to the clients whose enqueues should be seen.
   *
   * @default {false}
   */
  events?: boolean | EventsStreamOptions;
}

/**
 * Options of a task, given to `worker.task(fn, options)`.
 *
 * @typeParam Args The task function's parameters (what a `group` function receives).
 */
// deno-lint-ignore no-explicit-any
export interface TaskOptions<Args extends any[] = any[]> {
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
   * Limits on this function across every worker of the queue (see {@linkcode TaskLimit}):
   * `{ concurrency: N }` runs at most N of its tasks at once; the others wait, queued, their
   * tries uncounted. Not the worker's `concurrency`, which bounds one process.
   *
   * @default {undefined}
   */
  limit?: TaskLimit;
  /**
   * The group of each task, from its arguments (a customer id, a tenant, an API key): a function
   * returning 1 to 128 printable ASCII characters, as a task id. Tasks of one group run at most
   * `groups.concurrency` at a time, and groups take turns: one group's flood does not hold back
   * another group's task. The `group` start option overrides it. A group function that throws or
   * returns anything else fails that enqueue only, with a `TypeError`.
   *
   * @default {undefined} (tasks without a group, unless `start({ group })` gives one)
   */
  group?: (...args: Args) => string;
  /**
   * Limits on each group of this function (see {@linkcode GroupLimit}), across every worker.
   *
   * @default {{ concurrency: 1 }}
   */
  groups?: GroupLimit;
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
 * Queue-wide limits on one function, the `limit` task option: they hold across every worker
 * process of the queue, decided in Redis.
 *
 * @example At most 5 exports at once, however many workers run
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 *
 * export const exportReport = worker.task(async function exportReport(id: string): Promise<string> {
 *   return await Promise.resolve(id);
 * }, { limit: { concurrency: 5 } });
 * ```
 *
 * @example At most 100 calls a minute to a metered API
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 *
 * export const charge = worker.task(async function charge(orderId: string): Promise<string> {
 *   return await Promise.resolve(orderId);
 * }, { limit: { max: 100, duration: 60_000 } });
 * ```
 */
export interface TaskLimit {
  /**
   * At most this many of the function's tasks run at once across all workers (an integer ≥ 1).
   * A task read ahead by a worker (prefetch) holds a slot too. The others wait, queued, their
   * tries uncounted, and start as slots free; a slot held by a worker that dies is freed when its
   * task is taken over (after `idleTimeout`).
   */
  concurrency?: number;
  /**
   * At most this many of the function's tasks start per `duration` across all workers (an
   * integer ≥ 1; give both or neither): a sliding window of starts, counted when a worker claims
   * the task to start it. The others wait, queued, their tries uncounted, and start as the window
   * allows. A worker that runs a rate-limited function does not read ahead (its `prefetch` is 0).
   */
  max?: number;
  /** The window of `max`, in milliseconds (≥ 1). */
  duration?: number;
}

/**
 * Limits on each group of a function, the `groups` task option: they hold for each group key
 * across every worker process of the queue, decided in Redis.
 *
 * @example At most 10 calls a second per API key
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 *
 * export const callApi = worker.task(
 *   async function callApi(apiKey: string, path: string): Promise<string> {
 *     return await Promise.resolve(`${apiKey} ${path}`);
 *   },
 *   { group: (apiKey) => apiKey, groups: { concurrency: 5, max: 10, duration: 1_000 } },
 * );
 * ```
 *
 * @example At most 2 imports at once per customer, customers taking turns
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 *
 * export const importRows = worker.task(
 *   async function importRows(customerId: string, rows: number): Promise<number> {
 *     return await Promise.resolve(rows);
 *   },
 *   { group: (customerId) => customerId, groups: { concurrency: 2 } },
 * );
 * ```
 */
export interface GroupLimit {
  /**
   * At most this many tasks of each group hold a slot at once (an integer ≥ 1): running, read
   * ahead by a worker, or put back in their stream to run next. The others wait, queued, their
   * tries uncounted; each slot freed goes to the group's oldest waiting task, at the end of the
   * line, so that groups take turns.
   *
   * @default {1}
   */
  concurrency?: number;
  /**
   * At most this many tasks of each group start per `duration` across all workers (an integer
   * ≥ 1; give both or neither): a sliding window of starts per group, counted when a worker claims
   * the task to start it. The others wait in their group's line, queued, their tries uncounted,
   * and the group's next task starts when its window opens; other groups run meanwhile. A worker
   * that runs such a function does not read ahead (its `prefetch` is 0).
   *
   * @default {undefined} (no rate limit per group)
   */
  max?: number;
  /** The window of `max`, in milliseconds (≥ 1). */
  duration?: number;
}

/**
 * Options of a cron job, given to `worker.cron(crontab, fn, options)`.
 *
 * @typeParam Priority The worker's priorities.
 */
export interface CronOptions<Priority extends string = string>
  extends Omit<TaskOptions, "unique" | "group" | "groups"> {
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
  /**
   * The task's group: 1 to 128 printable ASCII characters, as a task id. It overrides the task's
   * `group` option. Tasks of one group run at most the function's `groups.concurrency` (1 by
   * default) at a time, and groups of the function take turns (see {@linkcode GroupLimit}).
   */
  group?: string;
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
