/**
 * The enqueue path: an unsent {@linkcode Task} collects its start options, its dependencies and
 * the pipeline or fallback it belongs to, and {@linkcode sendTasks} stores any number of tasks
 * in one round trip. A task's id is assigned on the client, so enqueueing is idempotent:
 * sending the same task twice stores it once.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import type { QueueContext } from "../queue_context.ts";
import { nextOccurrence } from "../cron/crontab.ts";
import { StreaqError } from "../errors.ts";
import type { ResultOptions, StartOptions } from "../options.ts";
import type { TaskResult } from "../result.ts";
import { resultById } from "./inspect.ts";
import { checkStartOptions } from "../_check_options.ts";
import { checkDuration } from "../_validate.ts";
import { checkDedupeCombination } from "../_check_dedupe.ts";
import type { RegisteredTask } from "../registered_task.ts";
import { createTaskHandle, type TaskHandle } from "../task_handle.ts";
import { Batcher } from "./_batch.ts";
import { dueArg, redisNow } from "../redis/_redis_time.ts";
import { runScript } from "../redis/_script.ts";
import { DEDUPE_ANSWER } from "../redis/lua/dedupe.ts";
import { dedupeLinks, replaceSealed } from "./_dedupe_send.ts";
import { LINK } from "../redis/lua/graph.ts";
import { pushRecord } from "../redis/lua/layout.ts";
import {
  ENQUEUE_SCRIPT,
  enqueueArgs,
  NEW_TASK,
  PLAIN_RECORDS,
  type RecordSlots,
  taskLayout,
  type TaskRecord,
} from "./_enqueue_script.ts";
import { openTelemetry, type OtelContext } from "../_otel.ts";
import { startEnqueueSpans, type TracedSend } from "./enqueue_spans.ts";

/** Scripts per call: keeps each script call short so Redis stays responsive to others. */
const BATCH = 500;

/** The dependencies of a task tied to no other. */
const NO_DEPENDENCIES: readonly string[] = Object.freeze([]);

/** How a task is tied to the task before it: a pipeline stage or a fallback. */
type Link = typeof LINK[keyof typeof LINK];

// deno-lint-ignore no-explicit-any
type AnyTask = Task<any>;

/** What the send path reads of a task's private state; `Task`'s static block sets it. */
interface TaskInternals {
  /** The per-queue context the task is sent through. */
  queue(task: AnyTask): QueueContext;
  /** The task before it in a pipeline, or the task it is a fallback for. */
  source(task: AnyTask): AnyTask | undefined;
  /** Its send, once it was awaited, batched or sent by itself; undefined before. */
  sending<R>(task: Task<R>): Promise<TaskHandle<R>> | undefined;
  /** The ids it waits for: its source, then those given as `after`. */
  dependencies(task: AnyTask): readonly string[];
  /** How it is tied to its source. */
  link(task: AnyTask): Link | undefined;
  /** Marks it sent as part of a batch. */
  markSent<R>(task: Task<R>, sent: Promise<TaskHandle<R>>): void;
  /** Gives a deduplicated task the id of the task that stands for it. */
  adoptId(task: AnyTask, id: string): void;
  /** The OpenTelemetry context active when it was created; undefined while tracing is off. */
  traceParent(task: AnyTask): OtelContext | undefined;
  /** Notes that the check `pass` met the task; false when it met it before (twice in a batch). */
  meet(task: AnyTask, pass: object): boolean;
}

// Set by Task's static block: only code inside the class may read its private fields and call
// its private constructor; these give the send path below and `createTask` that access.
let internals: TaskInternals;
let createUnsent: <R, Args extends unknown[], Priority extends string>(
  client: QueueContext,
  fnName: string,
  args: readonly unknown[],
) => Task<R, Args, Priority>;

/**
 * Builds an unsent task of a queue: what `registeredTask.enqueue(...)` and
 * `worker.enqueueUnsafe(...)` return. For streaq's own modules; not exported from `mod.ts`.
 */
// deno-lint-ignore no-explicit-any
export function createTask<R, Args extends any[] = any[], Priority extends string = string>(
  client: QueueContext,
  fnName: string,
  args: readonly unknown[],
): Task<R, Args, Priority> {
  return createUnsent<R, Args, Priority>(client, fnName, args);
}

