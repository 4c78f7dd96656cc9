/**
 * The worker's slots: the tasks running now (at most `concurrency`) and the deliveries held
 * ready for the next free slot (the prefetch buffer). This is the only place that changes
 * either. A delivery comes in (admitted from a fetch or a completion call), runs in a free slot
 * or waits in the buffer, and frees its slot as soon as its function settles, so that the next
 * buffered delivery runs at once, without waiting for Redis.
 *
 * @module
 */

import type { ClaimCounts, Completed, Completion } from "./complete.ts";
import type { Delivery, StartAnswer } from "./fetch.ts";
import type { WorkerLogger } from "../logger.ts";
import { PrefetchBuffer } from "./prefetch_buffer.ts";
import { HAND_BACK_AFTER, ReadAhead } from "./read_ahead.ts";
import type { OnRedisError } from "./redis_errors.ts";
import { RunningTask, type TaskController, untilSettled } from "./running_task.ts";
import type { StopFlag } from "./shutdown.ts";

/** Where the slots write outcomes and the starts of prefetched deliveries (`complete.ts`). */
export interface OutcomeWriter {
  /**
   * Writes an outcome; with `refill`, the same call claims as many deliveries as the slots have
   * room for when it is sent ({@linkcode Slots.reserveClaims}).
   */
  complete(
    d: Delivery,
    completion: Completion,
    lock?: string,
    refill?: boolean,
  ): Promise<Completed>;
  /** Writes the start of a prefetched delivery that took a free slot. */
  start(d: Delivery): Promise<StartAnswer>;
}

/** What the slots need from the run they belong to. */
export interface SlotsOptions {
  /** Tasks that run at once. */
  readonly concurrency: number;
  /** Deliveries held ready beyond the running ones (at least, when adaptive). */
  readonly prefetch: number;
  /**
   * Whether the prefetch depth adapts to the tasks (`prefetch` left at its default), see
   * `read_ahead.ts`.
   */
  readonly adaptivePrefetch?: boolean;
  /** Every priority of the queue, highest first. */
  readonly priorities: readonly string[];
  /** Writes outcomes, and starts of prefetched deliveries. */
  readonly completer: OutcomeWriter;
  /** Runs a started delivery; resolves once its outcome is written (see `execute.ts`). */
  readonly execute: (
    d: Delivery,
    controller: TaskController,
  ) => Promise<{ settled: Promise<unknown> | undefined }>;
  /** Whether the run is stopping: then nothing new starts. */
  readonly stop: StopFlag;
  readonly logger: WorkerLogger;
  readonly onRedisError: OnRedisError;
  /** Whether an abort of this task came before it ran here (and forgets it). */
  readonly takeEarlyAbort: (taskId: string) => boolean;
  /** Told after each outcome written (for the per-minute metrics). */
  readonly onOutcomeWritten: () => void;
  /** Told whenever slots were filled or freed: the fetch loop may have work to do. */
  readonly onSlotsChanged: () => void;
  /**
   * Whether a prefetched delivery of this function must not start now (it is paused, see
   * `pause_view.ts`): it is handed back instead, its try uncounted.
   */
  readonly isPaused?: (fnName: string) => boolean;
}

/** The running tasks and the prefetched deliveries of a run. */
export class Slots {
  readonly #options: SlotsOptions;
  readonly #running = new Map<string, RunningTask>();
  readonly #buffered: PrefetchBuffer;
  readonly #readAhead: ReadAhead;
  /**
   * Deliveries asked for by calls in flight (fetches, completion calls that refill): counted as
   * held, so that calls in flight together never claim more than there is room for.
   */
  #asked = 0;

