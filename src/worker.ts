/**
 * The {@linkcode Worker}: where tasks are registered, the process that runs them, and the
 * client that enqueues them and asks about them.
 *
 * @module
 */

import type { RedisOptions } from "ioredis";
import { abortById } from "./client/abort.ts";
import { retryById, retryFailed } from "./client/rerun.ts";
import { DEFAULT_RESULT_TTL, failureTtlFor, QueueContext } from "./queue_context.ts";
import { type Middleware, MiddlewareChain, type MiddlewareHandle } from "./middleware.ts";
import { listenToSignals } from "./signals.ts";
import { createTask, sendBatch, type Task } from "./client/enqueue.ts";
import { Shards } from "./shards/shards.ts";
import { checkShardSlots, pinsShard } from "./shards/_worker_shards.ts";
import { ShardedRunner } from "./run/sharded_runner.ts";
import { Envelope } from "./payload/envelope.ts";
import { StreaqError } from "./errors.ts";
import { RedisDownAtStop } from "./redis/connection.ts";
import type { Counters, WorkerCounters } from "./run/execute.ts";
import {
  infoById,
  type ListOptions,
  listTasks,
  queueSize,
  type QueueSizeOptions,
  resultById,
  statusById,
} from "./client/inspect.ts";
import {
  checkLogFormat,
  checkLogLevel,
  checkTimeZone,
  type LogFormat,
  type LogLevel,
  WorkerLogger,
} from "./logger.ts";
import { checkInteger } from "./_validate.ts";
import type {
  AbortOptions,
  CronOptions,
  ResultOptions,
  RetryFailedOptions,
  TaskOptions,
  WorkerOptions,
} from "./options.ts";
import { checkTaskOptions, checkWorkerOptions, eventsMaxLen } from "./_check_options.ts";
import { readEvents } from "./client/events.ts";
import type { EventOfType, EventsOptions, StreaqEventType } from "./events.ts";
import { checkCrontab, nextOccurrence } from "./cron/crontab.ts";
import {
  type CronRegistration,
  listSchedules,
  registerCrons,
  type ScheduleInfo,
  unscheduleByIdOrName,
} from "./client/schedule.ts";
import {
  createRegisteredTask,
  type RegisteredTask,
  repointTask,
  resolveTaskOptions,
  type TaskFunction,
  threadModuleOf,
} from "./registered_task.ts";
import { checkName } from "./_validate.ts";
import type { TaskInfo, TaskLogLine, TaskResult, TaskStatus } from "./result.ts";
import { logsById } from "./client/task_logs.ts";
import { Runner } from "./run/runner.ts";
import { FunctionStats } from "./run/function_stats.ts";
import { inTaskThread } from "./run/threads/protocol.ts";
import { checkThreadReadAccess, ThreadPool } from "./run/threads/pool.ts";
import { createTaskHandle, type TaskHandle } from "./task_handle.ts";
import { type CleanOptions, cleanResults } from "./client/clean.ts";
import { drainQueue } from "./client/drain.ts";
import {
  type FunctionLimit,
  type PauseOptions,
  type PauseState,
  pauseWork,
  readLimits,
  readPauseState,
  resumeWork,
} from "./client/pause.ts";
import { type QueueMetrics, readQueueMetrics } from "./client/queue_metrics.ts";
import { type ObliterateOptions, obliterateQueue } from "./client/obliterate.ts";

/** Options of {@linkcode Worker.run}. */
export interface RunOptions {
  /**
   * Stop once nothing is queued, running or due, instead of waiting for new tasks.
   *
   * @default {false}
   */
  burst?: boolean;
  /** Aborting it starts the same graceful shutdown as `stop()`. */
  signal?: AbortSignal;
  /**
   * Tasks running at once during this run, instead of the worker's `concurrency` (the command
   * line's `--concurrency`). Prefetch follows it unless the worker sets `prefetch`.
   *
   * @default {the worker's `concurrency`}
   */
  concurrency?: number;
  /**
   * The least important log lines written during this run, instead of the worker's
   * `logLevel` (the command line's `--verbose` and `--quiet`).
   *
   * @default {the worker's `logLevel`}
   */
  logLevel?: LogLevel;
  /**
   * How log lines are written during this run, instead of the worker's `logFormat` (the
   * command line's `--log-format`).
   *
   * @default {the worker's `logFormat`}
   */
  logFormat?: LogFormat;
}

/** Maps a tuple of unsent tasks to the tuple of their handles. */
export type Handles<T extends readonly Task<unknown>[]> = {
  -readonly [K in keyof T]: T[K] extends Task<infer R> ? TaskHandle<R> : never;
};

// Set by Worker's static block, the one place that may read its private `#queue`.
// deno-lint-ignore no-explicit-any
let contextOfWorker: (worker: Worker<any, any>) => QueueContext;

/**
 * The per-queue context of a worker: its keys, connections, envelope and clock. For streaq's
 * own modules (the CLI, the dashboard) and tests; not exported from `mod.ts`.
 */
// deno-lint-ignore no-explicit-any
export function queueContextOf(worker: Worker<any, any>): QueueContext {
  return contextOfWorker(worker);
}

/**
 * A streaq worker: register tasks on it, run it to execute them, and use it from any process
 * to enqueue tasks and read their results.
 *
 * @typeParam Context What the `lifespan` yields, available as `worker.context`.
 * @typeParam Priority The names in `priorities`, inferred from them: declared `as const`, a
 * priority the worker does not have is a compile error in `start()`, `cron()` and
 * `getTasksByStatus()`. Any string otherwise.
 *
 * @example A worker module
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * export const worker = new Worker({ redisUrl: "redis://localhost:6379", concurrency: 32 });
 *
 * export const wordCount = worker.task(async function wordCount(text: string): Promise<number> {
 *   return text.split(/\s+/).filter(Boolean).length;
 * }, { timeout: 5_000 });
 *
 * if (import.meta.main) await worker.run();
 * ```
 */
