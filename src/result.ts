/**
 * What a caller learns about a task: its {@linkcode TaskStatus}, its {@linkcode TaskInfo}
 * while it waits or runs, and its {@linkcode TaskResult} once it has finished.
 *
 * @module
 */

import { StreaqError } from "./errors.ts";

/**
 * Where a task is: waiting in its stream, running, waiting for a time (delayed, scheduled,
 * backing off), finished, or unknown (never enqueued, or finished and its result expired).
 *
 * @example Polling a status
 * ```ts
 * import { TaskStatus } from "@streaq/streaq";
 *
 * export function isPending(status: TaskStatus): boolean {
 *   return status !== TaskStatus.DONE && status !== TaskStatus.NOT_FOUND;
 * }
 * ```
 */
export const TaskStatus = {
  /** In its stream, waiting for a worker. */
  QUEUED: "queued",
  /** Started by a worker and not finished. */
  RUNNING: "running",
  /** Waiting for its due time (delayed, scheduled or backing off before a retry). */
  SCHEDULED: "scheduled",
  /** Finished; the result is kept for the task's `ttl`. */
  DONE: "done",
  /** Unknown: never enqueued, or finished with its result gone. */
  NOT_FOUND: "missing",
} as const;

/** One of the values of {@linkcode TaskStatus}. */
export type TaskStatus = typeof TaskStatus[keyof typeof TaskStatus];

/** Timings and bookkeeping shared by both kinds of {@linkcode TaskResult}. */
export interface TaskResultBase {
  /** The task's id. */
  readonly taskId: string;
  /** The registered name of the task's function. */
  readonly fnName: string;
  /** When the task was first enqueued (ms since the epoch). */
  readonly createdTime: number;
  /** When the task last entered its stream, ready to run (ms since the epoch). */
  readonly enqueueTime: number;
  /** When the last attempt started (ms since the epoch). */
  readonly startTime: number;
  /** When the task finished (ms since the epoch). */
  readonly finishTime: number;
  /** How many attempts were started, 1-based. */
  readonly tries: number;
  /** Id of the worker that wrote this result. */
  readonly workerId: string;
}

/** The result of a task that returned a value. */
export interface TaskSuccess<R> extends TaskResultBase {
  /** Always true here; narrows the type. */
  readonly success: true;
  /** The value the task returned. */
  readonly result: R;
  /** Throws a {@linkcode StreaqError}: the task succeeded. */
  readonly exception: never;
}

/** The result of a task that failed. */
export interface TaskFailure extends TaskResultBase {
  /** Always false here; narrows the type. */
  readonly success: false;
  /** Throws a {@linkcode StreaqError} that has the task's exception as its `cause`. */
  readonly result: never;
  /**
   * The error the task failed with, with its original `name`, `message`, `stack` and `cause`;
   * streaq's own errors come back as their classes.
   */
  readonly exception: Error;
}

/**
 * The outcome of a finished task. Check `success` to narrow it, then read `result` or
 * `exception`.
 *
 * @example Reading a result
 * ```ts
 * import type { TaskResult } from "@streaq/streaq";
 *
 * export function show(r: TaskResult<number>): string {
 *   return r.success ? `got ${r.result}` : `failed: ${r.exception.message}`;
 * }
 * ```
 */
export type TaskResult<R> = TaskSuccess<R> | TaskFailure;

/** The fields a worker records when a task finishes, before encoding. */
export interface ResultRecord extends TaskResultBase {
  readonly success: boolean;
  /** The returned value, or the error when `success` is false. */
  readonly value: unknown;
}

/** `exception` of a success, which has none: one getter for every result, not a closure each. */
const NO_EXCEPTION: PropertyDescriptor = {
  enumerable: false,
  get(this: TaskResultBase): never {
    throw new StreaqError(`Task ${this.fnName} (${this.taskId}) succeeded, so it has no exception`);
  },
};

/** `result` of a failure, which has none: the error it throws has the task's as its cause. */
const NO_RESULT: PropertyDescriptor = {
  enumerable: false,
  get(this: TaskResultBase & { readonly exception: unknown }): never {
    const error = this.exception;
    throw new StreaqError(
      `Task ${this.fnName} (${this.taskId}) failed, so it has no result: ${
        (error as Error)?.message
      }`,
      { cause: error },
    );
  },
};

