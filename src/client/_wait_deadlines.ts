/**
 * The time limits of the result waits of one client, on one timer. A wait usually ends long
 * before its limit, and a timer of its own (which Deno makes a Node `Timeout`, with its
 * closures) would be garbage for every wait: here a wait costs one small record, and the timer,
 * armed for the earliest limit, is not cleared when waits end: it runs out and is armed again
 * for the next limit, if any (as the Redis command limits of `src/redis/connection.ts` do).
 *
 * @module
 */

/** One wait's limit; `end()` it when the wait is over. */
export interface WaitDeadline {
  /** Forgets the limit: `fire` is not called. */
  end(): void;
}

interface Entry extends WaitDeadline {
  readonly at: number;
  readonly fire: () => void;
  over: boolean;
}

/** Time limits served by one unreferenced timer (it never keeps the process alive). */
export class WaitDeadlines {
  /** Unordered; entries ended are dropped from the end at once, the others at the next sweep. */
  #entries: Entry[] = [];
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  /** Calls `fire` in `ms` milliseconds unless the returned limit is ended first. */
  add(ms: number, fire: () => void): WaitDeadline {
    const entry: Entry = {
      at: Date.now() + ms,
      fire,
      over: false,
      end: () => this.#end(entry),
    };
    this.#entries.push(entry);
    this.#live++;
    if (entry.at < this.#timerAt) this.#arm(entry.at);
    return entry;
  }

  /** Stops the timer; limits not ended never fire. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#entries = [];
    this.#live = 0;
  }

  #end(entry: Entry): void {
    if (entry.over) return;
    entry.over = true;
    this.#live--;
    const entries = this.#entries;
    // Waits that end in the order they began (one at a time, the common case) leave nothing.
    while (entries.length > 0 && entries[entries.length - 1].over) entries.pop();
    // Ended ones stuck behind live ones are dropped once they are most of the list.
    if (entries.length > 64 && this.#live < entries.length / 2) {
      this.#entries = entries.filter((e) => !e.over);
    }
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#sweep(), Math.max(0, at - Date.now()));
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    const due: Entry[] = [];
    let next = Infinity;
    const kept: Entry[] = [];
    for (const entry of this.#entries) {
      if (entry.over) continue;
      if (entry.at <= now) due.push(entry);
      else {
        kept.push(entry);
        next = Math.min(next, entry.at);
      }
    }
    this.#entries = kept;
    if (next < Infinity) this.#arm(next);
    for (const entry of due) {
      entry.over = true;
      this.#live--;
      entry.fire();
    }
  }
}
