/**
 * The fetch loop of a run: it claims deliveries for the free slots and the prefetch buffer
 * (`fetchDeliveries` in `fetch.ts`), reclaims deliveries that a dead worker left idle, and while
 * nothing is to be had blocks on the streams (XREAD BLOCK, on a connection of its own) so that
 * an idle worker answers a new task in about a millisecond without polling; on a single
 * connection its next fetch waits in Redis behind that read (`read_then_fetch.ts`). With every
 * slot and the buffer full it sleeps until the slots wake it. In burst mode it ends once the
 * queue is empty and nothing is due.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { closeConnection, disconnectSafely } from "../redis/connection.ts";
import { sendDirect, takesDirectCalls } from "../redis/_direct_call.ts";
import { type Delivery, fetchDeliveries, type FetchResult } from "./fetch.ts";
import { redisNow } from "../redis/_redis_time.ts";
import type { OnRedisError } from "./redis_errors.ts";
import type { StopFlag } from "./shutdown.ts";
import { fetchesBehindRead, readThenFetch, stillOwned } from "./read_then_fetch.ts";

/** How long an idle fetch blocks before it looks again (reclaims, burst checks). */
const MAX_BLOCK = 2_000;
/** How long a burst-mode fetch blocks before it checks whether the queue is empty. */
const BURST_BLOCK = 50;
/**
 * How long the loop waits before it fetches again while the whole queue is paused, unless woken
 * sooner (a resume is announced on the flow channel, see `pause_view.ts`): a worker that missed
 * the announcement still resumes within this.
 */
export const PAUSED_POLL = 500;

/** What the fetch loop needs from the slots (see `src/run/slots.ts`). */
export interface SlotsToFill {
  /** Whether nothing runs and nothing is buffered. */
  readonly idle: boolean;
  /**
   * How many deliveries to fetch, to start (for the free slots, first) and to read ahead,
   * counted as asked for until {@linkcode SlotsToFill.noteClaimed}.
   */
  reserveClaims(slotsFirst: boolean): { readonly start: number; readonly prefetch: number };
  /** A fetch came back after `ms` with `got` of the `asked` deliveries, or failed (no `ms`). */
  noteClaimed(asked: number, got: number, ms?: number): void;
  /** Takes in fetched deliveries. */
  admitFetched(deliveries: readonly Delivery[]): void;
}

/** What the fetch loop needs from its run. */
export interface FetchLoopOptions {
  readonly client: QueueContext;
  readonly workerId: string;
  /** Deliveries idle this long are reclaimed from the worker that holds them. */
  readonly idleTimeout: number;
  /** End once the queue is empty and nothing is due. */
  readonly burst: boolean;
  readonly slots: SlotsToFill;
  readonly stop: StopFlag;
  readonly onRedisError: OnRedisError;
  /**
   * Whether the worker runs a function with a rate limit (its own or per group): a call may then
   * set tasks aside until a window opens, while the loop waits for new entries, and the loop must
   * wake then ({@linkcode FetchLoop.alarm}). A block (`StreaqRateLimited`) can hold back any
   * function; the first alarm turns this on in any worker.
   */
  readonly timedFlow: boolean;
}

/** Fetches deliveries into the slots until the run stops. */
export class FetchLoop {
  readonly #options: FetchLoopOptions;
  #blocking: Redis | undefined;
  /** Whether the fetch can wait behind the blocking read (see `read_then_fetch.ts`). */
  #behindRead = false;
  /** The ids to read after, when the next fetch waits behind a read. */
  #readAfter: string[] | undefined;
  /** Resolves the sleep of a loop that found every slot and the buffer full. */
  #wakeUp: (() => void) | undefined;
  /** When the next fetch reclaims idle deliveries (ms since the epoch). */
  #nextReclaim = 0;
  /** Per priority stream (highest first), where the next reclaim scan starts. */
  #reclaimFrom: readonly string[] = [];
  /** The blocking read sent and not yet answered, and whether one is under way. */
  #pendingRead: Promise<void> | undefined;
  #reading = false;
  /** Whether a wait can be ended by an alarm: see {@linkcode FetchLoopOptions.timedFlow}. */
  #timed: boolean;
  /** Ends the wait under way (an alarm rang). */
  #endWait: (() => void) | undefined;
  /** The alarm's timer and when it rings (ms since the epoch): see {@linkcode FetchLoop.alarm}. */
  #alarm: ReturnType<typeof setTimeout> | undefined;
  #alarmAt = 0;

  /** A loop for the run these options describe. */
  constructor(options: FetchLoopOptions) {
    this.#options = options;
    this.#timed = options.timedFlow;
  }

