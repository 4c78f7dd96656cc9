/**
 * Retry policies: their checks at registration and worker construction, and the one decision a
 * worker makes when a task's function throws: fail now, or retry after how long. The decision
 * runs in the worker; its due time goes to Redis in the completion's "retry" outcome.
 *
 * @module
 */

import type { ErrorClass, RetryBackoff, RetryJitter, RetryPolicy } from "../retry_options.ts";
import { describeError, StreaqCancelled, StreaqError, StreaqRetry } from "../errors.ts";
import { checkDuration, checkInteger, describe } from "../_validate.ts";
import type { Due } from "../redis/_redis_time.ts";

const POLICY_KEYS = ["attempts", "backoff", "retryOn"];
const BACKOFF_KEYS = {
  fixed: ["type", "delay", "jitter"],
  exponential: ["type", "delay", "max", "jitter"],
};
const JITTERS: readonly RetryJitter[] = ["none", "full", "equal"];

/**
 * Throws a TypeError or RangeError naming the part of `retry` that is wrong; `maxTries` is the
 * task's own, which `retry.attempts` cannot be given with.
 */
export function checkRetryPolicy(where: string, retry: unknown, maxTries?: unknown): void {
  if (retry === undefined) return;
  if (!isPlainObject(retry)) {
    throw new TypeError(
      `Cannot ${where} as 'retry' must be an object with attempts, backoff or retryOn: received ${
        describe(retry)
      }`,
    );
  }
  checkKeys(where, "retry", retry, POLICY_KEYS);
  const { attempts, backoff, retryOn } = retry as RetryPolicy;
  checkInteger(where, "retry.attempts", attempts, 1);
  if (attempts !== undefined && maxTries !== undefined) {
    throw new TypeError(
      `Cannot ${where} as 'maxTries' and 'retry.attempts' are two spellings of one budget, give one: received maxTries ${
        describe(maxTries)
      } and retry.attempts ${describe(attempts)}`,
    );
  }
  checkBackoff(where, backoff);
  if (retryOn === undefined || typeof retryOn === "function") return;
  if (!Array.isArray(retryOn)) {
    throw new TypeError(
      `Cannot ${where} as 'retry.retryOn' must be an array of error classes or a predicate function: received ${
        describe(retryOn)
      }`,
    );
  }
  retryOn.forEach((c: unknown, i) => {
    // A class has a prototype object; an arrow function (a predicate put in a list) has none.
    if (typeof c !== "function" || typeof c.prototype !== "object") {
      throw new TypeError(
        `Cannot ${where} as 'retry.retryOn[${i}]' must be an error class (such as TypeError): received ${
          describe(c)
        }`,
      );
    }
  });
}

function checkBackoff(where: string, backoff: unknown): void {
  if (backoff === undefined || typeof backoff === "function") return;
  if (typeof backoff === "number") return checkDuration(where, "retry.backoff", backoff);
  const type = isPlainObject(backoff) ? (backoff as { type?: unknown }).type : undefined;
  if (type !== "fixed" && type !== "exponential") {
    throw new TypeError(
      `Cannot ${where} as 'retry.backoff' must be milliseconds, { type: "fixed" | "exponential", delay, ... } or a function: received ${
        describe(backoff)
      }`,
    );
  }
  const b = backoff as { delay?: unknown; max?: unknown; jitter?: unknown };
  checkKeys(where, "retry.backoff", b, BACKOFF_KEYS[type]);
  if (b.delay === undefined) {
    throw new TypeError(
      `Cannot ${where} as 'retry.backoff.delay' is required with type "${type}": received none`,
    );
  }
  checkDuration(where, "retry.backoff.delay", b.delay);
  checkDuration(where, "retry.backoff.max", b.max, { min: b.delay as number });
  if (b.jitter !== undefined && !JITTERS.includes(b.jitter as RetryJitter)) {
    throw new TypeError(
      `Cannot ${where} as 'retry.backoff.jitter' must be one of ${JITTERS.join(", ")}: received ${
        describe(b.jitter)
      }`,
    );
  }
}

function checkKeys(where: string, option: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `Cannot ${where} as '${option}.${key}' is not an option: expected one of ${
          known.join(", ")
        }`,
      );
    }
  }
}

function isPlainObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A frozen copy of a checked policy, so that later changes to the caller's object do nothing. */
export function freezeRetryPolicy(retry: RetryPolicy | undefined): RetryPolicy | undefined {
  if (retry === undefined) return undefined;
  const { backoff, retryOn } = retry;
  return Object.freeze({
    ...retry,
    backoff: typeof backoff === "object" ? Object.freeze({ ...backoff }) : backoff,
    retryOn: Array.isArray(retryOn) ? Object.freeze([...retryOn]) : retryOn,
  });
}

