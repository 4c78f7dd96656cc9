/**
 * The throughput shown by `status`: tasks finished per second from the per-minute outcome
 * counts (the counters the overview's "last hour" adds up, written by each worker within a
 * second), and tasks added and started per second, measured at each refresh from the queue's
 * streams where the server can say (Redis 7 and later).
 *
 * Per stream, `XINFO STREAM` `entries-added` counts every entry ever added. A finished task's
 * entry is acknowledged and deleted, so between two samples `added - Δlength` entries left the
 * stream, and that plus `Δdelivered` were started.
 *
 * @module
 */

import type { MinuteCounts } from "../client/queue_reads.ts";

/** What a sample needs of each priority's stream (see `PriorityStatus`). */
export interface StreamCounts {
  readonly queued: number;
  readonly delivered: number;
  readonly added?: number;
}

/** Tasks per second. */
export interface Rates {
  readonly added: number;
  readonly started: number;
  readonly finished: number;
}

/** The rates over the last refresh and over the last {@linkcode WINDOW} ms. */
export interface StreamThroughput {
  readonly last?: Rates;
  readonly window?: Rates;
  /** The span of `window` in ms (shorter while the view has just started). */
  readonly windowMs?: number;
}

interface Sample {
  readonly at: number;
  readonly added: number;
  readonly length: number;
  readonly delivered: number;
}

/** How far back the smoothed rate looks (ms). */
export const WINDOW = 10_000;

/** Rates from successive samples of the streams. */
export class StreamRates {
  #samples: Sample[] = [];

  /**
   * Adds a sample taken at `at` and returns the rates since the previous one and over the
   * window; nothing when the server does not count added entries (before Redis 7).
   */
  update(at: number, streams: readonly StreamCounts[]): StreamThroughput | undefined {
    if (streams.some((s) => s.added === undefined)) {
      this.#samples = [];
      return undefined;
    }
    const sample = {
      at,
      added: streams.reduce((sum, s) => sum + s.added!, 0),
      length: streams.reduce((sum, s) => sum + s.queued + s.delivered, 0),
      delivered: streams.reduce((sum, s) => sum + s.delivered, 0),
    };
    const previous = this.#samples.at(-1);
    // A stream deleted and created again counts from zero: start over.
    if (previous && (sample.added < previous.added || sample.at <= previous.at)) this.#samples = [];
    this.#samples.push(sample);
    while (this.#samples.length > 2 && at - this.#samples[1].at >= WINDOW) this.#samples.shift();
    if (this.#samples.length < 2) return {};
    const first = this.#samples[0];
    return {
      last: rates(this.#samples.at(-2)!, sample),
      window: rates(first, sample),
      windowMs: sample.at - first.at,
    };
  }
}

function rates(from: Sample, to: Sample): Rates {
  const seconds = (to.at - from.at) / 1000;
  const added = to.added - from.added;
  const finished = Math.max(0, added - (to.length - from.length));
  const started = Math.max(0, finished + (to.delivered - from.delivered));
  return { added: added / seconds, started: started / seconds, finished: finished / seconds };
}

/** Tasks finished per second, over the last refresh and over the last {@linkcode WINDOW} ms. */
export interface FinishedThroughput {
  readonly last?: number;
  readonly window?: number;
  /** The span of `window` in ms (shorter while the view has just started). */
  readonly windowMs?: number;
}

interface MinutesSample {
  readonly at: number;
  /** Finished tasks (completed, failed, aborted) by the minute's start. */
  readonly finished: ReadonlyMap<number, number>;
}

/**
 * Tasks finished per second from the per-minute outcome counts, the counters behind "finished
 * in the last hour": between two samples, the growth of each minute both have, plus the minutes
 * that are new. A minute's counts only grow, and one leaving the hour is not counted as a drop.
 */
export class FinishedRates {
  #samples: MinutesSample[] = [];

  /** Adds a sample of the minutes taken at `at`, and returns the rates. */
  update(at: number, minutes: readonly MinuteCounts[]): FinishedThroughput {
    const finished = new Map(minutes.map((m) => [m.start, finishedIn(m)]));
    const previous = this.#samples.at(-1);
    if (previous && at <= previous.at) this.#samples = [];
    this.#samples.push({ at, finished });
    while (this.#samples.length > 2 && at - this.#samples[1].at >= WINDOW) this.#samples.shift();
    if (this.#samples.length < 2) return {};
    const first = this.#samples[0];
    const sample = this.#samples.at(-1)!;
    return {
      last: finishedRate(this.#samples.at(-2)!, sample),
      window: finishedRate(first, sample),
      windowMs: sample.at - first.at,
    };
  }
}

function finishedIn(m: MinuteCounts): number {
  return (m.completed || 0) + (m.failed || 0) + (m.aborted || 0);
}

function finishedRate(from: MinutesSample, to: MinutesSample): number {
  let finished = 0;
  for (const [minute, n] of to.finished) {
    finished += Math.max(0, n - (from.finished.get(minute) ?? 0));
  }
  return finished / ((to.at - from.at) / 1000);
}
