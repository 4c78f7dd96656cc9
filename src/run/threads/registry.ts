/**
 * Where a task thread finds task functions: every `Worker` created in an isolate records its
 * threaded tasks here, so the thread, having imported the module that created the worker, can
 * look a function up by its task name.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
type Fn = (...args: any[]) => unknown;

const functions = new Map<string, Fn>();

/** Records a threaded task function under its task name. */
export function recordThreadTask(name: string, fn: Fn): void {
  functions.set(name, fn);
}

/** The threaded task function of this name, if a module loaded here registered it. */
export function findThreadTask(name: string): Fn | undefined {
  return functions.get(name);
}

/**
 * The URL of the module that called into streaq, from the stack: the first frame outside
 * streaq's own `src/`. Task threads import that module to find the function.
 */
export function callerModule(): string | undefined {
  const own = new URL("../../", import.meta.url).href;
  for (const line of new Error().stack?.split("\n").slice(1) ?? []) {
    const match = line.match(/((?:file|https?):\/\/[^\s)]+?):\d+:\d+\)?$/);
    if (match && !match[1].startsWith(own)) return match[1];
  }
  return undefined;
}
