/**
 * Rerunning failed tasks. A task that fails for good keeps its hash (function, encoded
 * arguments, priority, options, tries, links) beside its result, renamed to its failed record
 * (`KEY.failed`) with the result's ttl, by the completion script (`keepOrDelete` in
 * `src/run/_complete_lua.ts`). A rerun is a new try of the same task id: one script renames the
 * record back to the task's hash, removes the failed result and puts the task in its stream, so
 * it runs again with its original arguments and anyone waiting on its id sees the new outcome.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { KEY, TASK_FIELD } from "../redis/keys.ts";
import { StreaqError } from "../errors.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { ENDED } from "../redis/lua/graph.ts";
import { enterStream } from "../redis/lua/steps.ts";
import { scanQueue } from "./scan.ts";
import type { RetryFailedOptions } from "../options.ts";
import { describe } from "../_validate.ts";

/** What {@linkcode RERUN_SCRIPT} found, its first reply slot. */
export const RERUN = {
  /** It was failed and is queued again. */
  queued: "queued",
  /** It is queued, scheduled, waiting or running: not finished. */
  unfinished: "unfinished",
  /** It succeeded. */
  succeeded: "succeeded",
  /** Nothing is known of it: never sent, or its result expired or was removed. */
  missing: "missing",
  /** It failed, but nothing was kept to rerun it. */
  notKept: "notKept",
} as const;

/** One of {@linkcode RERUN}'s values. */
export type RerunAnswer = typeof RERUN[keyof typeof RERUN];

/**
 * Reruns one failed task, atomically: a task that is not failed (or whose record is gone) is
 * left alone, so two reruns of one task never make two runs.
 *
 * KEYS: [1] failed record, [2] task hash, [3] result key
 * ARGV: [1] task id, [2] key prefix, [3] now (ms, the enqueuer's clock: `expire` counts from it)
 * Returns {answer (a RERUN value), function name ('' unless queued)}.
 */
export const RERUN_SCRIPT = script(lua(
  enterStream,
  `
if redis.call('EXISTS', KEYS[2]) == 1 then return {'${RERUN.unfinished}', ''} end
local ended = redis.call('GETRANGE', KEYS[3], 0, 0)
if ended == '' then return {'${RERUN.missing}', ''} end
if ended == '${ENDED.success}' then return {'${RERUN.succeeded}', ''} end
local f = redis.call('HMGET', KEYS[1], '${TASK_FIELD.fn}', '${TASK_FIELD.priority}')
if not f[1] or not f[2] then return {'${RERUN.notKept}', ''} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
-- A fresh try: no runner, no retry reason, no pending due time, no dependency failure (a rerun
-- does not wait for dependencies again), and a new budget of tries.
redis.call('HDEL', KEYS[2], '${TASK_FIELD.failedTime}', '${TASK_FIELD.runner}', '${TASK_FIELD.due}',
  '${TASK_FIELD.waiting}', '${TASK_FIELD.dependencyFailure}', '${TASK_FIELD.lastReason}')
redis.call('HSET', KEYS[2], '${TASK_FIELD.tries}', 0)
redis.call('DEL', KEYS[3])
enterStream(KEYS[2], ARGV[2] .. '${KEY.stream}' .. f[2], ARGV[1], ARGV[3])
return {'${RERUN.queued}', f[1]}
`,
));

/**
 * Reruns the failed task with this id.
 *
 * @returns The name of its function.
 * @throws {StreaqError} When the task is not failed (unfinished, succeeded, unknown or expired)
 * or nothing was kept to rerun it; the message says which.
 */
export async function retryById(client: QueueContext, id: string): Promise<string> {
  if (typeof id !== "string" || id.length === 0) {
    throw new TypeError(
      `Cannot retry a task as 'taskId' must be a non-empty string: received ${describe(id)}`,
    );
  }
  const [answer, fnName] = await rerun(client, id);
  if (answer === RERUN.queued) return fnName;
  throw new StreaqError(`Cannot retry task ${id} as ${REFUSALS[answer]}`);
}

