/**
 * Obliterating a queue: removing every key of it (tasks, streams and their consumer groups,
 * results, schedules, locks, metrics), found by SCAN and removed by UNLINK in batches of
 * {@linkcode OBLITERATE_BATCH}. UNLINK frees large values (a stream of a million entries) off
 * Redis's main thread, so no call blocks it for more than a few milliseconds.
 *
 * Refused while a worker of the queue is alive (its health key exists, see
 * `./worker_health.ts`), unless forced: a running worker would go on writing into the queue,
 * and its running tasks' results would land in a queue that no longer exists.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { KEY } from "../redis/keys.ts";
import { StreaqError } from "../errors.ts";
import { scanQueue } from "./scan.ts";
import { checkKnownKeys, describe } from "../_validate.ts";

/** At most this many keys are removed by one UNLINK. */
export const OBLITERATE_BATCH = 500;

/** Options of `obliterate`. */
export interface ObliterateOptions {
  /**
   * Remove the queue even while workers of it are alive (they go on running, and write into an
   * empty queue: stop them first when you can).
   *
   * @default {false}
   */
  force?: boolean;
}

/**
 * Removes every key of the queue, in batches; refused while a worker is alive unless `force`.
 *
 * @param client The queue's context.
 * @param options `force` to go ahead while workers are alive.
 * @returns How many keys it removed.
 * @throws {StreaqError} When a worker of the queue is alive and `force` is not set.
 */
export async function obliterateQueue(
  client: QueueContext,
  options: ObliterateOptions = {},
): Promise<number> {
  const where = "obliterate the queue";
  checkKnownKeys(where, options, ["force"]);
  if (options.force !== undefined && typeof options.force !== "boolean") {
    throw new TypeError(
      `Cannot ${where} as 'force' must be a boolean: received ${describe(options.force)}`,
    );
  }
  const { keys } = client;
  if (!options.force) {
    const live: string[] = [];
    const healthPrefix = keys.prefix + KEY.health;
    for await (const found of scanQueue(client, keys.pattern(`${KEY.health}*`))) {
      for (const key of found) live.push(key.slice(healthPrefix.length));
    }
    if (live.length > 0) {
      const ids = [...new Set(live)].sort();
      throw new StreaqError(
        `Cannot obliterate queue ${keys.queueName} as ${ids.length} worker${
          ids.length === 1 ? " is" : "s are"
        } alive (${ids.join(", ")}): stop ${
          ids.length === 1 ? "it" : "them"
        } first, or pass force: true`,
      );
    }
  }
  let removed = 0;
  for await (const found of scanQueue(client, keys.pattern())) {
    for (let i = 0; i < found.length; i += OBLITERATE_BATCH) {
      removed += await client.redis.unlink(...found.slice(i, i + OBLITERATE_BATCH));
    }
  }
  return removed;
}
