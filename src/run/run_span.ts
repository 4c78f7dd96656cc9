/**
 * The consumer span of one try of a task, `streaq run <fn>`, when OpenTelemetry is on in the
 * worker (see `../_otel.ts`); off, {@linkcode startRunSpan} returns undefined after one check.
 *
 * The span is a child of the task's enqueue span, whose trace context the enqueue stored with
 * the task: every try of a task (retries, runs after a crash or a hand-back) is its own child
 * span of the same enqueue span, in the same trace. A repeating task (crontab) runs again and
 * again from one enqueue: each occurrence starts a trace of its own, linked to the enqueue span,
 * rather than growing one trace for ever; so does a task enqueued with tracing off (a cron job,
 * say), without the link. The span is active while the function runs, so the spans it starts
 * (a `fetch`, the spans of a library) are its children.
 *
 * @module
 */

import type { Delivery } from "./fetch.ts";
import { type OpenTelemetry, openTelemetry, type Span, SPAN_KIND, STATUS_ERROR } from "../_otel.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import type { FunctionOutcome } from "./function_stats.ts";
import type { Outcome } from "./execute.ts";

/** How a try ended, as the span's `streaq.task.outcome` says. */
export type TryOutcome = FunctionOutcome | "lost";

/** The span of one try, from its start until its outcome is written. */
export class RunSpan {
  readonly #otel: OpenTelemetry;
  readonly #span: Span;

  constructor(otel: OpenTelemetry, span: Span) {
    this.#otel = otel;
    this.#span = span;
  }

  /** Calls `fn` (the task function, with its middleware) with this span active. */
  within<T>(fn: () => T): T {
    return this.#otel.within(this.#span, fn);
  }

  /**
   * Ends the span with how the try ended: a failure records its error and sets the error
   * status, as does a retry (with its reason); `lost` is a try whose outcome was not written,
   * as another worker had taken the delivery over.
   */
  end(outcome: Outcome, counted: TryOutcome): void {
    const span = this.#span;
    span.setAttribute("streaq.task.outcome", counted);
    if (outcome.kind === "failure" && counted !== "lost") {
      const error = outcome.error;
      span.recordException(error);
      span.setAttribute("error.type", error instanceof Error ? error.name : typeof error);
      span.setStatus({ code: STATUS_ERROR, message: messageOf(error) });
    } else if (outcome.kind === "retry") {
      span.setStatus({ code: STATUS_ERROR, message: outcome.reason });
    }
    span.end();
  }

  /** Ends the span when writing the outcome failed (Redis unreachable, say). */
  fail(error: unknown): void {
    this.#span.recordException(error);
    this.#span.setStatus({ code: STATUS_ERROR, message: messageOf(error) });
    this.#span.end();
  }
}

/**
 * Starts the span of a try, or returns undefined when OpenTelemetry is off.
 *
 * @param queueName The queue the task was delivered from.
 * @param workerId The worker running it.
 * @param d The started delivery.
 */
export function startRunSpan(
  queueName: string,
  workerId: string,
  d: Delivery,
): RunSpan | undefined {
  const otel = openTelemetry();
  if (!otel) return undefined;
  const root = otel.root();
  const enqueued = d.trace ? otel.extract(d.trace, root) : root;
  // A repeating task starts a trace per occurrence, linked to the span that enqueued it.
  const parent = d.crontab ? root : enqueued;
  const enqueueSpan = enqueued === root ? undefined : otel.spanIn(enqueued);
  const span = otel.startSpan(`streaq run ${d.fnName}`, {
    kind: SPAN_KIND.consumer,
    attributes: {
      "messaging.system": "streaq",
      "messaging.operation.type": "process",
      "messaging.operation.name": "run",
      "messaging.destination.name": queueName,
      "messaging.consumer.group.name": CONSUMER_GROUP,
      "messaging.client.id": workerId,
      "messaging.message.id": d.taskId,
      "streaq.task.function": d.fnName,
      "streaq.task.try": d.tries,
      "streaq.task.priority": d.priority,
    },
    ...(d.crontab && enqueueSpan ? { links: [{ context: enqueueSpan.spanContext() }] } : {}),
  }, parent);
  return new RunSpan(otel, span);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