const REFUSALS: Record<Exclude<RerunAnswer, "queued">, string> = {
  unfinished: "it has not finished: it is queued, scheduled, waiting or running",
  succeeded: "it succeeded",
  missing: "it is unknown: never sent, or its result expired or was removed",
  notKept:
    "nothing was kept to rerun it: it failed without running (aborted or failed while it waited) or before failed tasks were kept",
};

/** Failed records read per SCAN batch before their reruns are sent, in one pipeline each. */
const BATCH = 500;

/**
 * Reruns every failed task matching `options` (all of them by default), in batches: a SCAN over
 * the failed records, one pipelined `HMGET` to filter a batch, one pipeline of reruns.
 *
 * @returns How many tasks were queued again.
 */
export async function retryFailed(
  client: QueueContext,
  options: RetryFailedOptions = {},
): Promise<number> {
  checkRetryFailedOptions(options);
  const { fnName, since } = options;
  const from = since?.getTime() ?? -Infinity;
  const prefix = client.keys.failed("");
  const seen = new Set<string>();
  let count = 0;
  for await (const keys of scanQueue(client, client.keys.pattern(`${KEY.failed}*`))) {
    for (let i = 0; i < keys.length; i += BATCH) {
      const ids = keys.slice(i, i + BATCH).map((key) => key.slice(prefix.length))
        .filter((id) => !seen.has(id));
      ids.forEach((id) => seen.add(id));
      const reads = client.redis.pipeline();
      for (const id of ids) {
        reads.hmget(client.keys.failed(id), TASK_FIELD.fn, TASK_FIELD.failedTime);
      }
      const fields = (await reads.exec() ?? []).map(([error, reply]) => {
        if (error) throw error;
        return reply as (string | null)[];
      });
      const chosen = ids.filter((_, j) => {
        const [fn, failedTime] = fields[j];
        return fn !== null && (fnName === undefined || fn === fnName) &&
          Number(failedTime ?? 0) >= from;
      });
      const answers = await rerunMany(client, chosen);
      count += answers.filter(([answer]) => answer === RERUN.queued).length;
    }
  }
  return count;
}

function checkRetryFailedOptions(options: RetryFailedOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot retry failed tasks as 'options' must be an object: received ${describe(options)}`,
    );
  }
  const { fnName, since } = options;
  if (fnName !== undefined && (typeof fnName !== "string" || fnName.length === 0)) {
    throw new TypeError(
      `Cannot retry failed tasks as 'fnName' must be a non-empty string: received ${
        describe(fnName)
      }`,
    );
  }
  if (since !== undefined && (!(since instanceof Date) || Number.isNaN(since.getTime()))) {
    throw new TypeError(
      `Cannot retry failed tasks as 'since' must be a valid Date: received ${describe(since)}`,
    );
  }
}

function rerun(client: QueueContext, id: string): Promise<[RerunAnswer, string]> {
  const { keys } = client;
  return runScript(
    client.redis,
    RERUN_SCRIPT,
    [keys.failed(id), keys.task(id), keys.result(id)],
    [id, keys.prefix, client.now()],
  ) as Promise<[RerunAnswer, string]>;
}

async function rerunMany(client: QueueContext, ids: string[]): Promise<[RerunAnswer, string][]> {
  if (ids.length === 0) return [];
  const { keys } = client;
  const pipeline = client.redis.pipeline();
  for (const id of ids) {
    runScript(
      pipeline,
      RERUN_SCRIPT,
      [keys.failed(id), keys.task(id), keys.result(id)],
      [id, keys.prefix, client.now()],
    );
  }
  return (await pipeline.exec() ?? []).map(([error, reply]) => {
    if (error) throw error;
    return reply as [RerunAnswer, string];
  });
}
