/**
 * Running one delivery: the checks before a task may start (aborted, unknown function, too
 * many tries, expired, undecodable, unique lock), the call itself with its context, deadline
 * and signal, and the translation of what happened into an outcome and then a completion.
 *
 * @module
 */

import { TASK_FIELD } from "../redis/keys.ts";
import type { FunctionOutcome, FunctionStats } from "./function_stats.ts";
import type { QueueContext } from "../queue_context.ts";
import type { Completion, DeliveryWriter } from "./complete.ts";
import { ContextScope, type TaskContext, type TaskFacts } from "../context.ts";
import {
  describeError,
  StreaqCancelled,
  StreaqError,
  StreaqRateLimited,
  timeoutError,
} from "../errors.ts";
import { decideRetry } from "./retry_policy.ts";
import type { Delivery } from "./fetch.ts";
import { nextOccurrence } from "../cron/crontab.ts";
import { dependencyFailure } from "../client/graph.ts";
import { dependencyResultsAfterEnd, readDependencyResults } from "../client/fan_in.ts";
import type { Due } from "../redis/_redis_time.ts";
import type { ThreadPool } from "./threads/pool.ts";
import { progressAfterEnd, ProgressReporter } from "./progress.ts";
import { taskLogAfterEnd, TaskLogWriter } from "./task_logs.ts";
import { outcomeEvent } from "./outcome_event.ts";
import type { WorkerLogger } from "../logger.ts";
import type { RegisteredTask } from "../registered_task.ts";
import { startRunSpan, type TryOutcome } from "./run_span.ts";
import type { TaskController } from "./running_task.ts";
import type { ResultRecord } from "../result.ts";
import type { Buffer } from "node:buffer";

/** What happened to a task. */
export type Outcome =
  | { readonly kind: "success"; readonly value: unknown }
  | { readonly kind: "failure"; readonly error: unknown }
  | { readonly kind: "retry"; readonly due: Due; readonly reason: string }
  | {
    readonly kind: "back";
    readonly reason: string;
    /** The task threw `StreaqRateLimited`: its function waits this many ms, everywhere. */
    readonly blockFor?: number;
  };

/** Counts of the outcomes a worker handled, as `worker.counters` shows them. */
export interface WorkerCounters {
  /** Tasks that succeeded. */
  readonly completed: number;
  /** Tasks that failed (errors, timeouts, refusals), aborted ones aside. */
  readonly failed: number;
  /** Tries that ended in a retry. */
  readonly retried: number;
  /** Tasks that failed because they were aborted. */
  readonly aborted: number;
  /** Running tasks handed back to the queue at shutdown. */
  readonly relinquished: number;
}

/** The worker's own, writable counters. */
export type Counters = { -readonly [K in keyof WorkerCounters]: number };

/** What running a task needs from its worker. */
export interface ExecutionEnv {
  readonly client: QueueContext;
  readonly workerId: string;
  // deno-lint-ignore no-explicit-any
  readonly registry: ReadonlyMap<string, RegisteredTask<any, unknown>>;
  readonly logger: WorkerLogger;
  readonly counters: Counters;
  /** Per-function counts and timings, published with the heartbeat. */
  readonly stats: FunctionStats;
  /** Writes outcomes. */
  readonly completer: Pick<DeliveryWriter, "complete" | "drain">;
  /**
   * Told when a task's function has settled on its own: frees its slot for the next task. The
   * outcome is written once what it returns has resolved.
   */
  readonly release: (d: Delivery) => Promise<void> | undefined;
  /** The threads that run synchronous task functions. */
  readonly threads: ThreadPool;
  /** Wraps the function of the task of this name in the middleware that applies to it. */
  readonly wrap: (
    // deno-lint-ignore no-explicit-any
    fn: (...args: any[]) => unknown,
    name: string,
    // deno-lint-ignore no-explicit-any
  ) => (...args: any[]) => Promise<unknown>;
}

