/**
 * The setting of a reliability test: a private redis-server, a queue on it, a client Worker
 * (not running) with the `job` task to enqueue and audit through, and the configuration of
 * worker processes on the same queue.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { type RegisteredTask, Worker, type WorkerOptions } from "../../mod.ts";
import { type RedisServer, startRedis, uniqueQueue } from "../_redis.ts";
import { PRIORITIES } from "./_load.ts";
import { type JobSpec, registerJob } from "./_tasks.ts";
import type { WorkerProcessConfig } from "./_worker_process.ts";
import { queueContextOf } from "../../src/worker.ts";

/** A queue on a private Redis; dispose it to close the client and stop the server. */
export interface ReliabilityQueue extends AsyncDisposable {
  readonly server: RedisServer;
  /** Enqueues, reads results and audits; it does not run. */
  readonly client: Worker<unknown>;
  readonly job: RegisteredTask<[JobSpec], number>;
  /** The client's command connection. */
  readonly redis: Redis;
  /** A worker process configuration on this queue. */
  process(id: string, options?: Partial<WorkerProcessConfig>): WorkerProcessConfig;
  /** An in-process worker on this queue with `job` registered (quiet, no signal handling). */
  worker(options?: WorkerOptions<unknown>): Worker<unknown>;
}

/** Starts a Redis (with `redisArgs`) and a queue named after `prefix`. */
export async function reliabilityQueue(
  prefix: string,
  redisArgs: string[] = [],
): Promise<ReliabilityQueue> {
  const server = await startRedis({ args: redisArgs });
  const queueName = uniqueQueue(prefix);
  const base = {
    redisUrl: server.url,
    queueName,
    priorities: PRIORITIES,
    logLevel: "error",
    handleSignals: false,
  } as const;
  const client = new Worker<unknown>(base);
  const job = registerJob(client);
  const workers: Worker<unknown>[] = [];
  return {
    server,
    client,
    job,
    get redis() {
      return queueContextOf(client).redis;
    },
    process: (id, options = {}) => ({ redisUrl: server.url, queueName, id, ...options }),
    worker: (options = {}) => {
      const worker = new Worker<unknown>({ ...base, ...options });
      registerJob(worker);
      workers.push(worker);
      return worker;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(workers.map((w) => w.close()));
      await client.close();
      await server.stop();
    },
  };
}
