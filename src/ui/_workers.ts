/**
 * The live workers of a queue, from their health keys: each running worker refreshes its
 * record with every heartbeat, and the key expires when the worker stops beating.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { HealthRecord } from "../run/heartbeat.ts";
import { scanQueue } from "../client/scan.ts";

/** At most this many SCAN calls look for health keys. */
const SCAN_CALLS = 100;

/** The health records of the queue's live workers, by id. */
export async function listWorkers(client: QueueContext): Promise<HealthRecord[]> {
  const keys = new Set<string>();
  let calls = 0;
  for await (const found of scanQueue(client, client.keys.pattern("health:*"))) {
    for (const key of found) keys.add(key);
    if (++calls >= SCAN_CALLS) break;
  }
  if (keys.size === 0) return [];
  const values = await client.redis.mget(...keys);
  const workers: HealthRecord[] = [];
  for (const value of values) {
    if (!value) continue; // expired between the SCAN and the MGET
    try {
      const record = JSON.parse(value) as HealthRecord;
      if (record && typeof record.id === "string") workers.push(record);
    } catch {
      // Not a record of this version: skip it.
    }
  }
  return workers.sort((a, b) => a.id.localeCompare(b.id));
}