/** Reason given to a running task's signal when its worker hands it back at shutdown. */
export class HandBack extends StreaqError {
  constructor(message: string) {
    super(message);
    this.name = "HandBack";
  }
}

/** Margin added to a unique task's timeout for its lock, so the lock outlives the run. */
const LOCK_MARGIN = 5_000;

/**
 * Runs a started delivery to its outcome and writes it. Resolves once the outcome is written;
 * `settled` resolves when the task function itself has settled, which may be later if it
 * ignored its signal; it is undefined when the function has settled already (or never ran).
 */
export async function execute(
  env: ExecutionEnv,
  d: Delivery,
  controller: TaskController,
): Promise<{ settled: Promise<unknown> | undefined }> {
  const startTime = env.client.now();
  const waited = lateness(d);
  let ran = false;
  const task = env.registry.get(d.fnName);
  let lock: string | undefined;
  let settled: Promise<unknown> | undefined;
  let outcome: Outcome;
  let logs: TaskLogWriter | undefined;
  // Undefined, after one check, while OpenTelemetry is off.
  const span = startRunSpan(env.client.keys.queueName, env.workerId, d);
  try {
    const refusal = d.passthrough ? refuseEarly(d) : refuse(env, d, task);
    if (refusal) {
      outcome = { kind: "failure", error: refusal };
    } else if (controller.signal.aborted) {
      // Aborted before it began: a request that came while it waited for a slot.
      outcome = signalOutcome(controller.signal.reason);
    } else if (d.passthrough) {
      outcome = await passOn(env, d);
    } else {
      const opened = env.client.envelope.openArgs(d.taskId, d.fnName, d.payload!);
      let args = opened instanceof Promise ? await opened : opened;
      if (d.input) {
        args = [(await env.client.envelope.openResult(d.source, d.input)).value, ...args];
      }
      if (task!.unique) {
        lock = env.client.keys.lock(task!.name);
        const holder = await acquireLock(env.client, lock, d.taskId, task!.timeout!);
        if (holder !== d.taskId) {
          lock = undefined;
          throw new StreaqError(
            `Task ${d.fnName} (${d.taskId}) did not run: it is unique and task ${holder} of it is running`,
          );
        }
      }
      if (!task!.silent && env.logger.enabled("info")) {
        env.logger.info(`→ ${d.fnName} (${d.taskId}) try ${d.tries}`, taskFields(d));
      }
      ran = true;
      const run = span
        ? span.within(() => call(env, d, task!, args, controller))
        : call(env, d, task!, args, controller);
      outcome = await run.outcome;
      settled = run.unsettled();
      // Only a task that reported progress or logged has something to end, and a slot is
      // yielded only while other tasks run: no await, and no turn of the microtask queue,
      // for nothing.
      const ending = run.endTry();
      logs = ending instanceof Promise ? await ending : ending;
      const released = env.release(d);
      if (released) await released;
    }
  } catch (error) {
    outcome = { kind: "failure", error };
  }
  // The outcome written, then counted and logged: no async function of its own, which would be
  // a promise and a frame per task.
  try {
    const sealing = completionOf(env, d, task, outcome, startTime);
    const { completion, written } = sealing instanceof Promise ? await sealing : sealing;
    // The last lines, and the list's time to live: the result's, or a pending one for a retry.
    if (logs) await logs.close(completion.kind === "final" ? completion.ttl : undefined);
    const { applied } = await env.completer.complete(d, completion, lock);
    const counted = applied ? account(env, d, task, written, startTime, waited, ran) : lost(env, d);
    span?.end(written, counted);
  } catch (error) {
    span?.fail(error);
    throw error;
  }
  return { settled };
}

