/**
 * Middleware: functions that wrap the tasks of the worker they are added to, the first added
 * outermost: its own tasks and those it includes, but not the tasks of a worker that includes
 * it. Around an included task, the included worker's middleware is inside the including one's.
 * They run on the main thread, around the call (a threaded task's call goes to its thread in
 * the innermost function), and read the running task's context from their handle.
 *
 * @module
 */

import { currentContext, type TaskContext } from "./context.ts";
import { StreaqError } from "./errors.ts";

/** A task function wrapped by middleware. */
// deno-lint-ignore no-explicit-any
export type Next = (...args: any[]) => Promise<unknown>;

/**
 * Middleware: receives the next function in the chain and returns a replacement for it. It can
 * change arguments and results, throw `StreaqRetry`, or translate errors.
 */
export type Middleware = (next: Next) => Next;

/** What `worker.middleware()` returns: access to the running task's context. */
export interface MiddlewareHandle {
  /** The context of the task the middleware is running around. */
  readonly context: TaskContext;
}

/** The middleware of one worker. */
export class MiddlewareChain {
  readonly #middleware: Middleware[] = [];
  /** The chains of included workers, by the names of the tasks they wrap. */
  readonly #included = new Map<string, MiddlewareChain>();

  /** Adds middleware inside those added before; returns its handle. */
  add(middleware: Middleware): MiddlewareHandle {
    if (typeof middleware !== "function") {
      throw new TypeError(
        `Cannot add middleware as it must be a function: received ${typeof middleware}`,
      );
    }
    this.#middleware.push(middleware);
    return {
      get context(): TaskContext {
        const context = currentContext();
        if (!context) {
          throw new StreaqError("Cannot read middleware.context outside a running task");
        }
        return context;
      },
    };
  }

  /**
   * Wraps the tasks named `names` in another chain, inside this one's middleware (for
   * `include`): the included worker's middleware stays around its own tasks only.
   */
  include(other: MiddlewareChain, names: Iterable<string>): void {
    for (const name of names) this.#included.set(name, other);
  }

  /**
   * Wraps the function of task `name` in the middleware, the first added outermost, around the
   * middleware of the worker it was included from, if any.
   */
  // deno-lint-ignore no-explicit-any
  wrap(fn: (...args: any[]) => unknown, name: string): Next {
    const included = this.#included.get(name);
    if (included) fn = included.wrap(fn, name);
    // Without middleware the function is called as it is: the caller makes its result a promise
    // (and a synchronous throw a rejection), sparing every task an async wrapper.
    if (this.#middleware.length === 0) return fn as Next;
    // deno-lint-ignore no-explicit-any
    const base: Next = async (...args: any[]) => await fn(...args);
    return this.#middleware.reduceRight((next, middleware) => middleware(next), base);
  }
}
