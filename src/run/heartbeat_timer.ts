/**
 * The worker's pulse: every third of `idleTimeout` it sends a heartbeat for the deliveries it
 * holds (see `heartbeat.ts`), lets go of those another worker took over, cancels tasks whose
 * abort the pub/sub message may have missed, and flushes the per-minute metrics (see
 * `metrics.ts`). It also makes the worker's health record, and deletes it at shutdown.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { Delivery } from "./fetch.ts";
import type { Counters } from "./execute.ts";
import type { FunctionStats } from "./function_stats.ts";
import { type HealthRecord, heartbeat, hostName } from "./heartbeat.ts";
import type { WorkerLogger } from "../logger.ts";
import { MinuteMetrics } from "./metrics.ts";
import type { OnRedisError } from "./redis_errors.ts";
import type { StopFlag } from "./shutdown.ts";

/** What a heartbeat needs from the slots (see `src/run/slots.ts`). */
export interface HeldDeliveries {
  /** Number of tasks running now. */
  readonly runningCount: number;
  /** The entry ids of the deliveries held (running and buffered), by stream. */
  held(): Map<string, string[]>;
  /** The task ids of the running tasks. */
  runningTaskIds(): string[];
  /** Lets go of the deliveries (`Delivery.key`) another worker took over. */
  dropLost(lost: ReadonlySet<Delivery["key"]>): void;
}

/** What the heartbeat timer needs from its run. */
export interface HeartbeatTimerOptions {
  readonly client: QueueContext;
  readonly workerId: string;
  readonly concurrency: number;
  /** A heartbeat goes every third of it; the health record lives twice as long. */
  readonly idleTimeout: number;
  /** The worker's counters, for the health record and the metrics. */
  readonly counters: Counters;
  /** The worker's per-function counts and timings, for the health record. */
  readonly stats: FunctionStats;
  readonly logger: WorkerLogger;
  readonly slots: HeldDeliveries;
  readonly stop: StopFlag;
  /** Told of each running task whose abort was requested. */
  readonly onAbortRequested: (taskId: string) => void;
  readonly onRedisError: OnRedisError;
}

/** Sends a run's heartbeats and flushes its metrics, until stopped. */
export class HeartbeatTimer {
  readonly #options: HeartbeatTimerOptions;
  readonly #startedAt: number;
  readonly #metrics: MinuteMetrics;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Notes the start of the run, and the counters as they are now (earlier runs aside). */
  constructor(options: HeartbeatTimerOptions) {
    this.#options = options;
    this.#startedAt = options.client.now();
    this.#metrics = new MinuteMetrics(options.counters);
  }

  /** Schedules the next heartbeat; each one schedules the next unless the run is stopping. */
  start(): void {
    this.#timer = setTimeout(async () => {
      await this.#beat();
      if (!this.#options.stop.stopping) this.start();
    }, this.#options.idleTimeout / 3);
  }

  /** Cancels the next heartbeat (one in flight still completes). */
  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Notes the counters' changes in the current minute; called after each outcome written. */
  noteOutcomes(): void {
    this.#metrics.observe(this.#options.counters, this.#options.client.now());
  }

  /** The worker's health record as of now. */
  health(): HealthRecord {
    const { client, workerId, concurrency, counters, stats, slots } = this.#options;
    return {
      id: workerId,
      queue: client.keys.queueName,
      host: hostName(),
      pid: Deno.pid,
      concurrency,
      startedAt: this.#startedAt,
      heartbeatAt: client.now(),
      running: slots.runningCount,
      counters: { ...counters },
      functions: stats.snapshot(),
    };
  }

  /** Writes the per-minute counts of outcomes noted since the last flush (see metrics.ts). */
  async flushMetrics(): Promise<void> {
    try {
      await this.#metrics.flush(this.#options.client, this.#options.counters);
    } catch (error) {
      this.#options.logger.error(`metrics flush failed: ${(error as Error)?.message ?? error}`);
    }
  }

  /** Deletes the health record, at the end of the run; a failure is ignored (it expires). */
  async removeHealthRecord(): Promise<void> {
    const { client, workerId } = this.#options;
    await client.redis.del(client.keys.health(workerId)).catch(() => {});
  }

  async #beat(): Promise<void> {
    const { client, workerId, idleTimeout, slots } = this.#options;
    try {
      const beat = await heartbeat(
        client,
        workerId,
        slots.held(),
        slots.runningTaskIds(),
        this.health(),
        idleTimeout * 2,
      );
      slots.dropLost(beat.lost);
      for (const id of beat.aborting) this.#options.onAbortRequested(id);
    } catch (error) {
      this.#options.onRedisError("heartbeat", error);
    }
    await this.flushMetrics();
  }
}