  /** Opens the connection the loop blocks on; the loop runs from {@linkcode FetchLoop.run}. */
  open(): void {
    this.#blocking = this.#options.client.connections.open("blocking");
    this.#behindRead = fetchesBehindRead(this.#blocking);
  }

  /** Runs until the run stops, or in burst mode until the queue is empty. */
  async run(): Promise<void> {
    const { client, workerId, idleTimeout, burst, slots, stop } = this.#options;
    const priorities = client.prioritiesHighFirst;
    while (!stop.stopping) {
      const reclaim = Date.now() >= this.#nextReclaim ? idleTimeout : 0;
      // A reclaim that is due is sent at once, not behind a read: a read that blocks until the
      // next reclaim is due (see #blockFor) ends then, and the fetch behind it reclaims nothing.
      const readAfter = reclaim ? undefined : this.#readAfter;
      this.#readAfter = undefined;
      // Slots to fill come first: the tasks for them start sooner, and the loop goes round
      // again for the prefetch while they run.
      const { start: toStart, prefetch: toPrefetch } = slots.reserveClaims(true);
      if (toStart + toPrefetch === 0) {
        await new Promise<void>((resolve) => (this.#wakeUp = resolve));
        this.#wakeUp = undefined;
        continue;
      }
      const block = readAfter ? this.#blockFor() : 0;
      let fetched;
      const sent = performance.now();
      try {
        const fetch = (connection = client.redis) =>
          fetchDeliveries(
            client,
            workerId,
            priorities,
            toStart,
            toPrefetch,
            reclaim,
            this.#reclaimFrom,
            connection,
          );
        if (readAfter) {
          fetched = await readThenFetch(
            this.#blocking!,
            this.#readArgs(priorities, readAfter, block),
            block,
            fetch,
          );
          const deliveries = await stillOwned(client, workerId, fetched.deliveries);
          fetched = { ...fetched, deliveries };
        } else {
          fetched = await fetch();
        }
      } catch (error) {
        slots.noteClaimed(toStart + toPrefetch, 0);
        if (stop.stopping) break;
        await this.#options.onRedisError("fetch", error);
        continue;
      }
      if (reclaim) this.#reclaimed(fetched, toStart + toPrefetch);
      // A paused queue claims nothing, and a fetch behind a read waited for it: neither says
      // anything of how far to read ahead.
      const ms = fetched.queuePaused || readAfter ? undefined : performance.now() - sent;
      slots.noteClaimed(toStart + toPrefetch, fetched.deliveries.length, ms);
      slots.admitFetched(fetched.deliveries);
      if (fetched.queuePaused) {
        // In burst mode, a paused queue has nothing to run now: the run ends once idle.
        if (burst && slots.idle) break;
        await this.#sleep(PAUSED_POLL);
        continue;
      }
      if (fetched.lastIds.length === 0) continue;
      // A stop that came while the fetch was under way closed the blocking connection. A Cluster
      // client queues a command sent on it until it reconnects, which it never does: the read
      // would never end, and neither would the run.
      if (stop.stopping) break;
      if (burst && fetched.deliveries.length === 0 && slots.idle && !await this.#dueSoon()) {
        break;
      }
      // A rate-limited function's tasks wait for its window: fetch again when it has room.
      if (fetched.wakeIn !== undefined) this.alarm(fetched.wakeIn);
      // An alarm cannot end a read with a fetch behind it: the loop then waits as before.
      if (this.#behindRead && !this.#timed) {
        this.#readAfter = fetched.lastIds;
        continue;
      }
      await this.#waitForEntries(priorities, fetched.lastIds, this.#blockFor());
    }
  }

  /** How long the next blocking read blocks: until the next reclaim is due, at most. */
  #blockFor(): number {
    if (this.#options.burst) return BURST_BLOCK;
    return Math.max(1, Math.min(MAX_BLOCK, this.#nextReclaim - Date.now()));
  }

  /** The arguments of an XREAD that blocks `ms` for entries after `lastIds`. */
  #readArgs(priorities: readonly string[], lastIds: string[], ms: number): (string | number)[] {
    const { keys } = this.#options.client;
    return ["BLOCK", ms, "STREAMS", ...priorities.map((p) => keys.stream(p)), ...lastIds];
  }

  /**
   * Wakes a loop that sleeps because every slot and the buffer were full, or because the queue
   * was paused.
   */
  wake(): void {
    this.#wakeUp?.();
  }

  /** Sleeps `ms`, or until {@linkcode FetchLoop.wake}. */
  async #sleep(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wakeUp = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wakeUp = undefined;
  }

  /** Wakes the loop and cuts its blocking read short, for a stop. */
  interrupt(): void {
    clearTimeout(this.#alarm);
    this.#alarm = undefined;
    this.#endWait?.();
    this.wake();
    if (this.#blocking) disconnectSafely(this.#blocking);
  }

  /** Closes the connection the loop blocked on. */
  async close(): Promise<void> {
    clearTimeout(this.#alarm);
    this.#alarm = undefined;
    if (this.#blocking) await closeConnection(this.#blocking);
  }

  /**
   * Schedules the next reclaim. XAUTOCLAIM takes at most what a fetch asks for, and looks at
   * ten pending entries per delivery asked for: while a fetch comes back full, or a stream's
   * scan has not reached the end, stale deliveries may remain, so the next fetch reclaims
   * again (from where the scan stopped). Otherwise a busy worker, asking for one delivery at a
   * time, would bring a dead worker's tasks back one per half idleTimeout, or never reach
   * those behind many live ones.
   */
  #reclaimed(fetched: FetchResult, asked: number): void {
    this.#reclaimFrom = fetched.reclaimCursors;
    const full = fetched.deliveries.length >= asked;
    const scanned = fetched.reclaimCursors.every((cursor) => cursor === "0-0");
    if (!full && scanned) this.#nextReclaim = Date.now() + this.#options.idleTimeout / 2;
  }

  /**
   * In burst mode: whether a delayed task is already due (the scheduler will promote it), on
   * Redis's clock, the one due times are computed with.
   */
  async #dueSoon(): Promise<boolean> {
    const { redis, keys } = this.#options.client;
    const [head, now] = await Promise.all([
      redis.zrange(keys.delayed, 0, 0, "WITHSCORES"),
      redisNow(this.#options.client),
    ]);
    return head.length > 0 && Number(head[1]) <= now;
  }

  /**
   * Ends the loop's wait for new entries in `ms` at the latest (or sooner, as an earlier alarm
   * says): tasks set aside wait for a rate window or a block that ends then. A timer of its own,
   * as Redis checks a blocked read's timeout only as often as its `hz` says (10 times a second
   * by default): a read blocking until then would end up to 100 ms late.
   */
  alarm(ms: number): void {
    // From now on every wait can be ended: a wait under way now that cannot ends no later than
    // its read's time limit, as before.
    this.#timed = true;
    // A call answered while the run stops: nothing waits for the window any more.
    if (this.#options.stop.stopping) return;
    const at = Date.now() + ms;
    if (this.#alarm !== undefined && at >= this.#alarmAt) return;
    clearTimeout(this.#alarm);
    this.#alarmAt = at;
    this.#alarm = setTimeout(() => {
      this.#alarm = undefined;
      this.#endWait?.();
    }, Math.max(0, ms));
    // The run's own waits hold the process; a window hours away must not.
    Deno.unrefTimer(this.#alarm);
  }

  /**
   * Waits until an entry newer than `lastIds` arrives or `ms` pass; in a worker that may meet a
   * rate window or a block (see {@linkcode FetchLoopOptions.timedFlow}), or an alarm rings (see
   * {@linkcode FetchLoop.alarm}). A read still pending from a wait that an alarm ended is waited
   * for again rather than sent anew (one blocking read at a time on the connection): it wakes on
   * any entry newer than the ids it was sent with, so at worst the loop fetches once for nothing.
   * A wait that an alarm can end makes a promise of its own, so only such workers make one.
   */
  #waitForEntries(priorities: readonly string[], lastIds: string[], ms: number): Promise<void> {
    let read = this.#pendingRead;
    if (read === undefined) {
      read = this.#read(priorities, lastIds, ms);
      // Unless it ended already (a failure while stopping).
      if (this.#reading) this.#pendingRead = read;
    }
    // The read itself, without an async frame around it: one wait per task in an idle worker.
    if (!this.#timed) return read;
    const pending = read;
    return new Promise<void>((resolve) => {
      this.#endWait = resolve;
      pending.then(resolve);
    }).then(() => {
      this.#endWait = undefined;
    });
  }

  /** Sends one blocking read (see {@linkcode FetchLoop.#waitForEntries}). */
  async #read(priorities: readonly string[], lastIds: string[], ms: number): Promise<void> {
    this.#reading = true;
    try {
      const args = this.#readArgs(priorities, lastIds, ms);
      const blocking = this.#blocking!;
      // The reply is not read: the next claim takes the entries. A plain object on a single
      // connection, which a scavenge does not keep (see `_direct_call.ts`).
      await (takesDirectCalls(blocking)
        ? sendDirect(blocking, "xread", args, ms)
        : blocking.call("xread", ...args));
    } catch (error) {
      if (!this.#options.stop.stopping) {
        await this.#options.onRedisError("wait for tasks", error);
      }
    } finally {
      this.#reading = false;
      this.#pendingRead = undefined;
    }
  }
}
