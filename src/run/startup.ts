/**
 * What a worker sets up in Redis before it fetches: the consumer group of every priority stream
 * (also re-created after a Redis restart lost them), and its worker id, claimed through its
 * health key so that two live workers of a queue never share one.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { StreaqError } from "../errors.ts";
import type { HealthRecord } from "./heartbeat.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";

/** Whether Redis refused a command for want of memory (maxmemory with noeviction). */
function isOutOfMemory(error: unknown): boolean {
  return String((error as Error)?.message).startsWith("OOM ");
}

/** Creates the consumer group of each priority stream (and the stream) where it is missing. */
export async function createConsumerGroups(client: QueueContext): Promise<void> {
  const pipeline = client.redis.pipeline();
  const streams = client.priorities.map((p) => client.keys.stream(p));
  for (const stream of streams) {
    pipeline.xgroup("CREATE", stream, CONSUMER_GROUP, "0", "MKSTREAM");
  }
  for (const [i, [error]] of (await pipeline.exec() ?? []).entries()) {
    if (!error || String(error.message).includes("BUSYGROUP")) continue;
    // At maxmemory (noeviction) Redis refuses XGROUP CREATE even for a group that exists; a
    // worker must still start then, to drain the queue.
    if (isOutOfMemory(error) && await groupExists(client, streams[i])) continue;
    throw error;
  }
}

async function groupExists(client: QueueContext, stream: string): Promise<boolean> {
  const groups = await client.redis.xinfo("GROUPS", stream).catch(() => []) as unknown[][];
  return groups.some((fields) => fields[fields.indexOf("name") + 1] === CONSUMER_GROUP);
}

/**
 * Takes this worker's health key, refusing an id that a live worker of the queue uses.
 *
 * @param health The first health record, written with the claim.
 * @param ttl How long the record lives without a heartbeat (ms).
 * @throws {StreaqError} When a live worker of the queue has this id.
 */
export async function claimWorkerId(
  client: QueueContext,
  workerId: string,
  health: HealthRecord,
  ttl: number,
): Promise<void> {
  const key = client.keys.health(workerId);
  const set = await client.redis.set(key, JSON.stringify(health), "PX", ttl, "NX").catch(
    async (error) => {
      // At maxmemory Redis refuses the health record: the worker starts without one
      // (heartbeats write it once there is room), as long as no live worker has its id.
      if (!isOutOfMemory(error)) throw error;
      return await client.redis.exists(key) ? null : "OK";
    },
  );
  if (set !== "OK") {
    throw new StreaqError(
      `Cannot run worker as 'id' must be unique within queue ${client.keys.queueName}: a live worker already uses ${
        JSON.stringify(workerId)
      }`,
    );
  }
}
