/**
 * Traces: a client and a worker run as real subprocesses with Deno's OpenTelemetry on
 * (`OTEL_DENO=true`), exporting OTLP/HTTP (JSON) to a receiver this test serves on loopback. The
 * test reads the spans they export and checks the trace from the HTTP request that enqueued
 * tasks to the worker that ran them; and that with OpenTelemetry off nothing is stored.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TASK_FIELD } from "../src/redis/keys.ts";
import { queueContextOf } from "../src/worker.ts";
import { denoExecutable, eventually, testWorker, workerProcessArgs } from "./_helpers.ts";
import { sharedRedis, uniqueQueue } from "./_redis.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** OTLP span kinds and status codes, as the JSON encoding of OTLP numbers them. */
const KIND = { server: 2, client: 3, producer: 4, consumer: 5 } as const;
const STATUS_ERROR = 2;

/** An OTLP attribute value in JSON: one of these fields is set. */
interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}

/** A span as OTLP/JSON carries it (the fields read here). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: { key: string; value: AnyValue }[];
  events?: { name: string; attributes: { key: string; value: AnyValue }[] }[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number; message?: string };
  service: string;
}

/** The value of a span's attribute, as a string, number or boolean. */
function attr(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (!value) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.doubleValue ?? value.boolValue;
}

/** An OTLP/HTTP receiver on a free loopback port that keeps the spans it is sent. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      return this.#receive(req);
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async #receive(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const body = await req.text();
    if (path === "/v1/traces") {
      assert.equal(req.headers.get("content-type"), "application/json");
      // deno-lint-ignore no-explicit-any
      const exported = JSON.parse(body) as { resourceSpans: any[] };
      for (const resource of exported.resourceSpans) {
        const service = resource.resource.attributes
          .find((a: { key: string }) => a.key === "service.name")?.value.stringValue;
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) this.spans.push({ ...span, service });
        }
      }
    }
    // Logs and metrics are accepted and dropped; `/ping` is what a traced task fetches.
    return path === "/ping" ? new Response("pong") : Response.json({});
  }

  /** The spans of a task (by `messaging.message.id`) named `name`, in the order received. */
  spansOf(taskId: string, name: string): OtlpSpan[] {
    return this.spans.filter((s) => attr(s, "messaging.message.id") === taskId && s.name === name);
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

/** A Deno subprocess with OpenTelemetry on, exporting to `receiver`; its stdout read by line. */
class TracedProcess {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdout: Promise<void>;
  readonly #stderr: Promise<string>;

  constructor(script: string, service: string, env: Record<string, string>) {
    this.#child = new Deno.Command(denoExecutable(), {
      args: workerProcessArgs(script),
      cwd: ROOT,
      env: {
        ...env,
        OTEL_DENO: "true",
        OTEL_SERVICE_NAME: service,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        // Spans are exported in batches; a short delay lets the test see them soon.
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const { stdout, stderr } = this.#child;
    this.#stdout = (async () => {
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        this.lines.push(...chunk.split("\n").filter((line) => line !== ""));
      }
    })();
    this.#stderr = new Response(stderr).text();
  }

  /** Stops it with SIGTERM (a graceful shutdown) and returns its stderr. */
  async stop(): Promise<string> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // It exited already.
    }
    await this.#child.status;
    await this.#stdout;
    return await this.#stderr;
  }
}