/** The error a task fails with when it was aborted or a dependency failed, else undefined. */
function refuseEarly(d: Delivery): StreaqError | undefined {
  if (d.aborting) return new StreaqCancelled(`Task ${labelOf(d)} was aborted before it started`);
  if (d.dependencyFailure) {
    const { cancelled, message } = dependencyFailure(d.dependencyFailure);
    return cancelled
      ? new StreaqCancelled(`Task ${labelOf(d)} was cancelled: ${message}`)
      : new StreaqError(`Task ${labelOf(d)} did not run: ${message}`);
  }
  return undefined;
}

/** The result a fallback passes on when the task it guards succeeded. */
async function passOn(env: ExecutionEnv, d: Delivery): Promise<Outcome> {
  const guarded = await env.client.envelope.openResult(d.source, d.input!);
  return guarded.success
    ? { kind: "success", value: guarded.value }
    : { kind: "failure", error: guarded.value };
}

/** A StreaqError when the task must not run at all, else undefined. */
function refuse(
  env: ExecutionEnv,
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown> | undefined,
): StreaqError | undefined {
  const early = refuseEarly(d);
  if (early) return early;
  if (!task) {
    return new StreaqError(
      `Cannot run task ${
        labelOf(d)
      }: no task named '${d.fnName}' is registered on worker ${env.workerId} (registered: ${
        [...env.registry.keys()].join(", ") || "none"
      })`,
    );
  }
  if (d.payload === null) {
    // Only a hand-edited or half-deleted hash lacks it: every enqueue writes one.
    return new StreaqError(
      `Cannot run task ${
        labelOf(d)
      }: it has no payload in Redis (field '${TASK_FIELD.data}' of its hash is missing)`,
    );
  }
  if (d.tries > task.maxTries) {
    const last = d.previousRun
      ? `worker ${d.previousRun} stopped before finishing try ${d.tries - 1}`
      : d.lastReason || "unknown";
    return new StreaqError(
      `Task ${labelOf(d)} failed after ${task.maxTries} tries (maxTries); last reason: ${last}`,
    );
  }
  // The clocks are read only for a task with a limit to check: a read is a call into the
  // runtime, and most tasks have neither limit.
  if (task.maxScheduleDrift !== undefined && d.scheduledTime > 0) {
    const late = Math.round(lateness(d));
    if (late > task.maxScheduleDrift) {
      return new StreaqError(
        `Task ${
          labelOf(d)
        } skipped: it started ${late} ms after it was due, more than its maxScheduleDrift of ${task.maxScheduleDrift} ms`,
      );
    }
  }
  if (task.expire !== undefined) {
    const waited = env.client.now() - d.enqueueTime;
    if (waited > task.expire) {
      return new StreaqError(
        `Task ${
          labelOf(d)
        } expired: it waited ${waited} ms to start, more than its expire of ${task.expire} ms`,
      );
    }
  }
  return undefined;
}

/** Takes the unique lock of a task; returns the id of the task holding it afterwards. */
async function acquireLock(
  client: QueueContext,
  lock: string,
  taskId: string,
  timeout: number,
): Promise<string> {
  for (;;) {
    const set = await client.redis.set(lock, taskId, "PX", timeout + LOCK_MARGIN, "NX");
    if (set === "OK") return taskId;
    // Released between the SET and the GET: try again, rather than run without holding it
    // (another task may have taken it meanwhile).
    const holder = await client.redis.get(lock);
    if (holder !== null) return holder;
  }
}

