/**
 * Fan-in: what a task that ran after others (`after`, a pipeline stage, a fallback) reads of
 * them, {@linkcode DependencyResults}, from `taskContext().dependencyResults()`. Results are read
 * by the function that produced them, so their type flows from that function's
 * `RegisteredTask`.
 *
 * @module
 */

import { StreaqError } from "./errors.ts";
import type { RegisteredTask } from "./registered_task.ts";
import type { TaskResult } from "./result.ts";

/**
 * What one dependency of a running task left, by `status`:
 *
 * - `"done"`: its stored result, a success or (for a fallback, which runs because its task
 *   failed) a failure.
 * - `"expired"`: no result is stored and the task is gone: its result outlived its `ttl` (or
 *   the `ttl` was 0, so it was never stored), or it was removed.
 * - `"unfinished"`: no result yet, and the task is still there (a repeating task between
 *   occurrences, say).
 *
 * @example Telling the three apart
 * ```ts
 * import type { DependencyResult } from "@streaq/streaq";
 *
 * export function describeDependency(entry: DependencyResult): string {
 *   if (entry.status !== "done") return `${entry.taskId}: ${entry.status}`;
 *   const { result } = entry;
 *   return result.success ? `${result.fnName} returned` : `${result.fnName} failed`;
 * }
 * ```
 */
export type DependencyResult =
  | {
    /** The dependency's task id. */
    readonly taskId: string;
    /** Its result is stored. */
    readonly status: "done";
    /** Its result, decoded (and checked, with a signing secret) like `result()`. */
    readonly result: TaskResult<unknown>;
  }
  | {
    /** The dependency's task id. */
    readonly taskId: string;
    /** Why there is no result: it expired (or was never stored), or the task has not finished. */
    readonly status: "expired" | "unfinished";
    /** Always null here. */
    readonly result: null;
  };

// Set by DependencyResults's static block, so that only streaq constructs one.
let construct: (label: string, entries: readonly DependencyResult[]) => DependencyResults;

/**
 * Builds the answer of `dependencyResults()` for the task labelled `label` (`"fn (id)"`, for
 * messages), from its dependencies' entries in the order it named them. For streaq's own
 * modules; not exported from `mod.ts`.
 */
export function createDependencyResults(
  label: string,
  entries: readonly DependencyResult[],
): DependencyResults {
  return construct(label, entries);
}

/**
 * The results of the tasks a running task waited for, read in one round trip by
 * `taskContext().dependencyResults()`, while they are kept (each dependency's `ttl`). A typed
 * result is read by the {@linkcode RegisteredTask} of the function that produced it:
 * {@linkcode DependencyResults.of} for the one dependency that ran it,
 * {@linkcode DependencyResults.allOf} for all of them; {@linkcode DependencyResults.entries} has
 * every dependency in order, with the ones whose result has expired.
 *
 * A task runs after its dependencies only when they all succeeded (otherwise it fails with
 * "dependency failed" and its function is not called), so their results are successes; a
 * fallback (`otherwise()`) runs because its task failed, and reads that failure.
 *
 * @example Merging the results of two different tasks
 * ```ts
 * import { taskContext, Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 * const countUsers = worker.task(async function countUsers(): Promise<number> {
 *   return await Promise.resolve(42);
 * });
 * const latestName = worker.task(async function latestName(): Promise<string> {
 *   return await Promise.resolve("Ada");
 * });
 * export const summary = worker.task(async function summary(): Promise<string> {
 *   const deps = await taskContext().dependencyResults(); // one round trip
 *   const users: number = deps.of(countUsers).result; // typed by countUsers
 *   const name: string = deps.of(latestName).result;
 *   return `${users} users, latest ${name}`;
 * });
 *
 * export async function enqueueSummary(): Promise<void> {
 *   const a = countUsers.enqueue();
 *   const b = latestName.enqueue();
 *   await worker.enqueueMany([a, b, summary.enqueue().start({ after: [a.id, b.id] })]);
 * }
 * ```
 */
export class DependencyResults {
  readonly #label: string;
  readonly #entries: readonly DependencyResult[];

  /** Private: an instance comes from `taskContext().dependencyResults()`. */
  private constructor(label: string, entries: readonly DependencyResult[]) {
    this.#label = label;
    this.#entries = Object.freeze([...entries]);
  }

