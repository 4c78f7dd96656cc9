/**
 * The error classes of streaq. They are small on purpose: {@linkcode StreaqRetry} and
 * {@linkcode StreaqCancelled} carry control flow, {@linkcode StreaqError} is the base of
 * everything streaq itself throws.
 *
 * @module
 */

import { describe } from "./_validate.ts";

/**
 * Base class of every error streaq throws: bad options, a failed lookup, a task that failed
 * for a reason of streaq's own (expired, unknown function, too many tries, ...).
 *
 * @example Telling streaq's errors apart
 * ```ts
 * import { StreaqError } from "@streaq/streaq";
 *
 * try {
 *   throw new StreaqError("Cannot enqueue: unknown priority 'urgent'");
 * } catch (error) {
 *   if (error instanceof StreaqError) console.error(error.message);
 * }
 * ```
 */
export class StreaqError extends Error {
  /**
   * Creates a StreaqError.
   *
   * @param message What went wrong, naming the value that was received.
   * @param options The standard `cause` of the error.
   *
   * @example Wrapping a lower-level error
   * ```ts
   * import { StreaqError } from "@streaq/streaq";
   *
   * export function parsePayload(text: string): unknown {
   *   try {
   *     return JSON.parse(text);
   *   } catch (cause) {
   *     throw new StreaqError(`Cannot decode the payload: received ${text.slice(0, 20)}`, {
   *       cause,
   *     });
   *   }
   * }
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreaqError";
  }
}

/** Options of {@linkcode StreaqRetry}: when the next attempt happens. */
export interface StreaqRetryOptions {
  /**
   * Milliseconds to wait before the next attempt.
   *
   * @default {the back-off of the task's retry policy, else tries² × 1000}
   */
  delay?: number;
  /** A point in time for the next attempt; cannot be combined with `delay`. */
  schedule?: Date;
  /** The standard `cause` of the error. */
  cause?: unknown;
}

/**
 * Throw it from a task to have the task tried again: after `delay` milliseconds, at
 * `schedule`, or by default after its retry policy's back-off, else tries² seconds (1 s, 4 s,
 * 9 s, ...). It retries whatever the policy's `retryOn` says. A task that throws it
 * on its last allowed try (`maxTries`) fails with a {@linkcode StreaqError} whose `cause` is
 * this retry.
 *
 * @example Retrying with back-off
 * ```ts
 * import { StreaqRetry, taskContext } from "@streaq/streaq";
 *
 * export async function fetchPage(url: string): Promise<string> {
 *   const res = await fetch(url);
 *   if (res.status === 503) {
 *     throw new StreaqRetry("busy", { delay: taskContext().tries * 5_000 });
 *   }
 *   return await res.text();
 * }
 * ```
 */
export class StreaqRetry extends StreaqError {
  /** Milliseconds until the next attempt, if given. */
  readonly delay: number | undefined;
  /** The point in time of the next attempt, if given. */
  readonly schedule: Date | undefined;

