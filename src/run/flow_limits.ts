/**
 * The concurrency limits of a worker's functions, written into the queue's flow hash when a run
 * starts (`src/redis/keys.ts`, `KEY.flow`), where the claim scripts read them
 * (`src/redis/lua/flow.ts`). The limit is part of a function's definition, so the worker that
 * runs the function states it: each run sets the limits of its limited functions and removes
 * those of its other functions (a limit taken out of the code goes with the next deploy). Workers
 * of one queue running different versions disagree; the last one started wins.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { LIMIT_FUNCTION } from "../redis/keys.ts";

/** What {@linkcode writeLimits} needs of each registered function. */
export interface LimitedFunction {
  readonly name: string;
  readonly limit?: { readonly concurrency?: number };
}

/**
 * Sets the concurrency limits of `functions` in the queue's flow hash and removes those of the
 * ones without a limit, in one round trip (nothing at all when none has a limit and none had).
 *
 * @param client The queue's context.
 * @param functions The functions this worker runs.
 */
export async function writeLimits(
  client: QueueContext,
  functions: Iterable<LimitedFunction>,
): Promise<void> {
  const set: string[] = [];
  const unset: string[] = [];
  for (const f of functions) {
    const field = LIMIT_FUNCTION + f.name;
    if (f.limit?.concurrency !== undefined) set.push(field, String(f.limit.concurrency));
    else unset.push(field);
  }
  const { redis, keys } = client;
  const pipeline = redis.pipeline();
  if (set.length > 0) pipeline.hset(keys.flow, ...set);
  if (unset.length > 0) pipeline.hdel(keys.flow, ...unset);
  if (pipeline.length === 0) return;
  for (const [error] of await pipeline.exec() ?? []) if (error) throw error;
}
