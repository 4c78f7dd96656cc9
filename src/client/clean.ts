/**
 * Cleaning a queue: removing stored results of finished tasks, all of them or those that
 * finished before a time, succeeded or failed, of one function, with the records kept to rerun
 * failed ones (`src/client/rerun.ts`), which cannot be rerun afterwards. Only results go: a task
 * that is queued, delayed, waiting or running has none, and a repeating task keeps its schedule
 * (only the result of its last occurrence goes).
 *
 * Results are found by a SCAN of the queue's result keys; each batch found is checked and
 * removed by a script call of at most {@linkcode CLEAN_BATCH} results, which reads only the
 * head of each result (`resultHeader`), so that a queue of any size never blocks Redis for more
 * than a few milliseconds at a time.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { KEY } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { resultHeader } from "../redis/lua/results.ts";
import { ENDED } from "./graph.ts";
import { scanQueue } from "./scan.ts";
import { checkDuration, checkKnownKeys, checkName, describe } from "../_validate.ts";

/** At most this many results are looked at by one script call. */
export const CLEAN_BATCH = 100;

/** How much of a result is read to find its header: enough for a function name of ~200 bytes. */
const HEAD_BYTES = 300;

/** Which finished tasks `clean` removes the results of. */
export interface CleanOptions {
  /**
   * Only tasks that finished at least this many milliseconds ago (by the finish time in their
   * result, on the clock of the worker that ran them).
   *
   * @default {0: all of them}
   */
  olderThan?: number;
  /**
   * Only tasks that succeeded, or only those that failed (aborted ones included).
   *
   * @default {both}
   */
  status?: "succeeded" | "failed";
  /** Only tasks of this function (its registered name). */
  fnName?: string;
}

/**
 * Removes the results in a batch that match the filters, with what was kept to rerun a failed
 * one (its failed record) and their entries in the `keepResults` index of their function. A
 * result whose header cannot be read is left alone.
 *
 * KEYS: [1] the delayed set (it pins the queue's slot; result keys are given in ARGV)
 * ARGV: [1] key prefix, [2] finished no later than (ms) or '', [3] `ENDED.success` to remove
 *       successes only, 'failed' failures only, '' both, [4] function name or '', then the
 *       result keys
 * Returns how many results it removed.
 */
export const CLEAN_SCRIPT = script(lua(
  resultHeader,
  `
local P, before, status, fnName = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local resultPrefix = P .. '${KEY.result}'
local removed = 0
for i = 5, #ARGV do
  local key = ARGV[i]
  local value = redis.call('GETRANGE', key, 0, ${HEAD_BYTES - 1})
  local ended, finish, fn = resultHeader(value)
  if fn == nil and #value == ${HEAD_BYTES} then
    value = redis.call('GET', key)
    ended, finish, fn = resultHeader(value)
  end
  if fn ~= nil and (before == nil or finish <= before) and (fnName == '' or fn == fnName)
      and (status == '' or (status == '${ENDED.success}') == (ended == '${ENDED.success}')) then
    local id = string.sub(key, #resultPrefix + 1)
    redis.call('DEL', key, P .. '${KEY.failed}' .. id, P .. '${KEY.logs}' .. id)
    redis.call('ZREM', P .. '${KEY.kept}' .. fn, id)
    removed = removed + 1
  end
end
return removed
`,
));

/** Checks the options of `clean`. */
export function checkCleanOptions(options: CleanOptions): void {
  const where = "clean the queue";
  checkKnownKeys(where, options, ["olderThan", "status", "fnName"]);
  checkDuration(where, "olderThan", options.olderThan);
  checkName(where, "fnName", options.fnName);
  const { status } = options;
  if (status !== undefined && status !== "succeeded" && status !== "failed") {
    throw new TypeError(
      `Cannot ${where} as 'status' must be "succeeded" or "failed": received ${describe(status)}`,
    );
  }
}

/**
 * Removes the stored results of finished tasks that match `options`, in batches.
 *
 * @param client The queue's context.
 * @param options Which results: finished how long ago, succeeded or failed, of which function.
 * @returns How many results it removed.
 */
export async function cleanResults(
  client: QueueContext,
  options: CleanOptions = {},
): Promise<number> {
  checkCleanOptions(options);
  const { keys } = client;
  const fixed = [
    keys.prefix,
    options.olderThan === undefined ? "" : client.now() - options.olderThan,
    options.status === "succeeded" ? ENDED.success : options.status === "failed" ? "failed" : "",
    options.fnName ?? "",
  ];
  let removed = 0;
  for await (const found of scanQueue(client, keys.pattern(`${KEY.result}*`))) {
    for (let i = 0; i < found.length; i += CLEAN_BATCH) {
      const batch = found.slice(i, i + CLEAN_BATCH);
      removed += await runScript(client.redis, CLEAN_SCRIPT, [keys.delayed], [
        ...fixed,
        ...batch,
      ]) as number;
    }
  }
  return removed;
}
