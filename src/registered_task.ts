/**
 * A function registered as a task: {@linkcode RegisteredTask} enqueues it with typed
 * arguments, runs it locally, and exposes its options.
 *
 * @module
 */

import { currentContext, type TaskContext } from "./context.ts";
import { createTask, type Task } from "./client/enqueue.ts";
import { StreaqError } from "./errors.ts";
import type { Worker } from "./worker.ts";
import { DEFAULT_RESULT_TTL, failureTtlFor, type QueueContext } from "./queue_context.ts";
import type { CronOptions, GroupLimit, TaskLimit, TaskOptions } from "./options.ts";
import { checkTaskId } from "./_check_dedupe.ts";
import { describe } from "./_validate.ts";
import type { RetryPolicy } from "./retry_options.ts";
import { freezeRetryPolicy } from "./run/retry_policy.ts";
import { callerModule, recordThreadTask } from "./run/threads/registry.ts";

/** A task function: any function, sync or async. */
// deno-lint-ignore no-explicit-any
export type TaskFunction<Args extends any[], R> = (...args: Args) => R | Promise<R>;

/** The options of a registered task after defaults are applied. */
export interface ResolvedTaskOptions {
  /** The name the task is registered and enqueued under. */
  readonly name: string;
  /** Its deadline in milliseconds, if any. */
  readonly timeout: number | undefined;
  /** Attempts before giving up. */
  readonly maxTries: number;
  /** Milliseconds after becoming ready within which it must start, if any. */
  readonly expire: number | undefined;
  /** How long its result is kept (ms); null forever, 0 not stored. */
  readonly ttl: number | null;
  /** How long the result of a failure is kept (ms); null forever, 0 not stored. */
  readonly failureTtl: number | null;
  /** At most this many of its results are kept, the newest; undefined for no bound. */
  readonly keepResults: number | undefined;
  /** Whether at most one instance runs at a time. */
  readonly unique: boolean;
  /** Its queue-wide limits (`limit` option), frozen; undefined for none. */
  readonly limit: Readonly<TaskLimit> | undefined;
  /** The group of a task from its arguments (`group` option); undefined for none. */
  // deno-lint-ignore no-explicit-any
  readonly group: ((...args: any[]) => string) | undefined;
  /** The limits on each of its groups (`groups` option), frozen; undefined for the default. */
  readonly groups: Readonly<GroupLimit> | undefined;
  /** Whether per-run log lines are left out. */
  readonly silent: boolean;
  /** For a cron job: the most an occurrence may start after its due time, if set. */
  readonly maxScheduleDrift: number | undefined;
  /** For a cron job: its crontab; undefined for a plain task. */
  readonly crontab: string | undefined;
  /**
   * The module a synchronous function runs from in a task thread; undefined when the task runs
   * inline.
   */
  readonly threadModule: string | undefined;
  /**
   * Its retry policy: its own `retry`, else its worker's; undefined when only `StreaqRetry`
   * retries.
   */
  readonly retry: RetryPolicy | undefined;
}

// Set by RegisteredTask's static block: only code inside the class may call its private
// constructor and write its private fields; these let the functions below do it for streaq.
let construct: <Args extends unknown[], R, Priority extends string>(
  worker: Worker<unknown>,
  queue: QueueContext,
  fn: TaskFunction<Args, R>,
  options: ResolvedTaskOptions,
) => RegisteredTask<Args, R, Priority>;
let repoint: (
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown>,
  worker: Worker<unknown>,
  queue: QueueContext,
) => void;

/**
 * A task registered on a worker, enqueueing through the worker's queue: what `worker.task()`,
 * `worker.cron()` and `worker.stub()` return. For streaq's own modules; not exported from
 * `mod.ts`.
 */
// deno-lint-ignore no-explicit-any
export function createRegisteredTask<Args extends any[], R, Priority extends string = string>(
  worker: Worker<unknown>,
  queue: QueueContext,
  fn: TaskFunction<Args, R>,
  options: ResolvedTaskOptions,
): RegisteredTask<Args, R, Priority> {
  return construct<Args, R, Priority>(worker, queue, fn, options);
}

/**
 * Re-points a registered task at the worker that includes its own (`worker.include`): the task
 * then enqueues through that worker's queue. For streaq's own modules.
 */
export function repointTask(
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown>,
  worker: Worker<unknown>,
  queue: QueueContext,
): void {
  repoint(task, worker, queue);
}