Deno.test("a task's run span is a child of its enqueue span, from the HTTP request that enqueued it to the worker, with its attributes, errors and retries", async () => {
  const redis = await sharedRedis();
  const receiver = new OtlpReceiver();
  const queueName = uniqueQueue("traces");
  const env = {
    STREAQ_TEST_REDIS_URL: redis.url,
    STREAQ_TEST_QUEUE: queueName,
    STREAQ_TEST_PING: `${receiver.url}/ping`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  };
  const worker = new TracedProcess(fixture("traced_worker.ts"), "traced-worker", env);
  const client = new TracedProcess(fixture("traced_client.ts"), "traced-client", env);
  let ids: Record<
    | "ok"
    | "failing"
    | "retried"
    | "first"
    | "second"
    | "later"
    | "a"
    | "b"
    | "joined"
    | "keyed"
    | "keyedAgain"
    | "repeating",
    string
  >;
  try {
    await eventually(() => client.lines.some((l) => l.startsWith("listening ")), {
      what: "the client's HTTP server",
    });
    const port = client.lines.find((l) => l.startsWith("listening "))!.split(" ")[1];
    ids = await (await fetch(`http://127.0.0.1:${port}/enqueue`, { method: "POST" })).json();

    const run = (id: string, fn: string) => receiver.spansOf(id, `streaq run ${fn}`);
    const enqueue = (id: string, fn: string) => receiver.spansOf(id, `streaq enqueue ${fn}`);
    await eventually(
      () =>
        [ids.ok, ids.first, ids.second, ids.joined].every((id) => run(id, "double").length >= 1) &&
        run(ids.repeating, "double").length >= 1 &&
        run(ids.failing, "explode").length === 1 && run(ids.retried, "flaky").length === 2 &&
        enqueue(ids.later, "double").length === 1,
      { timeout: 20_000, what: "the spans of every task" },
    );
  } finally {
    const errors = [await client.stop(), await worker.stop()].join("");
    await receiver.close();
    assert.doesNotMatch(errors, /error/i, errors);
  }

  // The request's span (Deno's, in the client) → the enqueue span → the run span → the fetch
  // the task made (Deno's, in the worker): one trace across both processes.
  const [enqueued] = receiver.spansOf(ids.ok, "streaq enqueue double");
  const [ran] = receiver.spansOf(ids.ok, "streaq run double");
  const request = receiver.spans.find((s) => s.spanId === enqueued.parentSpanId);
  assert.ok(request, "the enqueue span's parent, the HTTP request's span, was exported");
  assert.equal(request.kind, KIND.server);
  assert.equal(request.traceId, enqueued.traceId);
  assert.equal(enqueued.kind, KIND.producer);
  assert.equal(enqueued.service, "traced-client");
  assert.equal(ran.kind, KIND.consumer);
  assert.equal(ran.service, "traced-worker");
  assert.equal(ran.traceId, enqueued.traceId);
  assert.equal(ran.parentSpanId, enqueued.spanId);
  const fetched = receiver.spans.find((s) => s.parentSpanId === ran.spanId);
  assert.equal(fetched?.kind, KIND.client, "the task's fetch is a child of its run span");

  assert.equal(attr(enqueued, "messaging.system"), "streaq");
  assert.equal(attr(enqueued, "messaging.operation.type"), "send");
  assert.equal(attr(enqueued, "messaging.destination.name"), queueName);
  assert.equal(attr(enqueued, "streaq.task.function"), "double");
  assert.equal(attr(ran, "messaging.system"), "streaq");
  assert.equal(attr(ran, "messaging.operation.type"), "process");
  assert.equal(attr(ran, "messaging.destination.name"), queueName);
  assert.equal(attr(ran, "messaging.message.id"), ids.ok);
  assert.equal(attr(ran, "messaging.client.id"), "traced-worker");
  assert.equal(attr(ran, "streaq.task.function"), "double");
  assert.equal(attr(ran, "streaq.task.try"), 1);
  assert.equal(attr(ran, "streaq.task.outcome"), "completed");
  assert.notEqual(ran.status?.code, STATUS_ERROR);

  // A failure: the error status, the exception recorded.
  const [failed] = receiver.spansOf(ids.failing, "streaq run explode");
  assert.equal(
    failed.parentSpanId,
    receiver.spansOf(ids.failing, "streaq enqueue explode")[0].spanId,
  );
  assert.equal(attr(failed, "streaq.task.outcome"), "failed");
  assert.equal(failed.status?.code, STATUS_ERROR);
  assert.equal(failed.status?.message, "boom");
  const exception = failed.events?.find((e) => e.name === "exception");
  assert.equal(
    exception?.attributes.find((a) => a.key === "exception.message")?.value.stringValue,
    "boom",
  );

  // A retry: each try its own span, both children of the one enqueue span.
  const [retryEnqueued] = receiver.spansOf(ids.retried, "streaq enqueue flaky");
  const tries = receiver.spansOf(ids.retried, "streaq run flaky")
    .sort((a, b) => Number(attr(a, "streaq.task.try")) - Number(attr(b, "streaq.task.try")));
  assert.deepEqual(tries.map((s) => attr(s, "streaq.task.try")), [1, 2]);
  assert.deepEqual(tries.map((s) => attr(s, "streaq.task.outcome")), ["retried", "completed"]);
  for (const span of tries) {
    assert.equal(span.traceId, retryEnqueued.traceId);
    assert.equal(span.parentSpanId, retryEnqueued.spanId);
  }
  assert.equal(tries[0].status?.code, STATUS_ERROR);

  // A pipeline: the second stage's enqueue span is a child of the first stage's.
  const [firstEnqueued] = receiver.spansOf(ids.first, "streaq enqueue double");
  const [secondEnqueued] = receiver.spansOf(ids.second, "streaq enqueue double");
  assert.equal(secondEnqueued.parentSpanId, firstEnqueued.spanId);
  assert.equal(secondEnqueued.traceId, firstEnqueued.traceId);
  assert.equal(
    receiver.spansOf(ids.second, "streaq run double")[0].parentSpanId,
    secondEnqueued.spanId,
  );

  // A task waiting for tasks sent with it links to their enqueue spans.
  const [joined] = receiver.spansOf(ids.joined, "streaq enqueue double");
  assert.deepEqual(
    new Set(joined.links?.map((l) => l.spanId)),
    new Set([ids.a, ids.b].map((id) => receiver.spansOf(id, "streaq enqueue double")[0].spanId)),
  );

  // A repeating task: each occurrence starts a trace, linked to the span that enqueued it.
  const [repeatingEnqueued] = receiver.spansOf(ids.repeating, "streaq enqueue double");
  const [occurrence] = receiver.spansOf(ids.repeating, "streaq run double");
  assert.equal(occurrence.parentSpanId, "");
  assert.notEqual(occurrence.traceId, repeatingEnqueued.traceId);
  assert.deepEqual(
    occurrence.links?.map((l) => [l.traceId, l.spanId]),
    [[repeatingEnqueued.traceId, repeatingEnqueued.spanId]],
  );

  // What travels with the task: the enqueue span's W3C trace context, in the task's hash.
  const assertTraceStored = async (id: string) => {
    const stored = await redis.cli("HGET", `streaq:{${queueName}}:task:${id}`, TASK_FIELD.trace);
    const [enqueued] = receiver.spansOf(id, "streaq enqueue double");
    assert.equal(JSON.parse(stored).traceparent, `00-${enqueued.traceId}-${enqueued.spanId}-01`);
  };
  await assertTraceStored(ids.later);
  // A task sent with a deduplication key keeps its trace context too; its twin is stood for.
  assert.equal(ids.keyedAgain, ids.keyed, "the second task with the key is deduplicated");
  await assertTraceStored(ids.keyed);
});

