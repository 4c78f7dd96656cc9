/**
 * Heartbeats: every third of `idleTimeout`, a worker resets the idle time of the deliveries it
 * holds (running and prefetched), so no other worker reclaims them, and refreshes its health
 * record. Deliveries another worker took over meanwhile are reported, and abort requests that
 * the pub/sub message may have missed are picked up.
 *
 * @module
 */

import type { FunctionRecord } from "./function_stats.ts";
import type { ChainableCommander } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { deliveryKey } from "./fetch.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { ownsDelivery } from "../redis/lua/steps.ts";

/**
 * Resets the idle time of the deliveries this worker still owns in one stream.
 *
 * KEYS: [1] stream
 * ARGV: [1] group, [2] consumer, [3..] entry ids
 * Returns the entry ids this worker no longer owns.
 */
export const HEARTBEAT_SCRIPT = script(lua(
  ownsDelivery,
  `
local owned, lost = {}, {}
for i = 3, #ARGV do
  if ownsDelivery(KEYS[1], ARGV[1], ARGV[i], ARGV[2], false) then
    table.insert(owned, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
for i = 1, #owned, 1000 do
  -- unpack() must be the last argument of a call: in the middle of an argument list Lua keeps
  -- only its first value, and all deliveries but one would go without their heartbeat.
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for j = i, math.min(i + 999, #owned) do args[#args + 1] = owned[j] end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return lost
`,
));

/** What a worker publishes about itself in its health key. */
export interface HealthRecord {
  readonly id: string;
  readonly queue: string;
  readonly host: string | null;
  readonly pid: number;
  readonly concurrency: number;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  readonly running: number;
  readonly counters: Readonly<Record<string, number>>;
  /** Per-function counts and recent timings (absent in records of older versions). */
  readonly functions?: Readonly<Record<string, FunctionRecord>>;
}

/** The outcome of one heartbeat. */
export interface Beat {
  /** Deliveries (`stream entryId`) this worker held but another worker took over. */
  readonly lost: Set<string>;
  /** Task ids, among those asked about, whose abort was requested. */
  readonly aborting: Set<string>;
}

/**
 * Queues in `pipeline` a {@linkcode HEARTBEAT_SCRIPT} call per stream of `held` (entry ids by
 * stream); {@linkcode lostDeliveries} reads their answers.
 */
export function queueHeartbeats(
  pipeline: ChainableCommander,
  workerId: string,
  held: ReadonlyMap<string, readonly string[]>,
): void {
  for (const [stream, ids] of held) {
    runScript(pipeline, HEARTBEAT_SCRIPT, [stream], [CONSUMER_GROUP, workerId, ...ids]);
  }
}

/**
 * The deliveries (`deliveryKey`) this worker no longer owns, from the answers of the calls
 * {@linkcode queueHeartbeats} queued first in a pipeline for `held`.
 *
 * @throws {Error} The error of a call that failed.
 */
export function lostDeliveries(
  replies: [Error | null, unknown][],
  held: ReadonlyMap<string, readonly string[]>,
): Set<string> {
  const lost = new Set<string>();
  let i = 0;
  for (const stream of held.keys()) {
    const [error, ids] = replies[i++];
    if (error) throw error;
    for (const id of ids as string[]) lost.add(deliveryKey(stream, id));
  }
  return lost;
}

/** Sends one heartbeat in one round trip. */
export async function heartbeat(
  client: QueueContext,
  workerId: string,
  held: ReadonlyMap<string, readonly string[]>,
  runningTaskIds: readonly string[],
  health: HealthRecord,
  healthTtl: number,
): Promise<Beat> {
  const pipeline = client.redis.pipeline();
  queueHeartbeats(pipeline, workerId, held);
  pipeline.set(client.keys.health(workerId), JSON.stringify(health), "PX", healthTtl);
  if (runningTaskIds.length > 0) pipeline.smismember(client.keys.aborting, ...runningTaskIds);
  const replies = await pipeline.exec() ?? [];
  for (const [error] of replies) if (error) throw error;
  const lost = lostDeliveries(replies, held);
  const aborting = new Set<string>();
  if (runningTaskIds.length > 0) {
    const flags = replies[replies.length - 1][1] as number[];
    runningTaskIds.forEach((id, i) => flags[i] === 1 && aborting.add(id));
  }
  return { lost, aborting };
}

/**
 * The host name when the process may read it (`--allow-sys=hostname`), else null. Asks the
 * permission state first so that a worker never prompts for it.
 */
export function hostName(): string | null {
  try {
    const state = Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state;
    return state === "granted" ? Deno.hostname() : null;
  } catch {
    return null;
  }
}
