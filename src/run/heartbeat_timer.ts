/**
 * The worker's pulse: every third of `idleTimeout` it sends a heartbeat for the deliveries it
 * holds (see `heartbeat.ts`), lets go of those another worker took over, cancels tasks whose
 * abort the pub/sub message may have missed, and refreshes the worker's health record, which
 * it deletes at shutdown. The record is also written within a second of a change, and the
 * per-minute metrics with it, by the live flush (`live_flush.ts`).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { Delivery } from "./fetch.ts";
import { type HealthRecord, heartbeat } from "./heartbeat.ts";
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
  /** A heartbeat goes every third of it; the health record lives twice as long. */
  readonly idleTimeout: number;
  /** Makes the health record, and is told when one was written (see `live_flush.ts`). */
  readonly report: {
    health(): HealthRecord;
    written(record: HealthRecord): void;
  };
  readonly slots: HeldDeliveries;
  readonly stop: StopFlag;
  /** Told of each running task whose abort was requested. */
  readonly onAbortRequested: (taskId: string) => void;
  readonly onRedisError: OnRedisError;
}

/** Sends a run's heartbeats, until stopped. */
export class HeartbeatTimer {
  readonly #options: HeartbeatTimerOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Keeps the run's parts; nothing is sent before {@linkcode HeartbeatTimer.start}. */
  constructor(options: HeartbeatTimerOptions) {
    this.#options = options;
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

  /** Deletes the health record, at the end of the run; a failure is ignored (it expires). */
  async removeHealthRecord(): Promise<void> {
    const { client, workerId } = this.#options;
    await client.redis.del(client.keys.health(workerId)).catch(() => {});
  }

  async #beat(): Promise<void> {
    const { client, workerId, idleTimeout, slots, report } = this.#options;
    try {
      const health = report.health();
      const beat = await heartbeat(
        client,
        workerId,
        slots.held(),
        slots.runningTaskIds(),
        health,
        idleTimeout * 2,
      );
      report.written(health);
      slots.dropLost(beat.lost);
      for (const id of beat.aborting) this.#options.onAbortRequested(id);
    } catch (error) {
      this.#options.onRedisError("heartbeat", error);
    }
  }
}
