/**
 * The throughput shown by `status`: tasks added, started and finished per second, measured at
 * each refresh from the queue's streams, and, where the server cannot say (before Redis 7),
 * from the workers' counters between their heartbeats.
 *
 * Per stream, `XINFO STREAM` `entries-added` counts every entry ever added. A finished task's
 * entry is acknowledged and deleted, so between two samples `added - Δlength` entries finished
 * (or were dropped), and `finished + Δdelivered` were started.
 *
 * @module
 */

import type { HealthRecord } from "../client/queue_reads.ts";

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

/**
 * Throughput from the workers' counters, for a server whose streams do not count added
 * entries: the change between two heartbeats of each worker.
 */
export class ThroughputMeter {
  readonly #last = new Map<string, { at: number; finished: number; rate?: number }>();

  /**
   * Takes the latest health records and returns tasks finished per second: `recent` from the
   * change since each worker's previous heartbeat (undefined until one was seen), `average`
   * since the workers started.
   */
  update(workers: readonly HealthRecord[]): { recent?: number; average?: number } {
    let recent: number | undefined;
    let finishedTotal = 0;
    let upTotal = 0;
    const seen = new Set<string>();
    for (const health of workers) {
      seen.add(health.id);
      const finished = finishedOf(health);
      finishedTotal += finished;
      upTotal += Math.max(0, health.heartbeatAt - health.startedAt);
      const last = this.#last.get(health.id);
      let rate = last?.rate;
      if (last && health.heartbeatAt > last.at) {
        rate = (finished - last.finished) / ((health.heartbeatAt - last.at) / 1000);
      }
      if (!last || health.heartbeatAt > last.at) {
        this.#last.set(health.id, { at: health.heartbeatAt, finished, rate });
      }
      if (rate !== undefined) recent = (recent ?? 0) + rate;
    }
    for (const id of this.#last.keys()) if (!seen.has(id)) this.#last.delete(id);
    // Each worker's own average, summed: total finished over the mean uptime.
    const average = upTotal > 0 ? finishedTotal / (upTotal / workers.length / 1000) : undefined;
    return { recent, average };
  }
}

function finishedOf(health: HealthRecord): number {
  const c = health.counters;
  return (c.completed ?? 0) + (c.failed ?? 0) + (c.aborted ?? 0);
}
