/**
 * Fan-in: reading the dependencies of a running task and their stored results, in one script
 * call, for `taskContext().dependencyResults()`. The ids come from the task's own hash (the
 * `after` field written at enqueue, kept until the task finishes), so nothing is carried with a
 * delivery and a task that never asks costs nothing.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { KEY, TASK_FIELD } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { layout, luaTuple } from "../redis/lua/layout.ts";
import { makeTaskResult } from "../result.ts";
import { StreaqError } from "../errors.ts";
import {
  createDependencyResults,
  type DependencyResult,
  type DependencyResults,
} from "../dependencies.ts";

/**
 * The reply of {@linkcode READ_DEPENDENCIES_SCRIPT} for a task still there: its dependency ids,
 * and per id its stored result, or a {@linkcode NO_RESULT} number.
 */
export const DEPENDENCY_READ = layout("ids", "results");

/** What stands for a dependency without a stored result in {@linkcode DEPENDENCY_READ}. */
export const NO_RESULT = { expired: 0, unfinished: 1 } as const;

/**
 * The dependencies of a task and their results. A dependency without a stored result is
 * `unfinished` while its hash is there, else `expired`; both are read in the same call, so a
 * dependency finishing meanwhile is not taken for expired. Result keys and dependency hashes are
 * built from the prefix and share the queue's hash tag with the declared key.
 *
 * KEYS: [1] the task's hash
 * ARGV: [1] the queue's key prefix
 * Returns 0 when the task's hash is gone (it finished), else {@linkcode DEPENDENCY_READ}: {ids,
 * results}, each id once, in the order of the task's `after` field.
 */
export const READ_DEPENDENCIES_SCRIPT = script(`
local P = ARGV[1]
local f = redis.call('HMGET', KEYS[1], '${TASK_FIELD.fn}', '${TASK_FIELD.after}')
if not f[1] then return 0 end
local ids, results, seen = {}, {}, {}
for dep in string.gmatch(f[2] or '', '%S+') do
  if not seen[dep] then
    seen[dep] = true
    table.insert(ids, dep)
    local blob = redis.call('GET', P .. '${KEY.result}' .. dep)
    if blob then
      table.insert(results, blob)
    elseif redis.call('HEXISTS', P .. '${KEY.task}' .. dep, '${TASK_FIELD.fn}') == 1 then
      table.insert(results, ${NO_RESULT.unfinished})
    else
      table.insert(results, ${NO_RESULT.expired})
    end
  end
end
return ${luaTuple(DEPENDENCY_READ, { ids: "ids", results: "results" })}
`);

/** The error of a read of a task's dependency results once it has finished. */
export function dependencyResultsAfterEnd(fnName: string, taskId: string): StreaqError {
  return new StreaqError(
    `Cannot read the dependency results of task ${fnName} (${taskId}) as it has finished: they can be read only while it runs`,
  );
}

/**
 * Reads the dependencies of the running task `taskId` (of function `fnName`) and their results,
 * decoded through the queue's envelope.
 *
 * @throws {StreaqError} When the task's hash is gone (it finished already), or a dependency's
 * result cannot be decoded (another codec, another signing secret, tampered): naming it.
 */
export async function readDependencyResults(
  client: QueueContext,
  taskId: string,
  fnName: string,
): Promise<DependencyResults> {
  const label = `${fnName} (${taskId})`;
  const reply = await runScript(
    client.redis,
    READ_DEPENDENCIES_SCRIPT,
    [client.keys.task(taskId)],
    [client.keys.prefix],
    true,
  ) as number | unknown[][];
  if (typeof reply === "number") throw dependencyResultsAfterEnd(fnName, taskId);
  const ids = (reply[DEPENDENCY_READ.at.ids] as Buffer[]).map(String);
  const results = reply[DEPENDENCY_READ.at.results] as (Buffer | number)[];
  const entries = await Promise.all(ids.map(async (id, i): Promise<DependencyResult> => {
    const blob = results[i];
    if (typeof blob === "number") {
      return {
        taskId: id,
        status: blob === NO_RESULT.unfinished ? "unfinished" : "expired",
        result: null,
      };
    }
    let record;
    try {
      record = await client.envelope.openResult(id, blob);
    } catch (error) {
      throw new StreaqError(
        `Cannot read the result of dependency ${id} of task ${label}: ${
          (error as Error)?.message ?? String(error)
        }`,
        { cause: error },
      );
    }
    return { taskId: id, status: "done", result: makeTaskResult(record) };
  }));
  return createDependencyResults(label, entries);
}
