/**
 * The relay of a sharded queue's outboxes, run by every worker of the queue: it relays each
 * shard's outbox (`remote_deps.ts`) every {@linkcode RELAY_EVERY} ms, so that a task waiting for
 * a task of another shard is settled within about that time of its dependency's end, whichever
 * worker ran it and even if that worker died right after.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { WorkerLogger } from "../logger.ts";
import { relayOutbox } from "./remote_deps.ts";

/** How often the outboxes are read (ms). */
export const RELAY_EVERY = 200;

/** Relays the outboxes of every shard while the worker runs. */
export class OutboxRelay {
  readonly #shards: readonly QueueContext[];
  readonly #logger: WorkerLogger;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  /**
   * @param shards Every shard's context, by shard number.
   * @param logger Where a failed relay is reported (it is tried again at the next round).
   */
  constructor(shards: readonly QueueContext[], logger: WorkerLogger) {
    this.#shards = shards;
    this.#logger = logger;
  }

  /** Starts relaying, at once and then every {@linkcode RELAY_EVERY} ms. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#running = this.#relayAll().finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#schedule(RELAY_EVERY);
      });
    }, ms);
  }

  async #relayAll(): Promise<void> {
    for (let shard = 0; shard < this.#shards.length; shard++) {
      try {
        while (await relayOutbox(this.#shards, shard) > 0 && !this.#stopped);
      } catch (error) {
        this.#logger.warn(
          `cannot relay the outbox of shard ${shard}: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
      }
    }
  }

  /** Stops relaying, once the round in progress (if any) is over. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
