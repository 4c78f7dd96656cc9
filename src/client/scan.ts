/**
 * SCAN over the keys of one queue, on any topology. SCAN names no key, so a Cluster client
 * would send it to a random node; every key of a queue lives in the slot of its hash tag, so on
 * a Cluster the scan goes to the master serving that slot.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { clusterOf } from "../redis/connection.ts";
import { StreaqError } from "../errors.ts";

/** Options of {@linkcode scanQueue}. */
export interface ScanOptions {
  /**
   * The COUNT hint of each SCAN call.
   *
   * @default {1000}
   */
  count?: number;
}

/**
 * The keys of `client`'s queue matching `pattern` (from `client.keys.pattern(...)`), one batch
 * per SCAN call; a key may come twice, as with SCAN. Stop iterating to stop scanning.
 */
export async function* scanQueue(
  client: QueueContext,
  pattern: string,
  options: ScanOptions = {},
): AsyncGenerator<string[], void, undefined> {
  const node = await nodeOfQueue(client);
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", options.count ?? 1000);
    cursor = next;
    yield keys;
  } while (cursor !== "0");
}

/** The connection holding the queue's keys: the client itself, or a Cluster's master for them. */
async function nodeOfQueue(client: QueueContext): Promise<Redis> {
  const redis = clusterOf(client.redis);
  if (!redis) return client.redis;
  // Asking the slot connects the cluster if it is not yet, and so fills its slot table.
  const slot = Number(await redis.cluster("KEYSLOT", client.keys.prefix));
  const [master] = redis.slots[slot] ?? [];
  const node = redis.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === master);
  if (!node) {
    throw new StreaqError(
      `Cannot scan queue ${client.keys.queueName} as no master of the cluster serves its slot ${slot} now`,
    );
  }
  return node;
}
