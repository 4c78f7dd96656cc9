/**
 * The messages between the main thread and a task thread.
 *
 * @module
 */

import type { TaskContext } from "../../context.ts";

/** Set on `globalThis` inside a task thread: `worker.run()` does nothing there. */
export const THREAD_FLAG = "__streaqTaskThread";

/** True inside a task thread. */
export function inTaskThread(): boolean {
  return (globalThis as Record<string, unknown>)[THREAD_FLAG] === true;
}

/** A call of a task function, sent to a thread. */
export interface ThreadRequest {
  /** Pairs the reply with the call. */
  readonly call: number;
  /** The module that registered the task; the thread imports it. */
  readonly moduleUrl: string;
  readonly fnName: string;
  /** The arguments, encoded by the default codec. */
  readonly args: string;
  /** The task's context without its signal and its methods, which cannot cross threads. */
  readonly context: Omit<TaskContext, "signal" | "dependencyResults" | "progress" | "log">;
}

/** The outcome of a call, sent back: the value or the plain error, encoded. */
export type ThreadReply =
  | { readonly call: number; readonly ok: true; readonly value: string }
  | { readonly call: number; readonly ok: false; readonly error: string };
