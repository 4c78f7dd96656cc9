/**
 * The script each task thread runs (a Web Worker). It imports the modules that registered the
 * threaded tasks, with a flag set so that importing them starts no worker, and runs one task
 * call at a time on request. Arguments and results cross the thread boundary through the
 * default codec; errors as plain `{ name, message, stack, cause }`.
 *
 * @module
 */

import { deserialize, errorToPlain, serialize } from "../../payload/codec.ts";
import { ContextScope, type TaskContext } from "../../context.ts";
import { StreaqError } from "../../errors.ts";
import { THREAD_FLAG, type ThreadReply, type ThreadRequest } from "./protocol.ts";
import { findThreadTask } from "./registry.ts";

(globalThis as Record<string, unknown>)[THREAD_FLAG] = true;

const imported = new Map<string, Promise<unknown>>();

/**
 * Imports the user's module. Through a Function so that `deno publish` does not flag a dynamic
 * import it cannot analyse: which module a thread loads is only known at run time.
 */
const importModule = new Function("url", "return import(url)") as (url: string) => Promise<unknown>;

self.onmessage = async (event: MessageEvent<ThreadRequest>) => {
  const { call, moduleUrl, fnName, args, context } = event.data;
  let reply: ThreadReply;
  try {
    if (!imported.has(moduleUrl)) imported.set(moduleUrl, importModule(moduleUrl));
    await imported.get(moduleUrl);
    const fn = findThreadTask(fnName);
    if (!fn) {
      // Typically a task registered inside a function (a test body, a factory): the thread runs
      // the module's top level only, so it never registers the task.
      throw new Error(
        `task ${fnName} is not registered by ${moduleUrl} when loaded in a thread: a task thread ` +
          "imports that module and sees only the tasks registered at its top level. Register " +
          "the task at the module's top level, or pass { thread: false } to run it on the " +
          "event loop instead of a thread (see docs/testing.md)",
      );
    }
    // A thread cannot be aborted from inside: its signal never fires; the main thread
    // terminates the thread instead.
    const full: TaskContext = {
      ...context,
      signal: new AbortController().signal,
      dependencyResults: () => {
        throw new StreaqError(
          `Cannot read the dependency results of task ${fnName} (${context.taskId}) in a task thread: a synchronous function cannot await them. Make it async and register it with thread: false, or read them in an async task and pass them on with pipe()`,
        );
      },
      progress: () => {
        throw new StreaqError(
          `Cannot report progress of task ${fnName} (${context.taskId}) in a task thread: a synchronous function cannot report it. Make it async and register it with thread: false`,
        );
      },
      log: () => {
        throw new StreaqError(
          `Cannot write a log line of task ${fnName} (${context.taskId}) in a task thread: its lines are written from the worker's thread. Make it async and register it with thread: false`,
        );
      },
    };
    // A thread runs one call at a time and the context is small: its scope is never ended.
    const value = await new ContextScope(full).run(() => fn(...(deserialize(args) as unknown[])));
    reply = { call, ok: true, value: serialize(value) };
  } catch (error) {
    reply = { call, ok: false, error: serialize(errorToPlain(error)) };
  }
  self.postMessage(reply);
};