/** Calls the task function, racing it against its signal (abort, timeout, hand-back). */
function call(
  env: ExecutionEnv,
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown>,
  args: unknown[],
  controller: TaskController,
): {
  outcome: Promise<Outcome>;
  /**
   * Once the outcome is decided: undefined when the function has settled (it decided the
   * outcome, as nearly always), else a promise of its settling (its signal decided first).
   */
  unsettled: () => Promise<unknown> | undefined;
  endTry: () => TaskLogWriter | undefined | Promise<TaskLogWriter | undefined>;
} {
  const { signal } = controller;
  // Made at the first report: a task that never reports costs nothing.
  let reporter: ProgressReporter | undefined;
  let logs: TaskLogWriter | undefined;
  let ended = false;
  const timer = task.timeout === undefined ? undefined : setTimeout(() => {
    controller.abort(
      timeoutError(`Task ${d.fnName} (${d.taskId}) timed out after ${task.timeout} ms`),
    );
  }, task.timeout);
  const context: TaskContext = {
    taskId: d.taskId,
    fnName: d.fnName,
    tries: d.tries,
    timeout: task.timeout,
    ttl: task.ttl,
    workerId: env.workerId,
    enqueueTime: d.enqueueTime,
    priority: d.priority,
    signal,
    // Read only when asked: a task that does not ask costs nothing.
    dependencyResults: () => readDependencyResults(env.client, d.taskId, d.fnName),
    progress: (value) => {
      if (ended) return Promise.reject(progressAfterEnd(d.fnName, d.taskId));
      reporter ??= new ProgressReporter(env.client, d.taskId, d.fnName, env.workerId, env.logger);
      return reporter.report(value);
    },
    log: (...values) => {
      if (ended) throw taskLogAfterEnd(`${d.fnName} (${d.taskId})`);
      logs ??= new TaskLogWriter(env.client, d.taskId, d.fnName, d.tries, env.logger);
      logs.add(values);
    },
  };
  // Middleware runs here, around the call; a threaded function's call goes to a thread.
  const { threadModule } = task;
  const fn = env.wrap(
    threadModule === undefined
      ? task.fn
      : (...args: unknown[]) => env.threads.run(threadModule, task.name, args, context),
    task.name,
  );
  const scope = new ContextScope(context);
  const running = scope.run(() => {
    try {
      return Promise.resolve(fn(...args));
    } catch (error) {
      return Promise.reject(error);
    }
  });
  // The first of the function's settling and its signal decides the outcome. One promise settled
  // by either, rather than a race and a `finally`: those are promises and closures per task.
  const { promise: outcome, resolve } = Promise.withResolvers<Outcome>();
  let decided = false;
  const decide = (decision: Outcome) => {
    if (decided) return;
    decided = true;
    clearTimeout(timer);
    controller.onAbort = undefined;
    resolve(decision);
  };
  const listener = () => decide(signalOutcome(signal.reason));
  controller.onAbort = listener;
  if (signal.aborted) listener();
  let returned = false;
  running.then(
    (value) => {
      returned = true;
      decide({ kind: "success", value });
    },
    (error) => {
      returned = true;
      let decision: Outcome;
      try {
        decision = thrownOutcome(d, task, error, signal);
      } catch (failure) {
        // A retry policy that throws fails the task, as a rejected outcome would.
        decision = { kind: "failure", error: failure };
      }
      decide(decision);
    },
  );
  return {
    outcome,
    unsettled: () => returned ? undefined : running.catch(() => {}),
    endTry: () => {
      ended = true;
      scope.end(endedFacts(context), endedContext);
      return reporter ? reporter.stop().then(() => logs) : logs;
    },
  };
}

/** A signal that never fires: an ended try's, when it ended without being aborted. */
const NEVER_ABORTED = new AbortController().signal;

/** What an ended try's context keeps (see `ContextScope`): its data, without its closures. */
function endedFacts(context: TaskContext): TaskFacts {
  const { taskId, fnName, tries, timeout, ttl, workerId, enqueueTime, priority, signal } = context;
  return {
    taskId,
    fnName,
    tries,
    timeout,
    ttl,
    workerId,
    enqueueTime,
    priority,
    // Not aborted by the end of the try, it never will be: its controller is dropped.
    signal: signal.aborted ? signal : NEVER_ABORTED,
  };
}

/**
 * What code a task left running (it ignored its signal and went on) sees once the try has
 * ended: the same facts, and methods that fail at once.
 */
