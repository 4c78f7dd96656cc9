/**
 * The task every reliability test runs, `job`, and the Redis records that let a test count its
 * executions: before doing anything that takes time, each execution writes its side effect
 * into keys outside the queue's (`rel:{queue}:...`), so a test measures loss (a task with no
 * result) and duplication (a task whose side effect happened more than once) after any fault.
 *
 * Used both by workers in the test process and by `_worker_process.ts` in subprocesses.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { StreaqRetry, taskContext, type Worker } from "../../mod.ts";
import { sleepUnlessAborted } from "../_helpers.ts";
import { queueContextOf } from "../../src/worker.ts";

/** What one `job` does; kept short, since it is the payload of thousands of tasks. */
export interface JobSpec {
  /** A number identifying the job in its load; the job returns `n * 2`. */
  readonly n: number;
  /** How long it works (awaits, honouring its signal) after its side effect. */
  readonly ms?: number;
  /** Throws `planned failure <n>` after its side effect. */
  readonly fail?: boolean;
  /** On its first try, asks for a retry after this many ms, before any side effect. */
  readonly retry?: number;
  /** In the worker of this id, works a minute (honouring its signal) instead of `ms`. */
  readonly hangIn?: string;
  /** On its first try, blocks the event loop this many ms (a synchronous busy loop). */
  readonly spin?: number;
  /** Ballast that makes the payload bigger (the maxmemory test). */
  readonly pad?: string;
}

/** Keys of the execution records of a queue, outside the queue's own keys. */
export function recordKeys(queueName: string) {
  const prefix = `rel:{${queueName}}:`;
  return {
    /** Hash: task id → executions so far. */
    runs: `${prefix}runs`,
    /** Hash: `<task id>:<execution number>` → `<worker id>@<real time (ms) it started>`. */
    by: `${prefix}by`,
    /** Hash: task id → real time (ms) its last execution started, from the process clock. */
    at: `${prefix}at`,
  };
}

/**
 * Records one execution. `allow-oom`: the maxmemory test runs tasks on a Redis that refuses
 * ordinary writes, and the records must not be what fails there.
 */
const RECORD_LUA = `#!lua flags=allow-oom
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], ARGV[1] .. ':' .. n, ARGV[2] .. '@' .. ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return n
`;

/** Writes the side effect of one execution of `taskId` by `workerId`. */
export async function recordExecution(
  redis: Redis,
  queueName: string,
  taskId: string,
  workerId: string,
): Promise<void> {
  const keys = recordKeys(queueName);
  await redis.eval(RECORD_LUA, 3, keys.runs, keys.by, keys.at, taskId, workerId, Date.now());
}

/** Options of {@linkcode registerJob}. */
export interface JobOptions {
  /** @default {10} (several SIGKILL rounds may each take a try) */
  maxTries?: number;
  /** Where executions are recorded; the worker's own connection by default. */
  redis?: Redis;
}

/** Registers `job` on `worker`. */
export function registerJob(worker: Worker<unknown>, options: JobOptions = {}) {
  return worker.task(async function job(spec: JobSpec): Promise<number> {
    const { taskId, tries, signal, workerId } = taskContext();
    if (spec.retry !== undefined && tries === 1) {
      throw new StreaqRetry(`planned retry ${spec.n}`, { delay: spec.retry });
    }
    const redis = options.redis ?? queueContextOf(worker).redis;
    await recordExecution(redis, worker.queueName, taskId, workerId);
    if (spec.spin && tries === 1) {
      const end = Date.now() + spec.spin;
      while (Date.now() < end) {
        // Blocks the event loop: no heartbeat, no I/O, nothing else runs.
      }
    }
    const ms = spec.hangIn === workerId ? 60_000 : spec.ms;
    if (ms) await sleepUnlessAborted(ms, signal);
    if (spec.fail) throw new Error(`planned failure ${spec.n}`);
    return spec.n * 2;
  }, { maxTries: options.maxTries ?? 10, silent: true, thread: false });
}
