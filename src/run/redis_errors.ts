/**
 * What the run loop does when a Redis command fails: it logs the error, re-creates the consumer
 * groups if Redis lost them (a restart without persistence), and pauses briefly so that a Redis
 * that is down is not hammered, unless a stop is asked for meanwhile.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { WorkerLogger } from "../logger.ts";
import { createConsumerGroups } from "./startup.ts";

/** How long the part of the run loop whose Redis command failed pauses (ms). */
const ERROR_PAUSE = 500;

/** Handles a failed Redis command of the run loop; `what` names what failed, for the log. */
export type OnRedisError = (what: string, error: unknown) => Promise<void>;

/**
 * The handler of a run's Redis errors.
 *
 * @param client The queue the run works on.
 * @param logger Where the error is logged.
 * @param pause Waits the given time, or less once a stop is asked for.
 */
export function redisErrorHandler(
  client: QueueContext,
  logger: WorkerLogger,
  pause: (ms: number) => Promise<void>,
): OnRedisError {
  return async (what, error) => {
    logger.error(`${what} failed: ${(error as Error)?.message ?? String(error)}`);
    if (String((error as Error)?.message).includes("NOGROUP")) {
      await createConsumerGroups(client).catch(() => {});
    }
    await pause(ERROR_PAUSE);
  };
}
