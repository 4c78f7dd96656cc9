/**
 * Waiting for results. All waiters of one client share one subscriber connection; each waiter
 * subscribes to its task's channel before it reads the result key, so a result that lands in
 * between is never missed. Pub/sub does not replay messages sent while the subscriber was
 * reconnecting (a Redis restart, a failover), so waits also re-read their key now and then.
 *
 * A wait also ends when its task is gone: neither result nor task in Redis (never enqueued,
 * expired, a result with `ttl: 0` published before the wait subscribed, or lost with a Redis
 * that restarted empty). Only after a grace period, though: a wait may start just before the
 * enqueue of its task lands.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { closeConnection } from "../redis/connection.ts";
import { sendDirect, takesDirectCalls } from "../redis/_direct_call.ts";
import { Batcher } from "./_batch.ts";
import { WaitDeadlines } from "./_wait_deadlines.ts";

type Listener = (blob: Buffer) => void;

/**
 * How often pending waits re-read their result key, for a result published while the
 * subscriber was reconnecting: the longest such a result can go unnoticed.
 */
const RECHECK_INTERVAL = 5_000;

/**
 * How long a task must stay gone before a wait on it ends: longer than an enqueue sent just
 * before the wait started takes to land, even on a loaded machine or a distant Redis.
 */
export const GONE_GRACE = 2_000;

/**
 * What a look at a task's keys found: its stored result, `"pending"` while the task is there
 * without one (queued, scheduled, running, waiting for its dependencies, repeating), or
 * `"gone"` when neither is.
 */
export type Reading = Buffer | "pending" | "gone";

/** One wait's subscription to its task's channel, made before anything that may finish it. */
export interface Subscription extends Disposable {
  /** The first message published on the channel after the subscription was made. */
  readonly message: Promise<Buffer>;
}

