/**
 * The handle of a sent task: its id, and ways to ask about it or act on it.
 *
 * @module
 */

import { abortById } from "./client/abort.ts";
import type { QueueContext } from "./queue_context.ts";
import { infoById, progressById, resultById, statusById } from "./client/inspect.ts";
import { retryById } from "./client/rerun.ts";
import { unscheduleById } from "./client/schedule.ts";
import type { AbortOptions, ResultOptions } from "./options.ts";
import type { TaskInfo, TaskLogLine, TaskResult, TaskStatus } from "./result.ts";
import { logsById } from "./client/task_logs.ts";

// Set by TaskHandle's static block, the one place that may call its private constructor.
let createHandle: <R>(
  client: QueueContext,
  id: string,
  fnName: string,
  deduplicated: boolean,
) => TaskHandle<R>;

/**
 * The handle of a task sent to a queue. For streaq's own modules (the enqueue path); not
 * exported from `mod.ts`.
 */
export function createTaskHandle<R>(
  client: QueueContext,
  id: string,
  fnName: string,
  deduplicated = false,
): TaskHandle<R> {
  return createHandle<R>(client, id, fnName, deduplicated);
}

/**
 * A task that was sent. It is deliberately not awaitable itself.
 *
 * @typeParam R What the task returns.
 *
 * @example Waiting for a result
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 * const double = worker.task(async function double(n: number): Promise<number> {
 *   return n * 2;
 * });
 *
 * export async function main() {
 *   const handle = await double.enqueue(21);
 *   const result = await handle.result({ timeout: 5_000 });
 *   if (result.success) console.log(result.result); // 42
 * }
 * ```
 */
export class TaskHandle<R> {
  /** The task's id. */
  readonly id: string;
  /** The registered name of the function it runs. */
  readonly fnName: string;
  /**
   * True when the send stored nothing: a task with this task's `id` was known already (queued,
   * delayed, waiting, running, or finished with its result still kept), or its `dedupe` key
   * named another task, whose id this handle then carries. False for a task stored by this send.
   *
   * @example Telling a new task from a duplicate
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const reindex = worker.task(async function reindex(): Promise<void> {});
   *
   * export async function requestReindex(): Promise<string> {
   *   const handle = await reindex.enqueue().start({ dedupe: { key: "all" } });
   *   return handle.deduplicated ? `already pending as ${handle.id}` : `enqueued ${handle.id}`;
   * }
   * ```
   */
  readonly deduplicated: boolean;
  readonly #client: QueueContext;

  /**
   * Private: a handle comes from awaiting a task or from `worker.enqueueMany(...)` (inside
   * streaq, from `createTaskHandle`).
   */
  private constructor(client: QueueContext, id: string, fnName: string, deduplicated: boolean) {
    this.#client = client;
    this.id = id;
    this.fnName = fnName;
    this.deduplicated = deduplicated;
  }

  static {
    createHandle = (client, id, fnName, deduplicated) =>
      new TaskHandle(client, id, fnName, deduplicated);
  }

