/**
 * The worker's side of sharding (`shards` option): which of its functions are pinned to one
 * shard, and the check that each shard gets at least one of its slots.
 *
 * @module
 */

import type { RegisteredTask } from "../registered_task.ts";

/**
 * Whether a registered function's tasks all go to one shard (rule 2 of `route.ts`): it is
 * `unique` (a cron job is, by default) or has a `limit` (concurrency or rate), whose keys must be
 * one set of keys for the limit to hold across the queue.
 */
// deno-lint-ignore no-explicit-any
export function pinsShard(task: RegisteredTask<any, unknown>): boolean {
  return task.unique || task.limit !== undefined;
}

/**
 * Throws unless `concurrency` gives every one of `shards` shards a slot: a worker divides its
 * slots among the shards, and a shard without one would never be served by it.
 *
 * @throws {RangeError} Naming both numbers.
 */
export function checkShardSlots(where: string, concurrency: number, shards: number): void {
  if (concurrency >= shards) return;
  throw new RangeError(
    `Cannot ${where} as 'concurrency' must be at least 'shards' (${shards}), each shard having its share of the slots: received ${concurrency}`,
  );
}
