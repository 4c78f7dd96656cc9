/**
 * What each library implements for the benchmark: the same cases, timed with a
 * {@linkcode Meter} on the same private Redis.
 *
 * @module
 */

import type { RedisServer } from "../tests/_redis.ts";
import type { Meter } from "./_meter.ts";

/** The Redis server of the run and the meter of the current case. */
export interface CaseContext {
  readonly redis: RedisServer;
  readonly meter: Meter;
}

/** Options of {@linkcode Contender.drain}. */
export interface DrainOptions {
  /**
   * streaq's workers write the queue's events stream (the `events` option). BullMQ has no such
   * switch: it writes its events stream in every case.
   */
  readonly events?: boolean;
}

/** A queue-wide rate limit: at most `max` task starts per `duration` milliseconds. */
export interface RateLimit {
  readonly max: number;
  readonly duration: number;
}

/**
 * One library under test. Every case uses a fresh queue on an emptied Redis, starts the clock
 * with `meter.start()` right before the timed part and stops it right after, and closes every
 * connection it opened before it returns.
 */
export interface Contender {
  readonly name: string;
  /** Enqueues `tasks` no-op tasks, each awaited before the next. */
  enqueueOneByOne(ctx: CaseContext, tasks: number): Promise<void>;
  /** Enqueues `tasks` no-op tasks, all started at once and awaited together. */
  enqueueConcurrently(ctx: CaseContext, tasks: number): Promise<void>;
  /** Enqueues `tasks` no-op tasks with the library's batch call. */
  enqueueBatch(ctx: CaseContext, tasks: number): Promise<void>;
  /**
   * Same as `enqueueBatch`, each task with its own deduplication key (streaq's `dedupe` start
   * option in its default mode, BullMQ's `deduplication: { id }`): every key is new, so every
   * task is stored along with its key, the costliest case.
   */
  enqueueBatchDeduplicated(ctx: CaseContext, tasks: number): Promise<void>;
  /** Same as `enqueueBatch`, each task with its own id (streaq's `id`, BullMQ's `jobId`). */
  enqueueBatchWithIds(ctx: CaseContext, tasks: number): Promise<void>;
  /**
   * Stores `tasks` no-op tasks (untimed, after `meter.baseline()`), then times one in-process
   * worker from its start until the last outcome is written. Results are kept.
   */
  drain(
    ctx: CaseContext,
    tasks: number,
    concurrency: number,
    options?: DrainOptions,
  ): Promise<void>;
  /**
   * Same as `drain` with the library's queue-wide rate limit on the tasks (streaq's `limit`
   * task option, BullMQ's worker `limiter`).
   */
  rateLimitedDrain(
    ctx: CaseContext,
    tasks: number,
    concurrency: number,
    limit: RateLimit,
  ): Promise<void>;
  /**
   * Same as `drain` with the tasks in `groups` groups, stored group after group (the worst
   * order for first in, first out), one task of each group at a time, groups taking turns.
   * Absent when the library has no groups (in BullMQ they are a feature of BullMQ Pro).
   */
  groupedDrain?(
    ctx: CaseContext,
    tasks: number,
    groups: number,
    concurrency: number,
  ): Promise<void>;
  /** Same as `drain` with tasks that sleep `sleepMs` each. */
  sleep(ctx: CaseContext, tasks: number, concurrency: number, sleepMs: number): Promise<void>;
  /**
   * Enqueue-to-result latencies (sorted, ms) against an idle worker in another process; the
   * meter runs over the measured samples, not the warm-up.
   */
  latency(ctx: CaseContext, samples: number, warmup: number): Promise<number[]>;
  /**
   * How late delayed tasks start: `tasks` no-op tasks due at times spread evenly over
   * `spreadMs`, starting half a second from now, on an idle in-process worker of concurrency
   * {@linkcode LATENESS_CONCURRENCY}. The meter runs from the enqueue until every task ran.
   *
   * @returns Start time minus due time per task (sorted, ms).
   */
  lateness(ctx: CaseContext, tasks: number, spreadMs: number): Promise<number[]>;
  /** Drains `tasks` no-op tasks with `workers` worker processes of `concurrency` each. */
  processes(ctx: CaseContext, tasks: number, workers: number, concurrency: number): Promise<void>;
}

/** The concurrency of the worker that runs the delayed tasks of the lateness case. */
export const LATENESS_CONCURRENCY = 64;

/**
 * Resolves once `done()` holds, checking every millisecond; rejects when `failure()` names a
 * problem or `running` (the worker's run) settles first.
 */
export async function waitUntil(
  done: () => boolean,
  running: Promise<unknown>,
  failure: () => string | undefined,
): Promise<void> {
  let ended = false;
  running.then(() => (ended = true), () => (ended = true));
  while (!done()) {
    await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 1))]);
    const problem = failure() ?? (ended ? "the worker stopped early" : undefined);
    if (problem !== undefined && !done()) throw new Error(problem);
  }
}
