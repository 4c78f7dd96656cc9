/**
 * One run of a worker, from `run()` to the end of its graceful shutdown. The runner only wires
 * the parts of a run together, each in its own file and owning its own state:
 *
 * - the slots (`slots.ts`): the running tasks and the prefetch buffer;
 * - the fetch loop (`fetch_loop.ts`): claims, reclaims, and the blocking wait for entries;
 * - the abort listener (`abort_listener.ts`): abort requests from the pub/sub channel;
 * - the pause view (`pause_view.ts`): the pauses in force, for prefetched deliveries;
 * - the heartbeat timer (`heartbeat_timer.ts`): heartbeats of held deliveries, abort checks;
 * - the live flush (`live_flush.ts`): the health record and per-minute metrics, each second;
 * - the scheduler (`promote.ts`): promotion of due delayed tasks;
 * - the shutdown (`shutdown.ts`): whether the run is stopping, and the hand-back of its work;
 * - the start-up steps (`startup.ts`) and the handling of Redis errors (`redis_errors.ts`).
 *
 * @module
 */

import { DeliveryWriter } from "./complete.ts";
import { execute, type ExecutionEnv } from "./execute.ts";
import { AbortListener } from "./abort_listener.ts";
import { FetchLoop } from "./fetch_loop.ts";
import { HeartbeatTimer } from "./heartbeat_timer.ts";
import { LiveFlush } from "./live_flush.ts";
import { type OnRedisError, redisErrorHandler } from "./redis_errors.ts";
import { Scheduler } from "./promote.ts";
import { DedupeSweep } from "./dedupe_sweep.ts";
import { Shutdown } from "./shutdown.ts";
import { Slots } from "./slots.ts";
import { PauseView } from "./pause_view.ts";
import { writeLimits } from "./flow_limits.ts";
import { claimWorkerId, createConsumerGroups } from "./startup.ts";

/** Settings of a run, from the worker options. */
export interface RunSettings {
  readonly concurrency: number;
  readonly prefetch: number;
  /** `prefetch` was left at its default: the depth adapts to the tasks (`read_ahead.ts`). */
  readonly adaptivePrefetch: boolean;
  readonly gracePeriod: number;
  readonly idleTimeout: number;
  readonly burst: boolean;
  /** On a sharded queue, which shard this run serves, and of how many (for its log lines). */
  readonly shard?: { readonly index: number; readonly count: number };
}

/** A run of a worker. */
export class Runner {
  readonly #env: ExecutionEnv;
  readonly #settings: RunSettings;
  readonly #shutdown = new Shutdown();
  readonly #onRedisError: OnRedisError;
  readonly #completer: DeliveryWriter;
  readonly #slots: Slots;
  readonly #abortListener: AbortListener;
  readonly #heartbeats: HeartbeatTimer;
  readonly #live: LiveFlush;
  readonly #fetchLoop: FetchLoop;
  readonly #scheduler: Scheduler;
  readonly #pauses: PauseView;
  readonly #dedupeSweep: DedupeSweep;

