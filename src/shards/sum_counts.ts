/**
 * The task counts of a sharded queue: each shard's counts (`countTasks`), summed, so that
 * `streaq status` and the dashboard show the whole queue.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { countTasks, type PriorityCounts, type QueueCounts } from "../client/task_counts.ts";

/**
 * Counts the tasks of every shard of the queue of `client` (its own when it has one shard), in
 * parallel, and sums them; `doneExact` holds only if it holds on every shard, and a priority's
 * `scheduled` is null if it is null on any shard.
 */
export async function countAllShards(client: QueueContext): Promise<QueueCounts> {
  const shards = client.shards;
  if (!shards || shards.count === 1) return await countTasks(client);
  const all = await Promise.all(shards.contexts.map(countTasks));
  const byPriority: Record<string, PriorityCounts> = {};
  for (const p of client.priorities) {
    const each = all.map((c) => c.byPriority[p]).filter((c) => c !== undefined);
    byPriority[p] = {
      queued: each.reduce((n, c) => n + c.queued, 0),
      running: each.reduce((n, c) => n + c.running, 0),
      scheduled: each.some((c) => c.scheduled === null)
        ? null
        : each.reduce((n, c) => n + c.scheduled!, 0),
    };
  }
  const sum = (
    field: "queued" | "running" | "scheduled" | "waiting" | "done" | "repeating" | "aborting",
  ) => all.reduce((n, c) => n + c[field], 0);
  return {
    queued: sum("queued"),
    running: sum("running"),
    scheduled: sum("scheduled"),
    waiting: sum("waiting"),
    done: sum("done"),
    doneExact: all.every((c) => c.doneExact),
    repeating: sum("repeating"),
    aborting: sum("aborting"),
    byPriority,
  };
}
