/**
 * One run of a worker, from `run()` to the end of its graceful shutdown: the fetch loop, the
 * slots and the prefetch buffer, the scheduler, heartbeats, abort messages, and the hand-back
 * of unfinished work at shutdown.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { type Completed, type Completion, DeliveryWriter } from "./complete.ts";
import { closeConnection, disconnectSafely } from "../redis/connection.ts";
import { StreaqCancelled, StreaqError } from "../errors.ts";
import { execute, type ExecutionEnv, HandBack } from "./execute.ts";
import {
  asStarted,
  type Delivery,
  fetchDeliveries,
  type FetchResult,
  type StartAnswer,
} from "./fetch.ts";
import { heartbeat, hostName } from "./heartbeat.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import { MinuteMetrics } from "./metrics.ts";
import { PrefetchBuffer } from "./prefetch_buffer.ts";
import { Scheduler } from "./promote.ts";
import { redisNow } from "../redis/_redis_time.ts";

/** Whether Redis refused a command for want of memory (maxmemory with noeviction). */
function isOutOfMemory(error: unknown): boolean {
  return String((error as Error)?.message).startsWith("OOM ");
}

/** Settings of a run, from the worker options. */
export interface RunSettings {
  readonly concurrency: number;
  readonly prefetch: number;
  readonly gracePeriod: number;
  readonly idleTimeout: number;
  readonly burst: boolean;
}

interface Running {
  readonly delivery: Delivery;
  readonly controller: AbortController;
  /** Set once the outcome is written; the function may still be running. */
  written: boolean;
  /** Settles once the outcome is written, or writing it failed. */
  outcome: Promise<unknown>;
  done: Promise<void>;
}

/** How long an abort request for a task not (yet) running here is remembered. */
const RECENT_ABORT = 10_000;
/** How long an idle fetch blocks before it looks again (reclaims, burst checks). */
const MAX_BLOCK = 2_000;
/** How long shutdown waits for handed-back tasks to have their hand-back written. */
const HANDBACK_WAIT = 5_000;

/** A run of a worker. */
export class Runner {
  readonly #env: ExecutionEnv;
  readonly #client: QueueContext;
  readonly #settings: RunSettings;
  readonly #running = new Map<string, Running>();
  readonly #buffered: PrefetchBuffer;
  readonly #completer: DeliveryWriter;
  readonly #scheduler: Scheduler;
  readonly #startedAt: number;
  readonly #metrics: MinuteMetrics;
  /** Abort requests for tasks that were not running here when they came, by arrival time. */
  readonly #recentAborts = new Map<string, number>();
  #stopping = false;
  #capacity: (() => void) | undefined;
  #blocking: Redis | undefined;
  #subscriber: Redis | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #nextReclaim = 0;
  /** Per priority stream (highest first), where the next reclaim scan starts. */
  #reclaimFrom: readonly string[] = [];
  #stopped = Promise.withResolvers<void>();