// Priority has no `extends string` on purpose: with it, a plain `priorities: ["low", "high"]`
// would be inferred as the literal union too, and code passing a string-typed priority to such
// a worker, which compiles today, would not; `as const` opts in.
export class Worker<Context = undefined, Priority = string> {
  /** This worker's id, unique within its queue. */
  readonly id: string;
  /** The per-queue context shared with tasks, handles and the run loop. */
  readonly #queue: QueueContext;
  readonly #options: WorkerOptions<Context, Priority & string>;
  // deno-lint-ignore no-explicit-any
  readonly #registry = new Map<string, RegisteredTask<any, unknown>>();
  readonly #middleware = new MiddlewareChain();
  /** The stubs declared on this worker, by name: they route like registered tasks. */
  // deno-lint-ignore no-explicit-any
  readonly #stubs = new Map<string, RegisteredTask<any, unknown>>();
  readonly #crons: CronRegistration[] = [];
  readonly #counters: Counters = {
    completed: 0,
    failed: 0,
    retried: 0,
    aborted: 0,
    relinquished: 0,
  };
  readonly #stats = new FunctionStats();
  readonly #logger: WorkerLogger;
  #runner: Runner | ShardedRunner | undefined;
  #context: { value: Context } | undefined;

  static {
    contextOfWorker = (worker) => worker.#queue;
  }

  /**
   * Creates a worker. Nothing connects until the first command.
   *
   * @param options See {@linkcode WorkerOptions}.
   * @throws {TypeError | RangeError} For an unknown option or a bad value, naming it.
   *
   * @example Options for a worker
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker({
   *   redisUrl: "redis://localhost:6379",
   *   queueName: "emails",
   *   concurrency: 8,
   *   priorities: ["low", "normal", "high"] as const,
   * });
   * ```
   */
  constructor(options: WorkerOptions<Context, Priority & string> = {}) {
    checkWorkerOptions(options as WorkerOptions<unknown>);
    const tz = checkTimeZone(options.tz);
    const level = checkLogLevel(options.logLevel);
    this.#options = options;
    this.id = options.id ?? crypto.randomUUID().slice(0, 8);
    const queueName = options.queueName ?? "default";
    this.#logger = new WorkerLogger(
      options.logger ?? console,
      level,
      tz,
      { queue: queueName, workerId: this.id },
      checkLogFormat(options.logFormat),
    );
    this.#queue = new QueueContext({
      queueName,
      priorities: Object.freeze([...(options.priorities ?? ["normal"])]),
      envelope: new Envelope(options),
      logger: this.#logger,
      connection: {
        redisUrl: options.redisUrl,
        redisOptions: options.redisOptions as RedisOptions | undefined,
        redis: options.redis as never,
        sentinel: options.sentinel,
        cluster: options.cluster,
        redisTimeout: options.redisTimeout,
      },
      // A registered ttl of null means "forever": it must not fall back to the default.
      resultTtl: (name, success) => {
        const task = this.#registry.get(name);
        if (success) return task ? task.ttl : DEFAULT_RESULT_TTL;
        return task ? task.failureTtl : failureTtlFor(DEFAULT_RESULT_TTL);
      },
      now: options.clock ?? Date.now,
      timeZone: tz,
      eventsMaxLen: eventsMaxLen(options.events),
    });
    const shards = options.shards ?? 1;
    checkShardSlots("create worker", options.concurrency ?? 16, shards);
    this.#queue.shards = new Shards(this.#queue, shards, (name) => {
      const task = this.#registry.get(name) ?? this.#stubs.get(name);
      return task !== undefined && pinsShard(task);
    });
  }

  /** The shards of this worker's queue (one for an unsharded queue). */
  get #shards(): Shards {
    return this.#queue.shards!;
  }

  /**
   * The name of the queue this worker serves.
   *
   * @example The queue a worker serves
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ queueName: "emails" });
   * console.log(worker.queueName); // "emails"
   * ```
   */
  get queueName(): string {
    return this.#queue.keys.queueName;
  }

  /**
   * The registered tasks by name.
   *
   * @example Listing the registered tasks
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   * console.log([...worker.registry.keys()]); // ["ping"]
   * ```
   */
  // deno-lint-ignore no-explicit-any
  get registry(): ReadonlyMap<string, RegisteredTask<any, unknown>> {
    return this.#registry;
  }

  /**
   * What the `lifespan` yielded, while the worker runs.
   *
   * @throws {StreaqError} When the worker is not running.
   *
   * @example Reading what the lifespan yielded
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker({
   *   async *lifespan() {
   *     yield { startedAt: Date.now() };
   *   },
   * });
   *
   * export const uptime = worker.task(async function uptime(): Promise<number> {
   *   return Date.now() - worker.context.startedAt;
   * });
   * ```
   */
  get context(): Context {
    if (!this.#context) {
      throw new StreaqError(
        `Cannot read worker.context of worker ${this.id}: it exists only while the worker runs`,
      );
    }
    return this.#context.value;
  }

  /**
   * Counts of outcomes handled by this worker: a read-only snapshot.
   *
   * @example Reporting outcomes after a burst
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function drain(): Promise<void> {
   *   await worker.run({ burst: true });
   *   const { completed, failed } = worker.counters;
   *   console.log(`${completed} done, ${failed} failed`);
   * }
   * ```
   */
  get counters(): WorkerCounters {
    return Object.freeze({ ...this.#counters });
  }

  /**
   * Registers a function as a task.
   *
   * @param fn The function; its name is the task's name unless `options.name` is given.
   * @param options See {@linkcode TaskOptions}.
   * @returns The registered task, to enqueue it with typed arguments.
   * @throws {TypeError} For an anonymous function without `name`, a duplicate name, or bad
   * options.
   *
   * @example Registering a task with options
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker();
   * export const resize = worker.task(async (url: string, width: number) => `${url}@${width}`, {
   *   name: "resize",
   *   timeout: 30_000,
   *   maxTries: 5,
   * });
   * ```
   */
  // deno-lint-ignore no-explicit-any
  task<Args extends any[], R>(
    fn: TaskFunction<Args, R>,
    options: TaskOptions<Args> = {},
  ): RegisteredTask<Args, Awaited<R>, Priority & string> {
    return this.#register(fn, options);
  }

  /**
   * Registers a cron job: the function runs at each occurrence of `crontab` in the worker's
   * `tz`, once per occurrence however many workers run. Cron jobs default to a 1-hour timeout and
   * `unique`. A redeployed worker with a changed crontab replaces the old schedule.
   *
   * @param crontab 5 fields (minute hour day month weekday), 6 with seconds first, names such as
   * `mon-fri`, or a macro such as `@hourly`.
   * @param fn The function, called with no arguments.
   * @param options See {@linkcode CronOptions}.
   * @returns The registered task, which can also be enqueued by hand.
   * @throws {RangeError} For an invalid crontab or options.
   *
   * @example A report every weekday at 9:30 in Paris
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ tz: "Europe/Paris" });
   * worker.cron("30 9 * * mon-fri", async function dailyReport(): Promise<void> {
   *   console.log("sending the report");
   * }, { maxScheduleDrift: 60_000 });
   * ```
   */
  cron<R>(
    crontab: string,
    fn: TaskFunction<[], R>,
    options: CronOptions<Priority & string> = {},
  ): RegisteredTask<[], Awaited<R>, Priority & string> {
    checkCrontab(`register cron job ${options.name ?? fn?.name ?? "(anonymous)"}`, crontab);
    const task = this.#register(fn, { timeout: 3_600_000, unique: true, ...options }, crontab);
    this.#crons.push({
      name: task.name,
      crontab: crontab.trim(),
      priority: options.priority ?? this.#queue.priorities[0],
    });
    return task;
  }

  // deno-lint-ignore no-explicit-any
  #register<Args extends any[], R>(
    fn: TaskFunction<Args, R>,
    options: CronOptions & TaskOptions<Args>,
    crontab?: string,
  ): RegisteredTask<Args, Awaited<R>, Priority & string> {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot register a task as 'fn' must be a function: received ${typeof fn}`,
      );
    }
    const name = options.name ?? fn.name;
    if (!name) {
      throw new TypeError(
        "Cannot register task as the function is anonymous: give it a name (async function name() {}) or pass options.name",
      );
    }
    checkTaskOptions(name, options, crontab ? { priorities: this.#queue.priorities } : undefined);
    if (this.#registry.has(name)) {
      throw new TypeError(
        `Cannot register task ${name} as a task of that name is already registered on worker ${this.id}`,
      );
    }
    const task = createRegisteredTask<Args, Awaited<R>, Priority & string>(
      this as Worker<unknown>,
      this.#queue,
      fn as TaskFunction<Args, Awaited<R>>,
      {
        ...resolveTaskOptions(name, options, this.#options.retry),
        crontab,
        threadModule: threadModuleOf(name, fn, options.thread),
      },
    );
    this.#registry.set(name, task);
    return task;
  }

  /**
   * Adds the tasks and cron jobs of another worker to this one, so that one process runs the
   * tasks of several modules. The other worker's tasks then enqueue through this worker,
   * whichever module enqueues them.
   *
   * Middleware stays with the tasks it was added for: the other worker's middleware wraps its
   * own tasks only, never this worker's; this worker's middleware wraps every task it runs,
   * the included ones too, outside the other worker's.
   *
   * @param other A worker whose tasks are defined in another module.
   * @throws {TypeError} If a task name exists in both.
   *
   * @example Two modules, one worker, and whose middleware wraps what
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const emails = new Worker();
   * emails.middleware((next) => async (...args) => {
   *   console.log("emails middleware"); // around sendWelcome only
   *   return await next(...args);
   * });
   * emails.task(async function sendWelcome(to: string): Promise<void> {
   *   console.log(`welcome, ${to}`);
   * });
   *
   * const app = new Worker({ concurrency: 32 });
   * app.middleware((next) => async (...args) => {
   *   console.log("app middleware"); // around resize and sendWelcome, outermost
   *   return await next(...args);
   * });
   * app.task(async function resize(url: string): Promise<void> {
   *   console.log(`resizing ${url}`);
   * });
   * app.include(emails);
   * // await app.run(); runs sendWelcome too
   * ```
   */
  // deno-lint-ignore no-explicit-any
  include(other: Worker<any>): void {
    if (other === this) throw new TypeError("Cannot include a worker into itself");
    for (const name of other.#registry.keys()) {
      if (this.#registry.has(name)) {
        throw new TypeError(
          `Cannot include worker ${other.id} into worker ${this.id} as both have a task named ${name}`,
        );
      }
    }
    for (const [name, task] of other.#registry) {
      repointTask(task, this as Worker<unknown>, this.#queue);
      this.#registry.set(name, task);
    }
    this.#crons.push(...other.#crons);
    this.#middleware.include(other.#middleware, other.#registry.keys());
  }

  /**
   * Declares a task that another codebase defines, by name and signature, to enqueue it with
   * full types from a service that does not import the worker code. A stub is not run here:
   * calling `run()` on it throws, and this worker does not fetch it.
   *
   * @param name The task's registered name on the workers that run it.
   * @param options The task's options, if the enqueuer needs them (for example its `ttl`).
   * @returns A task to enqueue, typed by the given parameters and result.
   *
   * @example Enqueueing from a separate backend
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const queue = new Worker({ redisUrl: "redis://localhost:6379" });
   * export const fetchLen = queue.stub<[url: string], number>("fetchLen");
   * // const handle = await fetchLen.enqueue("https://example.com");
   * // const length: number = (await handle.result()).result;
   * ```
   */
  // deno-lint-ignore no-explicit-any
  stub<Args extends any[], R>(
    name: string,
    options: TaskOptions = {},
  ): RegisteredTask<Args, R, Priority & string> {
    checkName(`declare a stub`, "name", name);
    checkTaskOptions(name, options);
    const body = (): never => {
      throw new StreaqError(
        `Cannot run task ${name} here: it is a stub, and its body runs on the workers that define it`,
      );
    };
    const stub = createRegisteredTask<Args, R, Priority & string>(
      this as Worker<unknown>,
      this.#queue,
      body,
      {
        ...resolveTaskOptions(name, options, this.#options.retry),
        crontab: undefined,
        threadModule: undefined,
      },
    );
    // Its options decide its shard on a sharded queue (a `limit` or `unique` pins it).
    this.#stubs.set(name, stub);
    return stub;
  }

  /**
   * Adds middleware around the tasks of this worker, the first added outermost. It wraps the
   * tasks registered on this worker and those it includes (see {@linkcode Worker.include}),
   * outside their own worker's middleware. When another worker includes this one, it goes on
   * wrapping this worker's tasks there, and none of the including worker's own.
   *
   * @param middleware Receives the next function and returns its replacement.
   * @returns A handle whose `context` is the running task's context.
   *
   * @example Timing every task
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const timing = worker.middleware((next) => async (...args) => {
   *   const started = performance.now();
   *   try {
   *     return await next(...args);
   *   } finally {
   *     console.log(`${timing.context.fnName} took ${performance.now() - started} ms`);
   *   }
   * });
   * ```
   *
   * @example Middleware of an included worker stays around its own tasks
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const billing = new Worker();
   * const audit = billing.middleware((next) => async (...args) => {
   *   console.log(`audit: ${audit.context.fnName}`); // charge only, not the app's tasks
   *   return await next(...args);
   * });
   * billing.task(async function charge(cents: number): Promise<void> {
   *   console.log(`charging ${cents} cents`);
   * });
   *
   * const app = new Worker();
   * app.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   * app.include(billing);
   * ```
   */
  middleware(middleware: Middleware): MiddlewareHandle {
    return this.#middleware.add(middleware);
  }

  /**
   * Runs the worker: fetches and executes tasks until `stop()`, the `signal`, SIGINT or
   * SIGTERM (with `handleSignals`), or, in burst mode, until the queue is empty; then shuts
   * down gracefully. The worker can be run again afterwards, and still works as a client;
   * after SIGINT or SIGTERM it also closes its connections, so that the process can exit.
   *
   * @param options `burst` and `signal`.
   * @throws {StreaqError} If the worker is already running or its id is taken.
   *
   * @example Running until the queue is empty
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker();
   * worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   *
   * if (import.meta.main) await worker.run({ burst: true });
   * ```
   */
  async run(options: RunOptions = {}): Promise<void> {
    // A task thread imports the module that registered its tasks; the module's own
    // `worker.run()` must not start a second worker inside the thread.
    if (inTaskThread()) return;
    if (this.#runner) {
      throw new StreaqError(`Cannot run worker ${this.id}: it is already running`);
    }
    checkInteger(`run worker ${this.id}`, "concurrency", options.concurrency, 1);
    const concurrency = options.concurrency ?? this.#options.concurrency ?? 16;
    const defaultLevel = this.#logger.level;
    const defaultFormat = this.#logger.format;
    if (options.logFormat !== undefined) {
      this.#logger.format = checkLogFormat(options.logFormat, `run worker ${this.id}`);
    }
    if (options.logLevel !== undefined) this.#logger.level = checkLogLevel(options.logLevel);
    checkShardSlots(`run worker ${this.id}`, concurrency, this.#shards.count);
    const threads = new ThreadPool(this.#options.syncConcurrency ?? concurrency);
    const env: ConstructorParameters<typeof Runner>[0] = {
      client: this.#queue,
      workerId: this.id,
      registry: this.#registry,
      logger: this.#logger,
      counters: this.#counters,
      stats: this.#stats,
      wrap: (fn, name) => this.#middleware.wrap(fn, name),
      threads,
    };
    const settings = {
      concurrency,
      prefetch: this.#options.prefetch ?? concurrency,
      // Left at its default, the prefetch depth adapts to the tasks (src/run/read_ahead.ts).
      adaptivePrefetch: this.#options.prefetch === undefined,
      gracePeriod: this.#options.gracePeriod ?? 0,
      idleTimeout: this.#options.idleTimeout ?? 60_000,
      burst: options.burst ?? false,
    };
    const runner = this.#shards.count === 1
      ? new Runner(env, settings)
      : new ShardedRunner(env, settings, this.#shards.contexts);
    this.#runner = runner;
    const stop = () => runner.stop();
    let signalled = false;
    const removeSignals = this.#options.handleSignals === false
      ? () => {}
      : listenToSignals((signal) => {
        signalled = true;
        this.#logger.info(
          `received ${signal}: shutting down gracefully (a second ${signal} exits at once)`,
        );
        runner.stop();
      }, { report: (message) => this.#logger.warn(message) });
    options.signal?.addEventListener("abort", stop, { once: true });
    const lifespan = this.#options.lifespan?.();
    try {
      // Before the lifespan and any fetch: a task taken now would fail in its thread.
      await checkThreadReadAccess(`run worker ${this.id}`, this.#threadedTasks());
      if (options.signal?.aborted) return;
      if (lifespan) {
        const first = await lifespan.next();
        this.#context = { value: first.value as Context };
      } else {
        this.#context = { value: undefined as Context };
      }
      await this.#shards.check(this.#shards.count > 1 ? this.#pinnedFunctions() : undefined);
      await this.#registerCrons();
      await runner.run();
    } catch (error) {
      // Stopped while starting, with Redis down: the stop is what was asked for.
      if (!(error instanceof RedisDownAtStop)) throw error;
      this.#logger.warn(`worker ${this.id} stopped before it started: ${error.message}`);
    } finally {
      // A stop made commands fail at once while Redis is down; as a client, wait for it again.
      this.#queue.connections.impatientWhileDown(false);
      options.signal?.removeEventListener("abort", stop);
      removeSignals();
      threads.close();
      this.#runner = undefined;
      try {
        await lifespan?.return();
      } finally {
        this.#context = undefined;
        this.#logger.level = defaultLevel;
        this.#logger.format = defaultFormat;
        // SIGINT or SIGTERM means the process is going down: close the connections too, so that
        // `if (import.meta.main) await worker.run();` lets the process exit.
        if (signalled) await this.#queue.close();
      }
    }
  }

  /** The functions of this worker pinned to one shard (see `src/shards/route.ts`). */
  #pinnedFunctions(): string[] {
    return [...this.#registry.values()].filter(pinsShard).map((t) => t.name);
  }

  /** Registers the cron jobs, each on the shard its function is pinned to. */
  async #registerCrons(): Promise<void> {
    const byShard = Map.groupBy(this.#crons, (c) => this.#shards.forFunction(c.name));
    await Promise.all([...byShard].map(([client, crons]) => registerCrons(client, crons)));
  }

  /** The tasks that run in task threads, with the module each thread imports for it. */
  #threadedTasks(): { name: string; threadModule: string }[] {
    return [...this.#registry.values()].flatMap(({ name, threadModule }) =>
      threadModule === undefined ? [] : [{ name, threadModule }]
    );
  }

  /**
   * Starts a graceful shutdown of a running worker; `run()` resolves when it is over.
   *
   * @example Running for a while
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function runFor(ms: number): Promise<void> {
   *   const timer = setTimeout(() => worker.stop(), ms);
   *   await worker.run(); // resolves once the running tasks have finished
   *   clearTimeout(timer);
   * }
   * ```
   */
  stop(): void {
    this.#runner?.stop();
  }

  /**
   * Number of tasks running in this worker now.
   *
   * @example Reporting load
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ concurrency: 16 });
   *
   * export function load(): string {
   *   return `${worker.running()} of 16 tasks running`;
   * }
   * ```
   */
  running(): number {
    return this.#runner?.runningCount ?? 0;
  }

  /**
   * Connects now rather than on the first command, and checks that Redis answers.
   *
   * @throws {Error} When Redis cannot be reached.
   *
   * @example Failing fast at start-up
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ redisUrl: "redis://localhost:6379" });
   *
   * export async function ready(): Promise<void> {
   *   await worker.connect(); // throws now if Redis does not answer
   * }
   * ```
   */
  async connect(): Promise<void> {
    await this.#queue.redis.ping();
  }

  /**
   * Stops a running worker gracefully, then closes the connections the worker opened (never a
   * client passed in as `redis`).
   *
   * @example Closing a client when it is done
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const ping = worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   *
   * export async function sendPing(): Promise<string> {
   *   try {
   *     return (await ping.enqueue()).id;
   *   } finally {
   *     await worker.close();
   *   }
   * }
   * ```
   */
  async close(): Promise<void> {
    if (this.#runner) {
      const runner = this.#runner;
      runner.stop();
      while (this.#runner === runner) await new Promise((r) => setTimeout(r, 10));
    }
    await this.#queue.close();
  }

  /**
   * Same as {@linkcode Worker.close}, for `await using`.
   *
   * @example A worker for one block
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export async function backlog(): Promise<number> {
   *   await using worker = new Worker();
   *   return await worker.queueSize(); // the worker closes when the block ends
   * }
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Sends several tasks in one round trip.
   *
   * @param tasks Unsent tasks of this worker's queue.
   * @returns Their handles, in input order.
   *
   * @example Sending a batch
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const square = worker.task(async function square(n: number): Promise<number> {
   *   return n * n;
   * });
   *
   * export async function squares(): Promise<string[]> {
   *   const batch = [1, 2, 3].map((n) => square.enqueue(n));
   *   const handles = await worker.enqueueMany(batch); // one round trip
   *   return handles.map((handle) => handle.id);
   * }
   * ```
   */
  async enqueueMany<const T extends readonly Task<unknown>[]>(tasks: T): Promise<Handles<T>> {
    return await sendBatch(this.#queue, tasks, this.id) as Handles<T>;
  }

  /**
   * Builds a task by function name, for a function this process does not have (untyped).
   *
   * @param fnName The registered name of the task.
   * @param args Its arguments.
   * @returns The unsent task; await it to send it.
   *
   * @example Enqueuing a task another service registered
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ queueName: "mailer" });
   *
   * export async function sendWelcome(to: string): Promise<string> {
   *   const handle = await worker.enqueueUnsafe<void>("sendEmail", to, "welcome");
   *   return handle.id;
   * }
   * ```
   */
  enqueueUnsafe<R = unknown>(
    fnName: string,
    ...args: unknown[]
    // deno-lint-ignore no-explicit-any
  ): Task<R, any[], Priority & string> {
    if (typeof fnName !== "string" || fnName.length === 0) {
      throw new TypeError(
        `Cannot enqueue as 'fnName' must be a non-empty string: received ${String(fnName)}`,
      );
    }
    return createTask<R, unknown[], Priority & string>(this.#queue, fnName, args);
  }

  /**
   * The status of a task by id.
   *
   * @example Checking on a task by id
   * ```ts
   * import { TaskStatus, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function isFinished(taskId: string): Promise<boolean> {
   *   return (await worker.statusById(taskId)) === TaskStatus.DONE;
   * }
   * ```
   */
  async statusById(taskId: string): Promise<TaskStatus> {
    return await statusById(await this.#shards.forId(taskId), taskId);
  }

  /**
   * Waits for the result of a task by id. A wait may start just before the task's enqueue
   * lands; a task still absent after a grace period of 2 s ends the wait.
   *
   * @throws {DOMException} Named `"TimeoutError"` when `timeout` passes first.
   * @throws {StreaqError} When the task does not exist: never enqueued, its result expired (or,
   * with `ttl: 0`, was published before the wait began), or Redis lost it.
   *
   * @example Waiting for a task sent by another process
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function total(taskId: string): Promise<number> {
   *   const result = await worker.resultById<number>(taskId, { timeout: 5_000 });
   *   if (!result.success) throw result.exception;
   *   return result.result;
   * }
   * ```
   */
  async resultById<R = unknown>(
    taskId: string,
    options: ResultOptions = {},
  ): Promise<TaskResult<R>> {
    return await resultById<R>(await this.#shards.forId(taskId), taskId, options);
  }

  /**
   * Info of a waiting or running task by id; null once finished or if unknown.
   *
   * @example Showing how often a task was tried
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function tries(taskId: string): Promise<number | undefined> {
   *   const info = await worker.infoById(taskId);
   *   return info?.tries; // undefined once it finished
   * }
   * ```
   */
  async infoById(taskId: string): Promise<TaskInfo | null> {
    return await infoById(await this.#shards.forId(taskId), taskId);
  }

  /**
   * The log lines a task wrote with `taskContext().log()`, oldest first, by id: its newest 100,
   * kept as long as its result (see `TaskHandle.logs`). One round trip.
   *
   * @example Printing why a task failed
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function printLogs(taskId: string): Promise<void> {
   *   for (const line of await worker.logsById(taskId)) {
   *     console.log(`${line.time.toISOString()} [try ${line.tries}] ${line.message}`);
   *   }
   * }
   * ```
   */
  async logsById(taskId: string): Promise<TaskLogLine[]> {
    return await logsById(await this.#shards.forId(taskId), taskId);
  }

  /**
   * Aborts a task by id; see `TaskHandle.abort`.
   *
   * @example Cancelling a task from an API handler
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function cancel(taskId: string): Promise<Response> {
   *   const cancelled = await worker.abortById(taskId, { timeout: 2_000 });
   *   return new Response(cancelled ? "cancelled" : "too late", { status: cancelled ? 200 : 409 });
   * }
   * ```
   */
  async abortById(taskId: string, options: AbortOptions = {}): Promise<boolean> {
    return await abortById(await this.#shards.forId(taskId), taskId, options);
  }

  /**
   * Reruns a failed task: a new try of the same task id, with its original arguments, priority
   * and options. Its failure is removed, it re-enters its stream with a fresh count of tries,
   * and its id's `result()` waits for the new outcome. A failed task can be rerun for as long as
   * its result is kept (`ttl`).
   *
   * @param taskId The id of the failed task.
   * @returns The handle of the task, queued again.
   * @throws {StreaqError} When the task is not failed: queued, scheduled or running, succeeded,
   * unknown or expired; or it failed without running, so nothing was kept. The message says which.
   *
   * @example Rerunning a task after fixing the bug that failed it
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function rerun(taskId: string): Promise<boolean> {
   *   const handle = await worker.retryById(taskId);
   *   const result = await handle.result({ timeout: 10_000 });
   *   return result.success;
   * }
   * ```
   */
  async retryById<R = unknown>(taskId: string): Promise<TaskHandle<R>> {
    const shard = await this.#shards.forId(taskId);
    const fnName = await retryById(shard, taskId);
    return createTaskHandle<R>(shard, taskId, fnName);
  }

  /**
   * Reruns every failed task of a function, or failed since a time (all failed tasks without
   * options), as {@linkcode Worker.retryById} reruns one. It works in batches, so a large
   * queue never blocks Redis; a task rerun meanwhile by someone else is not rerun twice.
   *
   * @param options The function and the earliest failure time to match.
   * @returns How many tasks were queued again.
   * @throws {TypeError} For an invalid option, naming it.
   *
   * @example Rerunning what failed in the last hour
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function rerunLastHour(): Promise<number> {
   *   const since = new Date(Date.now() - 60 * 60_000);
   *   return await worker.retryFailed({ fnName: "sendEmail", since });
   * }
   * ```
   */
  retryFailed(options: RetryFailedOptions = {}): Promise<number> {
    return this.#eachShard((shard) => retryFailed(shard, options)).then(sum);
  }

  /**
   * Tasks in one status: infos for queued, running and scheduled tasks, results for done ones.
   *
   * @param status The status to list.
   * @param options `priority` and `limit` (default 100).
   *
   * @example Counting recent failures
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function recentFailures(): Promise<number> {
   *   const done = await worker.getTasksByStatus("done", { limit: 50 });
   *   return done.filter((result) => !result.success).length;
   * }
   * ```
   */
  getTasksByStatus(
    status: "done",
    options?: ListOptions<Priority & string>,
  ): Promise<TaskResult<unknown>[]>;
  /**
   * Tasks in one status: queued and running ones oldest first, scheduled ones soonest first.
   *
   * @param status The status to list: queued, running, scheduled or done.
   * @param options `priority` and `limit` (default 100).
   * @throws {RangeError} For any other status (`missing` included: nothing is kept of a task
   * that is not there), a priority the worker does not declare, or a bad limit.
   *
   * @example Listing what waits in the queue
   * ```ts
   * import { TaskStatus, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function waiting(): Promise<string[]> {
   *   const infos = await worker.getTasksByStatus(TaskStatus.QUEUED, { limit: 10 });
   *   return infos.map((info) => `${info.fnName} (${info.taskId})`);
   * }
   * ```
   */
  getTasksByStatus(
    status: TaskStatus,
    options?: ListOptions<Priority & string>,
  ): Promise<TaskInfo[]>;
  getTasksByStatus(
    status: TaskStatus,
    options: ListOptions<Priority & string> = {},
  ): Promise<(TaskInfo | TaskResult<unknown>)[]> {
    if (this.#shards.count === 1) return listTasks(this.#queue, status, options);
    return this.#eachShard((shard) => listTasks(shard, status, options)).then((lists) =>
      lists.flat().slice(0, options.limit ?? Infinity)
    );
  }

  /**
   * Stops a repeating task (a cron job or a task enqueued with a crontab schedule), including
   * its occurrence already waiting or queued; a running occurrence finishes.
   *
   * @param taskId The id of the repeating task, or the name of a cron job (its id is
   * `cron:<name>`; both work).
   * @returns True if it named a repeating task; false for an unknown id or name.
   *
   * @example Stopping a cron job by its name
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.cron("* * * * * *", async function everySecond(): Promise<void> {});
   * // await worker.unscheduleById("everySecond"); // true once the worker has registered it
   * ```
   */
  unscheduleById(taskId: string): Promise<boolean> {
    if (this.#shards.count === 1) return unscheduleByIdOrName(this.#queue, taskId);
    return this.#eachShard((shard) => unscheduleByIdOrName(shard, taskId)).then((stopped) =>
      stopped.some(Boolean)
    );
  }

  /**
   * The repeating tasks of the queue (cron jobs and crontab schedules) with their next run and
   * last result, soonest first.
   *
   * @example Printing the next runs
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function printSchedules(): Promise<void> {
   *   for (const schedule of await worker.schedules()) {
   *     console.log(schedule.fnName, schedule.crontab, schedule.nextRun?.toISOString());
   *   }
   * }
   * ```
   */
  schedules(): Promise<ScheduleInfo[]> {
    return this.#eachShard(listSchedules).then((lists) => lists.flat());
  }

  /**
   * The queue's metrics, read from Redis: tasks by status and priority, the live workers with
   * the outcome counters each kept since it started, and the outcomes of the last hour. Any
   * process may read them, running a worker or not. Workers write their outcomes and running
   * tasks within a second of a change, so those trail by about a second; the counts of tasks
   * by status are exact when read.
   *
   * @returns The metrics; see {@linkcode QueueMetrics}.
   *
   * @example Logging a queue's backlog and failures
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function logMetrics(): Promise<void> {
   *   const m = await worker.metrics();
   *   console.log(`${m.tasks.queued} queued, ${m.tasks.running} running`);
   *   console.log(`${m.lastHour.failed} failed in the last hour, ${m.workers.length} workers`);
   * }
   * ```
   */
  metrics(): Promise<QueueMetrics> {
    return readQueueMetrics(this.#queue);
  }

  /**
   * The queue's events, as they happen: an async iterator on a Redis connection of its own,
   * read with a blocking `XREAD` (no polling). Events are written by workers and clients with
   * the `events` option. It resumes by itself after a lost connection or a failover, from the
   * last event it delivered, so no event is missed or repeated; to resume in another process,
   * pass the last `id` seen as `since`. If events it had not read were trimmed by the stream's
   * cap, it yields a `gap` event first. `break` out of the loop, or abort `signal`, to end it
   * and close its connection.
   *
   * @typeParam T The types asked for (`types`): the events are typed accordingly.
   * @param options Where to start (`since`), which types, and a signal that ends the reading.
   * @returns The events, each with its `id`.
   * @throws {TypeError} At once, for a bad `since`, `types` or `signal`.
   *
   * @example Following a queue's completions and failures
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ events: true });
   * for await (const e of worker.events({ since: "now", types: ["completed", "failed"] })) {
   *   // e is a CompletedEvent, a FailedEvent, or a GapEvent (always delivered)
   *   if (e.type === "failed") console.log(e.taskId, e.fnName, "failed:", e.error);
   *   else if (e.type === "completed") console.log(e.taskId, "done at", e.time);
   * }
   * ```
   */
  events<const T extends StreaqEventType = StreaqEventType>(
    options: EventsOptions<T> = {},
  ): AsyncGenerator<EventOfType<T | "gap">, void, undefined> {
    return readEvents(this.#queue, options) as AsyncGenerator<
      EventOfType<T | "gap">,
      void,
      undefined
    >;
  }

  /**
   * The next occurrence of a crontab after now, in this worker's `tz`.
   *
   * @throws {RangeError} For an invalid crontab.
   *
   * @example The next weekday at 9:00 in New York
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ tz: "America/New_York" });
   * console.log(worker.nextRun("0 9 * * mon-fri").toISOString());
   * ```
   */
  nextRun(crontab: string): Date {
    checkCrontab("compute the next run", crontab);
    return new Date(nextOccurrence(crontab, this.#queue.timeZone, Date.now()));
  }

  /**
   * How many tasks wait for a worker, plus delayed ones with `includeScheduled`.
   *
   * @example Scaling on the backlog
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function backlog(): Promise<number> {
   *   return await worker.queueSize({ includeScheduled: true });
   * }
   * ```
   */
  queueSize(options: QueueSizeOptions = {}): Promise<number> {
    return this.#eachShard((shard) => queueSize(shard, options)).then(sum);
  }

  /**
   * Removes the stored results of finished tasks: all of them, or those that finished at least
   * `olderThan` ms ago, only successes or only failures, of one function. Never a task that is
   * queued, delayed, waiting or running (they have no result). Works in small batches (a SCAN,
   * then a script call per 100 results), so a queue of any size never blocks Redis for more than
   * a few milliseconds at a time.
   *
   * @param options Which results: `olderThan` (ms), `status` (`"succeeded"` or `"failed"`),
   * `fnName`.
   * @returns How many results it removed.
   * @throws {TypeError} For an unknown option or a bad value.
   *
   * @example Removing failures older than a day
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function cleanOldFailures(): Promise<number> {
   *   return await worker.clean({ olderThan: 86_400_000, status: "failed" });
   * }
   * ```
   */
  clean(options: CleanOptions = {}): Promise<number> {
    return this.#eachShard((shard) => cleanResults(shard, options)).then(sum);
  }

  /**
   * Removes every task that waits for a worker: queued, delayed (scheduled or backing off),
   * waiting for its dependencies, or set aside by a pause or a limit, with the tasks waiting for
   * those. Tasks a worker holds
   * (running or prefetched) and repeating tasks (cron jobs, crontab schedules: stop those with
   * `unscheduleById`) are kept. Works in script calls of at most 50 tasks each, so a queue of any
   * size never blocks Redis for more than a few milliseconds at a time.
   *
   * @returns How many tasks it removed.
   *
   * @example Emptying the backlog
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function emptyBacklog(): Promise<void> {
   *   const removed = await worker.drain();
   *   console.log(`removed ${removed} tasks`);
   * }
   * ```
   */
  drain(): Promise<number> {
    return this.#eachShard(drainQueue).then(sum);
  }

  /**
   * Pauses the whole queue, or only the functions named, on every worker: from within a moment
   * (well under a second), no worker starts paused work, until {@linkcode Worker.resume}. Paused
   * tasks stay queued, their tries uncounted; enqueueing goes on, and running tasks finish. The
   * pause lives in Redis: it holds for workers started later, and survives their restarts.
   *
   * @param options `functions`: the registered names of the functions to pause; without it, the
   * whole queue.
   * @returns How many of the pauses asked for were not in force already.
   * @throws {TypeError} For an unknown option, or a function name that is not a non-empty string.
   *
   * @example Pausing one function while its API is down
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function holdPayments(): Promise<void> {
   *   await worker.pause({ functions: ["chargeCard"] });
   *   console.log(await worker.paused()); // { queue: null, functions: [{ name: "chargeCard", ... }] }
   * }
   * ```
   */
  pause(options: PauseOptions = {}): Promise<number> {
    return this.#eachShard((shard) => pauseWork(shard, options)).then(sum);
  }

  /**
   * Resumes the whole queue, or only the functions named: workers start their tasks again within
   * a moment, oldest first. Resuming the queue leaves paused functions paused, and the other way
   * round.
   *
   * @param options `functions`: the registered names of the functions to resume; without it,
   * the whole queue.
   * @throws {TypeError} For an unknown option, or a function name that is not a non-empty string.
   *
   * @example Pausing the queue for a deployment, then resuming it
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function duringMaintenance(work: () => Promise<void>): Promise<void> {
   *   await worker.pause();
   *   try {
   *     await work();
   *   } finally {
   *     await worker.resume();
   *   }
   * }
   * ```
   */
  resume(options: PauseOptions = {}): Promise<void> {
    return this.#eachShard((shard) => resumeWork(shard, options)).then(() => {});
  }

  /**
   * The pauses in force on the queue: since when the whole queue is paused (or `null`), and the
   * paused functions, each with how many of its tasks workers have set aside.
   *
   * @returns The pauses in force.
   *
   * @example Saying what is paused
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function describePauses(): Promise<string> {
   *   const { queue, functions } = await worker.paused();
   *   if (queue) return `the queue is paused since ${queue.toISOString()}`;
   *   return functions.map((f) => `${f.name} paused (${f.held} tasks waiting)`).join("\n");
   * }
   * ```
   */
  paused(): Promise<PauseState> {
    return readPauseState(this.#queue);
  }

  /**
   * The concurrency limits in force on the queue (the `limit` task option, stated by the workers
   * that run each function when they start), with the slots taken and the tasks waiting for one.
   *
   * @returns The limited functions, by name.
   *
   * @example Watching a limited function
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   *
   * export async function describeLimits(): Promise<string[]> {
   *   return (await worker.limits()).map((l) =>
   *     `${l.name}: ${l.running} of ${l.concurrency} running, ${l.waiting} waiting`
   *   );
   * }
   * ```
   */
  limits(): Promise<FunctionLimit[]> {
    return readLimits(this.#queue);
  }

  /**
   * Removes every key of the queue: tasks, streams, results, schedules, locks and metrics.
   * Refused while a worker of the queue is alive (it has a health key), unless `force`. Works in
   * batches (SCAN, then UNLINK of up to 500 keys), so a queue of any size never blocks Redis for
   * more than a few milliseconds at a time.
   *
   * @param options `force: true` to go ahead while workers are alive.
   * @returns How many keys it removed.
   * @throws {StreaqError} When a worker of the queue is alive and `force` is not set.
   *
   * @example Removing a queue once its workers are stopped
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ queueName: "old-imports" });
   *
   * export async function removeQueue(): Promise<number> {
   *   return await worker.obliterate();
   * }
   * ```
   */
  obliterate(options: ObliterateOptions = {}): Promise<number> {
    return this.#eachShard((shard) => obliterateQueue(shard, options)).then(sum);
  }

  /**
   * Runs a queue-wide operation on every shard, in parallel: on the queue's own context for an
   * unsharded queue, so that nothing changes for it.
   */
  #eachShard<T>(operation: (shard: QueueContext) => Promise<T>): Promise<T[]> {
    const { count, contexts } = this.#shards;
    if (count === 1) return operation(this.#queue).then((one) => [one]);
    return Promise.all(contexts.map(operation));
  }
}

function sum(counts: readonly number[]): number {
  return counts.reduce((a, b) => a + b, 0);
}
