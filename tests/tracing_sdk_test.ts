/**
 * Traces with an OpenTelemetry SDK registered through `npm:@opentelemetry/api`, the other way
 * than Deno's built-in support (`tracing_test.ts`) to turn tracing on: the official SDK's tracer
 * provider, its `AsyncLocalStorage` context manager and the W3C propagator, with spans kept in
 * its in-memory exporter. The enqueue and the run happen in this process, on a standalone Redis
 * and on a Cluster. The SDK is a test tool only, so this file runs under `tests/tools.json`
 * (`deno task test:tools`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { TASK_FIELD } from "../src/redis/keys.ts";
import { queueContextOf } from "../src/worker.ts";
import { runInBackground } from "./_helpers.ts";
import { startTopology, type TopologyKind, topologyWorker } from "./_topologies.ts";

/** Registers the SDK globally, as an application would, until disposed. */
function registerSdk(): InMemorySpanExporter & Disposable {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return Object.assign(exporter, {
    [Symbol.dispose]: () => {
      trace.disable();
      context.disable();
      propagation.disable();
    },
  });
}

function only(spans: ReadableSpan[], name: string, taskId: string): ReadableSpan {
  const found = spans.filter((s) =>
    s.name === name && s.attributes["messaging.message.id"] === taskId
  );
  assert.equal(found.length, 1, `one span ${name} of task ${taskId}`);
  return found[0];
}

for (const kind of ["standalone", "Cluster"] as TopologyKind[]) {
  Deno.test(`with an SDK registered through @opentelemetry/api, runs are children of their enqueues and parents of the task's own spans (${kind})`, async () => {
    using exporter = registerSdk();
    await using topology = await startTopology(kind);
    await using worker = topologyWorker(topology, "sdk-traces");
    const tracer = trace.getTracer("tracing_sdk_test");
    const square = worker.task(async function square(n: number): Promise<number> {
      await Promise.resolve();
      tracer.startSpan("inside square").end(); // under the active span: the run's
      return n * n;
    });
    const refuse = worker.task(async function refuse(): Promise<never> {
      await Promise.resolve();
      throw new TypeError("refused");
    }, { maxTries: 1 });

    const [ok, failing, delayed] = await tracer.startActiveSpan("request", async (span) => {
      try {
        return [
          await square.enqueue(3),
          await refuse.enqueue(),
          await square.enqueue(4).start({ delay: 3_600_000 }),
        ];
      } finally {
        span.end();
      }
    });
    const running = runInBackground(worker);
    try {
      assert.equal((await ok.result({ timeout: 10_000 })).success, true);
      assert.equal((await failing.result({ timeout: 10_000 })).success, false);
    } finally {
      await running.stop();
    }

    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === "request")!;
    const enqueued = only(spans, "streaq enqueue square", ok.id);
    const ran = only(spans, "streaq run square", ok.id);
    const inside = spans.find((s) => s.name === "inside square")!;
    assert.equal(enqueued.kind, SpanKind.PRODUCER);
    assert.equal(enqueued.parentSpanContext?.spanId, request.spanContext().spanId);
    assert.equal(ran.kind, SpanKind.CONSUMER);
    assert.equal(ran.spanContext().traceId, request.spanContext().traceId);
    assert.equal(ran.parentSpanContext?.spanId, enqueued.spanContext().spanId);
    assert.equal(ran.parentSpanContext?.isRemote, true);
    assert.equal(inside.parentSpanContext?.spanId, ran.spanContext().spanId);
    assert.equal(ran.attributes["messaging.destination.name"], worker.queueName);
    assert.equal(ran.attributes["streaq.task.outcome"], "completed");

    const failed = only(spans, "streaq run refuse", failing.id);
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.status.message, "refused");
    assert.equal(failed.attributes["error.type"], "TypeError");
    assert.equal(failed.attributes["streaq.task.outcome"], "failed");
    assert.equal(
      failed.events.find((e) => e.name === "exception")?.attributes?.["exception.type"],
      "TypeError",
    );

    // The task's hash holds the W3C trace context of its enqueue span.
    const stored = await queueContextOf(worker).redis.hget(
      queueContextOf(worker).keys.task(delayed.id),
      TASK_FIELD.trace,
    );
    const later = only(spans, "streaq enqueue square", delayed.id).spanContext();
    assert.deepEqual(JSON.parse(stored!), {
      traceparent: `00-${later.traceId}-${later.spanId}-01`,
    });
  });
}
