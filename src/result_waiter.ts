/**
 * Waiting for results. All waiters of one client share one subscriber connection; each waiter
 * subscribes to its task's channel before it reads the result key, so a result that lands in
 * between is never missed. Pub/sub does not replay messages sent while the subscriber was
 * reconnecting (a Redis restart, a failover), so waits also re-read their key now and then.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { closeConnection } from "./connection.ts";
import { Batcher } from "./_batch.ts";

type Listener = (blob: Buffer) => void;

/**
 * How often pending waits re-read their result key, for a result published while the
 * subscriber was reconnecting: the longest such a result can go unnoticed.
 */
const RECHECK_INTERVAL = 5_000;

/** One subscriber connection shared by every result wait of a client. */
export class ResultWaiter {
  readonly #open: () => Redis;
  readonly #listeners = new Map<string, { listeners: Set<Listener>; ready: Promise<unknown> }>();
  readonly #rechecks = new Set<() => void>();
  /**
   * One SUBSCRIBE at a time, for every channel asked meanwhile. Besides saving round trips, this
   * keeps a SUBSCRIBE from being written while the connection is still opening, ahead of
   * ioredis's ready check (which then fails, ioredis issue #2037): the first one waits in
   * ioredis's queue until the connection is ready, and the next ones wait for the first.
   * A Cluster client's subscriber connection always makes that check.
   */
  readonly #subscriptions = new Batcher<string, void>(async (channels) => {
    await this.#connection().subscribe(...channels);
    return channels.map(() => undefined);
  });
  #recheckTimer: ReturnType<typeof setInterval> | undefined;
  #subscriber: Redis | undefined;

  constructor(open: () => Redis) {
    this.#open = open;
  }

  /**
   * Waits for the blob published on `channel`, reading `read()` once subscribed. Resolves to
   * the blob, or undefined when `signal` aborts first.
   */
  async wait(
    channel: string,
    read: () => Promise<Buffer | null>,
    signal: AbortSignal,
  ): Promise<Buffer | undefined> {
    const { promise, resolve } = Promise.withResolvers<Buffer | undefined>();
    const listener: Listener = (blob) => resolve(blob);
    const onAbort = () => resolve(undefined);
    const recheck = () => read().then((blob) => blob && resolve(blob), () => {});
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#subscribe(channel, listener);
      const stored = await read();
      // A stored result wins even if the wait ran out meanwhile (timeout 0 on a finished task).
      if (stored) return stored;
      this.#addRecheck(recheck);
      return await promise;
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#removeRecheck(recheck);
      // Not awaited: the result is here, and a later SUBSCRIBE to the same channel is sent
      // after this UNSUBSCRIBE on the same connection, so it cannot be undone by it.
      this.#unsubscribe(channel, listener);
    }
  }

  #addRecheck(recheck: () => void): void {
    this.#rechecks.add(recheck);
    if (this.#recheckTimer === undefined) {
      // This timer is what keeps the process alive while results are awaited: an idle
      // connection does not (see `holdProcessWhileBusy`), so that a script exits once it has
      // what it waited for.
      this.#recheckTimer = setInterval(() => this.#rechecks.forEach((r) => r()), RECHECK_INTERVAL);
    }
  }

  #removeRecheck(recheck: () => void): void {
    this.#rechecks.delete(recheck);
    if (this.#rechecks.size === 0) {
      clearInterval(this.#recheckTimer);
      this.#recheckTimer = undefined;
    }
  }

  /** Closes the subscriber connection, if one was opened. */
  async close(): Promise<void> {
    clearInterval(this.#recheckTimer);
    this.#recheckTimer = undefined;
    this.#rechecks.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await closeConnection(subscriber);
  }

  async #subscribe(channel: string, listener: Listener): Promise<void> {
    let entry = this.#listeners.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), ready: this.#subscriptions.add(channel) };
      this.#listeners.set(channel, entry);
    }
    entry.listeners.add(listener);
    await entry.ready;
  }

  #unsubscribe(channel: string, listener: Listener): void {
    const entry = this.#listeners.get(channel);
    if (!entry) return;
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0) {
      this.#listeners.delete(channel);
      // A failed UNSUBSCRIBE leaves a channel nobody listens to; messages on it are ignored.
      if (this.#subscriber?.status === "ready") {
        this.#subscriber.unsubscribe(channel).catch(() => {});
      }
    }
  }

  #connection(): Redis {
    if (!this.#subscriber) {
      const subscriber = this.#open();
      subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
        const entry = this.#listeners.get(channel.toString());
        for (const listener of entry?.listeners ?? []) listener(message);
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }
}
