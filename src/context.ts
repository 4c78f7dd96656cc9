/**
 * The context of the running task, reachable from anywhere inside it through
 * {@linkcode taskContext}. It travels with the task's async calls by `AsyncLocalStorage`, so
 * tasks running side by side each see their own.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { StreaqError } from "./errors.ts";
import type { DependencyResults } from "./dependencies.ts";

/** What a running task knows about itself. */
export interface TaskContext {
  /** The task's id. */
  readonly taskId: string;
  /** The registered name of its function. */
  readonly fnName: string;
  /** The number of this attempt, 1-based. */
  readonly tries: number;
  /** Its hard deadline in milliseconds, or undefined for none. */
  readonly timeout: number | undefined;
  /** How long its result is kept in milliseconds; null forever, 0 not stored. */
  readonly ttl: number | null;
  /** Id of the worker running it. */
  readonly workerId: string;
  /** When it last entered its stream (ms since the epoch). */
  readonly enqueueTime: number;
  /** The priority it runs at. */
  readonly priority: string;
  /**
   * Fires when the task is aborted, times out or is handed back at shutdown; its `reason` says
   * which. JavaScript cannot stop a function from outside: pass this signal to what you await.
   */
  readonly signal: AbortSignal;
  /**
   * Reads the results of the tasks this one waited for (`after`, a pipeline stage's or
   * fallback's source), all in one round trip, decoded like `result()`; typed by the function
   * that produced each ({@linkcode DependencyResults.of}). A dependency whose result has expired
   * (or was never stored, `ttl: 0`) is listed with status `"expired"`. A task without
   * dependencies gets an empty answer. Each call reads Redis again.
   *
   * @returns The dependencies and their results.
   * @throws {StreaqError} In a task thread (a synchronous function cannot await; register it
   * with `thread: false`, async), or when the task has finished already (a function that
   * ignored its signal and went on), or when a dependency's result cannot be decoded (naming
   * it).
   *
   * @example Reading the result of a dependency, typed
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const fetchLen = worker.task(async function fetchLen(url: string): Promise<number> {
   *   return (await (await fetch(url)).text()).length;
   * });
   * worker.task(async function report(): Promise<string> {
   *   const deps = await taskContext().dependencyResults();
   *   return `${deps.of(fetchLen).result} characters`; // result: number
   * });
   * ```
   */
  dependencyResults(): Promise<DependencyResults>;
  /**
   * Reports the task's progress: a number (0–100 shows as a bar on the dashboard) or any value
   * the worker's codec can encode. The latest value is kept in the task's hash, visible in
   * `info()` (`TaskInfo.progress`), `handle.progress()` and the dashboard while the task exists.
   * Reports are coalesced: at most one write (one script call, an `HSET`) per task per 100 ms,
   * none when the value did not change, and the latest value is always written (at the end of
   * the window). The promise resolves once the value is encoded, not when it is written, so a
   * task may report in a tight loop.
   *
   * @param value The progress: a number from 0 to 100, or any value the codec can encode.
   * @returns Resolves once the value is encoded and its write scheduled.
   * @throws {TypeError} When the codec cannot encode `value` (the task keeps running; await the
   * call to catch it).
   * @throws {StreaqError} After the try has finished (a function that ignored its signal), or
   * in a task thread (synchronous functions cannot report progress; register it with
   * `thread: false`, async).
   *
   * @example Reporting progress of a long task
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.task(async function resize(urls: string[]): Promise<number> {
   *   const ctx = taskContext();
   *   for (const [i, url] of urls.entries()) {
   *     await fetch(url, { signal: ctx.signal });
   *     await ctx.progress(Math.round(((i + 1) / urls.length) * 100));
   *   }
   *   return urls.length;
   * });
   * ```
   */
  progress(value: unknown): Promise<void>;
  /**
   * Writes a log line kept with the task, for as long as its result: read it with
   * `handle.logs()` or `worker.logsById(id)`, on the dashboard's task page, or with
   * `streaq logs`. The values are joined by spaces (strings as they are, other values as
   * `Deno.inspect` shows them), and the line is stamped with the time and the try. The newest
   * 100 lines of a task are kept (older ones are dropped); a line longer than 2 KB (UTF-8) is
   * cut and ends with `… [truncated, N more characters]`. Lines are buffered and written
   * together, at most one pipelined write per task per 100 ms, so a task may log in a loop.
   * This does not go to the worker's logger: call both if you want both.
   *
   * @param values What to write, like `console.log`.
   * @throws {StreaqError} After the try has finished (a function that ignored its signal), or
   * in a task thread (register the function with `thread: false`, async, to log).
   *
   * @example Logging steps of a task
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.task(async function importFile(url: string): Promise<number> {
   *   const ctx = taskContext();
   *   ctx.log("downloading", url);
   *   const rows = (await (await fetch(url, { signal: ctx.signal })).text()).split("\n");
   *   ctx.log("parsed", rows.length, "rows");
   *   return rows.length;
   * });
   * ```
   */
  log(...values: unknown[]): void;
}

