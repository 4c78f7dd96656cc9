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

/** How long results are kept when the task does not say: five minutes. */
export const DEFAULT_RESULT_TTL = 300_000;

/** The client side of one queue. */
export class QueueContext {
  readonly keys: Keys;
  readonly connections: ConnectionFactory;
  readonly waiter: ResultWaiter;
  /** How long results of a function are kept (ms, null forever); the worker's registry sets it. */
  resultTtl: (fnName: string) => number | null = () => DEFAULT_RESULT_TTL;
  /**
   * The clock of this client (ms since the epoch): the worker's `clock` option, `Date.now` by
   * default. Enqueue, start and finish times come from it; due times come from Redis's clock
   * (`src/redis/_redis_time.ts`).
   */
  now: () => number = Date.now;
  /** The IANA time zone crontab schedules are evaluated in (the worker's `tz`). */
  timeZone = "UTC";

  constructor(
    queueName: string,
    readonly priorities: readonly string[],
    readonly envelope: Envelope,
    readonly logger: WorkerLogger,
    connection: ConnectionOptions,
  ) {
    this.keys = new Keys(queueName);
    this.connections = new ConnectionFactory(connection, logger);
    this.waiter = new ResultWaiter(() => this.connections.open());
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

  /** Closes the subscriber and every connection this client opened. */
  async close(): Promise<void> {
    await this.waiter.close();
    await this.connections.close();
  }
}
