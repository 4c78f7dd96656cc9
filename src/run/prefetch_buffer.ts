/**
 * The deliveries a worker has claimed and read ahead of a free slot (and, rarely, started ones
 * whose slot was taken while their fetch was in flight), kept per priority so that the next one
 * to run (highest priority, oldest first) is found at once, however many a busy worker holds.
 *
 * @module
 */

import type { Delivery } from "./fetch.ts";

/** Prefetched deliveries, taken highest priority first and oldest first within a priority. */
export class PrefetchBuffer {
  /** One queue per priority, highest first; a queue's head is at `#heads[i]`. */
  readonly #queues: Delivery[][];
  readonly #heads: number[];
  readonly #rank: Map<string, number>;
  readonly #keys = new Set<string>();

  /** `priorities`: every priority of the queue, highest first. */
  constructor(priorities: readonly string[]) {
    this.#queues = priorities.map(() => []);
    this.#heads = priorities.map(() => 0);
    this.#rank = new Map(priorities.map((p, i) => [p, i]));
  }

  /** How many deliveries are held. */
  get length(): number {
    return this.#keys.size;
  }

  /** Holds a delivery after those of its priority. */
  push(d: Delivery): void {
    this.#queues[this.#rank.get(d.priority) ?? this.#queues.length - 1].push(d);
    this.#keys.add(d.key);
  }

  /** Whether this delivery is held. */
  has(d: Pick<Delivery, "key">): boolean {
    return this.#keys.has(d.key);
  }

  /** Takes the delivery to run next, if any. */
  take(): Delivery | undefined {
    for (let i = 0; i < this.#queues.length; i++) {
      const queue = this.#queues[i];
      if (this.#heads[i] >= queue.length) continue;
      const d = queue[this.#heads[i]++];
      // Drop the taken part now and then rather than shifting the array at every take.
      if (this.#heads[i] === queue.length || this.#heads[i] >= 1024) {
        queue.splice(0, this.#heads[i]);
        this.#heads[i] = 0;
      }
      this.#keys.delete(d.key);
      return d;
    }
    return undefined;
  }

  /** Every delivery held, in the order they would be taken. */
  *[Symbol.iterator](): IterableIterator<Delivery> {
    for (let i = 0; i < this.#queues.length; i++) {
      yield* this.#queues[i].slice(this.#heads[i]);
    }
  }

  /**
   * Removes and returns up to `count` deliveries not started yet, the last to be taken first
   * (lowest priority, newest).
   */
  takeNewestUnstarted(count: number): Delivery[] {
    const newest = [...this].reverse().filter((d) => !d.started).slice(0, count);
    const taken = new Set(newest.map((d) => d.key));
    this.remove((d) => taken.has(d.key));
    return newest;
  }

  /** Removes the deliveries for which `lost` is true. */
  remove(lost: (d: Delivery) => boolean): void {
    const kept = [...this].filter((d) => !lost(d));
    this.clear();
    for (const d of kept) this.push(d);
  }

  /** Removes and returns every delivery held. */
  clear(): Delivery[] {
    const all = [...this];
    this.#queues.forEach((queue, i) => {
      queue.length = 0;
      this.#heads[i] = 0;
    });
    this.#keys.clear();
    return all;
  }
}
