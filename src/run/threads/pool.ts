/**
 * A pool of task threads (Web Workers), so that synchronous, CPU-bound task functions run in
 * parallel on every core without blocking the worker's event loop, heartbeats or other tasks.
 * Threads start on first use. A call whose signal aborts (timeout, abort, hand-back) terminates
 * its thread, the only way to stop a runaway synchronous function; a fresh thread replaces it
 * on the next call.
 *
 * @module
 */

import { dirname, sep as SEP } from "node:path";
import { fileURLToPath } from "node:url";
import { deserialize, type PlainError, plainToError, serialize } from "../../payload/codec.ts";
import type { TaskContext } from "../../context.ts";
import { KNOWN_ERRORS, StreaqError } from "../../errors.ts";
import type { ThreadReply, ThreadRequest } from "./protocol.ts";

const ENTRY = new URL("./entry.ts", import.meta.url).href;

/**
 * Throws a StreaqError unless this process may read the local modules that task threads load:
 * streaq's own, and those of the modules that registered `tasks`, taken to lie in their
 * directories. Without it each task would fail when it runs, after being taken from the queue;
 * checked when the worker starts, the missing flag is named before any task is fetched. Only a
 * granted permission passes: a prompt from a thread would stop the worker until answered.
 *
 * @param where What was being done, for the message: `"run worker a1b2c3d4"`.
 * @param tasks The threaded tasks: their names and the modules that registered them.
 */
export async function checkThreadReadAccess(
  where: string,
  tasks: readonly { readonly name: string; readonly threadModule: string }[],
): Promise<void> {
  if (tasks.length === 0) return;
  // Remote modules (streaq from JSR, say) are fetched, not read: no permission involved.
  const local = (url: string) => url.startsWith("file:");
  const modules = [...new Set(tasks.map((t) => t.threadModule))].filter(local);
  const dirs = new Set(modules.map((url) => dirname(fileURLToPath(url))));
  if (local(ENTRY)) dirs.add(dirname(fileURLToPath(new URL("../../../mod.ts", ENTRY))));
  const unreadable: string[] = [];
  for (const path of dirs) {
    const { state } = await Deno.permissions.query({ name: "read", path });
    if (state !== "granted") unreadable.push(path);
  }
  // A directory inside another one listed is covered by it.
  const needed = unreadable.filter((dir) =>
    !unreadable.some((other) => other !== dir && dir.startsWith(other + SEP))
  );
  if (needed.length === 0) return;
  throw new StreaqError(
    `Cannot ${where}: its synchronous tasks (${
      tasks.map((t) => t.name).join(", ")
    }) run in task threads, which load ${
      modules.map((url) => fileURLToPath(url)).join(", ") || "them"
    } and streaq's own modules, and this process may not read ${
      needed.join(", ")
    }. Add --allow-read=${needed.join(",")} (or add ${
      needed.length === 1 ? "it" : "them"
    } to "read" in the permission set), or register the tasks with thread: false to run them on the event loop`,
  );
}

/** A call running in a thread. */
interface Call {
  readonly request: ThreadRequest;
  resolve(reply: ThreadReply): void;
  reject(error: unknown): void;
}

/** A thread and the call it is running, if any. */
interface Thread {
  readonly worker: globalThis.Worker;
  call: Call | undefined;
  busy: boolean;
}

/** Runs task calls on at most `size` threads. */
export class ThreadPool {
  readonly #size: number;
  readonly #threads: Thread[] = [];
  readonly #waiting: (() => void)[] = [];
  #calls = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /** Number of threads running now. */
  get threads(): number {
    return this.#threads.length;
  }

  /**
   * Calls the task `fnName` registered by `moduleUrl` on a free thread, waiting for one if all
   * are busy. Rejects with the signal's reason when it aborts; the thread is then terminated.
   */
  async run(
    moduleUrl: string,
    fnName: string,
    args: unknown[],
    context: TaskContext,
  ): Promise<unknown> {
    // Neither the signal nor a function can cross threads; the thread makes its own.
    const { signal, dependencyResults: _, progress: _p, log: _l, ...plainContext } = context;
    const thread = await this.#acquire(signal);
    const request: ThreadRequest = {
      call: ++this.#calls,
      moduleUrl,
      fnName,
      args: serialize(args),
      context: plainContext,
    };
    const onAbort = () => thread.call?.reject(signal.reason);
    try {
      const reply = await new Promise<ThreadReply>((resolve, reject) => {
        thread.call = { request, resolve, reject };
        signal.addEventListener("abort", onAbort, { once: true });
        thread.worker.postMessage(request);
      });
      this.#release(thread);
      if (reply.ok) return deserialize(reply.value);
      throw plainToError(deserialize(reply.error) as PlainError, KNOWN_ERRORS);
    } catch (error) {
      if (thread.busy) this.#replace(thread);
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
      thread.call = undefined;
    }
  }

  /** Terminates every thread. */
  close(): void {
    for (const thread of this.#threads.splice(0)) thread.worker.terminate();
  }

  async #acquire(signal: AbortSignal): Promise<Thread> {
    for (;;) {
      signal.throwIfAborted();
      const free = this.#threads.find((t) => !t.busy);
      if (free) {
        free.busy = true;
        return free;
      }
      if (this.#threads.length < this.#size) return this.#start();
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }

  /**
   * Starts a thread. Its handlers are set once, here: an error in the thread (a module it
   * cannot load, say) fails the call it runs, never the process.
   */
  #start(): Thread {
    const thread: Thread = {
      worker: new globalThis.Worker(ENTRY, { type: "module" }),
      call: undefined,
      busy: true,
    };
    thread.worker.onmessage = (event: MessageEvent<ThreadReply>) => {
      if (event.data.call === thread.call?.request.call) thread.call.resolve(event.data);
    };
    thread.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const call = thread.call;
      call?.reject(
        new Error(
          `The task thread running ${call.request.fnName} failed: ${event.message}. Task threads load ${call.request.moduleUrl} and streaq's own modules, so they need read access to them (--allow-read); a task registered with thread: false runs inline instead`,
        ),
      );
    };
    this.#threads.push(thread);
    return thread;
  }

  #release(thread: Thread): void {
    thread.busy = false;
    this.#waiting.shift()?.();
  }

  /** Terminates a thread whose call failed or was stopped; the next call starts a new one. */
  #replace(thread: Thread): void {
    thread.worker.terminate();
    this.#threads.splice(this.#threads.indexOf(thread), 1);
    this.#waiting.shift()?.();
  }
}