  /**
   * Where the task is now.
   *
   * @example Checking whether a task runs
   * ```ts
   * import { type TaskHandle, TaskStatus } from "@streaq/streaq";
   *
   * export async function isRunning(handle: TaskHandle<unknown>): Promise<boolean> {
   *   return (await handle.status()) === TaskStatus.RUNNING;
   * }
   * ```
   */
  status(): Promise<TaskStatus> {
    return statusById(this.#client, this.id);
  }

  /**
   * Waits for the task to finish and returns its result.
   *
   * @throws {DOMException} Named `"TimeoutError"` when `timeout` passes first.
   * @throws {StreaqError} When the task does not exist: its result expired (or, with `ttl: 0`,
   * was published before the wait began), or Redis lost it.
   *
   * @example Waiting at most five seconds
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function valueOf(handle: TaskHandle<number>): Promise<number> {
   *   const result = await handle.result({ timeout: 5_000 }); // else a TimeoutError
   *   if (!result.success) throw result.exception;
   *   return result.result;
   * }
   * ```
   */
  result(options: ResultOptions = {}): Promise<TaskResult<R>> {
    return resultById<R>(this.#client, this.id, options);
  }

  /**
   * What is known of the task while it waits or runs; null once it finished or if unknown.
   *
   * @example Showing when a waiting task is due
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function dueAt(handle: TaskHandle<unknown>): Promise<string> {
   *   const info = await handle.info();
   *   if (!info) return "finished or unknown";
   *   return info.scheduled?.toISOString() ?? "due now";
   * }
   * ```
   */
  info(): Promise<TaskInfo | null> {
    return infoById(this.#client, this.id);
  }

  /**
   * Reads the latest progress the task reported through `taskContext().progress()`, in one
   * `HGET`: a number 0–100 or any value its codec encoded.
   *
   * @returns The value, or undefined if the task has reported none, has finished (the value
   * goes with the task) or is unknown.
   *
   * @example Polling a task's progress
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function showProgress(handle: TaskHandle<unknown>): Promise<void> {
   *   const progress = await handle.progress();
   *   if (typeof progress === "number") console.log(`${handle.id}: ${progress}%`);
   * }
   * ```
   */
  progress(): Promise<unknown> {
    return progressById(this.#client, this.id);
  }

  /**
   * Reads the log lines the task wrote with `taskContext().log()`, oldest first: its newest 100
   * lines, each with its time and try, kept as long as its result (also after a failure).
   *
   * @returns The lines; empty if it wrote none, or they expired with its result.
   *
   * @example Showing what a failed task logged
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function explain(handle: TaskHandle<unknown>): Promise<void> {
   *   const result = await handle.result({ timeout: 60_000 });
   *   if (result.success) return;
   *   for (const line of await handle.logs()) console.error(`[try ${line.tries}] ${line.message}`);
   * }
   * ```
   */
  logs(): Promise<TaskLogLine[]> {
    return logsById(this.#client, this.id);
  }

  /**
   * Aborts the task and waits up to `timeout` for it to be cancelled.
   *
   * @returns True once the task is cancelled (a `StreaqCancelled` outcome, kept or, with
   * `ttl: 0`, only published); false if it finished otherwise, is unknown, or the wait ran out
   * (the request then stays in force).
   *
   * @example Cancelling a task
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function cancel(handle: TaskHandle<unknown>): Promise<void> {
   *   const cancelled = await handle.abort({ timeout: 2_000 });
   *   if (!cancelled) console.warn(`task ${handle.id} was not cancelled`);
   * }
   * ```
   */
  abort(options: AbortOptions = {}): Promise<boolean> {
    return abortById(this.#client, this.id, options);
  }

  /**
   * Reruns the task if it failed: a new try of the same id, with its original arguments (see
   * `Worker.retryById`). This handle's `result()` then waits for the new outcome.
   *
   * @returns This handle.
   * @throws {StreaqError} When the task is not failed (queued, scheduled or running, succeeded,
   * unknown or expired) or nothing was kept to rerun it; the message says which.
   *
   * @example Rerunning a failed task once
   * ```ts
   * import type { TaskHandle } from "@streaq/streaq";
   *
   * export async function withOneRerun(handle: TaskHandle<number>): Promise<number> {
   *   let result = await handle.result({ timeout: 5_000 });
   *   if (!result.success) {
   *     await handle.retry();
   *     result = await handle.result({ timeout: 5_000 });
   *   }
   *   if (!result.success) throw result.exception;
   *   return result.result;
   * }
   * ```
   */
  async retry(): Promise<TaskHandle<R>> {
    await retryById(this.#client, this.id);
    return this;
  }

  /**
   * Stops a task enqueued with a crontab `schedule` from repeating, including its occurrence
   * already waiting or queued; a running occurrence finishes.
   *
   * @returns True if the task was repeating.
   *
   * @example Stopping a repeating task
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const poll = worker.task(async function poll(): Promise<void> {});
   *
   * export async function pollFor(ms: number): Promise<boolean> {
   *   const handle = await poll.enqueue().start({ schedule: "* * * * * *" });
   *   await new Promise((resolve) => setTimeout(resolve, ms));
   *   return await handle.unschedule(); // true: it was repeating
   * }
   * ```
   */
  unschedule(): Promise<boolean> {
    return unscheduleById(this.#client, this.id);
  }
}