  static {
    construct = (label, entries) => new DependencyResults(label, entries);
  }

  /**
   * The ids of the tasks this one waited for, in the order it named them: a pipeline stage's or
   * fallback's source first, then those given as `after`. Empty for a task without any.
   *
   * @example Counting the dependencies
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.task(async function report(): Promise<number> {
   *   return (await taskContext().dependencyResults()).ids.length;
   * });
   * ```
   */
  get ids(): readonly string[] {
    return this.#entries.map((entry) => entry.taskId);
  }

  /**
   * Every dependency with what it left ({@linkcode DependencyResult}), in the order of
   * {@linkcode DependencyResults.ids}; untyped, as dependencies may run different functions.
   *
   * @example Listing dependencies whose results have expired
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * worker.task(async function audit(): Promise<string[]> {
   *   const { entries } = await taskContext().dependencyResults();
   *   return entries.filter((e) => e.status === "expired").map((e) => e.taskId);
   * });
   * ```
   */
  get entries(): readonly DependencyResult[] {
    return this.#entries;
  }

  /**
   * The result of the one dependency that ran `task`, typed by it.
   *
   * @typeParam R What `task`'s function resolves to.
   * @param task The registered task the dependency ran (matched by its name).
   * @returns That dependency's result.
   * @throws {StreaqError} When no dependency has a stored result of `task` (the message lists
   * the dependencies, with those whose results expired), or when several have (use
   * {@linkcode DependencyResults.allOf}).
   *
   * @example Reading a pipeline stage's other input
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const price = worker.task(async function price(sku: string): Promise<number> {
   *   return await Promise.resolve(sku.length * 10);
   * });
   * worker.task(async function invoice(sku: string): Promise<string> {
   *   const cents = (await taskContext().dependencyResults()).of(price).result; // a number
   *   return `${sku}: ${(cents / 100).toFixed(2)}`;
   * });
   * ```
   */
  // deno-lint-ignore no-explicit-any
  of<R>(task: RegisteredTask<any, R, any>): TaskResult<R> {
    const found = this.allOf(task);
    if (found.length === 1) return found[0];
    if (found.length === 0) {
      throw new StreaqError(
        `Cannot read the result of ${task.name} in task ${this.#label}: none of its dependencies has a stored result of ${task.name} (${this.#describe()})`,
      );
    }
    throw new StreaqError(
      `Cannot read the result of ${task.name} in task ${this.#label} as ${found.length} of its dependencies ran it (${
        found.map((r) => r.taskId).join(", ")
      }): use allOf(${task.name}) for all of them`,
    );
  }

  /**
   * The results of every dependency that ran `task`, typed by it, in the order of
   * {@linkcode DependencyResults.ids}; empty when none did. A dependency whose result expired is
   * not among them (nothing says which function it ran): see
   * {@linkcode DependencyResults.entries}.
   *
   * @typeParam R What `task`'s function resolves to.
   * @param task The registered task the dependencies ran (matched by its name).
   * @returns Their results.
   *
   * @example Summing the results of a fan-out
   * ```ts
   * import { taskContext, Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const pageSize = worker.task(async function pageSize(url: string): Promise<number> {
   *   return (await (await fetch(url)).arrayBuffer()).byteLength;
   * });
   * worker.task(async function totalSize(): Promise<number> {
   *   const sizes = (await taskContext().dependencyResults()).allOf(pageSize);
   *   return sizes.reduce((sum, size) => sum + size.result, 0);
   * });
   * ```
   */
  // deno-lint-ignore no-explicit-any
  allOf<R>(task: RegisteredTask<any, R, any>): TaskResult<R>[] {
    const found: TaskResult<R>[] = [];
    for (const entry of this.#entries) {
      if (entry.status === "done" && entry.result.fnName === task.name) {
        found.push(entry.result as TaskResult<R>);
      }
    }
    return found;
  }

  /** The dependencies and what they left, for messages: `a1 (fetchLen), b2 (expired)`. */
  #describe(): string {
    if (this.#entries.length === 0) return "it has none";
    return "dependencies: " +
      this.#entries.map((entry) =>
        `${entry.taskId} (${entry.status === "done" ? entry.result.fnName : entry.status})`
      ).join(", ");
  }
}