/** A task context's data, without its methods. */
export type TaskFacts = Omit<TaskContext, "dependencyResults" | "progress" | "log">;

/**
 * A task context's scope: {@linkcode ContextScope.run} calls a function in it,
 * {@linkcode ContextScope.end} closes it when the try ends.
 *
 * The scope itself is what the async context carries, and it lets go of the task's context at
 * the end. On Deno, a value given to `AsyncLocalStorage.run` outlives the scavenges that follow
 * until a mark-compact, whatever still refers to it: a task's whole context (its closures, its
 * delivery and payload) would be copied by every scavenge meanwhile, 1 to 2 ms each in a worker
 * that runs one task after another (`deno task bench:gc-survivors --only=streaq-worker`). Only
 * this small object is kept so, and once the try has ended it holds what an ended task still
 * answers. One object per task, its methods on the prototype: no closure per task.
 */
export class ContextScope {
  #context: TaskContext | undefined;
  #facts: TaskFacts | undefined;
  #revive: ((facts: TaskFacts) => TaskContext) | undefined;

  constructor(context: TaskContext) {
    this.#context = context;
  }

  /** Calls `fn` in this scope: {@linkcode taskContext} returns its context there. */
  run<T>(fn: () => T): T {
    return storage.run(this, fn);
  }

  /**
   * Drops the context, keeping only `facts`: code the task left running that asks for its
   * context from then on gets `revive(facts)`, made when asked.
   */
  end(facts: TaskFacts, revive: (facts: TaskFacts) => TaskContext): void {
    this.#context = undefined;
    this.#facts = facts;
    this.#revive = revive;
  }

  /** The context, or once the scope has ended, the one its facts make. */
  get context(): TaskContext {
    return this.#context ?? this.#revive!(this.#facts!);
  }
}

const storage = new AsyncLocalStorage<ContextScope>();

/** The running task's context, or undefined outside a task. */
export function currentContext(): TaskContext | undefined {
  return storage.getStore()?.context;
}

/**
 * Returns the context of the task that is running in the current async call chain.
 *
 * @returns The running task's {@linkcode TaskContext}.
 * @throws {StreaqError} When called outside a running task.
 *
 * @example Reading the context inside a task
 * ```ts
 * import { taskContext, Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 * worker.task(async function download(url: string): Promise<number> {
 *   const { signal, tries } = taskContext();
 *   console.log(`try ${tries}`);
 *   const res = await fetch(url, { signal });
 *   return (await res.arrayBuffer()).byteLength;
 * });
 * ```
 */
export function taskContext(): TaskContext {
  const context = currentContext();
  if (!context) {
    throw new StreaqError(
      "Cannot read the task context outside a running task: taskContext() works only inside a task function, its middleware and what they call",
    );
  }
  return context;
}
