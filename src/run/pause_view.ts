/**
 * A worker's view of the pauses in force (`src/client/pause.ts`), and of the functions held back
 * by a rate limit met at run time (`StreaqRateLimited`). The claim scripts read the
 * pauses in Redis and are what enforces them; this view covers the one case they cannot see: a
 * delivery prefetched before a pause, which the worker would start on its own the moment a slot
 * frees (its start is written afterwards). With the view, such a delivery of paused work is
 * handed back instead, its try uncounted.
 *
 * The view is read when the run starts and again whenever the flow channel announces a change
 * (the abort listener's subscriber hears it); while anything is paused it is also read every
 * {@linkcode PAUSE_REFRESH} ms, so that a worker that missed an announcement (its subscriber was
 * reconnecting) neither keeps handing back work that was resumed nor sleeps on a resumed queue.
 * While nothing is paused it costs nothing.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { BLOCKED_FUNCTION, PAUSED_FUNCTION, PAUSED_QUEUE } from "../redis/keys.ts";
import type { OnRedisError } from "./redis_errors.ts";

/** How often the view is read again while anything is paused. */
export const PAUSE_REFRESH = 1_000;

/** What this worker believes is paused. */
export class PauseView {
  readonly #client: QueueContext;
  readonly #onChange: () => void;
  readonly #onRedisError: OnRedisError;
  #queue = false;
  #functions = new Set<string>();
  /** Functions held back by a rate limit met at run time, until when (ms since the epoch). */
  #blocked = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /**
   * A view of `client`'s queue; `onChange` is told after every read (the fetch loop may fetch
   * again at once).
   */
  constructor(client: QueueContext, onChange: () => void, onRedisError: OnRedisError) {
    this.#client = client;
    this.#onChange = onChange;
    this.#onRedisError = onRedisError;
  }

  /** Whether a prefetched delivery of `fnName` must not start now. */
  isPaused(fnName: string): boolean {
    if (this.#queue || this.#functions.has(fnName)) return true;
    // The clock is read only for a function held back: most never are.
    const until = this.#blocked.get(fnName);
    return until !== undefined && until > Date.now();
  }

  /** Reads the pauses again (at the start, on an announcement, and while anything is paused). */
  async refresh(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      const fields = Object.entries(await this.#client.redis.hgetall(this.#client.keys.flow));
      this.#queue = fields.some(([f]) => f === PAUSED_QUEUE);
      this.#functions = new Set(
        fields.filter(([f]) => f.startsWith(PAUSED_FUNCTION)).map(([f]) =>
          f.slice(PAUSED_FUNCTION.length)
        ),
      );
      this.#blocked = new Map(
        fields.filter(([f]) => f.startsWith(BLOCKED_FUNCTION)).map((
          [f, until],
        ) => [f.slice(BLOCKED_FUNCTION.length), Number(until)]),
      );
    } catch (error) {
      if (!this.#stopped) await this.#onRedisError("read pauses", error);
    }
    if (this.#stopped) return;
    if (this.#queue || this.#functions.size > 0 || this.#blocked.size > 0) {
      this.#timer = setTimeout(() => this.refresh(), PAUSE_REFRESH);
    }
    this.#onChange();
  }

  /** Stops reading the pauses (at the end of the run). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