  constructor(env: Omit<ExecutionEnv, "completer" | "release">, settings: RunSettings) {
    this.#completer = new DeliveryWriter(
      env.client,
      env.workerId,
      (ds) => this.#prefetched(ds),
      () => this.#settings.concurrency - this.#running.size - this.#buffered.length,
    );
    this.#env = {
      ...env,
      completer: {
        complete: (d, completion, lock) => this.#complete(d, completion, lock),
        drain: () => this.#completer.drain(),
      },
      release: (d) => this.#release(d),
    };
    this.#client = env.client;
    this.#startedAt = env.client.now();
    this.#settings = settings;
    this.#buffered = new PrefetchBuffer(env.client.prioritiesHighFirst);
    this.#scheduler = new Scheduler(this.#client, (e) => this.#redisError("promote", e));
    this.#metrics = new MinuteMetrics(env.counters);
  }

  /** Runs until `stop()` (or, in burst mode, until the queue is empty) and shuts down. */
  async run(): Promise<void> {
    const { logger, workerId } = this.#env;
    this.#subscriber = this.#client.connections.open();
    this.#subscriber.on("message", (channel: string, message: string) => {
      this.#onMessage(channel, message);
    });
    // Independent round trips, in parallel: a worker starts fetching a few milliseconds sooner.
    const ready = await Promise.allSettled([
      this.#createGroups(),
      this.#claimId(),
      this.#subscriber.subscribe(this.#client.keys.abortChannel, this.#client.keys.wakeChannel),
    ]);
    const failed = ready.find((r) => r.status === "rejected");
    if (failed) {
      await closeConnection(this.#subscriber);
      throw failed.reason;
    }
    this.#blocking = this.#client.connections.open("blocking");
    this.#scheduler.start();
    this.#scheduleHeartbeat();
    logger.info(
      `worker ${workerId} started on queue ${this.#client.keys.queueName} (concurrency ${this.#settings.concurrency}, tasks: ${
        [...this.#env.registry.keys()].join(", ") || "none"
      })`,
    );
    try {
      await this.#fetchLoop();
    } finally {
      await this.#shutdown();
    }
  }

  /** Starts the graceful shutdown; `run()` resolves when it is over. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopped.resolve();
    this.#capacity?.();
    if (this.#blocking) disconnectSafely(this.#blocking);
  }

  /** Number of tasks running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  async #fetchLoop(): Promise<void> {
    const { concurrency, prefetch, idleTimeout, burst } = this.#settings;
    const priorities = this.#client.prioritiesHighFirst;
    while (!this.#stopping) {
      const free = concurrency - this.#running.size;
      const toStart = this.#buffered.length > 0 ? 0 : Math.max(0, free);
      // Slots to fill come first: the tasks for them start sooner, and the loop goes round
      // again for the prefetch while they run.
      const toPrefetch = toStart > 0 ? 0 : Math.max(0, prefetch - this.#buffered.length);
      if (toStart + toPrefetch === 0) {
        await new Promise<void>((resolve) => (this.#capacity = resolve));
        this.#capacity = undefined;
        continue;
      }
      const reclaim = Date.now() >= this.#nextReclaim ? idleTimeout : 0;
      let fetched;
      try {
        fetched = await fetchDeliveries(
          this.#client,
          this.#env.workerId,
          priorities,
          toStart,
          toPrefetch,
          reclaim,
          this.#reclaimFrom,
        );
      } catch (error) {
        if (this.#stopping) break;
        await this.#redisError("fetch", error);
        continue;
      }
      if (reclaim) this.#reclaimed(fetched, toStart + toPrefetch);
      for (const d of fetched.deliveries) this.#dispatch(d);
      // Slots freed while the fetch was in flight take the deliveries it prefetched.
      this.#slotFreed();
      if (fetched.lastIds.length === 0) continue;
      if (burst && fetched.deliveries.length === 0 && this.#idle() && !await this.#dueSoon()) {
        break;
      }
      await this.#waitForEntries(
        priorities,
        fetched.lastIds,
        burst ? 50 : Math.max(1, Math.min(MAX_BLOCK, this.#nextReclaim - Date.now())),
      );
    }
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
    if (!full && scanned) this.#nextReclaim = Date.now() + this.#settings.idleTimeout / 2;
  }

  #idle(): boolean {
    return this.#running.size === 0 && this.#buffered.length === 0;
  }

  /**
   * In burst mode: whether a delayed task is already due (the scheduler will promote it), on
   * Redis's clock, the one due times are computed with.
   */
  async #dueSoon(): Promise<boolean> {
    const { redis, keys } = this.#client;
    const [head, now] = await Promise.all([
      redis.zrange(keys.delayed, 0, 0, "WITHSCORES"),
      redisNow(this.#client),
    ]);
    return head.length > 0 && Number(head[1]) <= now;
  }

  /** Blocks on the streams until an entry newer than `lastIds` arrives or `ms` pass. */
  async #waitForEntries(
    priorities: readonly string[],
    lastIds: string[],
    ms: number,
  ): Promise<void> {
    try {
      await this.#blocking!.xread(
        "BLOCK",
        ms,
        "STREAMS",
        ...priorities.map((p) => this.#client.keys.stream(p)),
        ...lastIds,
      );
    } catch (error) {
      if (!this.#stopping) await this.#redisError("wait for tasks", error);
    }
  }

  #dispatch(d: Delivery): void {
    const { logger } = this.#env;
    if (!d.taskId) {
      logger.warn(`dropped stream entry ${d.messageId} of ${d.stream}: it has no task id`);
    } else if (!d.fnName) {
      logger.warn(`dropped stream entry ${d.messageId}: task ${d.taskId} has no stored data`);
      this.#env.completer.complete(d, { kind: "drop" }).catch((e) => this.#redisError("drop", e));
    } else if (this.#holds(d)) {
      // A reclaim scan can take back a delivery of this very worker whose heartbeat came late:
      // it is still running or buffered here, and must not run twice.
      logger.debug(`${d.fnName} (${d.taskId}) reclaimed while still held here: ignored`);
    } else if (d.started && this.#stopping) {
      this.#handBackUnrun(d);
    } else if (d.started && this.#running.size < this.#settings.concurrency) {
      this.#execute(d);
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

  #execute(d: Delivery): void {
    const entry: Running = {
      delivery: d,
      controller: new AbortController(),
      written: false,
      outcome: Promise.resolve(),
      done: Promise.resolve(),
    };
    this.#running.set(d.key, entry);
    if (this.#recentAborts.delete(d.taskId)) this.#cancel(entry);
    const executed = execute(this.#env, d, entry.controller);
    entry.outcome = executed.catch(() => {});
    entry.done = executed
      .then(async ({ settled }) => {
        entry.written = true;
        this.#metrics.observe(this.#env.counters, this.#client.now());
        await this.#untilSettled(d, settled);
      })
      .catch((error) => this.#redisError(`finish ${d.fnName} (${d.taskId})`, error))
      .finally(() => {
        this.#running.delete(d.key);
        this.#slotFreed();
      });
  }

  /**
   * Frees the slot of a task whose function settled on its own, as soon as it did: the next
   * prefetched delivery runs in it at once, its start written with the next completion call
   * (queued before that task can finish, so never after its outcome), or the slot takes the next
   * delivery to arrive. A slot never waits for Redis. While other tasks run, the outcome of this
   * one is written after the callbacks already due: tasks that end together (timers of one
   * wave) all start their successors before any of their outcomes is encoded.
   */
  #release(d: Delivery): Promise<void> | undefined {
    if (!this.#freeSlot(d) || this.#running.size === 0) return undefined;
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Frees the slot of a task whose function settled on its own; false if it keeps it. */
  #freeSlot(d: Delivery): boolean {
    const entry = this.#running.get(d.key);
    // After an abort or a timeout the function may still be running: it keeps its slot until it
    // settles (see #untilSettled). A stopping worker starts nothing new.
    if (!entry || entry.controller.signal.aborted || this.#stopping) return false;
    this.#running.delete(d.key);
    this.#slotFreed();
    return true;
  }

  /**
   * Writes a task's outcome, refilling the prefetch buffer in the same call. A task refused
   * before its function ran frees its slot here. Its outcome is still written before the worker
   * stops (shutdown drains the completer).
   */
  async #complete(
    d: Delivery,
    completion: Completion,
    lock: string | undefined,
  ): Promise<Completed> {
    this.#freeSlot(d);
    const refill = this.#stopping
      ? 0
      : Math.max(0, this.#settings.prefetch - this.#buffered.length);
    return await this.#completer.complete(d, completion, lock, refill);
  }

  /** Takes the deliveries a completion call prefetched. */
  #prefetched(deliveries: Delivery[]): void {
    if (this.#stopping) {
      // The buffer may have been handed back already: these go back at once. An entry without
      // a task id has nothing to hand back: it is dropped already, and only warned about.
      for (const d of deliveries) d.taskId ? this.#handBackUnrun(d) : this.#dispatch(d);
      return;
    }
    for (const d of deliveries) this.#dispatch(d);
    this.#slotFreed();
  }

  /**
   * Acts on what writing the start of a prefetched delivery, already running, found: an abort
   * requested before it started cancels it, and a delivery another worker holds now is handed
   * back (its outcome would be refused as stale). Nothing is left to do for a task whose
   * outcome is written already: its start came after it.
   */
  #confirmStart(d: Delivery, answer: StartAnswer): void {
    const entry = this.#running.get(d.key);
    if (!entry || entry.written || answer === "started" || answer === "missing") return;
    if (answer === "aborting") {
      this.#cancel(entry);
    } else if (!entry.controller.signal.aborted) {
      this.#env.logger.warn(
        `task ${d.taskId} was taken over by another worker as it started here: stopping it`,
      );
      entry.controller.abort(new HandBack("another worker took the delivery over"));
    }
  }

  /**
   * Hands back, without calling its function, a delivery whose fetch or start was in flight when
   * the shutdown began: a stopping worker starts nothing new, or a task would begin its side
   * effects only to be interrupted (and run them again elsewhere).
   */
  #handBackUnrun(d: Delivery): void {
    this.#env.completer.complete(d, { kind: "back", reason: "" })
      .catch((error) => this.#redisError("hand back", error));
  }

  /** Keeps the slot of a task that ignored its signal until it really settles, and says so. */
  async #untilSettled(d: Delivery, settled: Promise<unknown>): Promise<void> {
    let pending = true;
    settled.then(() => (pending = false));
    // Almost always the function has settled already: then no timer is needed.
    for (let i = 0; i < 3 && pending; i++) await null;
    if (!pending) return;
    const timer = setTimeout(() => {
      if (pending) {
        this.#env.logger.warn(
          `${d.fnName} (${d.taskId}) has finished but its function has not returned: it ignores its signal and keeps its slot`,
        );
      }
    }, 1_000);
    await settled;
    pending = false;
    clearTimeout(timer);
  }

  #slotFreed(): void {
    while (
      this.#settings.concurrency > this.#running.size && this.#buffered.length > 0 &&
      !this.#stopping
    ) {
      const next = this.#buffered.take()!;
      this.#execute(asStarted(next));
      if (next.started) continue;
      this.#completer.start(next).then(
        (answer) => this.#confirmStart(next, answer),
        (error) => this.#redisError("start", error),
      );
    }
    this.#capacity?.();
  }

  #onMessage(channel: string, message: string): void {
    const { keys } = this.#client;
    if (channel === keys.wakeChannel) {
      this.#scheduler.notify(Number(message));
    } else if (channel === keys.abortChannel) {
      this.#abortRunning(message);
    }
  }

  #abortRunning(taskId: string): void {
    let found = false;
    for (const entry of this.#running.values()) {
      if (entry.delivery.taskId === taskId) {
        found = true;
        this.#cancel(entry);
      }
    }
    if (!found) this.#rememberAbort(taskId);
  }

  #cancel(entry: Running): void {
    const d = entry.delivery;
    if (!entry.controller.signal.aborted) {
      entry.controller.abort(
        new StreaqCancelled(`Task ${d.fnName} (${d.taskId}) was aborted while running`),
      );
    }
  }

  /**
   * Keeps an abort request for a task not running here, for a while: the fetch that starts the
   * task may be in flight, and its abort check in Redis may have come before the request.
   */
  #rememberAbort(taskId: string): void {
    const now = Date.now();
    for (const [id, at] of this.#recentAborts) {
      if (now - at < RECENT_ABORT) break;
      this.#recentAborts.delete(id);
    }
    this.#recentAborts.set(taskId, now);
  }

  #scheduleHeartbeat(): void {
    const interval = this.#settings.idleTimeout / 3;
    this.#heartbeatTimer = setTimeout(async () => {
      await this.#beat();
      if (!this.#stopping) this.#scheduleHeartbeat();
    }, interval);
  }

  async #beat(): Promise<void> {
    const held = new Map<string, string[]>();
    const hold = (d: Delivery) => {
      const ids = held.get(d.stream) ?? [];
      ids.push(d.messageId);
      held.set(d.stream, ids);
    };
    for (const entry of this.#running.values()) hold(entry.delivery);
    for (const d of this.#buffered) hold(d);
    const runningIds = [...this.#running.values()].map((e) => e.delivery.taskId);
    try {
      const beat = await heartbeat(
        this.#client,
        this.#env.workerId,
        held,
        runningIds,
        this.#health(),
        this.#settings.idleTimeout * 2,
      );
      for (const entry of this.#running.values()) {
        if (beat.lost.has(entry.delivery.key) && !entry.controller.signal.aborted) {
          entry.controller.abort(new HandBack("another worker took the delivery over"));
        }
      }
      this.#buffered.remove((d) => beat.lost.has(d.key));
      for (const id of beat.aborting) this.#abortRunning(id);
    } catch (error) {
      this.#redisError("heartbeat", error);
    }
    await this.#flushMetrics();
  }

  /** Writes the per-minute counts of outcomes noted since the last flush (see metrics.ts). */
  async #flushMetrics(): Promise<void> {
    try {
      await this.#metrics.flush(this.#client, this.#env.counters);
    } catch (error) {
      this.#env.logger.error(`metrics flush failed: ${(error as Error)?.message ?? error}`);
    }
  }

  #health() {
    return {
      id: this.#env.workerId,
      queue: this.#client.keys.queueName,
      host: hostName(),
      pid: Deno.pid,
      concurrency: this.#settings.concurrency,
      startedAt: this.#startedAt,
      heartbeatAt: this.#client.now(),
      running: this.#running.size,
      counters: { ...this.#env.counters },
    };
  }

  async #createGroups(): Promise<void> {
    const pipeline = this.#client.redis.pipeline();
    const streams = this.#client.priorities.map((p) => this.#client.keys.stream(p));
    for (const stream of streams) {
      pipeline.xgroup("CREATE", stream, CONSUMER_GROUP, "0", "MKSTREAM");
    }
    for (const [i, [error]] of (await pipeline.exec() ?? []).entries()) {
      if (!error || String(error.message).includes("BUSYGROUP")) continue;
      // At maxmemory (noeviction) Redis refuses XGROUP CREATE even for a group that exists; a
      // worker must still start then, to drain the queue.
      if (isOutOfMemory(error) && await this.#groupExists(streams[i])) continue;
      throw error;
    }
  }

  async #groupExists(stream: string): Promise<boolean> {
    const groups = await this.#client.redis.xinfo("GROUPS", stream).catch(() => []) as unknown[][];
    return groups.some((fields) => fields[fields.indexOf("name") + 1] === CONSUMER_GROUP);
  }

  /** Takes this worker's health key, refusing an id that a live worker of the queue uses. */
  async #claimId(): Promise<void> {
    const key = this.#client.keys.health(this.#env.workerId);
    const health = JSON.stringify(this.#health());
    const ttl = this.#settings.idleTimeout * 2;
    const set = await this.#client.redis.set(key, health, "PX", ttl, "NX").catch(async (error) => {
      // At maxmemory Redis refuses the health record: the worker starts without one (heartbeats
      // write it once there is room), as long as no live worker has its id.
      if (!isOutOfMemory(error)) throw error;
      return await this.#client.redis.exists(key) ? null : "OK";
    });
    if (set !== "OK") {
      throw new StreaqError(
        `Cannot run worker as 'id' must be unique within queue ${this.#client.keys.queueName}: a live worker already uses ${
          JSON.stringify(this.#env.workerId)
        }`,
      );
    }
  }

  /** Logs a Redis error, re-creates consumer groups that a restarted Redis lost, and pauses. */
  async #redisError(what: string, error: unknown): Promise<void> {
    this.#env.logger.error(`${what} failed: ${(error as Error)?.message ?? String(error)}`);
    if (String((error as Error)?.message).includes("NOGROUP")) {
      await this.#createGroups().catch(() => {});
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, 500))), this.#stopped.promise]);
    clearTimeout(timer);
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    const { logger, completer, workerId } = this.#env;
    const started = Date.now();
    logger.info(`worker ${workerId} shutting down`);
    clearTimeout(this.#heartbeatTimer);
    await this.#completer.drain();
    const buffered = this.#buffered.clear();
    await Promise.all(buffered.map((d) => completer.complete(d, { kind: "back", reason: "" })))
      .catch((e) => this.#redisError("hand back prefetched tasks", e));
    await this.#waitForRunning(this.#settings.gracePeriod);
    const unfinished = [...this.#running.values()].filter((e) => !e.written);
    for (const entry of unfinished) {
      entry.controller.abort(new HandBack(`worker ${workerId} shut down`));
    }
    await this.#waitForRunning(HANDBACK_WAIT, unfinished);
    await completer.drain();
    await this.#flushMetrics();
    await this.#scheduler.stop();
    await this.#client.redis.del(this.#client.keys.health(workerId)).catch(() => {});
    if (this.#subscriber) await closeConnection(this.#subscriber);
    if (this.#blocking) await closeConnection(this.#blocking);
    logger.info(`worker ${workerId} stopped after ${Date.now() - started} ms of shutdown`);
  }

  /** Waits up to `ms` until `entries` (default: all running tasks) have written their outcome. */
  async #waitForRunning(ms: number, entries?: Running[]): Promise<void> {
    const pending = (entries ?? [...this.#running.values()]).filter((e) => !e.written);
    if (pending.length === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const written = Promise.all(pending.map((e) => e.outcome));
    await Promise.race([written, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }
}