  /** Empty slots and buffer. */
  constructor(options: SlotsOptions) {
    this.#options = options;
    this.#buffered = new PrefetchBuffer(options.priorities);
    this.#readAhead = new ReadAhead({
      concurrency: options.concurrency,
      prefetch: options.prefetch,
      adaptive: options.adaptivePrefetch ?? false,
    });
  }

  /** Number of tasks running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Whether nothing runs and nothing is buffered. */
  get idle(): boolean {
    return this.#running.size === 0 && this.#buffered.length === 0;
  }

  /**
   * How many deliveries a fetch should start now: the free slots, unless the buffer or the
   * calls in flight fill them.
   */
  get freeToStart(): number {
    return this.#buffered.length > 0 ? 0 : Math.max(0, this.unpromised);
  }

  /**
   * How many deliveries a fetch may read ahead: the room left for them once the free slots are
   * filled, counting those buffered and those asked for by calls in flight. Running, buffered
   * and asked for together never exceed `concurrency` plus the prefetch depth.
   */
  get freeToPrefetch(): number {
    if (this.#readAhead.extended) {
      // Reading far ahead stops as soon as a task runs long: the oldest running one is first.
      const oldest = this.#running.values().next().value;
      if (oldest) {
        this.#noteRun(oldest.startedAt);
      }
    }
    const room = this.#options.concurrency + this.#readAhead.depth - this.#running.size -
      this.#buffered.length - this.#asked;
    return Math.max(0, room - Math.max(0, this.unpromised));
  }

  /**
   * A call that reserved `asked` claims ({@linkcode Slots.reserveClaims}) came back after `ms`
   * with `got` of them, or failed (no `ms`): they are no longer asked for, and the read-ahead
   * adapts to what came. The deliveries are admitted next.
   */
  noteClaimed(asked: number, got: number, ms?: number): void {
    this.#asked -= asked;
    if (ms !== undefined) this.#readAhead.claimed(asked, got, ms);
    // With fewer than asked (or none), the fetch loop may have room to fill again.
    if (got < asked) this.#options.onSlotsChanged();
  }

  /**
   * Slots neither running a task nor promised to a buffered delivery or one asked for by a call
   * in flight (negative when more are promised than slots are free): a completion call starts
   * this many of the ones it claims.
   */
  get unpromised(): number {
    return this.#options.concurrency - this.#running.size - this.#buffered.length - this.#asked;
  }

  /**
   * How many deliveries a call sent now claims (a completion call: to start, for the slots
   * promised to nothing, and to read ahead), counted as asked for until
   * {@linkcode Slots.noteClaimed}. `slotsFirst`: only for the free slots, if any (a fetch: the
   * tasks for them start sooner, and the loop goes round again for the rest).
   */
  reserveClaims(slotsFirst = false): ClaimCounts {
    if (this.#options.stop.stopping) return { start: 0, prefetch: 0 };
    const start = Math.max(0, this.unpromised);
    const prefetch = slotsFirst && start > 0 ? 0 : this.freeToPrefetch;
    this.#asked += start + prefetch;
    return { start, prefetch };
  }

  /**
   * Tells the read-ahead that a task ran since `startedAt` (`performance.now()`), settled if `dry`
   * is given (whether its slot found nothing buffered to run next), else still running. A long one makes the depth fall back; one
   * that ran {@linkcode HAND_BACK_AFTER} or more sends what was read ahead beyond the depth back
   * to its stream, newest first and never started here, so that an idle sibling runs it rather
   * than wait for this worker.
   */
  #noteRun(startedAt: number, dry?: boolean): void {
    // The clock read once, here, for the run's length and the read-ahead's pace.
    const now = performance.now();
    const ms = now - startedAt;
    if (dry === undefined) this.#readAhead.running(ms);
    else this.#readAhead.settled(ms, dry, now);
    if (ms < HAND_BACK_AFTER || this.#options.stop.stopping) return;
    const free = Math.max(0, this.#options.concurrency - this.#running.size);
    const surplus = this.#buffered.length - free - this.#readAhead.depth;
    if (surplus <= 0) return;
    const back = this.#buffered.takeNewestUnstarted(surplus);
    this.#options.logger.debug(`tasks run long: ${back.length} deliveries read ahead go back`);
    for (const d of back) this.#handBackUnrun(d);
  }

  /** Takes in the deliveries of a fetch, then fills the free slots from the buffer. */
  admitFetched(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) this.#admit(d);
    // Slots freed while the fetch was in flight take the deliveries it prefetched.
    this.#fillFreeSlots();
  }

  /** Takes in the deliveries a completion call prefetched. */
  admitPrefetched(deliveries: readonly Delivery[]): void {
    if (this.#options.stop.stopping) {
      // The buffer may have been handed back already: these go back at once. An entry without
      // a task id has nothing to hand back: it is dropped already, and only warned about.
      for (const d of deliveries) d.taskId ? this.#handBackUnrun(d) : this.#admit(d);
      return;
    }
    for (const d of deliveries) this.#admit(d);
    this.#fillFreeSlots();
  }

  /** Runs a delivery in a free slot, buffers it, hands it back or drops it. */
  #admit(d: Delivery): void {
    const { logger } = this.#options;
    if (!d.taskId) {
      logger.warn(`dropped stream entry ${d.messageId} of ${d.stream}: it has no task id`);
    } else if (!d.fnName) {
      logger.warn(`dropped stream entry ${d.messageId}: task ${d.taskId} has no stored data`);
      this.writeOutcome(d, { kind: "drop" }).catch((e) => this.#options.onRedisError("drop", e));
    } else if (this.#holds(d)) {
      // A reclaim scan can take back a delivery of this very worker whose heartbeat came late:
      // it is still running or buffered here, and must not run twice.
      logger.debug(`${d.fnName} (${d.taskId}) reclaimed while still held here: ignored`);
    } else if (d.started && this.#options.stop.stopping) {
      this.#handBackUnrun(d);
    } else if (d.started && this.#running.size < this.#options.concurrency) {
      this.#run(d);
    } else {
      // A started delivery waits here too when its slot was taken while the fetch was in
      // flight (by a prefetched one that arrived meanwhile): concurrency is never exceeded.
      this.#buffered.push(d);
    }
  }

  /** Whether this worker already runs or buffers this delivery. */
  #holds(d: Delivery): boolean {
    return this.#running.has(d.key) || this.#buffered.has(d);
  }

  /** Runs a started delivery in a slot, which it keeps until its function has settled. */
  #run(d: Delivery): void {
    const task = new RunningTask(d);
    this.#running.set(d.key, task);
    if (this.#options.takeEarlyAbort(d.taskId)) task.cancel();
    const executed = this.#options.execute(d, task.controller);
    task.follow(executed);
    void this.#follow(d, task, executed);
  }

  /**
   * Follows a run to its end: its outcome written, then its function settled (at once, nearly
   * always), then its slot given back if the task kept it. One async function rather than a
   * chain of callbacks: those are a promise and a closure each, per task.
   */
  async #follow(
    d: Delivery,
    task: RunningTask,
    executed: Promise<{ settled: Promise<unknown> | undefined }>,
  ): Promise<void> {
    try {
      const { settled } = await executed;
      task.markWritten();
      this.#options.onOutcomeWritten();
      if (settled) await untilSettled(d, settled, this.#options.logger);
    } catch (error) {
      await this.#options.onRedisError(`finish ${d.fnName} (${d.taskId})`, error);
    } finally {
      // A task that kept its slot until its outcome was written (refused, aborted, timed out).
      if (this.#running.delete(d.key)) {
        this.#noteRun(task.startedAt, false);
      }
      this.#fillFreeSlots();
    }
  }

  /**
   * Runs buffered deliveries in the free slots, highest priority first, unless the run is
   * stopping, then tells the fetch loop. A prefetched delivery runs at once, as it was read
   * (`started` false: nothing in a run reads it); its start is written with the next completion
   * call, whose answer may still stop it.
   */
  #fillFreeSlots(): void {
    const { concurrency, stop, completer, onRedisError } = this.#options;
    while (concurrency > this.#running.size && this.#buffered.length > 0 && !stop.stopping) {
      const next = this.#buffered.take()!;
      if (!next.started && this.#options.isPaused?.(next.fnName)) {
        // Prefetched before a pause: back to its stream, where the claim scripts hold it.
        this.#handBackUnrun(next);
        continue;
      }
      this.#run(next);
      if (next.started) continue;
      completer.start(next).then(
        (answer) => this.#actOnStart(next, answer),
        (error) => onRedisError("start", error),
      );
    }
    this.#options.onSlotsChanged();
  }

  /**
   * Acts on what writing the start of a prefetched delivery, already running, found: an abort
   * requested before it started cancels it, and a delivery another worker holds now is handed
   * back (its outcome would be refused as stale). Nothing is left to do for a task whose
   * outcome is written already: its start came after it.
   */
  #actOnStart(d: Delivery, answer: StartAnswer): void {
    const task = this.#running.get(d.key);
    if (!task || task.written || answer === "started" || answer === "missing") return;
    if (answer === "aborting") {
      task.cancel();
    } else if (!task.stopped) {
      this.#options.logger.warn(
        `task ${d.taskId} was taken over by another worker as it started here: stopping it`,
      );
      task.handBack("another worker took the delivery over");
    }
  }

  /**
   * Frees the slot of a task whose function settled on its own, as soon as it did: the next
   * prefetched delivery runs in it at once, its start written with the next completion call
   * (queued before that task can finish, so never after its outcome), or the slot takes the next
   * delivery to arrive. A slot never waits for Redis. While other tasks run, the outcome of this
   * one is written after the callbacks already due: tasks that end together (timers of one
   * wave) all start their successors before any of their outcomes is encoded.
   */
  freeSlotAndYield(d: Delivery): Promise<void> | undefined {
    if (!this.#freeSlot(d) || this.#running.size === 0) return undefined;
    return afterDueCallbacks();
  }

  /** Frees the slot of a task whose function settled on its own; false if it keeps it. */
  #freeSlot(d: Delivery): boolean {
    const task = this.#running.get(d.key);
    // After an abort or a timeout the function may still be running: it keeps its slot until it
    // settles (see untilSettled). A stopping worker starts nothing new.
    if (!task || task.stopped || this.#options.stop.stopping) return false;
    this.#running.delete(d.key);
    this.#fillFreeSlots();
    // Dry: the freed slot found nothing buffered to run.
    const dry = this.#running.size < this.#options.concurrency;
    this.#noteRun(task.startedAt, dry);
    return true;
  }

  /**
   * Writes a task's outcome, refilling the prefetch buffer in the same call (unless stopping).
   * A task refused before its function ran frees its slot here. Its outcome is still written
   * before the worker stops (shutdown drains the completer).
   */
  writeOutcome(d: Delivery, completion: Completion, lock?: string): Promise<Completed> {
    this.#freeSlot(d);
    const refill = !this.#options.stop.stopping;
    return this.#options.completer.complete(d, completion, lock, refill);
  }

  /**
   * Hands back, without calling its function, a delivery whose fetch or start was in flight when
   * the shutdown began: a stopping worker starts nothing new, or a task would begin its side
   * effects only to be interrupted (and run them again elsewhere).
   */
  #handBackUnrun(d: Delivery): void {
    this.writeOutcome(d, { kind: "back", reason: "" })
      .catch((error) => this.#options.onRedisError("hand back", error));
  }

  /** Cancels the running tries of a task; false if none runs here. */
  cancel(taskId: string): boolean {
    let found = false;
    for (const task of this.#running.values()) {
      if (task.delivery.taskId === taskId) {
        found = true;
        task.cancel();
      }
    }
    return found;
  }

  /** The entry ids of the deliveries held here (running and buffered), by stream. */
  held(): Map<string, string[]> {
    const held = new Map<string, string[]>();
    const hold = (d: Delivery) => {
      const ids = held.get(d.stream) ?? [];
      ids.push(d.messageId);
      held.set(d.stream, ids);
    };
    for (const task of this.#running.values()) hold(task.delivery);
    for (const d of this.#buffered) hold(d);
    return held;
  }

  /** The task ids of the running tasks. */
  runningTaskIds(): string[] {
    return [...this.#running.values()].map((task) => task.delivery.taskId);
  }

  /**
   * Lets go of the deliveries another worker took over (keys as in `Delivery.key`): running
   * ones are handed back, buffered ones forgotten.
   */
  dropLost(lost: ReadonlySet<string>): void {
    for (const task of this.#running.values()) {
      if (lost.has(task.delivery.key)) task.handBack("another worker took the delivery over");
    }
    this.#buffered.remove((d) => lost.has(d.key));
  }

  /** Removes every buffered delivery and returns them (at shutdown, to hand them back). */
  takeBuffered(): Delivery[] {
    return this.#buffered.clear();
  }

  /** The running tasks whose outcome is not written yet. */
  unwritten(): RunningTask[] {
    return [...this.#running.values()].filter((task) => !task.written);
  }
}

/** The turn {@linkcode afterDueCallbacks} hands out, until it comes. */
let dueCallbacksDone: Promise<void> | undefined;

/**
 * Resolves after the callbacks already due (timers, I/O) have run: one `setImmediate` for every
 * task that asks in the same turn, not one each (tasks that end together, a wave of timers or a
 * completion call's answers, all wait for the same turn).
 */
function afterDueCallbacks(): Promise<void> {
  dueCallbacksDone ??= new Promise((resolve) =>
    setImmediate(() => {
      dueCallbacksDone = undefined;
      resolve();
    })
  );
  return dueCallbacksDone;
}
