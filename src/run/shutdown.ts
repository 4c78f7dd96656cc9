/**
 * The graceful shutdown of a worker's run: whether it is stopping (the one flag that the slots,
 * the fetch loop and the heartbeat read), and the hand-back of unfinished work. Prefetched
 * deliveries go back at once; running tasks get `gracePeriod` to finish, then their signal
 * fires with a hand-back, and the worker waits a little for those hand-backs to be written.
 *
 * @module
 */

import type { Completed, Completion } from "./complete.ts";
import type { Delivery } from "./fetch.ts";
import type { OnRedisError } from "./redis_errors.ts";
import type { RunningTask } from "./running_task.ts";

/** How long shutdown waits for handed-back tasks to have their hand-back written. */
const HANDBACK_WAIT = 5_000;

/** Whether a run is stopping: read by every part of it that must start nothing new. */
export interface StopFlag {
  /** True once a stop was asked for or the shutdown began. */
  readonly stopping: boolean;
}

/** What the shutdown needs from the slots (see `src/run/slots.ts`). */
export interface SlotsToEmpty {
  /** Removes every prefetched delivery and returns them. */
  takeBuffered(): Delivery[];
  /** Writes an outcome through the slots (a stopping worker prefetches nothing with it). */
  writeOutcome(d: Delivery, completion: Completion): Promise<Completed>;
  /** The running tasks whose outcome is not written yet. */
  unwritten(): RunningTask[];
}

/** The stop state of one run, and the hand-back of its work. */
export class Shutdown implements StopFlag {
  #stopping = false;
  readonly #asked = Promise.withResolvers<void>();

  /** True once a stop was asked for or the shutdown began. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Asks for a stop; false if the run was stopping already (nothing more to do then). */
  ask(): boolean {
    if (this.#stopping) return false;
    this.#stopping = true;
    this.#asked.resolve();
    return true;
  }

  /**
   * Marks the shutdown begun, when the fetch loop ended by itself (burst mode) or by a stop.
   * Unlike {@linkcode Shutdown.ask} it does not cut pauses short.
   */
  begin(): void {
    this.#stopping = true;
  }

  /** Waits `ms`, or less if a stop is asked for meanwhile. */
  async pause(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), this.#asked.promise]);
    clearTimeout(timer);
  }

  /**
   * Hands back the prefetched deliveries, gives the running tasks `gracePeriod` to write their
   * outcome, then hands back those still running and waits up to {@linkcode HANDBACK_WAIT}
   * for their hand-back to be written.
   */
  async handBack(
    slots: SlotsToEmpty,
    gracePeriod: number,
    reason: string,
    onRedisError: OnRedisError,
  ): Promise<void> {
    const buffered = slots.takeBuffered();
    await Promise.all(buffered.map((d) => slots.writeOutcome(d, { kind: "back", reason: "" })))
      .catch((e) => onRedisError("hand back prefetched tasks", e));
    await waitForOutcomes(slots.unwritten(), gracePeriod);
    const unfinished = slots.unwritten();
    for (const task of unfinished) task.handBack(reason);
    await waitForOutcomes(unfinished, HANDBACK_WAIT);
  }
}

/** Waits up to `ms` until `tasks` have written their outcome. */
async function waitForOutcomes(tasks: readonly RunningTask[], ms: number): Promise<void> {
  const pending = tasks.filter((task) => !task.written);
  if (pending.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const written = Promise.all(pending.map((task) => task.outcome));
  await Promise.race([written, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