  /** Wires the parts of a run; nothing starts before {@linkcode Runner.run}. */
  constructor(env: Omit<ExecutionEnv, "completer" | "release">, settings: RunSettings) {
    const { client, workerId, logger, counters, stats } = env;
    const { concurrency, idleTimeout, burst } = settings;
    // A rate-limited function's starts (or its groups') are counted when they are claimed: a worker that runs one
    // claims only what it starts at once, or a task read ahead would start later than counted.
    const prefetch =
      [...env.registry.values()].some((t) =>
          t.limit?.max !== undefined || t.groups?.max !== undefined
        )
        ? 0
        : settings.prefetch;
    const stop = this.#shutdown;
    const onRedisError = redisErrorHandler(client, logger, (ms) => stop.pause(ms));
    this.#onRedisError = onRedisError;
    this.#settings = settings;
    // The parts reach one another through these arrows, so the order below does not matter.
    this.#completer = new DeliveryWriter(client, workerId, {
      reserveClaims: () => this.#slots.reserveClaims(),
      claimed: (asked, got, ms) => this.#slots.noteClaimed(asked, got, ms),
      admit: (ds) => this.#slots.admitPrefetched(ds),
      wakeIn: (ms) => this.#fetchLoop.alarm(ms),
    });
    this.#env = this.#executionEnv(env);
    this.#slots = new Slots({
      concurrency,
      prefetch,
      // A task read ahead holds a slot of its function's concurrency limit or of its group: a
      // worker running limited functions reads no further ahead than it was told.
      adaptivePrefetch: settings.adaptivePrefetch && prefetch > 0 &&
        ![...env.registry.values()].some((t) => t.limit !== undefined || t.groups !== undefined),
      priorities: client.prioritiesHighFirst,
      completer: this.#completer,
      execute: (d, controller) => execute(this.#env, d, controller),
      stop,
      logger,
      onRedisError,
      takeEarlyAbort: (taskId) => this.#abortListener.takeEarlyAbort(taskId),
      onOutcomeWritten: () => this.#live.noteOutcomes(),
      onSlotsChanged: () => this.#fetchLoop.wake(),
      isPaused: (fnName) => this.#pauses.isPaused(fnName),
    });
    this.#pauses = new PauseView(client, () => this.#fetchLoop.wake(), onRedisError);
    this.#abortListener = new AbortListener(client, {
      cancelRunning: (taskId) => this.#slots.cancel(taskId),
      onWake: (due) => this.#scheduler.notify(due),
      onFlow: () => this.#pauses.refresh(),
    });
    this.#live = new LiveFlush({
      client,
      workerId,
      concurrency,
      healthTtl: idleTimeout * 2,
      counters,
      stats,
      running: () => this.#slots.runningCount,
      logger,
    });
    this.#heartbeats = new HeartbeatTimer({
      client,
      workerId,
      idleTimeout,
      report: this.#live,
      slots: this.#slots,
      stop,
      onAbortRequested: (taskId) => this.#abortListener.abort(taskId),
      onRedisError,
    });
    this.#fetchLoop = new FetchLoop({
      client,
      workerId,
      idleTimeout,
      burst,
      slots: this.#slots,
      stop,
      onRedisError,
      timedFlow: [...env.registry.values()].some((t) =>
        t.limit?.max !== undefined || t.groups?.max !== undefined
      ),
    });
    this.#scheduler = new Scheduler(client, (e) => onRedisError("promote", e));
    this.#dedupeSweep = new DedupeSweep(client, [...env.registry.keys()], onRedisError);
  }

  /** What running a task needs: outcomes are written, and slots freed, through the slots. */
  #executionEnv(env: Omit<ExecutionEnv, "completer" | "release">): ExecutionEnv {
    return {
      ...env,
      completer: {
        complete: (d, completion, lock) => this.#slots.writeOutcome(d, completion, lock),
        drain: () => this.#completer.drain(),
      },
      release: (d) => this.#slots.freeSlotAndYield(d),
    };
  }

  /** Runs until `stop()` (or, in burst mode, until the queue is empty) and shuts down. */
  async run(): Promise<void> {
    const { client, logger, workerId } = this.#env;
    const subscribed = this.#abortListener.subscribe();
    // Independent round trips, in parallel: a worker starts fetching a few milliseconds sooner.
    const health = this.#live.health();
    const ready = await Promise.allSettled([
      createConsumerGroups(client),
      claimWorkerId(client, workerId, health, this.#settings.idleTimeout * 2),
      subscribed,
      this.#pauses.refresh(),
      writeLimits(client, this.#env.registry.values()),
    ]);
    const failed = ready.find((r) => r.status === "rejected");
    if (failed) {
      this.#pauses.stop();
      await this.#abortListener.close();
      throw failed.reason;
    }
    this.#fetchLoop.open();
    this.#scheduler.start();
    this.#live.written(health);
    this.#heartbeats.start();
    this.#live.start();
    this.#dedupeSweep.start();
    logger.info(
      `worker ${workerId} started on queue ${client.keys.queueName}${this.#shardLabel} (concurrency ${this.#settings.concurrency}, tasks: ${
        [...this.#env.registry.keys()].join(", ") || "none"
      })`,
    );
    try {
      await this.#fetchLoop.run();
    } finally {
      await this.#finish();
    }
  }

  /** ", shard 2 of 3" on a sharded queue, where each shard's run logs its own lines; else "". */
  get #shardLabel(): string {
    const { shard } = this.#settings;
    return shard ? `, shard ${shard.index + 1} of ${shard.count}` : "";
  }

  /** Starts the graceful shutdown; `run()` resolves when it is over. */
  stop(): void {
    if (!this.#shutdown.ask()) return;
    this.#env.client.connections.impatientWhileDown(true);
    this.#fetchLoop.interrupt();
  }

  /** Number of tasks running now. */
  get runningCount(): number {
    return this.#slots.runningCount;
  }

  /**
   * Ends the run once the fetch loop has: hands back the unfinished work (see `shutdown.ts`),
   * then stops the other parts, deletes the health record and closes the connections.
   */
  async #finish(): Promise<void> {
    this.#shutdown.begin();
    const { logger, workerId } = this.#env;
    const started = Date.now();
    logger.info(`worker ${workerId} shutting down${this.#shardLabel}`);
    this.#heartbeats.stop();
    this.#pauses.stop();
    await this.#completer.drain();
    await this.#shutdown.handBack(
      this.#slots,
      this.#settings.gracePeriod,
      `worker ${workerId} shut down`,
      this.#onRedisError,
    );
    await this.#completer.drain();
    // The last counts: written with no health record, which is about to be deleted.
    await this.#live.stop();
    await this.#live.flush({ health: false });
    await this.#scheduler.stop();
    await this.#dedupeSweep.stop();
    await this.#heartbeats.removeHealthRecord();
    await this.#abortListener.close();
    await this.#fetchLoop.close();
    logger.info(
      `worker ${workerId} stopped${this.#shardLabel} after ${Date.now() - started} ms of shutdown`,
    );
  }
}