/**
 * Builds a {@linkcode TaskResult} whose wrong-side accessor throws. Field by field, and the
 * right side a plain value: every result a client waits for is made here, and rest, spread and
 * a getter closure per result were most of what a result wait allocated.
 */
export function makeTaskResult<R>(record: ResultRecord): TaskResult<R> {
  const result: Record<string, unknown> = {
    taskId: record.taskId,
    fnName: record.fnName,
    createdTime: record.createdTime,
    enqueueTime: record.enqueueTime,
    startTime: record.startTime,
    finishTime: record.finishTime,
    tries: record.tries,
    workerId: record.workerId,
    success: record.success,
  };
  if (record.success) {
    result.result = record.value;
    Object.defineProperty(result, "exception", NO_EXCEPTION);
  } else {
    result.exception = record.value;
    Object.defineProperty(result, "result", NO_RESULT);
  }
  return Object.freeze(result) as unknown as TaskResult<R>;
}

/**
 * What is known of a task that has not finished: what it runs, with which arguments, and
 * where it is.
 *
 * @example Inspecting a waiting task
 * ```ts
 * import type { TaskInfo } from "@streaq/streaq";
 *
 * export function describeTask(info: TaskInfo): string {
 *   return `${info.fnName}(${info.args.length} args), try ${info.tries}, ${info.status}`;
 * }
 * ```
 */
export interface TaskInfo {
  /** The task's id. */
  readonly taskId: string;
  /** The registered name of the task's function. */
  readonly fnName: string;
  /** When the task was first enqueued (ms since the epoch). */
  readonly createdTime: number;
  /** The arguments it will be (or is being) called with. */
  readonly args: unknown[];
  /** How many attempts have started so far. */
  readonly tries: number;
  /** When it is due, for a delayed, scheduled or backing-off task; otherwise null. */
  readonly scheduled: Date | null;
  /** Ids of the tasks this one waits for. */
  readonly dependencies: string[];
  /** Ids of the tasks waiting for this one. */
  readonly dependents: string[];
  /** Where the task is now. */
  readonly status: TaskStatus;
  /** The priority it runs at. */
  readonly priority: string;
  /** The crontab of a repeating task (a cron job or a crontab schedule); otherwise null. */
  readonly crontab: string | null;
  /**
   * The latest progress the task reported through `taskContext().progress()` (a number 0–100
   * or any encodable value), or undefined if it has not reported any. Reports are written at
   * most every 100 ms, so this may trail the task by that much. A retried task keeps its last
   * try's value until the new try reports.
   */
  readonly progress?: unknown;
  /**
   * Why a queued task does not start now, when something other than a busy queue holds it
   * back: `"paused: the queue is paused"` or `"paused: function <name> is paused"` (see
   * `worker.pause()`), `"waiting for a concurrency slot: every slot of <name> is taken"` or
   * `"rate-limited until <ISO time>: <name> starts at most <max> per <duration> ms"` (the `limit`
   * task option), or `"rate-limited until <ISO time>: <name> reported a rate limit"` (a task threw
   * `StreaqRateLimited`), or `"waiting for a slot of group <key>: behind <N> tasks of its group"`
   * (the `group` option: N tasks of its group hold the group's slots or wait before it); null
   * otherwise.
   */
  readonly waitReason: string | null;
}

/**
 * One line a task wrote with `taskContext().log()`, as `handle.logs()` and `worker.logsById()`
 * return it.
 *
 * @example Printing a task's log
 * ```ts
 * import type { TaskLogLine } from "@streaq/streaq";
 *
 * export function printLog(lines: TaskLogLine[]): void {
 *   for (const { time, tries, message } of lines) {
 *     console.log(`${time.toISOString()} try ${tries}: ${message}`);
 *   }
 * }
 * ```
 */
export interface TaskLogLine {
  /** When the line was written (the worker's clock). */
  readonly time: Date;
  /** The try that wrote it, 1-based. */
  readonly tries: number;
  /** The text; a line longer than 2 KB ends with `… [truncated, N more characters]`. */
  readonly message: string;
}