/**
 * A task that is built but not sent yet. Awaiting it sends it (with the pipeline stages or the
 * task it is a fallback for) and resolves to a {@linkcode TaskHandle}; `start()` first sets
 * when, after what, and at which priority it runs. Its `id` exists before it is sent, so
 * another task of the same batch can refer to it.
 *
 * A task is never lost for want of an `await`: one that is not awaited, batched with
 * `enqueueMany`, or taken into a pipeline (`pipe`, `otherwise`) by the time the code that
 * created it awaits anything (the end of the current microtask) is sent by itself, and a failure
 * to send it is logged. So `start()`, `pipe()` and `otherwise()` belong right after
 * `enqueue()`, in the same expression or before the next `await`. A task whose `start()` threw
 * is never sent.
 *
 * @typeParam R What the task returns.
 * @typeParam Args The arguments of its function.
 * @typeParam Priority The priorities of its worker.
 *
 * @example Sending a task later
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * const worker = new Worker();
 * const greet = worker.task(async function greet(name: string): Promise<string> {
 *   return `hello ${name}`;
 * });
 *
 * export async function greetLater(name: string): Promise<string> {
 *   const task = greet.enqueue(name).start({ delay: 60_000 });
 *   console.log(task.id); // known before sending
 *   const handle = await task; // sends it
 *   return handle.id;
 * }
 * ```
 */
