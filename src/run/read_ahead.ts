/**
 * How many deliveries a worker reads ahead of its free slots (its prefetch depth), adapted to
 * the tasks it runs. With `prefetch` left at its default the depth starts at `concurrency`,
 * and grows while the worker runs dry: a slot freed with nothing buffered to take it, while the
 * queue has more (the last claim came back full) and the tasks run faster than a round trip to
 * Redis. Then the call that refills the buffer cannot come back before the buffer is empty, and
 * the worker and Redis take turns waiting for each other; reading further ahead lets both work
 * at once. The depth grows by `concurrency` at most once per round trip, up to what the worker
 * runs in {@linkcode READ_AHEAD_HORIZON} at its current pace, and never beyond
 * {@linkcode MAX_HELD_PER_SLOT} times `concurrency` held in all (running and read ahead).
 *
 * Reading ahead holds tasks that an idle sibling worker could run, so the depth falls back to
 * `concurrency` as soon as reading ahead stops paying: when a task runs longer than
 * {@linkcode ReadAhead.longTask} allows (one running now, or one that just finished), or when a
 * claim comes back short (the queue ran out). Tasks that run long are thus never read ahead
 * beyond `concurrency`, as before; what is held beyond it is at most what this worker runs in
 * about {@linkcode READ_AHEAD_HORIZON}, read while every task ran fast. If the backlog turns
 * from fast tasks to long ones, the slots hand what was read ahead beyond `concurrency` back to
 * its stream (`slots.ts`) when a task runs {@linkcode HAND_BACK_AFTER}, so that idle siblings
 * run it.
 *
 * A `prefetch` set by the user is kept as it is: it is a promise about what one worker holds.
 * So is the default for a worker whose functions have limits or groups (`runner.ts`): a task
 * read ahead holds one of their queue-wide slots.
 *
 * The deliveries asked for by calls in flight count as held (`slots.ts`), so these bounds are
 * real: calls in flight together never claim the same room twice.
 *
 * @module
 */

/** At most this many deliveries per slot are held, running and read ahead together. */
export const MAX_HELD_PER_SLOT = 16;

/**
 * Beyond `concurrency`, a worker reads ahead at most what it runs in this many milliseconds at
 * its current pace: how long an idle sibling can wait for tasks this worker holds.
 */
export const READ_AHEAD_HORIZON = 10;

/**
 * A task runs long when it runs this many times the round trip to Redis, or longer than
 * {@linkcode LONG_TASK_FLOOR}: beyond that, one refill call per task is enough, and reading
 * further ahead only hoards.
 */
export const LONG_TASK_ROUND_TRIPS = 2;

/**
 * The least time after which a task counts as long (ms), whatever the round trip: on a busy
 * worker a no-op task can take some milliseconds from its start to its slot's release, as the
 * tasks started with it run first (and more on a loaded machine).
 */
export const LONG_TASK_FLOOR = 20;

/**
 * A task that runs this long (ms) sends what was read ahead beyond the depth back to the queue
 * (`slots.ts`). Much longer than {@linkcode LONG_TASK_FLOOR}: handing back moves tasks to the
 * end of their stream, which a no-op held up by a busy machine must not cause; a task this long
 * shows the backlog has turned to long tasks, which an idle sibling should run.
 */
export const HAND_BACK_AFTER = 100;

/** The weight of a new round trip in the running average. */
const ROUND_TRIP_WEIGHT = 0.2;

/** How long the pace (tasks settled per ms) is counted over before it is updated (ms). */
const PACE_WINDOW = 20;

/** What the read-ahead needs to know about the worker. */
export interface ReadAheadOptions {
  /** Tasks that run at once. */
  readonly concurrency: number;
  /** Deliveries held ready beyond the running ones, at least. */
  readonly prefetch: number;
  /** Whether the depth adapts (`prefetch` left at its default); else it stays `prefetch`. */
  readonly adaptive: boolean;
}

/** The prefetch depth of one run, and what it adapts to. */
export class ReadAhead {
  readonly #base: number;
  readonly #step: number;
  readonly #max: number;
  #depth: number;
  /** Whether the last claim came back with all it asked for: the queue has more. */
  #backlog = false;
  /** Running average of a claiming call's round trip (ms). */
  #roundTrip = 1;
  /** When the depth last grew (`performance.now()`). */
  #grownAt = -Infinity;
  /** Tasks settled per ms, as last counted; and the count under way since `#paceFrom`. */
  #pace = 0;
  #settled = 0;
  #paceFrom = performance.now();

  /** A depth of `prefetch`, adaptive as `options` say. */
  constructor(options: ReadAheadOptions) {
    this.#base = options.prefetch;
    this.#depth = options.prefetch;
    this.#step = options.concurrency;
    this.#max = options.adaptive && options.prefetch > 0
      ? Math.max(options.prefetch, (MAX_HELD_PER_SLOT - 1) * options.concurrency)
      : options.prefetch;
  }

  /** How many deliveries to hold ready beyond the running ones now. */
  get depth(): number {
    return this.#depth;
  }

  /** Whether the depth is above `prefetch` (then running tasks are watched for long ones). */
  get extended(): boolean {
    return this.#depth > this.#base;
  }

  /** How long a task runs before it counts as long (ms). */
  get longTask(): number {
    return Math.max(LONG_TASK_FLOOR, LONG_TASK_ROUND_TRIPS * this.#roundTrip);
  }

  /**
   * A call that claims deliveries came back after `ms`, with `got` of the `asked`: short of
   * them, the queue ran out, and the depth falls back.
   */
  claimed(asked: number, got: number, ms: number): void {
    if (asked <= 0) return;
    this.#roundTrip += ROUND_TRIP_WEIGHT * (ms - this.#roundTrip);
    this.#backlog = got >= asked;
    if (!this.#backlog) this.#depth = this.#base;
  }

  /**
   * A task's function settled after `ms`, `now` (`performance.now()`, as its caller read it).
   * `dry`: its slot found nothing buffered to run next.
   * A long task makes the depth fall back; a fast one whose slot ran dry while the queue has
   * more makes it grow, at most once per round trip, up to what the worker runs within the
   * horizon.
   */
  settled(ms: number, dry: boolean, now: number): void {
    if (this.#max === this.#base) return;
    this.#settled++;
    if (now - this.#paceFrom >= PACE_WINDOW) {
      this.#pace = this.#settled / (now - this.#paceFrom);
      this.#settled = 0;
      this.#paceFrom = now;
    }
    if (ms >= this.longTask) {
      this.#depth = this.#base;
    } else if (dry && this.#backlog && now - this.#grownAt >= this.#roundTrip) {
      const pace = Math.floor(this.#pace * READ_AHEAD_HORIZON);
      const within = Math.min(this.#max, Math.max(this.#base, pace));
      if (this.#depth >= within) return;
      this.#grownAt = now;
      this.#depth = Math.min(within, this.#depth + this.#step);
    }
  }

  /** A task has been running `ms` so far: a long one makes the depth fall back. */
  running(ms: number): void {
    if (ms >= this.longTask) this.#depth = this.#base;
  }
}
