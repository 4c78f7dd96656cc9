/**
 * The worker's live numbers: every second, if anything it reports changed since its last
 * write (tasks running, outcome counters), a worker writes its health record and the
 * per-minute counts of its new outcomes (see `metrics.ts`) in one pipeline. So the dashboard,
 * `streaq status` and `worker.metrics()` trail what happened by about a second, not by a
 * heartbeat (a third of `idleTimeout`, 20 s by default).
 *
 * A task pays no Redis write for it: outcomes are counted in memory, and a busy worker sends
 * one pipeline per second whatever its throughput. An idle worker whose numbers did not change
 * sends nothing; its heartbeat still refreshes the record (see `heartbeat_timer.ts`).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { WorkerLogger } from "../logger.ts";
import type { Counters } from "./execute.ts";
import type { FunctionStats } from "./function_stats.ts";
import { type HealthRecord, hostName } from "./heartbeat.ts";
import { MinuteMetrics } from "./metrics.ts";

/** How often a worker writes its live numbers when they changed (ms). */
export const LIVE_FLUSH_INTERVAL = 1_000;

/** What the live flush needs from its run. */
export interface LiveFlushOptions {
  readonly client: QueueContext;
  readonly workerId: string;
  readonly concurrency: number;
  /** How long the health record lives without being written again (ms). */
  readonly healthTtl: number;
  /** The worker's counters, for the health record and the per-minute counts. */
  readonly counters: Counters;
  /** The worker's per-function counts and timings, for the health record. */
  readonly stats: FunctionStats;
  /** Number of tasks running now. */
  readonly running: () => number;
  readonly logger: WorkerLogger;
  /** Time between two flushes (ms). */
  readonly interval?: number;
}

/** Writes a run's health record and per-minute counts within a second of a change. */
export class LiveFlush {
  readonly #options: LiveFlushOptions;
  readonly #startedAt: number;
  readonly #metrics: MinuteMetrics;
  /** What the last health record written said (see `reportOf`). */
  #written: string;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  #failing = false;

  /** Notes the start of the run, and the counters as they are now (earlier runs aside). */
  constructor(options: LiveFlushOptions) {
    this.#options = options;
    this.#startedAt = options.client.now();
    this.#metrics = new MinuteMetrics(options.counters);
    this.#written = this.#report();
  }

  /** The worker's health record as of now. */
  health(): HealthRecord {
    const { client, workerId, concurrency, counters, stats, running } = this.#options;
    return {
      id: workerId,
      queue: client.keys.queueName,
      host: hostName(),
      pid: Deno.pid,
      concurrency,
      startedAt: this.#startedAt,
      heartbeatAt: client.now(),
      running: running(),
      counters: { ...counters },
      functions: stats.snapshot(),
    };
  }

  /** Notes that `record` was written by someone else (the worker id claim, a heartbeat). */
  written(record: HealthRecord): void {
    this.#written = reportOf(record.running, record.counters);
  }

  /** Notes the counters' changes in the current minute; called after each outcome written. */
  noteOutcomes(): void {
    this.#metrics.observe(this.#options.counters, this.#options.client.now());
  }

  #report(): string {
    return reportOf(this.#options.running(), this.#options.counters);
  }

  /** Flushes every `interval` ms, when something changed, until {@linkcode LiveFlush.stop}. */
  start(): void {
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      if (this.#report() !== this.#written || this.#metrics.pending) {
        this.#inFlight = this.flush();
        await this.#inFlight;
        this.#inFlight = undefined;
      }
      // stop() clears the timer; one armed after it (a flush was in flight) is not wanted.
      if (this.#timer === undefined && !this.#stopped) this.start();
    }, this.#options.interval ?? LIVE_FLUSH_INTERVAL);
  }

  /** Stops the timer and waits for a flush in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /**
   * Writes the health record (unless `health` is false, at shutdown) and the pending
   * per-minute counts in one round trip. A failure is logged once until a flush succeeds;
   * counts that could not be written stay pending for the next flush.
   */
  async flush({ health = true } = {}): Promise<void> {
    const { client, workerId, healthTtl, logger, counters } = this.#options;
    const record = health ? this.health() : undefined;
    const batch = this.#metrics.take(counters, client.now());
    if (!record && batch.size === 0) return;
    const pipeline = client.redis.pipeline();
    if (record) {
      pipeline.set(client.keys.health(workerId), JSON.stringify(record), "PX", healthTtl);
    }
    MinuteMetrics.write(pipeline, client.keys, batch);
    try {
      const replies = await pipeline.exec() ?? [];
      for (const [error] of replies) if (error) throw error;
      if (record) this.written(record);
      if (this.#failing) logger.info("live numbers written again");
      this.#failing = false;
    } catch (error) {
      this.#metrics.restore(batch);
      // Redis down: one line, not one a second (the fetch loop reports the outage too).
      if (!this.#failing) {
        logger.error(`writing live numbers failed: ${(error as Error)?.message ?? error}`);
      }
      this.#failing = true;
    }
  }
}

/**
 * What a health record says that changes as tasks run: tasks running and the counters (the
 * per-function counts change with them). Compared each second, so it is kept cheap.
 */
function reportOf(running: number, c: Readonly<Record<string, number>>): string {
  return `${running} ${c.completed} ${c.failed} ${c.aborted} ${c.retried} ${c.relinquished}`;
}
