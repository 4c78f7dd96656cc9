/**
 * What a reliability test checks after a fault: every sent task has exactly one result that
 * matches what its job does ({@linkcode audit}), duplicated executions are explained by the
 * fault ({@linkcode assertAudit}), and the queue leaves nothing behind but results within their
 * TTL, streams, consumer groups, health and metrics keys ({@linkcode scanQueue}).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import type { Worker } from "../../mod.ts";
import { PRIORITIES, type Sent } from "./_load.ts";
import { recordKeys } from "./_tasks.ts";
import { queueContextOf } from "../../src/worker.ts";

const CHUNK = 1000;

function resultKey(queueName: string, id: string): string {
  return `streaq:{${queueName}}:result:${id}`;
}

/** How many of `ids` have a result key now. */
export async function countResults(
  redis: Redis,
  queueName: string,
  ids: readonly string[],
): Promise<number> {
  let found = 0;
  for (let i = 0; i < ids.length; i += CHUNK) {
    found += await redis.exists(...ids.slice(i, i + CHUNK).map((id) => resultKey(queueName, id)));
  }
  return found;
}

/** Waits until every id has a result; throws after `timeout` ms, saying how many are missing. */
export async function waitForResults(
  redis: Redis,
  queueName: string,
  ids: readonly string[],
  timeout = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (true) {
    const found = await countResults(redis, queueName, ids);
    if (found === ids.length) return;
    if (Date.now() > deadline) {
      throw new Error(`Only ${found} of ${ids.length} tasks have a result after ${timeout} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One execution of a task: the worker that ran it and the real time (ms) it started. */
export interface Execution {
  readonly worker: string;
  readonly at: number;
}

/** The executions of every task, in order, from the records of `_tasks.ts`. */
export async function executionsOf(
  worker: Worker<unknown>,
): Promise<Map<string, Execution[]>> {
  const keys = recordKeys(worker.queueName);
  const by = await queueContextOf(worker).redis.hgetall(keys.by);
  const executions = new Map<string, Execution[]>();
  for (const [field, value] of Object.entries(by)) {
    const [id, n] = field.split(":");
    const at = value.lastIndexOf("@");
    const list = executions.get(id) ?? [];
    list[Number(n) - 1] = { worker: value.slice(0, at), at: Number(value.slice(at + 1)) };
    executions.set(id, list);
  }
  return executions;
}

/** The findings of {@linkcode audit}. */
export interface Audit {
  readonly sent: number;
  readonly results: number;
  /** Tasks whose enqueue resolved but that have no result. */
  readonly lost: string[];
  /** Results that do not match what the job does, described. */
  readonly wrong: string[];
  /** Tasks whose side effect happened more than once, with each of their executions. */
  readonly duplicated: { id: string; executions: Execution[] }[];
  /** Executions beyond one per task. */
  readonly extraExecutions: number;
}

/** Reads the result and the executions of every sent task. */
export async function audit(worker: Worker<unknown>, sent: readonly Sent[]): Promise<Audit> {
  const redis = queueContextOf(worker).redis;
  const all = await executionsOf(worker);
  const lost: string[] = [];
  const wrong: string[] = [];
  const duplicated: { id: string; executions: Execution[] }[] = [];
  let results = 0;
  let extraExecutions = 0;
  for (let i = 0; i < sent.length; i += CHUNK) {
    const chunk = sent.slice(i, i + CHUNK);
    const pipeline = redis.pipeline();
    for (const task of chunk) pipeline.getBuffer(resultKey(worker.queueName, task.id));
    const replies = (await pipeline.exec()) ?? [];
    for (const [j, task] of chunk.entries()) {
      const blob = replies[j][1] as Buffer | null;
      const executions = all.get(task.id) ?? [];
      if (executions.length > 1) {
        duplicated.push({ id: task.id, executions });
        extraExecutions += executions.length - 1;
      }
      if (!blob) {
        lost.push(task.id);
        continue;
      }
      results++;
      const problem = await check(worker, task, blob, executions.map((e) => e.worker));
      if (problem) wrong.push(`${task.id} (job ${task.spec.n}): ${problem}`);
    }
  }
  return { sent: sent.length, results, lost, wrong, duplicated, extraExecutions };
}

/** What is wrong with the result of one task, or undefined. */
async function check(
  worker: Worker<unknown>,
  task: Sent,
  blob: Buffer,
  workers: string[],
): Promise<string | undefined> {
  const record = await queueContextOf(worker).envelope.openResult(task.id, blob);
  const { spec } = task;
  const error = record.success ? undefined : record.value as Error;
  if (task.aborted && error?.name === "StreaqCancelled") return undefined;
  if (workers.length === 0) return `a ${record.success ? "success" : "failure"} but it never ran`;
  if (record.workerId !== workers.at(-1)) {
    return `result from ${record.workerId}, but its last execution was by ${workers.at(-1)}`;
  }
  if (spec.fail) {
    if (record.success) return "succeeded but should have failed";
    if (!error?.message.includes(`planned failure ${spec.n}`)) {
      return `failed with ${error?.name}: ${error?.message}`;
    }
  } else if (!record.success) {
    return `failed with ${error?.name}: ${error?.message}`;
  } else if (record.value !== spec.n * 2) {
    return `returned ${record.value}`;
  }
  return undefined;
}

/**
 * Asserts that nothing was lost or wrong, and that every duplicated task is explained by the
 * fault: `explained(execution)` is asked about each execution but the last (the one whose
 * result was kept); by default no duplicate is explained.
 */
export function assertAudit(
  found: Audit,
  explained: (execution: Execution) => boolean = () => false,
): void {
  assert.deepEqual(found.lost, [], `${found.lost.length} tasks have no result`);
  assert.deepEqual(found.wrong, [], `${found.wrong.length} results are wrong`);
  const unexplained = found.duplicated.filter((d) => !d.executions.slice(0, -1).every(explained));
  assert.deepEqual(unexplained, [], `${unexplained.length} duplicates the fault does not explain`);
  assert.equal(found.results, found.sent);
}

/** What a queue's keyspace holds after a run. */
export interface Keyspace {
  /** Number of keys per kind (the part after `streaq:{queue}:`, up to the next colon). */
  readonly kinds: Record<string, number>;
  /** A few keys of each kind, to name what was left behind. */
  readonly samples: Record<string, string[]>;
  /** Entries left in the streams, and deliveries pending in their consumer groups. */
  readonly streamEntries: number;
  readonly pending: number;
  /** Result keys, and failed tasks kept for a rerun, without an expiry. */
  readonly resultsWithoutTtl: number;
}

/** Scans every key of a queue. */
export async function scanQueue(redis: Redis, queueName: string): Promise<Keyspace> {
  const prefix = `streaq:{${queueName}}:`;
  const kinds: Record<string, number> = {};
  const samples: Record<string, string[]> = {};
  const streams: string[] = [];
  const results: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      const kind = key.slice(prefix.length).split(":")[0];
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      if ((samples[kind] ??= []).length < 5) samples[kind].push(key);
      if (kind === "stream") streams.push(key);
      if (kind === "result" || kind === "failed") results.push(key);
    }
  } while (cursor !== "0");
  let streamEntries = 0;
  let pending = 0;
  for (const stream of streams) {
    streamEntries += await redis.xlen(stream);
    const summary = await redis.xpending(stream, "workers") as [number];
    pending += Number(summary[0]);
  }
  let resultsWithoutTtl = 0;
  for (let i = 0; i < results.length; i += CHUNK) {
    const pipeline = redis.pipeline();
    for (const key of results.slice(i, i + CHUNK)) pipeline.pttl(key);
    for (const [, ttl] of (await pipeline.exec()) ?? []) if (Number(ttl) < 0) resultsWithoutTtl++;
  }
  return { kinds, samples, streamEntries, pending, resultsWithoutTtl };
}

/**
 * Asserts that a drained queue holds only results and failed tasks kept for a rerun, within
 * their TTL, empty streams with their consumer groups, and health and metrics keys: no task
 * hash, no delayed or waiting entry, no lock, no abort marker.
 */
export function assertQueueClean(keyspace: Keyspace): void {
  const allowed = new Set(["stream", "result", "failed", "health", "metrics"]);
  const leaked = Object.entries(keyspace.samples).filter(([kind]) => !allowed.has(kind));
  assert.deepEqual(Object.fromEntries(leaked), {}, "keys left behind");
  assert.equal(keyspace.streamEntries, 0, "stream entries left");
  assert.equal(keyspace.pending, 0, "deliveries still pending");
  assert.equal(keyspace.resultsWithoutTtl, 0, "results without a TTL");
}

/**
 * Counts the results published on the queue's done channels, per task: every final outcome is
 * published exactly once, so a count above one is a result written twice. Pub/sub loses what is
 * published while the subscriber reconnects, so use it only where Redis stays up.
 */
export class DoneCounter {
  readonly counts = new Map<string, number>();
  readonly #subscriber: Redis;

  private constructor(subscriber: Redis) {
    this.#subscriber = subscriber;
  }

  /** Subscribes to the done channels of `queueName`. */
  static async start(url: string, queueName: string): Promise<DoneCounter> {
    const prefix = `streaq:{${queueName}}:done:`;
    // No ready check: a PSUBSCRIBE sent while connecting can overtake its INFO (ioredis #2037).
    const counter = new DoneCounter(new Redis(url, { enableReadyCheck: false }));
    counter.#subscriber.on("pmessageBuffer", (_pattern: Buffer, channel: Buffer) => {
      const id = channel.toString().slice(prefix.length);
      counter.counts.set(id, (counter.counts.get(id) ?? 0) + 1);
    });
    // Braces are not special in Redis patterns; queue names hold no glob characters here.
    await counter.#subscriber.psubscribe(`${prefix}*`);
    return counter;
  }

  /** Ids published more than once. */
  get repeated(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** Unsubscribes and closes the connection. */
  async close(): Promise<void> {
    await this.#subscriber.quit();
  }
}

/** Redis `used_memory` in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Deliveries that `consumer` holds, over the streams of the reliability priorities. */
export async function pendingOf(
  redis: Redis,
  queueName: string,
  consumer: string,
): Promise<number> {
  let held = 0;
  for (const priority of PRIORITIES) {
    const stream = `streaq:{${queueName}}:stream:${priority}`;
    const summary = await redis.xpending(stream, "workers").catch(() => [0]) as unknown[];
    const consumers = (summary[3] ?? []) as [string, string][];
    held += Number(consumers.find(([id]) => id === consumer)?.[1] ?? 0);
  }
  return held;
}

/** Polls until `consumer` holds no delivery; returns when that happened (ms since the epoch). */
export async function untilReleased(
  redis: Redis,
  queueName: string,
  consumer: string,
  timeout = 30_000,
): Promise<number> {
  const deadline = Date.now() + timeout;
  while ((await pendingOf(redis, queueName, consumer)) > 0) {
    if (Date.now() > deadline) throw new Error(`${consumer} still holds deliveries`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now();
}
