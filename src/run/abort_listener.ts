/**
 * Abort requests reaching a worker: a subscriber connection listens on the queue's abort
 * channel, so that an abort reaches a running task within milliseconds, and cancels the task if
 * it runs here. A request for a task not running here is remembered for a while, since the
 * fetch that starts the task may be in flight. The same connection hears the wake channel,
 * whose messages go to the scheduler, and the flow channel, whose messages (pauses changed) go
 * to the pause view (one subscriber per worker, not three).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { closeConnection } from "../redis/connection.ts";

/** How long an abort request for a task not (yet) running here is remembered. */
const RECENT_ABORT = 10_000;

/** What the abort listener acts on. */
export interface AbortListenerOptions {
  /** Cancels the running tries of a task; false if none runs here. */
  readonly cancelRunning: (taskId: string) => boolean;
  /** Told of a wake message: a delayed task was added, due at this time (ms). */
  readonly onWake: (due: number) => void;
  /** Told of a flow message: the pauses changed (see `pause_view.ts`). */
  readonly onFlow: () => void;
}

/** Listens for abort requests and cancels the tasks they name. */
export class AbortListener {
  readonly #client: QueueContext;
  readonly #options: AbortListenerOptions;
  /** Abort requests for tasks that were not running here when they came, by arrival time. */
  readonly #recentAborts = new Map<string, number>();
  #subscriber: Redis | undefined;

  /** Listens on the channels of `client`'s queue once {@linkcode AbortListener.subscribe}d. */
  constructor(client: QueueContext, options: AbortListenerOptions) {
    this.#client = client;
    this.#options = options;
  }

  /** Opens the subscriber connection and subscribes to the abort, wake and flow channels. */
  subscribe(): Promise<unknown> {
    const { keys } = this.#client;
    this.#subscriber = this.#client.connections.open();
    this.#subscriber.on("message", (channel: string, message: string) => {
      if (channel === keys.wakeChannel) {
        this.#options.onWake(Number(message));
      } else if (channel === keys.abortChannel) {
        this.abort(message);
      } else if (channel === keys.flowChannel) {
        this.#options.onFlow();
      }
    });
    return this.#subscriber.subscribe(keys.abortChannel, keys.wakeChannel, keys.flowChannel);
  }

  /** Cancels a task running here, or remembers the request for a task not running here. */
  abort(taskId: string): void {
    if (!this.#options.cancelRunning(taskId)) this.#remember(taskId);
  }

  /** Whether an abort of this task came before it started here; forgets the request. */
  takeEarlyAbort(taskId: string): boolean {
    // Most of the time nothing is remembered: then the id is not even looked up.
    return this.#recentAborts.size > 0 && this.#recentAborts.delete(taskId);
  }

  /** Closes the subscriber connection. */
  async close(): Promise<void> {
    if (this.#subscriber) await closeConnection(this.#subscriber);
  }

  /**
   * Keeps an abort request for a task not running here, for a while: the fetch that starts the
   * task may be in flight, and its abort check in Redis may have come before the request.
   */
  #remember(taskId: string): void {
    const now = Date.now();
    for (const [id, at] of this.#recentAborts) {
      if (now - at < RECENT_ABORT) break;
      this.#recentAborts.delete(id);
    }
    this.#recentAborts.set(taskId, now);
  }
}
