/**
 * Coalesces calls that happen close together into one: the first item is sent on the next
 * microtask, and items that arrive while batches are in flight go together into the next one.
 * Under load batches grow by themselves; when idle, nothing waits on a timer. With more than
 * one batch in flight, the client prepares the next batch while Redis runs the previous one.
 *
 * @module
 */

interface Pending<T, R> {
  readonly item: T;
  resolve(r: R): void;
  reject(e: unknown): void;
}

/** Sends items in batches through `flush`, which answers each item in order. */
export class Batcher<T, R> {
  readonly #flush: (items: T[]) => Promise<R[]>;
  readonly #maxInFlight: number;
  #queue: Pending<T, R>[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** Made by `drain()` while items are pending, resolved once none are: most batches have none. */
  #idle: PromiseWithResolvers<void> | undefined;
  /** The microtask that sends the next batch, made once: a batcher serves every task. */
  readonly #sendSoon = () => {
    this.#scheduled = false;
    this.#send();
  };

  /** `maxInFlight` bounds the batches sent and not yet answered. */
  constructor(flush: (items: T[]) => Promise<R[]>, maxInFlight = 1) {
    this.#flush = flush;
    this.#maxInFlight = maxInFlight;
  }

  /** Adds an item to the next batch and resolves with its answer. */
  add(item: T): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#queue.push({ item, resolve, reject });
    this.#schedule();
    return promise;
  }

  /** Resolves once every item added so far has been answered. */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#inFlight > 0) {
      this.#idle ??= Promise.withResolvers();
      await this.#idle.promise;
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    queueMicrotask(this.#sendSoon);
  }

  async #send(): Promise<void> {
    if (this.#queue.length === 0 || this.#inFlight >= this.#maxInFlight) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#inFlight++;
    try {
      const answers = await this.#flush(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(answers[i]));
    } catch (error) {
      for (const b of batch) b.reject(error);
    }
    this.#inFlight--;
    if (this.#queue.length > 0) this.#schedule();
    else if (this.#inFlight === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = undefined;
    }
  }
}