function endedContext(facts: TaskFacts): TaskContext {
  const { taskId, fnName } = facts;
  return {
    ...facts,
    dependencyResults: () => Promise.reject(dependencyResultsAfterEnd(fnName, taskId)),
    progress: () => Promise.reject(progressAfterEnd(fnName, taskId)),
    log: () => {
      throw taskLogAfterEnd(`${fnName} (${taskId})`);
    },
  };
}

function signalOutcome(reason: unknown): Outcome {
  if (reason instanceof HandBack) return { kind: "back", reason: reason.message };
  return { kind: "failure", error: reason };
}

function thrownOutcome(
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown>,
  error: unknown,
  signal: AbortSignal,
): Outcome {
  // An error thrown because the signal fired (abort, timeout, hand-back) is not the task's own.
  if (signal.aborted) return signalOutcome(signal.reason);
  // A limit met at run time (a 429): back to wait, holding its function back everywhere.
  if (error instanceof StreaqRateLimited) {
    return { kind: "back", reason: "", blockFor: error.ms };
  }
  return decideRetry({
    label: `${d.fnName} (${d.taskId})`,
    tries: d.tries,
    maxTries: task.maxTries,
    policy: task.retry,
    thread: task.threadModule !== undefined,
  }, error);
}

/** The completion that writes an outcome, and the outcome as it is written. */
interface Sealed {
  readonly completion: Completion;
  /** A result that could not be encoded is written as a failure. */
  readonly written: Outcome;
}

/**
 * Turns an outcome into the completion that writes it: at once, unless sealing the result is
 * asynchronous (a signature, a codec that answers later).
 */
function completionOf(
  env: ExecutionEnv,
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown> | undefined,
  outcome: Outcome,
  startTime: number,
): Sealed | Promise<Sealed> {
  if (outcome.kind !== "success" && outcome.kind !== "failure") {
    return { completion: outcome, written: outcome };
  }
  const sealing = env.client.envelope.sealResult({
    taskId: d.taskId,
    fnName: d.fnName,
    createdTime: d.createdTime,
    enqueueTime: d.enqueueTime,
    startTime,
    finishTime: env.client.now(),
    // A try refused for exceeding maxTries never started: it does not count.
    tries: task ? Math.min(d.tries, task.maxTries) : d.tries,
    workerId: env.workerId,
    success: outcome.kind === "success",
    value: outcome.kind === "success" ? outcome.value : outcome.error,
  });
  return sealing instanceof Promise
    ? sealing.then((sealed) => finalCompletion(env, d, task, outcome, sealed))
    : finalCompletion(env, d, task, outcome, sealing);
}

/** The completion of a task that succeeded or failed, its result sealed. */
function finalCompletion(
  env: ExecutionEnv,
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown> | undefined,
  outcome: Outcome,
  { blob, record }: { blob: Buffer; record: ResultRecord },
): Sealed {
  const written: Outcome = record.success ? outcome : { kind: "failure", error: record.value };
  return {
    completion: {
      kind: "final",
      result: blob,
      ttl: task
        ? (record.success ? task.ttl : task.failureTtl)
        : env.client.resultTtl(d.fnName, record.success),
      keep: task?.keepResults,
      next: nextRun(d, task, written, record.finishTime),
      event: env.client.eventsSetting === ""
        ? undefined
        : outcomeEvent(record.success, record.value),
    },
    written,
  };
}

/** A written outcome this worker no longer owned (another worker took the delivery over). */
function lost(env: ExecutionEnv, d: Delivery): TryOutcome {
  env.logger.warn(
    `${d.fnName} (${d.taskId}): this worker no longer owns the delivery (another worker took it over); its outcome was not written`,
  );
  return "lost";
}

/**
 * Counts a written outcome, notes its timings and logs it. Returns the counter it went to.
 * `waited`: how late it started; `ran`: whether its function was called.
 */
