/**
 * Middleware: functions that wrap every task a worker runs, the first registered outermost.
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

  /** Adds another chain's middleware inside this one's (for `include`). */
  include(other: MiddlewareChain): void {
    this.#middleware.push(...other.#middleware);
  }

  /** Wraps a task function in the middleware, the first added outermost. */
  // deno-lint-ignore no-explicit-any
  wrap(fn: (...args: any[]) => unknown): Next {
    // Without middleware the function is called as it is: the caller makes its result a promise
    // (and a synchronous throw a rejection), sparing every task an async wrapper.
    if (this.#middleware.length === 0) return fn as Next;
    // deno-lint-ignore no-explicit-any
    const base: Next = async (...args: any[]) => await fn(...args);
    return this.#middleware.reduceRight((next, middleware) => middleware(next), base);
  }
}