Deno.test("exporting spans with Deno's OpenTelemetry needs no permission beyond those of enqueueing", async () => {
  const redis = await sharedRedis();
  const receiver = new OtlpReceiver();
  const queueName = uniqueQueue("traces");
  try {
    const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
      args: [
        "run",
        "--no-prompt",
        "--cached-only",
        `--config=${ROOT}deno.json`,
        // Redis only: the receiver listens on another port, which the process may not reach.
        `--allow-net=127.0.0.1:${new URL(redis.url).port}`,
        "--allow-env",
        fixture("traced_enqueue.ts"),
        redis.url,
        queueName,
      ],
      cwd: ROOT,
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      },
      stdin: "null",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const id = new TextDecoder().decode(stdout).trim();
    // Spans still in the batch are sent when the process exits.
    await eventually(() => receiver.spansOf(id, "streaq enqueue later").length === 1, {
      what: "the enqueue span",
    });
  } finally {
    await receiver.close();
  }
});

Deno.test("with OpenTelemetry off, an enqueued task stores no trace context", async () => {
  await using worker = await testWorker();
  const work = worker.task(async function work(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const delayed = await work.enqueue(1).start({ delay: 3_600_000 });
  const first = work.enqueue(2);
  const stage = await first.pipe(work);
  const redis = queueContextOf(worker).redis;
  for (const id of [delayed.id, first.id, stage.id]) {
    const fields = await redis.hkeys(`streaq:{${worker.queueName}}:task:${id}`);
    assert.ok(fields.includes(TASK_FIELD.fn), `task ${id} is stored`);
    assert.ok(!fields.includes(TASK_FIELD.trace), `task ${id} has no ${TASK_FIELD.trace} field`);
  }
});
