/**
 * Per-minute outcome counts of a queue, for dashboards: how many tasks completed, failed, were
 * aborted or retried in each minute. Each minute is a hash `streaq:{queue}:metrics:<minute>`
 * (minutes since the epoch) that expires two hours after its last write, so the data stays
 * bounded without any clean-up.
 *
 * A worker does not write per task: it notes its counters as tasks finish, attributing each
 * change to the minute it happened in, and writes the changes within a second, with its
 * health record (see `live_flush.ts`), and at shutdown: `HINCRBY`s in one pipeline.
 *
 * @module
 */

import type { ChainableCommander } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import type { Keys } from "../redis/keys.ts";
import type { WorkerCounters } from "./execute.ts";

/** The counters kept per minute. */
export const METRIC_FIELDS = ["completed", "failed", "aborted", "retried"] as const;

/** One of {@linkcode METRIC_FIELDS}. */
export type MetricField = typeof METRIC_FIELDS[number];

/** How long a minute's counts are kept after its last write, in seconds: two hours. */
export const METRICS_TTL_SECONDS = 7_200;

const MINUTE = 60_000;

/** The counts of one minute. */
export interface MinuteCounts {
  /** Start of the minute (ms since the epoch). */
  readonly start: number;
  /** Tasks that succeeded. */
  readonly completed: number;
  /** Tasks that failed, aborted ones aside. */
  readonly failed: number;
  /** Tasks that failed because they were aborted. */
  readonly aborted: number;
  /** Tries that ended in a retry. */
  readonly retried: number;
}

type Deltas = Record<MetricField, number>;

/** Changes taken from {@linkcode MinuteMetrics}, by minute (minutes since the epoch). */
export type MinuteBatch = Map<number, Readonly<Deltas>>;

/** Changes of a worker's counters by minute, waiting to be flushed to Redis. */
export class MinuteMetrics {
  readonly #pending = new Map<number, Deltas>();
  #last: Deltas;

  /** Starts from the counters as they are now: earlier outcomes are not counted again. */
  constructor(counters: WorkerCounters) {
    this.#last = pick(counters);
  }

  /** Notes the changes of `counters` since the last call, in the current minute. */
  observe(counters: WorkerCounters, now: number = Date.now()): void {
    const current = pick(counters);
    const minute = Math.floor(now / MINUTE);
    let deltas = this.#pending.get(minute);
    for (const field of METRIC_FIELDS) {
      const delta = current[field] - this.#last[field];
      if (delta === 0) continue;
      deltas ??= { completed: 0, failed: 0, aborted: 0, retried: 0 };
      deltas[field] += delta;
    }
    if (deltas) this.#pending.set(minute, deltas);
    this.#last = current;
  }

  /** Whether changes wait to be written. */
  get pending(): boolean {
    return this.#pending.size > 0;
  }

  /**
   * Notes the latest changes and takes all pending ones, to be written with
   * {@linkcode MinuteMetrics.write}; counts older than those kept are dropped.
   */
  take(counters: WorkerCounters, now: number): MinuteBatch {
    this.observe(counters, now);
    const oldest = Math.floor(now / MINUTE) - METRICS_TTL_SECONDS / 60;
    const batch: MinuteBatch = new Map();
    for (const [minute, deltas] of this.#pending) if (minute >= oldest) batch.set(minute, deltas);
    this.#pending.clear();
    return batch;
  }

  /** Puts back changes taken but not written, for the next flush. */
  restore(batch: MinuteBatch): void {
    for (const [minute, deltas] of batch) this.#merge(minute, deltas);
  }

  /** Adds the writes of `batch` to `pipeline`: a `HINCRBY` per changed count, an `EXPIRE` per minute. */
  static write(pipeline: ChainableCommander, keys: Keys, batch: MinuteBatch): void {
    for (const [minute, deltas] of batch) {
      const key = keys.metrics(minute);
      for (const field of METRIC_FIELDS) {
        if (deltas[field] !== 0) pipeline.hincrby(key, field, deltas[field]);
      }
      pipeline.expire(key, METRICS_TTL_SECONDS);
    }
  }

  #merge(minute: number, deltas: Readonly<Deltas>): void {
    const pending = this.#pending.get(minute);
    if (!pending) return void this.#pending.set(minute, { ...deltas });
    for (const field of METRIC_FIELDS) pending[field] += deltas[field];
  }
}

function pick(counters: WorkerCounters): Deltas {
  return {
    completed: counters.completed,
    failed: counters.failed,
    aborted: counters.aborted,
    retried: counters.retried,
  };
}

/**
 * The counts of the last `minutes` minutes of a queue, oldest first, the current minute last;
 * minutes without data count zero.
 */
export async function readMetrics(
  client: QueueContext,
  minutes = 60,
  now: number = client.now(),
): Promise<MinuteCounts[]> {
  const current = Math.floor(now / MINUTE);
  const range = Array.from({ length: minutes }, (_, i) => current - minutes + 1 + i);
  const pipeline = client.redis.pipeline();
  for (const minute of range) pipeline.hmget(client.keys.metrics(minute), ...METRIC_FIELDS);
  const replies = await pipeline.exec() ?? [];
  return range.map((minute, i) => {
    const [error, values] = replies[i];
    if (error) throw error;
    const [completed, failed, aborted, retried] = (values as (string | null)[]).map(Number);
    return { start: minute * MINUTE, completed, failed, aborted, retried };
  });
}
