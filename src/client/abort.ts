/**
 * Aborting tasks. A task still waiting for its time is cancelled by the request itself; a
 * queued or running one is marked in the aborting set (so a worker that starts it cancels it)
 * and announced on the abort channel (so a worker running it aborts its signal at once). The
 * caller listens for the task's outcome before it sends the request: the confirmation may be
 * published at once, and for a task whose result is not kept it is all there is.
 *
 * @module
 */

import { TASK_FIELD } from "../redis/keys.ts";
import type { QueueContext } from "../queue_context.ts";
import { StreaqCancelled } from "../errors.ts";
import { awaitOutcome, storedResult } from "./inspect.ts";
import { makeTaskResult } from "../result.ts";
import type { AbortOptions } from "../options.ts";
import { checkDuration } from "../_validate.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { releaseDependents } from "../redis/lua/graph.ts";
import { storeResult } from "../redis/lua/steps.ts";
import { emitEvent, EVENT_TYPE, eventsOf } from "../redis/lua/events.ts";
import { EVENT_FIELD } from "../redis/keys.ts";

/**
 * Aborts one task.
 *
 * A task waiting for its time or for its dependencies is cancelled by the request itself, and
 * the tasks waiting for it are cancelled in turn (`src/client/graph.ts`). A waiting repeating task is
 * cancelled for good: it leaves the schedules set. With events on, such a cancellation emits
 * `aborted` (a queued or running task's is emitted by the worker that cancels it).
 *
 * KEYS: [1] result key, [2] task hash, [3] delayed set, [4] aborting set, [5] schedules set,
 *       [6] waiting set, [7] the task's dependency set
 * ARGV: [1] task id, [2] abort channel, [3] done channel, [4] encoded cancelled result,
 *       [5] result ttl in ms ('' = forever, '0' = not stored), [6] key prefix, [7] now,
 *       [8] events setting ('' off, else the events stream's cap)
 * Returns 'done' (already finished), 'missing', 'cancelled' (it was waiting and now has its
 * result) or 'requested' (queued or running: the worker will cancel it).
 */
export const ABORT_SCRIPT = script(lua(
  storeResult,
  releaseDependents,
  eventsOf,
  emitEvent,
  `
if redis.call('HEXISTS', KEYS[2], '${TASK_FIELD.fn}') == 0 then
  return redis.call('EXISTS', KEYS[1]) == 1 and 'done' or 'missing'
end
local waiting = redis.call('HEXISTS', KEYS[2], '${TASK_FIELD.waiting}') == 1
if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 or waiting then
  local ev = eventsOf(ARGV[6], ARGV[8] or '')
  if ev then
    emitEvent(ev, '${EVENT_TYPE.aborted}', ARGV[1], '${EVENT_FIELD.fn}', redis.call('HGET', KEYS[2], '${TASK_FIELD.fn}'),
      '${EVENT_FIELD.error}', 'StreaqCancelled: aborted before it started')
  end
  storeResult(KEYS[1], ARGV[4], ARGV[5])
  redis.call('DEL', KEYS[2], KEYS[7])
  redis.call('SREM', KEYS[5], ARGV[1])
  redis.call('SREM', KEYS[6], ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  -- Cancelled dependents go straight to their streams: nothing for the scheduler to wake for.
  releaseDependents(ARGV[6], ARGV[1], ARGV[4], ARGV[7])
  return 'cancelled'
end
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 'requested'
`,
));

/** Aborts the task with this id; see `TaskHandle.abort` for what the answer means. */
export async function abortById(
  client: QueueContext,
  id: string,
  options: AbortOptions = {},
): Promise<boolean> {
  const { timeout = 5000 } = options;
  checkDuration("abort a task", "timeout", timeout);
  const { keys } = client;
  // Subscribed before the request is sent: a worker may cancel the task and publish its outcome
  // at once, and for a task whose result is not kept (ttl 0) that message is all there is.
  using subscription = timeout > 0
    ? await client.waiter.subscribe(keys.doneChannel(id), keys.listenersChannel)
    : undefined;
  const outcome = await requestAbort(client, id);
  if (outcome === "missing") return false;
  if (outcome === "cancelled") return true;
  if (outcome === "done") return isCancelled(await storedResult(client, id));
  if (!subscription) return false;
  let blob;
  try {
    blob = await awaitOutcome(client, id, subscription, { timeout });
  } catch (error) {
    // The request stays in force: a worker cancels the task when it gets to it.
    if ((error as Error)?.name === "TimeoutError") return false;
    throw error;
  }
  // Gone without an outcome to read: not confirmed cancelled.
  if (blob === "gone") return false;
  return isCancelled(makeTaskResult(await client.envelope.openResult(id, blob)));
}

/** Sends the abort request; answers as {@linkcode ABORT_SCRIPT} does. */
async function requestAbort(
  client: QueueContext,
  id: string,
): Promise<"done" | "missing" | "cancelled" | "requested"> {
  const { keys } = client;
  const [fn, created, tries, entered] = await client.redis.hmget(
    keys.task(id),
    TASK_FIELD.fn,
    TASK_FIELD.created,
    TASK_FIELD.tries,
    TASK_FIELD.entered,
  );
  const now = client.now();
  const fnName = fn ?? "";
  const ttl = client.resultTtl(fnName, false);
  const { blob } = await client.envelope.sealResult({
    taskId: id,
    fnName,
    createdTime: Number(created ?? now),
    enqueueTime: Number(entered ?? created ?? now),
    startTime: now,
    finishTime: now,
    tries: Number(tries ?? 0),
    workerId: "",
    success: false,
    value: new StreaqCancelled(`Task ${fnName} (${id}) was aborted before it started`),
  });
  return await runScript(
    client.redis,
    ABORT_SCRIPT,
    [
      keys.result(id),
      keys.task(id),
      keys.delayed,
      keys.aborting,
      keys.schedules,
      keys.waiting,
      keys.deps(id),
    ],
    [
      id,
      keys.abortChannel,
      keys.doneChannel(id),
      blob,
      ttl === null ? "" : ttl,
      keys.prefix,
      client.now(),
      client.eventsSetting,
    ],
  ) as "done" | "missing" | "cancelled" | "requested";
}

function isCancelled(result: { success: boolean; exception?: unknown } | null): boolean {
  return result !== null && !result.success && result.exception instanceof StreaqCancelled;
}
