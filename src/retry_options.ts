/**
 * The retry policy of a task or a worker, the `retry` option: which errors a task retries by
 * itself, how often, and how long it waits in between (see `src/run/retry_policy.ts` for how
 * the worker applies it).
 *
 * @module
 */

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