function account(
  env: ExecutionEnv,
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown> | undefined,
  outcome: Outcome,
  startTime: number,
  waited: number,
  ran: boolean,
): FunctionOutcome {
  const counted = count(env.counters, outcome);
  const ms = env.client.now() - startTime;
  env.stats.note(d.fnName, counted, waited, ran ? ms : undefined);
  // The line's text and fields are built only when it is written: a worker logging at "warn"
  // or above, or a silent task, would otherwise make garbage of them for every task.
  const logged = outcome.kind === "back" || !(task?.silent ?? false);
  if (!logged || !env.logger.enabled(outcome.kind === "failure" ? "warn" : "info")) {
    return counted;
  }
  const label = `${d.fnName} (${d.taskId})`;
  const fields = { ...taskFields(d), durationMs: ms };
  switch (outcome.kind) {
    case "success":
      env.logger.info(`✓ ${label} in ${ms} ms`, fields);
      break;
    case "failure":
      env.logger.warn(`✗ ${label} failed in ${ms} ms: ${describeError(outcome.error)}`, fields);
      break;
    case "retry":
      env.logger.info(
        `↻ ${label} retries in ${retryDelay(outcome.due, env.client.now())} ms: ${outcome.reason}`,
        fields,
      );
      break;
    case "back":
      if (outcome.blockFor !== undefined) {
        env.logger.info(
          `⏸ ${label} rate-limited: ${d.fnName} starts nothing for ${outcome.blockFor} ms`,
          fields,
        );
      } else {
        env.logger.info(`↩ ${label} handed back: ${outcome.reason}`, fields);
      }
  }
  return counted;
}

/**
 * When a repeating task runs next: its crontab's next occurrence after now. A repeating task
 * whose function is unknown, or that was aborted, stops; a task that does not repeat has none.
 */
function nextRun(
  d: Delivery,
  // deno-lint-ignore no-explicit-any
  task: RegisteredTask<any, unknown> | undefined,
  outcome: Outcome,
  now: number,
): number | "stop" | undefined {
  if (!d.crontab) return undefined;
  if (!task) return "stop";
  if (outcome.kind === "failure" && outcome.error instanceof StreaqCancelled) return "stop";
  // From the present on Redis's clock, the one due times are on: a worker whose clock is ahead
  // must not skip occurrences.
  const present = d.scheduledTime > 0 ? d.scheduledTime + lateness(d) : now;
  try {
    return nextOccurrence(d.crontab, d.timeZone, Math.max(present, d.scheduledTime));
  } catch {
    // A stored crontab or time zone that does not parse (corrupted data): the schedule ends
    // here, rather than the outcome failing to be written on every delivery, forever.
    return "stop";
  }
}

/**
 * How late a delayed or scheduled delivery is now (ms): on Redis's clock when it was claimed
 * (the clock its due time is on), plus the time since, a duration on any clock.
 */
function lateness(d: Delivery): number {
  return d.lateAtClaim + performance.now() - d.claimedAt;
}

/** How long until a retry is due, for the log line (a point in time on this worker's clock). */
function retryDelay(due: Due, now: number): number {
  return "in" in due ? due.in : due.at - now;
}

/** Counts an outcome in the worker's counters; returns the counter it went to. */
function count(counters: Counters, outcome: Outcome): FunctionOutcome {
  const counter: FunctionOutcome = outcome.kind === "success"
    ? "completed"
    : outcome.kind === "retry"
    ? "retried"
    : outcome.kind === "back"
    ? "relinquished"
    : outcome.error instanceof StreaqCancelled
    ? "aborted"
    : "failed";
  counters[counter]++;
  return counter;
}

/** How log lines and errors name a delivery's task; built only for a line or an error. */
function labelOf(d: Delivery): string {
  return `${d.fnName} (${d.taskId})`;
}

/** The structured fields of a log line about a delivery (see `logFormat: "json"`). */
function taskFields(d: Delivery): { taskId: string; fnName: string; tries: number } {
  return { taskId: d.taskId, fnName: d.fnName, tries: d.tries };
}
