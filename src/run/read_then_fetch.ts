/**
 * An idle worker's fetch queued behind its blocking read, on the connection the read blocks on.
 * Redis runs a connection's commands in order, and runs the next one as soon as a blocked read
 * is answered: when a task arrives, the fetch claims and starts it at once, and both answers
 * come back together. The worker goes from a new task to running it in one trip from Redis,
 * where a bare read took two (its answer, then the fetch's round trip). See "Latency p99" in
 * `docs/benchmarks.md` for what it saves.
 *
 * The fetch runs when a task arrives, while the worker may be busy, even stalled (a task that
 * blocks its event loop): an answer read later than `FRESH_CLAIM` after the pair was sent may
 * hold deliveries that another worker reclaimed meanwhile and ran. So such deliveries run only
 * once this worker is found to own them still ({@linkcode stillOwned}), one round trip more:
 * what a bare read took anyway. An idle worker's first task after half a second or more waits
 * for that check; tasks that come closer together do not.
 *
 * A stop closes the connection as it does under a bare read, and nothing is lost: ioredis ends
 * it (`disconnect()` half-closes the socket), and Redis, which reads that end only after it has
 * sent what it answered before, frees the connection then. A fetch that ran is answered, and the
 * stopping run hands back what it claimed (`tests/shutdown_test.ts`); a fetch whose read was
 * still blocked never runs.
 *
 * Only on a single connection: a Cluster client routes each command by itself, and one closed
 * under it queues commands until it reconnects, which it never does (see `fetch_loop.ts`).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { sendDirect, takesDirectCalls } from "../redis/_direct_call.ts";
import type { CommandArg } from "../redis/_resp.ts";
import { BLOCKED_READ } from "../redis/connection.ts";
import { type Delivery, isFresh } from "./fetch.ts";
import { lostDeliveries, queueHeartbeats } from "./heartbeat.ts";

/** Whether `connection` can carry a fetch behind its read: a single connection, not a Cluster. */
export function fetchesBehindRead(connection: Redis): boolean {
  return takesDirectCalls(connection);
}

/**
 * Sends `XREAD readArgs` (blocking up to `blockMs`) on `connection`, then the fetch that `fetch`
 * sends on the connection it is given; resolves to the fetch's answer. A fetch not answered
 * `BLOCKED_READ` ms after its read was (on a connection gone silent, whose read the connection's
 * guard ended with no reply) has the connection opened again, and ioredis sends it again there.
 */
export async function readThenFetch<T>(
  connection: Redis,
  readArgs: CommandArg[],
  blockMs: number,
  fetch: (connection: Redis) => Promise<T>,
): Promise<T> {
  const read = sendDirect(connection, "xread", readArgs, blockMs);
  const fetched = fetch(connection);
  // Both answers are handled from here on, whichever fails first: its failure is thrown below.
  const both = Promise.all([read, fetched]);
  both.catch(() => {});
  await read;
  if (!await settlesWithin(fetched, BLOCKED_READ)) connection.disconnect(true);
  return (await both)[1];
}

/**
 * The deliveries of a fetch that ran behind a read, those to run: all of them when its answer
 * came soon enough for none to be another worker's yet (see the module's comment), else those
 * that this worker still owns, found with a heartbeat (which also resets their idle time: they
 * count as claimed when it was sent). Those it lost are left to the worker that took them over.
 */
export async function stillOwned(
  client: QueueContext,
  workerId: string,
  deliveries: Delivery[],
): Promise<Delivery[]> {
  const checked = performance.now();
  if (deliveries.length === 0 || isFresh(deliveries[0], checked)) return deliveries;
  const held = new Map<string, string[]>();
  for (const d of deliveries) {
    const ids = held.get(d.stream);
    if (ids) ids.push(d.messageId);
    else held.set(d.stream, [d.messageId]);
  }
  const pipeline = client.redis.pipeline();
  queueHeartbeats(pipeline, workerId, held);
  const lost = lostDeliveries(await pipeline.exec() ?? [], held);
  const owned: Delivery[] = [];
  for (const d of deliveries) if (!lost.has(d.key)) owned.push({ ...d, claimedAt: checked });
  return owned;
}

/** Whether `promise` settles, either way, within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