// deno-lint-ignore no-explicit-any
export class Task<R, Args extends any[] = any[], Priority extends string = string>
  implements PromiseLike<TaskHandle<R>> {
  /** The registered name of the function it runs. */
  readonly fnName: string;
  /** The arguments it will be called with (a pipeline stage gets the previous result first). */
  readonly args: readonly unknown[];
  readonly #client: QueueContext;
  /** Made when first read: a task given its own `id` by `start()` never needs a random one. */
  #id: string | undefined;
  #options: StartOptions<Priority> = {};
  #sent: Promise<TaskHandle<R>> | undefined;
  // deno-lint-ignore no-explicit-any
  #source: Task<any> | undefined;
  #link: Link | undefined;
  /** The last check of a batch's order that met it (`inSendingOrder`). */
  #metBy: object | undefined;
  /** Taken into a pipeline, or refused by `start()`: it must not send itself. */
  #taken = false;
  /** Someone awaits it: they see a failure to send it, so it need not be logged. */
  #awaited = false;
  /** The parent of its enqueue span: the OpenTelemetry context it was created in, if on. */
  readonly #traceParent: OtelContext | undefined = openTelemetry()?.active();

  /**
   * Private: a task comes from `registeredTask.enqueue(...)` or `worker.enqueueUnsafe(...)`
   * (inside streaq, from `createTask`).
   */
  private constructor(client: QueueContext, fnName: string, args: readonly unknown[]) {
    this.#client = client;
    this.fnName = fnName;
    this.args = args;
    if (created.push(this) === 1) queueMicrotask(Task.#sendForgotten);
  }

  static {
    createUnsent = (client, fnName, args) => new Task(client, fnName, args);
    internals = {
      queue: (task) => task.#client,
      source: (task) => task.#source,
      sending: (task) => task.#sent,
      dependencies: (task) => task.#dependencies(),
      link: (task) => task.#link,
      markSent: (task, sent) => task.#markSent(sent),
      adoptId: (task, id) => void (task.#id = id),
      traceParent: (task) => task.#traceParent,
      meet: (task, pass) => {
        if (task.#metBy === pass) return false;
        task.#metBy = pass;
        return true;
      },
    };
  }

  /** Sends the tasks created since the last call that nothing has sent or taken. */
  static #sendForgotten(): void {
    const tasks = created;
    created = [];
    for (const task of tasks) {
      if (task.#sent || task.#taken) continue;
      task.#sent = coalescedSend(task.#client, task) as Promise<TaskHandle<unknown>>;
      task.#sent.catch((error) => {
        if (task.#awaited) return;
        task.#client.logger.error(
          `Cannot send task ${task.fnName} (${task.id}), which was never awaited: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
      });
    }
  }

  /**
   * Sets when, after what, and at which priority the task runs.
   *
   * @param options A `delay` or a `schedule`, ids to run `after`, and a `priority`.
   * @returns This task, still unsent.
   * @throws {TypeError} For conflicting options, a bad date or bad ids.
   * @throws {RangeError} For a negative delay or an unknown priority.
   *
   * @example High priority, in ten seconds
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker({ priorities: ["low", "high"] as const });
   * const report = worker.task(async function report(day: string): Promise<void> {
   *   console.log(`report for ${day}`);
   * });
   *
   * export async function sendReport(day: string): Promise<string> {
   *   const handle = await report.enqueue(day).start({ delay: 10_000, priority: "high" });
   *   return handle.id;
   * }
   * ```
   */
  start(options: StartOptions<Priority>): this {
    if (this.#sent) {
      throw new TypeError(
        `Cannot change the start options of task ${this.fnName} (${this.id}) as it was sent: a task is sent when it is awaited or batched, or by itself once the code that created it awaits anything; call start() right after enqueue()`,
      );
    }
    const merged = { ...this.#options, ...options };
    try {
      checkStartOptions(this.fnName, options, this.#client.priorities);
      checkDedupeCombination(this.fnName, merged, this.#source !== undefined);
    } catch (error) {
      this.#taken = true; // A task with refused options is not sent without them.
      throw error;
    }
    this.#options = merged;
    if (options.id !== undefined) this.#id = options.id;
    return this;
  }

  /**
   * The task's id: assigned on the client, or the `id` given to `start()`. Once a send found the
   * task deduplicated by its `dedupe` key, the id of the task that stands for it, as its handle's:
   * a task sent later `after` this one waits for that task.
   *
   * @example Choosing a task's id
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const charge = worker.task(async function charge(orderId: string): Promise<void> {
   *   console.log(`charging order ${orderId}`);
   * });
   *
   * export async function chargeOnce(orderId: string): Promise<boolean> {
   *   const task = charge.enqueue(orderId).start({ id: `charge-${orderId}` });
   *   console.log(task.id); // "charge-<orderId>"
   *   const handle = await task;
   *   return handle.deduplicated; // true if that id was enqueued before
   * }
   * ```
   */
  get id(): string {
    return this.#id ??= crypto.randomUUID().replaceAll("-", "");
  }

  /**
   * Adds a pipeline stage: `next` runs when this task succeeds, with this task's result as its
   * first argument, followed by `extra`. If this task fails, `next` fails with "dependency
   * failed". Awaiting the returned task sends the whole pipeline in one round trip, and its
   * handle's `result()` is the last stage's.
   *
   * @param next The task to run next; its first parameter must accept this task's result.
   * @param extra The arguments that follow the result.
   * @returns The next stage, unsent.
   *
   * @example An ETL chain
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const extract = worker.task(async function extract(url: string): Promise<string[]> {
   *   return [url];
   * });
   * const load = worker.task(async function load(rows: string[], table: string): Promise<number> {
   *   console.log(`${rows.length} rows into ${table}`);
   *   return rows.length;
   * });
   *
   * export async function importEvents(url: string): Promise<number | undefined> {
   *   const handle = await extract.enqueue(url).pipe(load, "events"); // sends both stages
   *   const result = await handle.result(); // the last stage's
   *   return result.success ? result.result : undefined;
   * }
   * ```
   */
  // deno-lint-ignore no-explicit-any
  pipe<Extra extends any[], R2>(
    next: RegisteredTask<[R, ...Extra], R2, Priority>,
    ...extra: Extra
  ): Task<R2, [R, ...Extra], Priority> {
    return this.#then<R2, [R, ...Extra]>(next.name, extra, LINK.pipe);
  }

  /**
   * Adds a fallback: `fallback` runs with the same arguments only if this task fails. The
   * returned task's result is this task's result when it succeeded, else the fallback's.
   *
   * @param fallback The task to run instead; it takes the same arguments.
   * @returns The fallback, unsent; await it to send both.
   *
   * @example Falling back to a slower source
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const fromCache = worker.task(async function fromCache(key: string): Promise<string> {
   *   throw new Error(`no ${key} in cache`);
   * });
   * const fromDb = worker.task(async function fromDb(key: string): Promise<string> {
   *   return `${key} from the database`;
   * });
   *
   * export async function lookUp(key: string): Promise<string | undefined> {
   *   const handle = await fromCache.enqueue(key).otherwise(fromDb);
   *   const result = await handle.result({ timeout: 5_000 });
   *   return result.success ? result.result : undefined;
   * }
   * ```
   */
  otherwise<R2>(
    fallback: RegisteredTask<Args, R2, Priority>,
  ): Task<R | R2, Args, Priority> {
    return this.#then<R | R2, Args>(fallback.name, this.args, LINK.fallback);
  }

  #then<R2, A extends unknown[]>(
    fnName: string,
    args: readonly unknown[],
    link: Link,
  ): Task<R2, A, Priority> {
    const next = new Task<R2, A, Priority>(this.#client, fnName, args);
    next.#source = this;
    next.#link = link;
    this.#taken = true; // Sent with `next`, unless it was sent already.
    return next;
  }

  /**
   * The start options given so far.
   *
   * @example Reading back the start options
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const ping = worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   *
   * export async function delayedPing(): Promise<string> {
   *   const task = ping.enqueue().start({ delay: 5_000 });
   *   console.log(task.options.delay); // 5000
   *   return (await task).id;
   * }
   * ```
   */
  get options(): Readonly<StartOptions<Priority>> {
    return this.#options;
  }

  /**
   * The ids this task waits for: its source, then those given as `after`. Read several times
   * per task as a batch is sent, so a task tied to nothing answers with one shared empty list.
   */
  #dependencies(): readonly string[] {
    const { after } = this.#options;
    if (after === undefined && !this.#source) return NO_DEPENDENCIES;
    const ids = after === undefined ? [] : typeof after === "string" ? [after] : [...after];
    return this.#source ? [this.#source.id, ...ids] : ids;
  }

  /**
   * Sends the task (once, however often it is awaited) and resolves to its handle.
   *
   * @example Sending by awaiting
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const ping = worker.task(async function ping(): Promise<string> {
   *   return "pong";
   * });
   *
   * export async function sendPing(): Promise<string> {
   *   const handle = await ping.enqueue(); // calls then(): sends once, resolves to the handle
   *   return handle.id;
   * }
   * ```
   */
  then<A = TaskHandle<R>, B = never>(
    onfulfilled?: ((value: TaskHandle<R>) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.#awaited = true;
    this.#sent ??= coalescedSend(this.#client, this) as Promise<TaskHandle<R>>;
    return this.#sent.then(onfulfilled, onrejected);
  }

  /**
   * Sends the task and waits for its result, as `(await task).result(options)` does, but the
   * wait subscribes to the task's result while the task is sent rather than after: the client's
   * subscription and read no longer follow the send, so what is left to wait for is the worker.
   * A task deduplicated into another (see `StartOptions.dedupe`) waits for that one's result.
   * The timeout counts from the call, the send included.
   *
   * @throws {DOMException} Named `"TimeoutError"` when `timeout` passes first.
   * @throws {StreaqError} When the task cannot be sent, or its result expired before it was
   * read (see `TaskHandle.result`).
   *
   * @example Enqueueing and waiting in one call
   * ```ts
   * import { Worker } from "@streaq/streaq";
   *
   * const worker = new Worker();
   * const square = worker.task(async function square(n: number): Promise<number> {
   *   return n * n;
   * });
   *
   * export async function squareNow(n: number): Promise<number> {
   *   const result = await square.enqueue(n).result({ timeout: 5_000 });
   *   if (!result.success) throw result.exception;
   *   return result.result;
   * }
   * ```
   */
  async result(options: ResultOptions = {}): Promise<TaskResult<R>> {
    const shards = this.#client.shards;
    // A sharded queue picks the task's shard as it sends it: its channel is known only then.
    if (shards && !shards.bypass) return await (await this).result(options);
    const { timeout, signal } = options;
    checkDuration("wait for a result", "timeout", timeout);
    const deadline = timeout === undefined ? undefined : performance.now() + timeout;
    // Ended if the task is not sent, or is stood for by another.
    const early = new AbortController();
    // The id as sent: a task deduplicated into another takes that one's id once sent.
    const id = this.id;
    const waiting = resultById<R>(this.#client, id, {
      timeout,
      signal: signal ? AbortSignal.any([signal, early.signal]) : early.signal,
    });
    // It may fail while the task is sent (a timeout): it is awaited, or dropped, below.
    waiting.catch(() => {});
    let handle: TaskHandle<R>;
    try {
      handle = await this;
    } catch (error) {
      early.abort();
      throw error;
    }
    if (handle.id === id) return await waiting;
    early.abort();
    const left = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    return await handle.result({ timeout: left, signal });
  }

  /** Marks the task sent as part of a batch. */
  #markSent(sent: Promise<TaskHandle<R>>): void {
    sent.catch(() => {}); // awaiting the task later still rejects
    this.#sent ??= sent;
  }
}

/** Tasks created in the current microtask, checked for a send at its end. */
// deno-lint-ignore no-explicit-any
let created: Task<any>[] = [];

type Sent = PromiseSettledResult<TaskHandle<unknown>>;
// deno-lint-ignore no-explicit-any
const senders = new WeakMap<QueueContext, Batcher<Task<any>, Sent>>();

/**
 * Sends one awaited task together with the others awaited in the same tick (and, under load,
 * while the previous send is in flight), so that many concurrent `await task` cost one script
 * call instead of one each. A batch that fails is sent again task by task, so that a task whose
 * arguments cannot be encoded fails alone.
 */
// deno-lint-ignore no-explicit-any
async function coalescedSend(client: QueueContext, task: Task<any>): Promise<TaskHandle<unknown>> {
  let sender = senders.get(client);
  if (!sender) {
    sender = new Batcher(async (tasks): Promise<Sent[]> => {
      try {
        return (await sendTasks(client, tasks)).map((value) => ({ status: "fulfilled", value }));
      } catch (reason) {
        if (tasks.length === 1) return [{ status: "rejected", reason }];
        return await Promise.allSettled(tasks.map(async (t) => (await sendTasks(client, [t]))[0]));
      }
    });
    senders.set(client, sender);
  }
  const sent = await sender.add(task);
  if (sent.status === "rejected") throw sent.reason;
  return sent.value;
}

/**
 * Sends the tasks given to `worker.enqueueMany` in one round trip and marks them sent; a task
 * sent already (awaited, or sent by itself) is not sent twice: it keeps its send.
 *
 * @param client The worker's queue, which every task must belong to.
 * @param tasks The tasks, in the order of the handles returned.
 * @param workerId The worker, named in the error for a task of another queue.
 * @throws {StreaqError} For a task of another queue; any error of the send.
 */
export async function sendBatch(
  client: QueueContext,
  tasks: readonly AnyTask[],
  workerId: string,
): Promise<TaskHandle<unknown>[]> {
  for (const task of tasks) {
    const queue = internals.queue(task);
    if (queue !== client) {
      throw new StreaqError(
        `Cannot enqueue task ${task.fnName} (${task.id}) through worker ${workerId}: it belongs to queue ${queue.keys.queueName}`,
      );
    }
  }
  const unsent = tasks.filter((t) => !internals.sending(t));
  const sent = sendTasks(client, unsent);
  unsent.forEach((t, i) => {
    const handle = sent.then((handles) => handles[i]);
    // The failure of a batch reaches the caller here; awaiting one of its tasks later rejects
    // again, but nobody may ever do so, which must not be an unhandled rejection.
    handle.catch(() => {});
    internals.markSent(t, handle);
  });
  if (unsent.length === tasks.length) return await sent;
  await sent;
  return await Promise.all(tasks.map((t) => internals.sending(t)!));
}

/**
 * Sends tasks of one queue in one round trip, with the pipeline stages and guarded tasks they
 * come with, dependencies first; returns the handles of the given tasks in input order.
 */
export async function sendTasks(
  client: QueueContext,
  // deno-lint-ignore no-explicit-any
  tasks: readonly Task<any>[],
): Promise<TaskHandle<unknown>[]> {
  // A sharded queue's context routes the tasks to its shards, each sent through this function.
  const shards = client.shards;
  if (shards && !shards.bypass) return await shards.send(tasks, sendTasks);
  if (tasks.length === 1 && isLone(tasks[0])) return [await sendLone(client, tasks[0])];
  const all = inSendingOrder(tasks);
  // Every payload is encoded before anything is sent: a task whose arguments cannot be encoded
  // fails the batch before any of it is stored.
  const payloads = await sealAll(client, all);
  const now = client.now();
  // A crontab's next occurrence follows Redis's clock, the one due times are compared with;
  // reading it costs a round trip, which only a batch with a crontab schedule pays.
  const crontabs = all.some((t) => typeof t.options.schedule === "string");
  const present = crontabs ? await redisNow(client) : now;
  const { keys } = client;
  const scriptKeys = [keys.delayed, keys.schedules];
  // Undefined, after one check, while OpenTelemetry is off: then no task sends a trace slot.
  const spans = startEnqueueSpans(keys.queueName, all, tracedSend);
  // One script call per BATCH tasks, each sent as soon as it is built: Redis stores one part
  // while the next is being built, and the parts run in the order sent, dependencies first.
  const parts: Promise<unknown>[] = [];
  /** The id standing for each task of `all` that was not stored, by its index in `all`. */
  const standIns = new Map<number, string>();
  // A task that waits for a deduplicated one learns the id standing for it in the same script
  // call: a batch with both goes in one call.
  const keyed = all.some((t) => t.options.dedupe);
  const size = keyed && all.some((t) => internals.dependencies(t).length > 0) ? all.length : BATCH;
  const slots: RecordSlots = { keyed, traced: spans !== undefined };
  const recordLayout = taskLayout(slots);
  for (let start = 0; start < all.length; start += size) {
    const args = enqueueArgs(client, now, slots);
    for (let i = start; i < Math.min(start + size, all.length); i++) {
      const task = all[i];
      const { delay, schedule, priority = client.priorities[0], dedupe, group } = task.options;
      const crontab = typeof schedule === "string" ? schedule : "";
      const debounce = dedupe?.mode === "debounce" ? dedupe.window : undefined;
      const due = debounce
        ? dueArg({ in: debounce })
        : delay
        ? dueArg({ in: delay })
        : schedule instanceof Date
        ? dueArg({ at: schedule.getTime() })
        : crontab
        ? dueArg({ at: nextOccurrence(crontab, client.timeZone, present) })
        : 0;
      const after = internals.dependencies(task).join(" ");
      const links = crontab || after || group
        ? JSON.stringify([
          crontab,
          client.timeZone,
          after,
          internals.link(task) ?? "",
          internals.source(task)?.id ?? "",
          ...(dedupe || group
            ? [dedupe ? dedupeLinks(client, dedupe, task.options.id === undefined) : ""]
            : []),
          ...(group ? [group] : []),
        ])
        : dedupe
        ? dedupeLinks(client, dedupe, task.options.id === undefined)
        : "";
      const record: TaskRecord = {
        id: task.id,
        fn: task.fnName,
        payload: payloads[i],
        priority,
        due,
        links,
        dedupeKey: dedupe?.key ?? "",
        trace: spans?.headers[i] ?? "",
      };
      pushRecord(args, recordLayout, record);
    }
    const part = runScript(client.redis, ENQUEUE_SCRIPT, scriptKeys, args).then((reply) => {
      const skipped = reply as (number | string)[];
      for (let j = 0; j < skipped.length; j += 2) {
        standIns.set(start + Number(skipped[j]) - 1, String(skipped[j + 1]));
      }
    });
    part.catch(() => {}); // read below, once every part is sent
    parts.push(part);
    // Let the event loop write this part to the socket before the next one is built.
    if (start + size < all.length) await new Promise((resolve) => setImmediate(resolve));
  }
  const sent = Promise.allSettled(parts).then((settled) => {
    for (const part of settled) if (part.status === "rejected") throw enqueueError(part.reason);
  });
  /** The id standing for each id of a task that was not stored. */
  const adopted = new Map<string, string>();
  const settled = sent.then(async () => {
    for (const [i, standIn] of standIns) {
      if (!standIn.startsWith(DEDUPE_ANSWER.reseal)) continue;
      const stoodFor = await replaceSealed(client, all[i], standIn.slice(1));
      if (stoodFor === undefined) standIns.delete(i);
      else standIns.set(i, stoodFor);
    }
    // A deduplicated task names the task standing for it from now on, as its handle does, so
    // that a task sent later `after` it, or a stage piped to it, waits for that task.
    for (const [i, standIn] of standIns) {
      adopted.set(all[i].id, standIn);
      internals.adoptId(all[i], standIn);
    }
  });
  if (spans) settled.then(() => spans.end(undefined, standIns.keys()), (e) => spans.end(e));
  const handleOf = (task: AnyTask, i: number): TaskHandle<unknown> => {
    const standIn = standIns.get(i);
    return createTaskHandle(client, standIn ?? task.id, task.fnName, standIn !== undefined);
  };
  if (all.length > tasks.length) {
    const given = new Set(tasks);
    all.forEach((task, i) => {
      if (!given.has(task)) internals.markSent(task, settled.then(() => handleOf(task, i)));
    });
  }
  await settled;
  if (standIns.size === 0 && all.length === tasks.length && all.every((t, i) => t === tasks[i])) {
    return tasks.map((t) => createTaskHandle(client, t.id, t.fnName)); // every one stored
  }
  const index = new Map(all.map((t, i) => [t, i]));
  return tasks.map((t) => {
    const i = index.get(t);
    if (i !== undefined) return handleOf(t, i);
    // Another task of this call with the same id was sent instead: this one is a duplicate.
    const standIn = adopted.get(t.id);
    if (standIn !== undefined) internals.adoptId(t, standIn);
    return createTaskHandle(client, t.id, t.fnName, true);
  });
}

/**
 * What the shard routing (`src/shards/shards.ts`) reads of an unsent task: the task before it,
 * the ids it waits for, and its send if it went already.
 */
export function linksOf(task: AnyTask): {
  source: AnyTask | undefined;
  dependencies: readonly string[];
  sent: boolean;
} {
  return {
    source: internals.source(task),
    dependencies: internals.dependencies(task),
    sent: internals.sending(task) !== undefined,
  };
}

/**
 * Whether a task is sent on its own as {@linkcode sendLone} sends it: tied to no other task,
 * with no start option but a priority (no due time, no links, its own id), OpenTelemetry off.
 */
function isLone(task: AnyTask): boolean {
  const { delay, schedule, after, id, dedupe, group } = task.options;
  return delay === undefined && schedule === undefined && after === undefined &&
    id === undefined && dedupe === undefined && group === undefined &&
    internals.source(task) === undefined && openTelemetry() === undefined;
}

/**
 * Sends one lone task (see {@linkcode isLone}): what `await task.enqueue()` does, the latency
 * case's path. The same script call as {@linkcode sendTasks} makes, without the maps, sets and
 * closures that a batch with dependencies, deduplication or spans needs: every byte allocated
 * per task brings the next garbage-collection pause closer, in the caller's process.
 */
async function sendLone(client: QueueContext, task: AnyTask): Promise<TaskHandle<unknown>> {
  const payload = await client.envelope.sealArgs(task.id, task.fnName, task.args);
  const { keys } = client;
  const args = enqueueArgs(client, client.now(), PLAIN_RECORDS);
  const priority = task.options.priority ?? client.priorities[0];
  pushRecord(args, NEW_TASK, {
    id: task.id,
    fn: task.fnName,
    payload,
    priority,
    due: 0,
    links: "",
  });
  let skipped: (number | string)[];
  try {
    skipped = await runScript(
      client.redis,
      ENQUEUE_SCRIPT,
      [keys.delayed, keys.schedules],
      args,
    ) as (
      | number
      | string
    )[];
  } catch (error) {
    throw enqueueError(error as Error);
  }
  // A task of its own random id is stored unless that id exists: then the task that has it
  // stands for it, as in a batch.
  const standIn = skipped.length > 0 ? String(skipped[1]) : undefined;
  if (standIn !== undefined) internals.adoptId(task, standIn);
  return createTaskHandle(client, standIn ?? task.id, task.fnName, standIn !== undefined);
}

/** What the enqueue span of a task is made of (read only while OpenTelemetry is on). */
function tracedSend(task: AnyTask): TracedSend {
  return {
    id: task.id,
    fnName: task.fnName,
    priority: task.options.priority ?? internals.queue(task).priorities[0],
    parent: internals.traceParent(task),
    source: internals.source(task)?.id,
    after: internals.dependencies(task),
  };
}

/** A Redis error of the enqueue script, made clear when Redis is out of memory. */
export function enqueueError(error: Error): Error {
  if (!error.message.startsWith("OOM")) return error;
  return new StreaqError(
    `Cannot enqueue: Redis is out of memory (maxmemory reached, with maxmemory-policy noeviction); nothing of this batch's failed script was stored. Raise maxmemory or let results expire sooner: ${error.message}`,
    { cause: error },
  );
}

/**
 * The sealed arguments of each task, in order: at once when every task's are (no signature, a
 * codec that answers at once), without a promise per task. A codec that refuses one task's
 * arguments fails the whole batch; the seals of the tasks before it that were still under way
 * are let go without an unhandled rejection.
 */
async function sealAll(
  client: QueueContext,
  // deno-lint-ignore no-explicit-any
  tasks: readonly Task<any>[],
): Promise<readonly (Buffer | string)[]> {
  const sealed: (Buffer | string | Promise<Buffer | string>)[] = [];
  let pending = false;
  try {
    for (const t of tasks) {
      const payload = client.envelope.sealArgs(t.id, t.fnName, t.args);
      if (payload instanceof Promise) pending = true;
      sealed.push(payload);
    }
  } catch (error) {
    for (const p of sealed) if (p instanceof Promise) p.catch(() => {});
    throw error;
  }
  return pending ? await Promise.all(sealed) : sealed as (Buffer | string)[];
}

/**
 * The tasks with the stages they come with, each after the tasks of the batch it waits for, so
 * that the script finds every dependency stored. A cycle can never run, so it is refused.
 */
// deno-lint-ignore no-explicit-any
function inSendingOrder(tasks: readonly Task<any>[]): readonly Task<any>[] {
  // Most batches are plain tasks, distinct and tied to nothing: they go as they are. Distinct
  // tasks have distinct ids unless an id was given, so the ids are compared only then.
  const pass = {};
  let plain = true;
  let givenIds = false;
  for (const t of tasks) {
    if (internals.source(t) || internals.dependencies(t).length > 0 || !internals.meet(t, pass)) {
      plain = false;
      break;
    }
    if (t.options.id !== undefined) givenIds = true;
  }
  if (plain && (!givenIds || new Set(tasks.map((t) => t.id)).size === tasks.length)) return tasks;
  // deno-lint-ignore no-explicit-any
  const byId = new Map<string, Task<any>>();
  // deno-lint-ignore no-explicit-any
  const collect = (t: Task<any> | undefined): void => {
    for (; t && !byId.has(t.id); t = internals.source(t)) {
      byId.set(t.id, t);
      // A stage whose source went earlier (sent by itself, or awaited) waits for it in Redis.
      const source = internals.source(t);
      if (source && internals.sending(source)) break;
    }
  };
  tasks.forEach(collect);
  // deno-lint-ignore no-explicit-any
  const ordered: Task<any>[] = [];
  const state = new Map<string, "visiting" | "done">();
  // deno-lint-ignore no-explicit-any
  const visit = (t: Task<any>, path: string[]): void => {
    if (state.get(t.id) === "done") return;
    if (state.get(t.id) === "visiting") {
      throw new TypeError(
        `Cannot enqueue tasks that wait for each other in a cycle: ${[...path, t.id].join(" → ")}`,
      );
    }
    state.set(t.id, "visiting");
    for (const dep of internals.dependencies(t)) {
      const task = byId.get(dep);
      if (task) visit(task, [...path, t.id]);
    }
    state.set(t.id, "done");
    ordered.push(t);
  };
  for (const t of byId.values()) visit(t, []);
  return ordered;
}
