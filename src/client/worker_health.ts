/**
 * The live workers of a queue, from their health keys: each running worker refreshes its
 * record with every heartbeat, and the key expires when the worker stops beating. Part of the
 * dashboard's read API (`queue_reads.ts`); `streaq status` reads them here too.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { HealthRecord } from "../run/heartbeat.ts";
import { KEY } from "../redis/keys.ts";
import { scanQueue } from "./scan.ts";

/** Options of {@linkcode listWorkers}. */
export interface ListWorkersOptions {
  /**
   * The COUNT hint of each SCAN call looking for health keys.
   *
   * @default {1000}
   */
  readonly scanCount?: number;
  /**
   * At most this many SCAN calls look for health keys; `Infinity` scans the whole keyspace.
   *
   * @default {100}
   */
  readonly maxScanCalls?: number;
}

/**
 * Reads the health records of the queue's live workers: a SCAN for their keys, then one MGET.
 * A record that expired in between, or that this version cannot read, is left out.
 *
 * @param client The queue's context.
 * @param options How far to scan for health keys.
 * @returns The records, sorted by worker id.
 */
export async function listWorkers(
  client: QueueContext,
  options: ListWorkersOptions = {},
): Promise<HealthRecord[]> {
  const { scanCount = 1000, maxScanCalls = 100 } = options;
  const keys = new Set<string>();
  let calls = 0;
  const pattern = client.keys.pattern(`${KEY.health}*`);
  for await (const found of scanQueue(client, pattern, { count: scanCount })) {
    for (const key of found) keys.add(key);
    if (++calls >= maxScanCalls) break;
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
