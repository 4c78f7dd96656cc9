/**
 * The task graph in Redis: tasks that wait for others (`after`), pipeline stages that take the
 * previous result as input (`pipe`), and fallbacks that run only when a task fails
 * (`otherwise`). Its Lua steps (`src/redis/lua/graph.ts`) are shared by the enqueue, completion and abort scripts, so a
 * dependent is settled in the same atomic step that settles its dependency.
 *
 * A waiting task keeps a hash with `wait` set, a set `deps:<id>` of the dependencies it still
 * waits for, and is listed in the `waiting` set; each dependency lists its dependents in
 * `dependents:<id>`. When a dependency finishes, each waiting dependent is settled: satisfied
 * ones are placed in their own priority's stream (or the delayed set, if they are due later);
 * one whose dependency failed, was aborted or was unknown is marked `depfail` and placed in its
 * stream too, so that a worker writes its failure through the ordinary completion path. That
 * makes failure transitive and leaves nothing stranded.
 *
 * Stored results start with one byte saying how the task ended (`ENDED`, written by
 * `src/payload/envelope.ts`), which is what these scripts read. The Lua itself is in the Lua
 * library, `src/redis/lua/graph.ts`.
 *
 * @module
 */

import { DEPENDENCY_FAILURE } from "../redis/lua/graph.ts";

export { ENDED } from "../redis/lua/graph.ts";

/** The reason a dependent fails, from its `depfail` field, for the failure's message. */
export function dependencyFailure(depfail: string): { cancelled: boolean; message: string } {
  const { unknown, cancelled } = DEPENDENCY_FAILURE;
  if (depfail.startsWith(unknown)) {
    return {
      cancelled: false,
      message: `unknown dependency ${
        depfail.slice(unknown.length)
      }: no task with that id existed when it was enqueued`,
    };
  }
  if (depfail.startsWith(cancelled)) {
    return {
      cancelled: true,
      message: `dependency failed: ${depfail.slice(cancelled.length)} was aborted`,
    };
  }
  return { cancelled: false, message: `dependency failed: ${depfail} did not succeed` };
}
