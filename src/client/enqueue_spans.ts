/**
 * The producer spans of the enqueue path, when OpenTelemetry is on (see `../_otel.ts`): one span
 * per task sent, `streaq enqueue <fn>`, whose propagation headers are stored with the task so
 * that the worker's run span is its child. Off, {@linkcode startEnqueueSpans} returns undefined
 * after one check and nothing else happens.
 *
 * A task's span is a child of the context active when the task was created (the request
 * handler that called `enqueue()`, say). A pipeline stage or a fallback is a child of the
 * enqueue span of the task before it, when both are sent in the same call: a pipeline is one
 * subtree of the trace, each stage's run under its own enqueue span. A task that waits `after`
 * tasks sent in the same call links to their enqueue spans.
 *
 * @module
 */

import {
  type OpenTelemetry,
  openTelemetry,
  type OtelContext,
  type Span,
  SPAN_KIND,
  STATUS_ERROR,
} from "../_otel.ts";

/** What a task's enqueue span is made of. */
export interface TracedSend {
  readonly id: string;
  readonly fnName: string;
  readonly priority: string;
  /** The context active when the task was created; undefined if OpenTelemetry was off then. */
  readonly parent: OtelContext | undefined;
  /** The id of the task before it (pipeline stage, fallback), if any. */
  readonly source: string | undefined;
  /** The ids it waits for. */
  readonly after: readonly string[];
}

/** The enqueue spans of one send, in the order of its tasks. */
export class EnqueueSpans {
  /** Per task, the propagation headers to store with it ('' for none). */
  readonly headers: readonly string[];
  readonly #spans: readonly Span[];

  constructor(spans: readonly Span[], headers: readonly string[]) {
    this.#spans = spans;
    this.headers = headers;
  }

  /**
   * Ends the spans once the send settled: with the error when it failed; the tasks not stored
   * because another stands for them (by position) are marked deduplicated.
   */
  end(error?: unknown, deduplicated: Iterable<number> = []): void {
    for (const i of deduplicated) this.#spans[i]?.setAttribute("streaq.task.deduplicated", true);
    for (const span of this.#spans) {
      if (error !== undefined) {
        span.recordException(error);
        span.setStatus({ code: STATUS_ERROR, message: messageOf(error) });
      }
      span.end();
    }
  }
}

/**
 * Starts the enqueue spans of the tasks of one send, sources before the tasks that follow them,
 * or returns undefined when OpenTelemetry is off (then `describe` is never called).
 *
 * @param queueName The queue the tasks go to.
 * @param tasks The tasks, in sending order.
 * @param describe What each task's span is made of.
 */
export function startEnqueueSpans<T>(
  queueName: string,
  tasks: readonly T[],
  describe: (task: T) => TracedSend,
): EnqueueSpans | undefined {
  const otel = openTelemetry();
  if (!otel) return undefined;
  const byId = new Map<string, Span>();
  const spans: Span[] = [];
  const headers: string[] = [];
  for (const task of tasks) {
    const send = describe(task);
    const parent = parentOf(otel, send, byId);
    const links = send.after.flatMap((id) => {
      const span = id === send.source ? undefined : byId.get(id);
      return span ? [{ context: span.spanContext() }] : [];
    });
    const span = otel.startSpan(`streaq enqueue ${send.fnName}`, {
      kind: SPAN_KIND.producer,
      attributes: {
        "messaging.system": "streaq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": queueName,
        "messaging.message.id": send.id,
        "streaq.task.function": send.fnName,
        "streaq.task.priority": send.priority,
      },
      ...(links.length > 0 ? { links } : {}),
    }, parent);
    byId.set(send.id, span);
    spans.push(span);
    headers.push(otel.inject(otel.withSpan(parent, span)));
  }
  return new EnqueueSpans(spans, headers);
}

/** A stage's parent is its source's enqueue span, else the context it was created in. */
function parentOf(otel: OpenTelemetry, send: TracedSend, byId: Map<string, Span>): OtelContext {
  const created = send.parent ?? otel.active();
  const source = send.source === undefined ? undefined : byId.get(send.source);
  return source ? otel.withSpan(created, source) : created;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