/**
 * A function registered on a worker with `worker.task(fn, options)`.
 *
 * @typeParam Args The function's parameters.
 * @typeParam R What the function resolves to.
 * @typeParam Priority The priorities of its worker (see {@linkcode Worker}).
 *
 * @example Registering, enqueueing and running locally
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 * const add = worker.task(async function add(a: number, b: number): Promise<number> {
 *   return a + b;
 * }, { timeout: 1_000 });
 *
 * console.log(add.name, add.timeout); // "add" 1000
 * console.log(await add.run(1, 2)); // 3, called here without the queue
 * // await add.enqueue(1, 2); // sends it to the queue
 * ```
 */
// deno-lint-ignore no-explicit-any
export class RegisteredTask<Args extends any[], R, Priority extends string = string>
  implements ResolvedTaskOptions {
  /** The name the task is registered and enqueued under. */
  readonly name: string;
  /** The task's deadline in milliseconds, if any. */
  readonly timeout: number | undefined;
  /** Attempts before giving up. */
  readonly maxTries: number;
  /** Milliseconds after becoming ready within which it must start, if any. */
  readonly expire: number | undefined;
  /** How long the result is kept (ms); null forever, 0 not stored. */
  readonly ttl: number | null;
  /** How long the result of a failure is kept (ms); null forever, 0 not stored. */
  readonly failureTtl: number | null;
  /** At most this many of its results are kept, the newest; undefined for no bound. */
  readonly keepResults: number | undefined;
  /** Whether at most one instance runs at a time. */
  readonly unique: boolean;
  /** Its queue-wide limits (`limit` option); undefined for none. */
  readonly limit: Readonly<TaskLimit> | undefined;
  /** The group of a task from its arguments (`group` option); undefined for none. */
  readonly group: ((...args: Args) => string) | undefined;
  /** The limits on each of its groups (`groups` option); undefined for the default (1 slot). */
  readonly groups: Readonly<GroupLimit> | undefined;
  /** Whether per-run log lines are left out. */
  readonly silent: boolean;
  /** For a cron job: the most an occurrence may start after its due time, if set. */
  readonly maxScheduleDrift: number | undefined;
  /** For a cron job: its crontab; undefined for a plain task. */
  readonly crontab: string | undefined;
  /** The module the function runs from in a task thread; undefined when it runs inline. */
  readonly threadModule: string | undefined;
  /**
   * Its retry policy: its own `retry`, else its worker's; undefined when only `StreaqRetry`
   * retries.
   */
  readonly retry: RetryPolicy | undefined;
  /** The function itself. */
  readonly fn: TaskFunction<Args, R>;
  #worker: Worker<unknown>;
  /** The queue of `#worker`, which tasks are enqueued through. */
  #queue: QueueContext;

  /**
   * Private: a registered task comes from `worker.task(fn, options)`, `worker.cron()` or
   * `worker.stub()` (inside streaq, from `createRegisteredTask`).
   */
  private constructor(
    worker: Worker<unknown>,
    queue: QueueContext,
    fn: TaskFunction<Args, R>,
    options: ResolvedTaskOptions,
  ) {
    this.#worker = worker;
    this.#queue = queue;
    this.fn = fn;
    this.name = options.name;
    this.timeout = options.timeout;
    this.maxTries = options.maxTries;
    this.expire = options.expire;
    this.ttl = options.ttl;
    this.failureTtl = options.failureTtl;
    this.keepResults = options.keepResults;
    this.unique = options.unique;
    this.limit = options.limit;
    this.group = options.group;
    this.groups = options.groups;
    this.silent = options.silent;
    this.maxScheduleDrift = options.maxScheduleDrift;
    this.crontab = options.crontab;
    this.threadModule = options.threadModule;
    this.retry = options.retry;
  }

  static {
    construct = (worker, queue, fn, options) => new RegisteredTask(worker, queue, fn, options);
    repoint = (task, worker, queue) => {
      task.#worker = worker;
      task.#queue = queue;
    };
  }

  /**
   * The worker this task enqueues through.
   *
   * @example The worker behind a task
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const ping = worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   * console.log(ping.worker === worker); // true
   * ```
   */
  get worker(): Worker<unknown> {
    return this.#worker;
  }

  /**
   * Builds a task with these arguments; awaiting it (or passing it to `enqueueMany`) sends it.
   *
   * @param args The function's arguments; they must be serializable by the worker's codec.
   * @returns The unsent task, whose `start()` sets a delay, schedule or priority.
   *
   * @example Sending a task and waiting for its result
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const add = worker.task(async function add(a: number, b: number): Promise<number> {
   *   return a + b;
   * });
   *
   * export async function sum(a: number, b: number): Promise<number | undefined> {
   *   const handle = await add.enqueue(a, b); // the arguments are typed as add's parameters
   *   const result = await handle.result({ timeout: 5_000 });
   *   return result.success ? result.result : undefined;
   * }
   * ```
   */
  enqueue(...args: Args): Task<R, Args, Priority> {
    const task = createTask<R, Args, Priority>(this.#queue, this.name, args);
    if (this.group) task.start({ group: groupOf(this.name, this.group, args) });
    return task;
  }

  /**
   * Calls the function here and now, without the queue (no context, no retries).
   *
   * @param args The function's arguments.
   * @returns What the function returns.
   *
   * @example Testing a task's function without Redis
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const slugify = worker.task(async function slugify(title: string): Promise<string> {
   *   return title.toLowerCase().replaceAll(" ", "-");
   * });
   *
   * console.log(await slugify.run("Hello World")); // "hello-world"
   * ```
   */
  async run(...args: Args): Promise<R> {
    return await this.fn(...args);
  }

  /**
   * The context of this task's running instance, inside it.
   *
   * @throws {StreaqError} When called anywhere but inside a running instance of this task.
   *
   * @example Reading the try count inside the task
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * export const worker = new Worker();
   *
   * export const sync = worker.task(async (): Promise<number> => {
   *   return sync.context.tries; // 1 on the first try
   * }, { name: "sync", maxTries: 3 });
   * ```
   */
  get context(): TaskContext {
    const context = currentContext();
    if (!context || context.fnName !== this.name) {
      throw new StreaqError(
        `Cannot read the context of task ${this.name} outside a running instance of it${
          context ? ` (running: ${context.fnName})` : ""
        }`,
      );
    }
    return context;
  }
}

/**
 * Task options with their defaults, but for the crontab and the thread module. `workerRetry` is
 * the worker's default policy: the task's own replaces it as a whole, and the task's `maxTries`
 * takes precedence over the policy's `attempts`.
 */
export function resolveTaskOptions(
  name: string,
  options: CronOptions & TaskOptions,
  workerRetry?: RetryPolicy,
): Omit<ResolvedTaskOptions, "crontab" | "threadModule"> {
  const ttl = options.ttl === undefined ? DEFAULT_RESULT_TTL : options.ttl;
  const retry = freezeRetryPolicy(options.retry ?? workerRetry);
  return {
    name,
    timeout: options.timeout,
    maxTries: options.maxTries ?? retry?.attempts ?? 3,
    retry,
    expire: options.expire,
    ttl,
    failureTtl: options.failureTtl === undefined ? failureTtlFor(ttl) : options.failureTtl,
    keepResults: options.keepResults,
    unique: options.unique ?? false,
    limit: options.limit === undefined ? undefined : Object.freeze({ ...options.limit }),
    group: options.group,
    groups: options.groups === undefined ? undefined : Object.freeze({ ...options.groups }),
    silent: options.silent ?? false,
    maxScheduleDrift: options.maxScheduleDrift,
  };
}

/**
 * The module a task function runs from in a task thread, or undefined to run it inline: sync
 * functions run in threads unless `thread: false`; async ones always inline. The function is
 * recorded so that a thread that imports the module finds it.
 */
export function threadModuleOf(
  name: string,
  fn: (...args: never[]) => unknown,
  thread: boolean | undefined,
): string | undefined {
  const sync = fn.constructor.name === "Function";
  if (!(thread ?? sync) || !sync) return undefined;
  recordThreadTask(name, fn);
  return callerModule();
}

/**
 * The group key a task's `group` option gives its arguments, checked: a function that throws or
 * returns anything but a valid key fails that enqueue with a TypeError naming the task.
 */
// deno-lint-ignore no-explicit-any
function groupOf(name: string, group: (...args: any[]) => string, args: unknown[]): string {
  let key: unknown;
  try {
    key = group(...args);
  } catch (error) {
    throw new TypeError(
      `Cannot enqueue task ${name} as its 'group' function threw: received ${
        error instanceof Error ? `${error.name}: ${error.message}` : describe(error)
      }`,
      { cause: error },
    );
  }
  checkTaskId(`enqueue task ${name}`, "group (what its group function returned)", key);
  return key as string;
}