/** What a task needs the decision to know about it. */
export interface RetryInput {
  /** `fnName (taskId)`, for messages. */
  readonly label: string;
  /** The number of the try that threw, 1-based. */
  readonly tries: number;
  /** The try budget. */
  readonly maxTries: number;
  /** The task's effective policy, if any. */
  readonly policy: RetryPolicy | undefined;
  /**
   * Whether the function ran in a task thread: errors of classes streaq does not know come back
   * from threads as plain `Error`s with the class's name, so classes are matched by name.
   */
  readonly thread: boolean;
}

/** A failure, or a retry at a due time: what a thrown error becomes. */
export type RetryDecision =
  | { readonly kind: "failure"; readonly error: unknown }
  | { readonly kind: "retry"; readonly due: Due; readonly reason: string };

/**
 * What an error thrown by a task's function leads to: a `StreaqRetry`, or an error its policy
 * matches, retries within the budget, else the task fails (on the last try, with a StreaqError
 * naming the tries whose `cause` is the error). `random` is injected by tests of jitter.
 */
export function decideRetry(
  input: RetryInput,
  error: unknown,
  random: () => number = Math.random,
): RetryDecision {
  const { label, tries, maxTries, policy } = input;
  const requested = error instanceof StreaqRetry;
  if (!requested) {
    if (!policy || error instanceof StreaqCancelled) return { kind: "failure", error };
    let matches: boolean;
    try {
      matches = policyMatches(policy, error, input.thread);
    } catch (thrown) {
      return policyFailure(input, "'retry.retryOn' predicate threw", thrown, error);
    }
    if (!matches) return { kind: "failure", error };
  }
  if (tries >= maxTries) {
    const message = requested
      ? `Task ${label} asked for a retry on its last allowed try (${tries} of maxTries ${maxTries}): ${
        (error as StreaqRetry).message
      }`
      : `Task ${label} failed after ${tries} ${
        tries === 1 ? "try" : "tries"
      } (maxTries ${maxTries}); last error: ${describeError(error)}`;
    return { kind: "failure", error: new StreaqError(message, { cause: error }) };
  }
  const reason = requested ? `StreaqRetry: ${error.message}` : describeError(error);
  // A delay counts from Redis's clock when the retry is stored, not from this worker's.
  if (requested && error.schedule) {
    return { kind: "retry", due: { at: error.schedule.getTime() }, reason };
  }
  if (requested && error.delay !== undefined) {
    return { kind: "retry", due: { in: error.delay }, reason };
  }
  if (policy?.backoff === undefined) {
    return { kind: "retry", due: { in: tries ** 2 * 1000 }, reason };
  }
  let delay: unknown;
  try {
    delay = backoffDelay(policy.backoff, tries, error, random);
  } catch (thrown) {
    return policyFailure(input, "'retry.backoff' function threw", thrown, error);
  }
  if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
    return policyFailure(
      input,
      `'retry.backoff' function must return a number of milliseconds ≥ 0: received ${
        describe(delay)
      }`,
      undefined,
      error,
    );
  }
  return { kind: "retry", due: { in: delay }, reason };
}

/** Whether the policy retries `error`: every error without `retryOn`. */
function policyMatches(policy: RetryPolicy, error: unknown, byName: boolean): boolean {
  const { retryOn } = policy;
  if (retryOn === undefined) return true;
  if (typeof retryOn === "function") return Boolean(retryOn(error));
  return retryOn.some((c) => isInstance(error, c, byName));
}

function isInstance(error: unknown, c: ErrorClass, byName: boolean): boolean {
  if (error instanceof c) return true;
  return byName && error instanceof Error && error.name === c.name;
}

/**
 * The wait before the retry after try `tries` (1-based): the back-off's wait for that try, with
 * its jitter drawn from `random` (a number in [0, 1)). A function's return value is passed on
 * unchecked.
 */
export function backoffDelay(
  backoff: RetryBackoff,
  tries: number,
  error: unknown,
  random: () => number = Math.random,
): unknown {
  if (typeof backoff === "number") return backoff;
  if (typeof backoff === "function") return backoff(tries, error);
  const wait = backoff.type === "fixed"
    ? backoff.delay
    : exponentialWait(backoff.delay, tries, (backoff as { max?: number }).max);
  switch (backoff.jitter ?? "none") {
    case "full":
      return Math.round(random() * wait);
    case "equal":
      return Math.round(wait / 2 + random() * (wait / 2));
    default:
      return wait;
  }
}

/** `delay × 2^(tries − 1)`, at most `max`, and finite however many tries. */
function exponentialWait(delay: number, tries: number, max = Number.MAX_SAFE_INTEGER): number {
  return delay === 0 ? 0 : Math.min(delay * 2 ** (tries - 1), max);
}

function policyFailure(
  input: RetryInput,
  what: string,
  thrown: unknown,
  error: unknown,
): RetryDecision {
  const why = thrown === undefined ? what : `${what}: ${describeError(thrown)}`;
  return {
    kind: "failure",
    error: new StreaqError(
      `Task ${input.label} failed on try ${input.tries}: its ${why}; the task threw ${
        describeError(error)
      }`,
      { cause: error },
    ),
  };
}
