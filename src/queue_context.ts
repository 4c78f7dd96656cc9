/**
 * What every part of streaq needs to talk to one queue: its keys, its priorities, its codec
 * envelope, its connections and its shared result subscriber. A `Worker` owns one; task
 * handles and unsent tasks point to it.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { clusterOf, ConnectionFactory, type ConnectionOptions } from "./redis/connection.ts";
import type { Envelope } from "./payload/envelope.ts";
import { Keys } from "./redis/keys.ts";
import type { WorkerLogger } from "./logger.ts";
import { ResultWaiter } from "./client/result_waiter.ts";
import type { Shards } from "./shards/shards.ts";

/** How long results are kept when the task does not say: five minutes. */
export const DEFAULT_RESULT_TTL = 300_000;

/**
 * How long failures are kept when the task does not say: seven days, or its `ttl` when that is
 * longer (see {@linkcode failureTtlFor}). A failure is read later than a success, by someone
 * looking into it.
 */
export const DEFAULT_FAILURE_TTL = 604_800_000;

/**
 * The default `failureTtl` of a task whose results are kept `ttl` (ms, null forever): never
 * shorter than `ttl`, and `0` (nothing stored) for a task that stores no results at all.
 */
export function failureTtlFor(ttl: number | null): number | null {
  if (ttl === null || ttl === 0) return ttl;
  return Math.max(ttl, DEFAULT_FAILURE_TTL);
}

/** Everything a {@linkcode QueueContext} is made of, given once at construction. */
export interface QueueContextOptions {
  /** The name of the queue; its keys are built from it. */
  readonly queueName: string;
  /** The queue's priorities, from the lowest to the highest. */
  readonly priorities: readonly string[];
  /** How arguments and results are encoded, signed and decoded. */
  readonly envelope: Envelope;
  /** Where the queue's components log. */
  readonly logger: WorkerLogger;
  /** How to reach Redis. */
  readonly connection: ConnectionOptions;
  /**
   * How long results of a function are kept (ms, null forever), its successes or its failures:
   * the worker's registry knows.
   */
  readonly resultTtl: (fnName: string, success: boolean) => number | null;
  /** The clock (ms since the epoch): the worker's `clock` option, else `Date.now`. */
  readonly now: () => number;
  /** The IANA time zone crontab schedules are evaluated in (the worker's `tz`). */
  readonly timeZone: string;
  /** The cap of the events stream when the worker emits events (`events` option), else 0. */
  readonly eventsMaxLen?: number;
}

/** The per-queue context: what client operations and the run loop share for one queue. */
export class QueueContext {
  /** The queue's Redis keys. */
  readonly keys: Keys;
  /** Opens the queue's connections to Redis and knows which ones it owns. */
  readonly connections: ConnectionFactory;
  /** The shared subscriber that result waits listen on. */
  readonly waiter: ResultWaiter;
  /** The queue's priorities, from the lowest to the highest. */
  readonly priorities: readonly string[];
  /** How arguments and results are encoded, signed and decoded. */
  readonly envelope: Envelope;
  /** Where the queue's components log. */
  readonly logger: WorkerLogger;
  /**
   * How long results of a function are kept (ms, null forever), its successes or its failures;
   * the worker's registry knows.
   */
  readonly resultTtl: (fnName: string, success: boolean) => number | null;
  /**
   * The clock of this queue (ms since the epoch): the worker's `clock` option, `Date.now` by
   * default. Enqueue, start and finish times come from it; due times come from Redis's clock
   * (`src/redis/_redis_time.ts`).
   */
  readonly now: () => number;
  /** The IANA time zone crontab schedules are evaluated in (the worker's `tz`). */
  readonly timeZone: string;
  /**
   * The `events` argument of the scripts that emit events (`src/redis/lua/events.ts`): `""`
   * when this worker emits none, else the events stream's cap.
   */
  readonly eventsSetting: string;

  /**
   * The shards of a queue spread over several hash tags (`shards` worker option), on the context
   * a `Worker` owns: its sends are routed to them and lookups by id find the shard. Undefined on
   * the context of one shard, which works on its own keys only.
   */
  shards: Shards | undefined;
  readonly #options: QueueContextOptions;
  /** A shard's context: its connections belong to the queue's context, which closes them. */
  #borrowed = false;

  /**
   * Builds the context of one queue; nothing connects until the first command.
   *
   * @param options Its name, priorities, envelope, logger, connection, result TTLs, clock and
   * time zone.
   * @param sharing For a shard's context (see {@linkcode QueueContext.shardContext}): the queue's
   * context, whose connections and subscriber it uses, and the shard.
   */
  constructor(options: QueueContextOptions, sharing?: { context: QueueContext; shard: number }) {
    this.#options = options;
    this.priorities = options.priorities;
    this.envelope = options.envelope;
    this.logger = options.logger;
    this.resultTtl = options.resultTtl;
    this.now = options.now;
    this.timeZone = options.timeZone;
    this.eventsSetting = options.eventsMaxLen ? String(options.eventsMaxLen) : "";
    this.keys = new Keys(options.queueName, sharing?.shard);
    if (sharing) {
      this.#borrowed = true;
      this.connections = sharing.context.connections;
      this.waiter = sharing.context.waiter;
      return;
    }
    this.connections = new ConnectionFactory(options.connection, options.logger);
    this.waiter = new ResultWaiter(() => this.connections.open());
  }

  /**
   * The context of shard `shard` of this queue: the same settings, connections and result
   * subscriber, and the keys of that shard only (shard 0: this queue's own keys). Closing this
   * context closes them; closing the shard's does nothing more.
   */
  shardContext(shard: number): QueueContext {
    return new QueueContext(this.#options, { context: this, shard });
  }

  /** The connection for ordinary commands, opened on first use. */
  get redis(): Redis {
    return this.connections.main;
  }

  /** Whether that connection is to a Redis Cluster. */
  get isCluster(): boolean {
    return clusterOf(this.redis) !== undefined;
  }

  /** Priorities from the highest to the lowest: the order in which tasks are fetched. */
  get prioritiesHighFirst(): readonly string[] {
    return this.#highFirst ??= Object.freeze([...this.priorities].reverse());
  }
  #highFirst: readonly string[] | undefined;

  /** Closes the subscriber and every connection this context opened. */
  async close(): Promise<void> {
    if (this.#borrowed) return;
    await this.waiter.close();
    await this.connections.close();
  }
}
