/**
 * A task running in one of the worker's slots: its delivery, the controller behind the signal
 * its function receives, and whether its outcome is written yet. Only the slots
 * (`src/run/slots.ts`) create and change one; shutdown only waits for it or hands it back.
 *
 * @module
 */

import { StreaqCancelled } from "../errors.ts";
import { HandBack } from "./execute.ts";
import type { Delivery } from "./fetch.ts";
import type { WorkerLogger } from "../logger.ts";

/** How long a task may finish without its function returning before the worker says so. */
const SETTLE_WARNING = 1_000;

/**
 * The controller behind a running task's signal. It also tells the task's run that the signal
 * fired (`onAbort`), directly: an `abort` listener on the signal costs an event listener's
 * registration and removal per task.
 */
export class TaskController extends AbortController {
  /** Called when {@linkcode TaskController.abort} fires the signal. */
  onAbort: (() => void) | undefined;

  /** Fires the signal with `reason`, unless it fired already, then calls `onAbort`. */
  override abort(reason?: unknown): void {
    if (this.signal.aborted) return;
    super.abort(reason);
    this.onAbort?.();
  }
}

/** A delivery that holds a slot, from its start until its function settles. */
export class RunningTask {
  /** The delivery it runs. */
  readonly delivery: Delivery;
  /** Behind the task's signal: aborts on an abort request, a timeout or a hand-back. */
  readonly controller: TaskController = new TaskController();
  /** When it took its slot (`performance.now()`). */
  readonly startedAt: number = performance.now();
  #written = false;
  #executed: Promise<unknown> | undefined;

  /** `delivery`: the started delivery it runs. */
  constructor(delivery: Delivery) {
    this.delivery = delivery;
  }

  /** True once the outcome is written; the function may still be running. */
  get written(): boolean {
    return this.#written;
  }

  /** Settles once the outcome is written, or writing it failed. */
  get outcome(): Promise<unknown> {
    // Made when asked (at shutdown), not per task.
    return this.#executed?.catch(() => {}) ?? Promise.resolve();
  }

  /** Follows the run that `executed` stands for: it settles once the outcome is written. */
  follow(executed: Promise<unknown>): void {
    this.#executed = executed;
  }

  /** Notes that the outcome is written. */
  markWritten(): void {
    this.#written = true;
  }

  /** Whether its signal has fired (abort, timeout or hand-back). */
  get stopped(): boolean {
    return this.controller.signal.aborted;
  }

  /** Fires its signal with a `StreaqCancelled`, unless it fired already. */
  cancel(): void {
    if (this.stopped) return;
    const d = this.delivery;
    this.controller.abort(
      new StreaqCancelled(`Task ${d.fnName} (${d.taskId}) was aborted while running`),
    );
  }

  /**
   * Fires its signal with a `HandBack`, unless it fired already: the outcome written is the
   * hand-back of the delivery to the queue, for any worker to run again.
   */
  handBack(reason: string): void {
    if (!this.stopped) this.controller.abort(new HandBack(reason));
  }
}

/**
 * Waits until a task's function has really settled, after its outcome is written: a task that
 * ignored its signal keeps its slot until then, and the worker says so after a second.
 */
export async function untilSettled(
  d: Delivery,
  settled: Promise<unknown>,
  logger: WorkerLogger,
): Promise<void> {
  let pending = true;
  settled.then(() => (pending = false));
  // Almost always the function has settled already: then no timer is needed.
  for (let i = 0; i < 3 && pending; i++) await null;
  if (!pending) return;
  const timer = setTimeout(() => {
    if (pending) {
      logger.warn(
        `${d.fnName} (${d.taskId}) has finished but its function has not returned: it ignores its signal and keeps its slot`,
      );
    }
  }, SETTLE_WARNING);
  await settled;
  pending = false;
  clearTimeout(timer);
}
