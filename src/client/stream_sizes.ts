/**
 * What `streaq status` samples each second: per priority, how many entries wait in the stream,
 * how many are delivered to workers and how many were ever added, and the size of the delayed
 * set, in one round trip; and the first running tasks among the oldest deliveries. Part of the
 * read API (`queue_reads.ts`).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import type { TaskInfo } from "../result.ts";
import { infoById } from "./inspect.ts";

/** One priority's stream. */
export interface PriorityStatus {
  readonly name: string;
  /** Waiting for a worker. */
  readonly queued: number;
  /** Delivered to a worker: running, or prefetched and about to run. */
  readonly delivered: number;
  /**
   * Entries ever added to the stream (`XINFO STREAM` `entries-added`), 0 while it does not
   * exist; undefined when the server does not say (before Redis 7).
   */
  readonly added?: number;
}

/** The sizes of a queue's streams and of its delayed set. */
export interface StreamSizes {
  /** From the highest priority to the lowest. */
  readonly priorities: readonly PriorityStatus[];
  /** Delayed, scheduled and backing-off tasks. */
  readonly scheduled: number;
}

/**
 * Reads the size of each priority's stream and of the delayed set in one round trip.
 *
 * @param client The queue's context.
 * @returns The streams from the highest priority to the lowest, and the delayed count.
 */
export async function readStreamSizes(client: QueueContext): Promise<StreamSizes> {
  const { keys, redis } = client;
  const priorities = client.prioritiesHighFirst;
  const pipeline = redis.pipeline();
  for (const p of priorities) {
    pipeline.xlen(keys.stream(p));
    pipeline.xpending(keys.stream(p), CONSUMER_GROUP);
    pipeline.xinfo("STREAM", keys.stream(p));
  }
  pipeline.zcard(keys.delayed);
  const replies = await pipeline.exec() ?? [];
  const sizes = priorities.map((name, i) => {
    const length = Number(replies[i * 3][1] ?? 0);
    const [pendingError, pending] = replies[i * 3 + 1];
    // A stream that no worker has read yet has no consumer group: nothing is delivered.
    const delivered = pendingError ? 0 : Number((pending as [number])[0] ?? 0);
    const [infoError, info] = replies[i * 3 + 2];
    // No stream yet (XINFO fails on a missing key) has had nothing added.
    const added = infoError ? (length === 0 ? 0 : undefined) : entriesAdded(info);
    return { name, queued: length - delivered, delivered, added };
  });
  const scheduled = Number(replies[replies.length - 1][1] ?? 0);
  return { priorities: sizes, scheduled };
}

/** `entries-added` of an `XINFO STREAM` reply (a flat list of names and values). */
function entriesAdded(info: unknown): number | undefined {
  if (!Array.isArray(info)) return undefined;
  const at = info.indexOf("entries-added");
  const value = at >= 0 ? Number(info[at + 1]) : NaN;
  return Number.isFinite(value) ? value : undefined;
}

/** Options of {@linkcode findRunningTasks}. */
export interface FindRunningOptions {
  /** At most this many tasks are returned. */
  readonly limit: number;
  /** Deliveries looked at per priority (prefetched ones are among them, and skipped). */
  readonly deliveriesPerPriority: number;
}

/**
 * Finds the first running tasks, highest priority first, among the oldest deliveries of each
 * stream that has any.
 *
 * @param client The queue's context.
 * @param sizes The streams as {@linkcode readStreamSizes} read them, highest priority first.
 * @param options How many tasks to return, and how many deliveries to look at.
 * @returns The info of the running tasks found, at most `options.limit`.
 */
export async function findRunningTasks(
  client: QueueContext,
  sizes: readonly PriorityStatus[],
  options: FindRunningOptions,
): Promise<TaskInfo[]> {
  const { keys, redis } = client;
  const { limit, deliveriesPerPriority } = options;
  const running: TaskInfo[] = [];
  for (const { name, delivered } of sizes) {
    if (delivered === 0 || running.length >= limit) continue;
    const stream = keys.stream(name);
    const pending = await redis.xpending(stream, CONSUMER_GROUP, "-", "+", deliveriesPerPriority);
    const pipeline = redis.pipeline();
    for (const [entryId] of pending as [string][]) pipeline.xrange(stream, entryId, entryId);
    const entries = await pipeline.exec() ?? [];
    for (const [, reply] of entries) {
      const [entry] = (reply ?? []) as [string, string[]][];
      const taskId = entry?.[1][1];
      if (!taskId || running.length >= limit) continue;
      const info = await infoById(client, taskId);
      if (info?.status === "running") running.push(info);
    }
  }
  return running;
}