/** One subscriber connection shared by every result wait of a client. */
export class ResultWaiter {
  readonly #open: () => Redis;
  readonly #listeners = new Map<
    string,
    { listeners: Set<Listener>; ready: Promise<unknown>; confirmed?: boolean }
  >();
  readonly #rechecks = new Set<() => void>();
  /**
   * One SUBSCRIBE at a time, for every channel asked meanwhile. Besides saving round trips, this
   * keeps a SUBSCRIBE from being written while the connection is still opening, ahead of
   * ioredis's ready check (which then fails, ioredis issue #2037): the first one waits in
   * ioredis's queue until the connection is ready, and the next ones wait for the first.
   * A Cluster client's subscriber connection always makes that check.
   */
  readonly #subscriptions = new Batcher<string, void>(async (channels) => {
    await this.#send("subscribe", channels);
    return channels.map(() => undefined);
  });
  #recheckTimer: ReturnType<typeof setInterval> | undefined;
  #subscriber: Redis | undefined;
  /** The time limits of the waits (`result({ timeout })`), on one timer. */
  readonly deadlines = new WaitDeadlines();

  constructor(open: () => Redis) {
    this.#open = open;
  }

  /**
   * Subscribes to `channel`; resolves once Redis has confirmed it, so that whatever is
   * published from then on is caught. Dispose of the subscription when done with it.
   *
   * `marker` is the queue's listeners channel (`QueueKeys.listenersChannel`), subscribed before
   * `channel` (in an earlier SUBSCRIBE or earlier in the same one) and kept while the connection
   * lives: a completion that finds nobody on it publishes no result at all, without counting the
   * subscribers of each task's channel (`surveyFinals` in `src/run/_complete_lua.ts`).
   */
  async subscribe(channel: string, marker: string): Promise<Subscription> {
    const { promise, resolve } = Promise.withResolvers<Buffer>();
    const listener: Listener = (blob) => resolve(blob);
    try {
      // The marker first: it joins the SUBSCRIBE batch before the channel does. Once Redis has
      // confirmed it, as for every wait but a connection's first, only the channel is awaited.
      const marked = this.#mark(marker);
      if (marked) await Promise.all([marked, this.#subscribe(channel, listener)]);
      else await this.#subscribe(channel, listener);
    } catch (error) {
      this.#unsubscribe(channel, listener);
      throw error;
    }
    return {
      message: promise,
      // Not awaited: a later SUBSCRIBE to the same channel is sent after this UNSUBSCRIBE on the
      // same connection, so it cannot be undone by it.
      [Symbol.dispose]: () => this.#unsubscribe(channel, listener),
    };
  }

  /**
   * Waits for the outcome of the task `subscription` listens for: the message published on its
   * channel, or the result `read()` finds, once now and again at each recheck. Resolves to the
   * blob, to `"gone"` when `read()` has found the task gone for {@linkcode GONE_GRACE}, or to
   * undefined when `signal` aborts first.
   */
  async wait(
    subscription: Subscription,
    read: () => Promise<Reading>,
    signal: AbortSignal,
  ): Promise<Buffer | "gone" | undefined> {
    const { promise, resolve } = Promise.withResolvers<Buffer | "gone" | undefined>();
    subscription.message.then(resolve);
    const onAbort = () => resolve(undefined);
    let over = false;
    let goneSince: number | undefined;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const judge = (reading: Reading): void => {
      if (over) return;
      if (reading === "pending") {
        goneSince = undefined;
      } else if (reading !== "gone") {
        resolve(reading);
      } else {
        const now = Date.now();
        goneSince ??= now;
        if (now - goneSince >= GONE_GRACE) return resolve("gone");
        clearTimeout(graceTimer);
        graceTimer = setTimeout(look, GONE_GRACE - (now - goneSince));
      }
    };
    // A failed read (Redis away) decides nothing: the next recheck reads again.
    const look = () => void read().then(judge, () => {});
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      const first = await read();
      // A stored result wins even if the wait ran out meanwhile (timeout 0 on a finished task).
      if (typeof first !== "string") return first;
      judge(first);
      this.#addRecheck(look);
      return await promise;
    } finally {
      over = true;
      clearTimeout(graceTimer);
      signal.removeEventListener("abort", onAbort);
      this.#removeRecheck(look);
    }
  }

  #addRecheck(recheck: () => void): void {
    this.#rechecks.add(recheck);
    if (this.#recheckTimer === undefined) {
      this.#recheckTimer = setInterval(() => this.#rechecks.forEach((r) => r()), RECHECK_INTERVAL);
    } else if (this.#rechecks.size === 1) {
      // This timer is what keeps the process alive while results are awaited: an idle
      // connection does not (see `holdProcessWhileBusy`), so that a script exits once it has
      // what it waited for.
      Deno.refTimer(this.#recheckTimer);
    }
  }

  #removeRecheck(recheck: () => void): void {
    this.#rechecks.delete(recheck);
    // Kept, but no longer holding the process, rather than cleared and made again for the next
    // wait: a client waiting for one result after another would make a timer per wait.
    if (this.#rechecks.size === 0 && this.#recheckTimer !== undefined) {
      Deno.unrefTimer(this.#recheckTimer);
    }
  }

  /** Closes the subscriber connection, if one was opened. */
  async close(): Promise<void> {
    this.deadlines.close();
    clearInterval(this.#recheckTimer);
    this.#recheckTimer = undefined;
    this.#rechecks.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await closeConnection(subscriber);
  }

  /**
   * Subscribes to the listeners channel `marker` once per connection; never unsubscribed.
   * Returns the SUBSCRIBE to wait for, or undefined once Redis has confirmed it.
   */
  #mark(marker: string): Promise<unknown> | undefined {
    let entry = this.#listeners.get(marker);
    if (!entry) {
      const made = {
        listeners: new Set<Listener>(),
        ready: this.#subscriptions.add(marker),
        confirmed: false,
      };
      // A failed SUBSCRIBE is made again by the next wait.
      made.ready.then(() => void (made.confirmed = true), () => {
        if (this.#listeners.get(marker) === made) this.#listeners.delete(marker);
      });
      entry = made;
      this.#listeners.set(marker, entry);
    }
    return entry.confirmed ? undefined : entry.ready;
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
        this.#send("unsubscribe", [channel]).catch(() => {});
      }
    }
  }

  /**
   * SUBSCRIBE or UNSUBSCRIBE on the subscriber connection; as a plain object on a single
   * connection, which a scavenge does not keep (see `_direct_call.ts`): two of the commands of
   * every result wait.
   */
  #send(name: "subscribe" | "unsubscribe", channels: string[]): Promise<unknown> {
    const connection = this.#connection();
    return takesDirectCalls(connection)
      ? sendDirect(connection, name, channels)
      : connection[name](...channels);
  }

  #connection(): Redis {
    if (!this.#subscriber) {
      const subscriber = this.#open();
      subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
        // forEach: no iterator per message.
        this.#listeners.get(channel.toString())?.listeners.forEach((listener) => listener(message));
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }
}
