/**
 * The context of the running task, reachable from anywhere inside it through
 * {@linkcode taskContext}. It travels with the task's async calls by `AsyncLocalStorage`, so
 * tasks running side by side each see their own.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { StreaqError } from "./errors.ts";

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
}

const storage = new AsyncLocalStorage<TaskContext>();

/** Runs `fn` with `context` as the current task context. */
export function runWithContext<T>(context: TaskContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The running task's context, or undefined outside a task. */
export function currentContext(): TaskContext | undefined {
  return storage.getStore();
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
  const context = storage.getStore();
  if (!context) {
    throw new StreaqError(
      "Cannot read the task context outside a running task: taskContext() works only inside a task function, its middleware and what they call",
    );
  }
  return context;
}