  /**
   * Creates a StreaqRetry: `new StreaqRetry("busy", { delay: 5_000 })`, or with the options
   * alone, `new StreaqRetry({ delay: 5_000 })`.
   *
   * @param message Why the task is retried (kept as the last reason if it finally fails), or
   * the options.
   * @param options When to try again.
   * @throws {RangeError} If `delay` is negative or not a finite number, or both `delay` and
   * `schedule` are given.
   *
   * @example Retrying at a given time
   * ```ts
   * import { StreaqRetry } from "@streaq/streaq";
   *
   * export function retryTomorrow(): never {
   *   const tomorrow = new Date(Date.now() + 86_400_000);
   *   throw new StreaqRetry("rate limit reached for today", { schedule: tomorrow });
   * }
   * ```
   */
  constructor(
    message: string | StreaqRetryOptions = "retry requested",
    options: StreaqRetryOptions = {},
  ) {
    if (typeof message !== "string") {
      options = message;
      message = "retry requested";
    }
    super(message, { cause: options.cause });
    this.name = "StreaqRetry";
    const { delay, schedule } = options;
    if (delay !== undefined && schedule !== undefined) {
      throw new RangeError(
        `Cannot create StreaqRetry as 'delay' and 'schedule' exclude each other: received delay ${delay} and schedule ${schedule.toISOString()}`,
      );
    }
    if (
      delay !== undefined && !(typeof delay === "number" && Number.isFinite(delay) && delay >= 0)
    ) {
      throw new RangeError(
        `Cannot create StreaqRetry as 'delay' must be a non-negative number of milliseconds: received ${
          String(delay)
        } (${typeof delay})`,
      );
    }
    if (schedule !== undefined && !(schedule instanceof Date && !isNaN(schedule.getTime()))) {
      throw new RangeError(
        `Cannot create StreaqRetry as 'schedule' must be a valid Date: received ${
          String(schedule)
        }`,
      );
    }
    this.delay = delay;
    this.schedule = schedule;
  }
}

/**
 * The failure of a task that was aborted, whether it was waiting or running. A running task
 * sees its `signal` abort with this error as the reason.
 *
 * @example Checking for cancellation
 * ```ts
 * import { StreaqCancelled, type TaskResult } from "@streaq/streaq";
 *
 * export function wasCancelled(result: TaskResult<unknown>): boolean {
 *   return !result.success && result.exception instanceof StreaqCancelled;
 * }
 * ```
 */
export class StreaqCancelled extends StreaqError {
  /**
   * Creates a StreaqCancelled.
   *
   * @param message Which task was cancelled.
   * @param options The standard `cause` of the error.
   *
   * @example The reason a running task's signal aborts with
   * ```ts
   * import { StreaqCancelled } from "@streaq/streaq";
   *
   * const controller = new AbortController();
   * controller.abort(new StreaqCancelled("task 1234 was aborted"));
   * console.log(controller.signal.reason instanceof StreaqCancelled); // true
   * ```
   */
  constructor(message = "task was aborted", options?: ErrorOptions) {
    super(message, options);
    this.name = "StreaqCancelled";
  }
}

/**
 * Thrown inside a task to say that its function met a rate limit at run time, for example an
 * API that answered 429 with `Retry-After`: no worker starts a task of that function for the next
 * `ms` milliseconds, and this task goes back to wait, its try not counted. Unlike
 * {@linkcode StreaqRetry}, it holds the whole function back, on every worker.
 *
 * @example Honouring a 429's Retry-After
 * ```ts
 * import { StreaqRateLimited, Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 *
 * export const callApi = worker.task(async function callApi(path: string): Promise<string> {
 *   const response = await fetch(`https://api.example.com${path}`);
 *   if (response.status === 429) {
 *     throw new StreaqRateLimited(Number(response.headers.get("retry-after") ?? 1) * 1_000);
 *   }
 *   return await response.text();
 * });
 * ```
 */
export class StreaqRateLimited extends StreaqError {
  /** How long no task of the function starts, in milliseconds. */
  readonly ms: number;

  /**
   * Creates a StreaqRateLimited.
   *
   * @param ms How long no task of the function starts, in milliseconds (a finite number ≥ 0).
   * @param message What limited it.
   * @throws {RangeError} If `ms` is negative or not a finite number.
   *
   * @example Waiting a minute
   * ```ts
   * import { StreaqRateLimited } from "@streaq/streaq";
   *
   * export function quotaExceeded(): never {
   *   throw new StreaqRateLimited(60_000, "quota exceeded");
   * }
   * ```
   */
  constructor(ms: number, message = `rate limited for ${ms} ms`) {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot create StreaqRateLimited as 'ms' must be a finite number ≥ 0: received ${
          describe(ms)
        }`,
      );
    }
    super(message);
    this.name = "StreaqRateLimited";
    this.ms = Math.round(ms);
  }
}

/** Creates the `TimeoutError` a task fails with when it runs past its `timeout`. */
export function timeoutError(message: string): DOMException {
  return new DOMException(message, "TimeoutError");
}

/** `Name: message` of anything thrown, for log lines and failure messages. */
export function describeError(error: unknown): string {
  return error instanceof Error || error instanceof DOMException
    ? `${error.name}: ${error.message}`
    : String(error);
}

/** Error classes that come back as themselves when a result is decoded. */
export const KNOWN_ERRORS: Record<string, new (message: string) => Error> = {
  StreaqError,
  StreaqRetry,
  StreaqCancelled,
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};
