/**
 * The events stream (`events` worker option, `worker.events()`): every event type written by a
 * real worker run, a reader that loses its connection and resumes, the gap marker, closing, and
 * bad input; then on a Cluster and across a Sentinel failover.
 */

import assert from "node:assert/strict";
import {
  type StreaqEvent,
  type StreaqEventType,
  StreaqRetry,
  taskContext,
  Worker,
} from "../mod.ts";
import {
  connectionsNamed,
  denoExecutable,
  eventually,
  runInBackground,
  sibling,
  testWorker,
  workerProcessArgs,
} from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";
import { startSentinelSetup, startTopology } from "./_topologies.ts";
import { createDashboard, serveDashboard } from "../src/ui/mod.ts";
import { runCli } from "./_cli.ts";
import { uniqueQueue } from "./_redis.ts";

/** A reader running in the background, collecting what it yields. */
function collect(
  worker: Worker<unknown>,
  options: Parameters<Worker<unknown>["events"]>[0] = {},
): { events: StreaqEvent[]; stop: () => Promise<void> } {
  const events: StreaqEvent[] = [];
  const controller = new AbortController();
  const done = (async () => {
    for await (const e of worker.events({ ...options, signal: controller.signal })) events.push(e);
  })();
  return {
    events,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/** The types of the events about one task, in order. */
function typesOf(events: StreaqEvent[], taskId: string): StreaqEventType[] {
  return events.filter((e) => "taskId" in e && e.taskId === taskId).map((e) => e.type);
}

Deno.test("a worker with events emits each event of a task's life once, in order", async () => {
  await using worker = await testWorker({ events: true });
  const reader = collect(worker, { since: "start" });
  const ok = worker.task(async function ok(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const flaky = worker.task(async function flaky(): Promise<string> {
    if (taskContext().tries === 1) throw new StreaqRetry({ delay: 10 });
    return await Promise.resolve("second time");
  });
  const bad = worker.task(async function bad(): Promise<void> {
    await Promise.resolve();
    throw new Error("boom");
  });
  const reporting = worker.task(async function reporting(): Promise<void> {
    await taskContext().progress(50);
  });
  const stuck = worker.task(async function stuck(): Promise<void> {
    const { signal } = taskContext();
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  });
  const running = runInBackground(worker);
  try {
    const [a, b, c, d, e] = await worker.enqueueMany([
      ok.enqueue(1),
      flaky.enqueue(),
      bad.enqueue(),
      reporting.enqueue(),
      stuck.enqueue(),
    ]);
    const later = await ok.enqueue(2).start({ delay: 60_000 });
    const first = await ok.enqueue(3).start({ dedupe: { key: "once" }, delay: 60_000 });
    const second = await ok.enqueue(4).start({ dedupe: { key: "once" }, delay: 60_000 });
    assert.equal(second.id, first.id);
    await eventually(() => typesOf(reader.events, e.id).includes("started"), { what: "stuck" });
    assert.equal(await e.abort(), true);
    assert.equal(await later.abort({ timeout: 0 }), true);
    await Promise.all([a, b, c, d].map((h) => h.result({ timeout: 10_000 })));
    const expected: Record<string, StreaqEventType[]> = {
      [a.id]: ["enqueued", "started", "completed"],
      [b.id]: ["enqueued", "started", "retried", "started", "completed"],
      [c.id]: ["enqueued", "started", "failed"],
      [d.id]: ["enqueued", "started", "progress", "completed"],
      [e.id]: ["enqueued", "started", "aborted"],
      [later.id]: ["enqueued", "aborted"],
      [first.id]: ["enqueued"],
    };
    await eventually(
      () =>
        Object.entries(expected).every(([id, t]) => typesOf(reader.events, id).length >= t.length),
      { what: "every event" },
    );
    for (const [id, types] of Object.entries(expected)) {
      assert.deepEqual(typesOf(reader.events, id), types, id);
    }
    const find = <T extends StreaqEventType>(id: string, type: T) =>
      reader.events.find((x) => "taskId" in x && x.taskId === id && x.type === type) as
        & StreaqEvent
        & { type: T };
    const completed = find(a.id, "completed");
    assert.equal(completed.fnName, "ok");
    assert.equal(completed.tries, 1);
    assert.equal(completed.workerId, worker.id);
    const retried = find(b.id, "retried");
    assert.equal(retried.tries, 1);
    assert.match(retried.error, /StreaqRetry/);
    assert.ok(retried.due.getTime() >= retried.time.getTime());
    assert.equal(find(c.id, "failed").error, "Error: boom");
    assert.equal(find(d.id, "progress").progress, 50);
    assert.match(find(e.id, "aborted").error, /StreaqCancelled/);
    assert.equal(find(e.id, "aborted").workerId, worker.id);
    assert.ok(find(later.id, "enqueued").due instanceof Date);
    assert.equal(find(later.id, "aborted").workerId, undefined);
    const deduplicated = reader.events.find((x) => x.type === "deduplicated");
    assert.ok(deduplicated && deduplicated.type === "deduplicated");
    assert.equal(deduplicated.standIn, first.id);
    // Ids only grow, and each event's time is its id's.
    const ids = reader.events.map((x) => x.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const x of reader.events) assert.equal(x.time.getTime(), Number(x.id.split("-")[0]));
  } finally {
    await running.stop();
    await reader.stop();
  }
});

Deno.test("every task drained by a busy worker with prefetch has enqueued, started and completed, once each", async () => {
  await using worker = await testWorker({ events: true, concurrency: 4, prefetch: 8 });
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const handles = await worker.enqueueMany(Array.from({ length: 300 }, (_, i) => noop.enqueue(i)));
  const reader = collect(worker, { since: "start" });
  const running = runInBackground(worker);
  try {
    await Promise.all(handles.map((h) => h.result({ timeout: 20_000 })));
    const last = handles[handles.length - 1].id;
    await eventually(() => typesOf(reader.events, last).includes("completed"));
    await eventually(() => reader.events.filter((e) => e.type === "completed").length === 300);
    for (const h of handles) {
      assert.deepEqual(typesOf(reader.events, h.id), ["enqueued", "started", "completed"], h.id);
    }
    for (const e of reader.events) {
      if (e.type === "started" || e.type === "completed") assert.equal(e.tries, 1, e.taskId);
    }
  } finally {
    await running.stop();
    await reader.stop();
  }
});

Deno.test("a task taken over from a worker killed with SIGKILL emits reclaimed, naming the dead worker", async () => {
  await using worker = await testWorker({ events: true, idleTimeout: 1000 });
  const reader = collect(worker, { since: "start", types: ["reclaimed", "started", "completed"] });
  const work = worker.task(async function work(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const handle = await work.enqueue(7);
  const redis = await sharedRedis();
  const child = new Deno.Command(denoExecutable(), {
    args: workerProcessArgs(
      new URL("./fixtures/crashable_worker.ts", import.meta.url).pathname,
      redis.url,
      worker.queueName,
      JSON.stringify({ id: "doomed" }),
    ),
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const output = new Response(child.stdout).text();
  // The doomed worker has no events option: the task's hash names it as the runner.
  await eventually(async () => (await worker.infoById(handle.id))?.status === "running", {
    what: "the doomed worker to start the task",
    timeout: 15_000,
  });
  child.kill("SIGKILL");
  await child.status;
  await output;
  const running = runInBackground(worker);
  try {
    assert.equal((await handle.result({ timeout: 15_000 })).success, true);
    await eventually(() => typesOf(reader.events, handle.id).includes("completed"));
    assert.deepEqual(typesOf(reader.events, handle.id), ["reclaimed", "started", "completed"]);
    const reclaimed = reader.events[0];
    assert.ok(reclaimed.type === "reclaimed");
    assert.equal(reclaimed.previousWorkerId, "doomed");
    assert.equal(reclaimed.workerId, worker.id);
    assert.equal(reclaimed.tries, 2);
  } finally {
    await running.stop();
    await reader.stop();
  }
});

Deno.test("without the events option nothing is written to the events stream", async () => {
  await using worker = await testWorker();
  const work = worker.task(async function work(): Promise<void> {
    await taskContext().progress(1);
  });
  const running = runInBackground(worker);
  try {
    await (await work.enqueue()).result({ timeout: 10_000 });
  } finally {
    await running.stop();
  }
  const redis = await sharedRedis();
  assert.equal((await redis.cli("EXISTS", `streaq:{${worker.queueName}}:events`)).trim(), "0");
});

Deno.test("a reader whose connection is killed again and again resumes and sees every event exactly once", async () => {
  await using producer = await testWorker({ events: true });
  const connectionName = `events-reader-${crypto.randomUUID()}`;
  await using readerWorker = await sibling(producer, { redisOptions: { connectionName } });
  const noop = producer.task(async function noop(_n: number): Promise<void> {
    await Promise.resolve();
  });
  const reader = collect(readerWorker, { since: "start" });
  const redis = await sharedRedis();
  const sent: string[] = [];
  let kills = 0;
  try {
    for (let round = 0; round < 10; round++) {
      const handles = await producer.enqueueMany(
        Array.from({ length: 30 }, (_, i) => noop.enqueue(round * 30 + i)),
      );
      sent.push(...handles.map((h) => h.id));
      // Kill the reader's connection wherever it is: reading a batch, or blocked waiting.
      await eventually(async () => (await connectionsNamed(connectionName)).length > 0, {
        what: "the reader to reconnect",
      });
      for (const c of await connectionsNamed(connectionName)) {
        await redis.cli("CLIENT", "KILL", "ID", c.id);
        kills++;
      }
    }
    // One more, sent last: once it is seen, every event before it has been delivered.
    const last = await noop.enqueue(-1);
    await eventually(() => reader.events.some((e) => "taskId" in e && e.taskId === last.id), {
      what: "the last event",
      timeout: 20_000,
    });
    assert.ok(kills >= 10, `the reader's connection was killed ${kills} times`);
    const seen = reader.events.map((e) => "taskId" in e ? e.taskId : e.type);
    assert.deepEqual(seen, [...sent, last.id], "every event once, in order");
  } finally {
    await reader.stop();
  }
});

Deno.test("a reader resuming after events it had not read were trimmed gets a gap first", async () => {
  await using worker = await testWorker({ events: { maxLen: 10 } });
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const first = await noop.enqueue(0);
  let resumeFrom = "";
  for await (const e of worker.events({ since: "start" })) {
    assert.ok(e.type === "enqueued");
    assert.equal(e.taskId, first.id);
    resumeFrom = e.id;
    break;
  }
  const later = await worker.enqueueMany(Array.from({ length: 500 }, (_, i) => noop.enqueue(i)));
  const after: StreaqEvent[] = [];
  for await (const e of worker.events({ since: resumeFrom })) {
    after.push(e);
    if (after.length === 3) break;
  }
  const [gap, next] = after;
  assert.ok(gap.type === "gap", `got ${gap.type}`);
  assert.equal(gap.missedAfter, resumeFrom);
  // The stream keeps the newest events (about maxLen: MAXLEN ~ trims whole nodes).
  assert.ok(next.type === "enqueued");
  assert.ok(later.slice(-200).some((h) => h.id === next.taskId));
  assert.ok(gap.id < next.id || gap.time <= next.time);
  // From the start, the trimmed events are no gap: it asked for whatever is kept.
  for await (const e of worker.events({ since: "start" })) {
    assert.equal(e.type, "enqueued");
    break;
  }
});

Deno.test("since now reads only what happens after the loop starts, and since a Date what happened from then", async () => {
  const connectionName = `events-now-${crypto.randomUUID()}`;
  await using worker = await testWorker({ events: true, redisOptions: { connectionName } });
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const old = await noop.enqueue(1);
  const reader = collect(worker, { since: "now" });
  try {
    await eventually(async () =>
      (await connectionsNamed(connectionName)).some((c) => c.cmd === "xread")
    );
    const fresh = await noop.enqueue(2);
    await eventually(() => reader.events.length > 0);
    assert.deepEqual(reader.events.map((e) => "taskId" in e && e.taskId), [fresh.id]);
    const from = reader.events[0].time;
    const sinceDate: string[] = [];
    for await (const e of worker.events({ since: from })) {
      sinceDate.push("taskId" in e ? e.taskId : e.type);
      break;
    }
    // The old event may share fresh's millisecond only if both were enqueued in it.
    assert.ok(sinceDate[0] === fresh.id || (sinceDate[0] === old.id), sinceDate[0]);
    const sinceStart: string[] = [];
    for await (const e of worker.events({ since: "start" })) {
      sinceStart.push("taskId" in e ? e.taskId : e.type);
      break;
    }
    assert.deepEqual(sinceStart, [old.id]);
  } finally {
    await reader.stop();
  }
});

Deno.test("break and an aborted signal end a reader and close its connection", async () => {
  const connectionName = `events-close-${crypto.randomUUID()}`;
  await using worker = await testWorker({ events: true, redisOptions: { connectionName } });
  const controller = new AbortController();
  const reading = (async () => {
    const got: StreaqEvent[] = [];
    for await (const e of worker.events({ signal: controller.signal })) got.push(e);
    return got;
  })();
  // Blocked in its XREAD: nothing is happening on the queue.
  await eventually(async () =>
    (await connectionsNamed(connectionName)).some((c) => c.cmd === "xread")
  );
  controller.abort();
  assert.deepEqual(await reading, []);
  await eventually(async () => (await connectionsNamed(connectionName)).length === 0, {
    what: "the reader's connection to close",
  });
  // An aborted signal ends it before it connects.
  const aborted = worker.events({ signal: AbortSignal.abort() });
  assert.equal((await aborted.next()).done, true);
});

Deno.test("bad events options get clear errors naming what was received", async () => {
  assert.throws(
    () => new Worker({ events: { maxLen: 0 } }),
    (e: Error) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot create worker as 'events.maxLen' must be an integer ≥ 1: received 0 (number)",
  );
  assert.throws(
    () => new Worker({ events: "yes" as never }),
    /Cannot create worker as 'events' must be true, false or \{ maxLen \}: received "yes" \(string\)/,
  );
  assert.throws(
    () => new Worker({ events: { maxlen: 5 } as never }),
    /maxlen/,
  );
  await using worker = await testWorker({ events: true });
  assert.throws(
    () => worker.events({ since: "yesterday" }),
    /Cannot read events as 'since' must be "now", "start", an event id such as "1700000000000-0", or a valid Date: received "yesterday" \(string\)/,
  );
  assert.throws(() => worker.events({ since: new Date(NaN) }), /received Date Invalid Date/);
  assert.throws(
    () => worker.events({ types: ["finished" as StreaqEventType] }),
    /'types' must be an array of event types .*received "finished" \(string\)/,
  );
  // A key of another type where the stream should be: the reader says so instead of retrying.
  const redis = await sharedRedis();
  await redis.cli("SET", `streaq:{${worker.queueName}}:events`, "not a stream");
  await assert.rejects(worker.events({ since: "start" }).next(), /WRONGTYPE/);
});

Deno.test("events are written and read on a Redis Cluster", async () => {
  await using topology = await startTopology("Cluster");
  await using worker = new Worker({
    ...topology.connection,
    queueName: uniqueQueue("events-cluster"),
    logLevel: "error",
    handleSignals: false,
    events: true,
  });
  const double = worker.task(async function double(n: number): Promise<number> {
    await taskContext().progress(n);
    return await Promise.resolve(n * 2);
  });
  const reader = collect(worker, { since: "start" });
  const running = runInBackground(worker);
  try {
    const handle = await double.enqueue(21);
    assert.equal((await handle.result({ timeout: 10_000 })).success, true);
    await eventually(() => typesOf(reader.events, handle.id).includes("completed"));
    assert.deepEqual(typesOf(reader.events, handle.id), [
      "enqueued",
      "started",
      "progress",
      "completed",
    ]);
  } finally {
    await running.stop();
    await reader.stop();
  }
});

Deno.test("a reader follows a Sentinel failover without missing or repeating an event", async () => {
  await using setup = await startSentinelSetup();
  const nodes = setup.sentinels.map(({ host, port }) => ({ host, port }));
  const options = {
    sentinel: { masterName: setup.masterName, nodes },
    queueName: uniqueQueue("events-sentinel"),
    logLevel: "error",
    handleSignals: false,
  } as const;
  await using producer = new Worker({ ...options, events: true });
  await using readerWorker = new Worker(options);
  const noop = producer.task(async function noop(_n: number): Promise<void> {});
  const reader = collect(readerWorker, { since: "start" });
  const sent: string[] = [];
  try {
    for (let i = 0; i < 20; i++) sent.push((await noop.enqueue(i)).id);
    await eventually(() => reader.events.length >= 20);
    // It waits for the replica to catch up, then kills the master: the events are replicated.
    await setup.failover();
    for (let i = 20; i < 40; i++) sent.push((await noop.enqueue(i)).id);
    await eventually(() => reader.events.length >= 40, { timeout: 30_000, what: "40 events" });
    // One more, sent last: nothing is repeated before it.
    const last = await noop.enqueue(-1);
    sent.push(last.id);
    await eventually(() => reader.events.some((e) => "taskId" in e && e.taskId === last.id));
    const seen = reader.events.map((e) => "taskId" in e ? e.taskId : e.type);
    assert.deepEqual(seen, sent);
  } finally {
    await reader.stop();
  }
});

Deno.test("the dashboard's events endpoint needs the pages' auth, streams events as SSE and resumes after Last-Event-ID", async () => {
  await using worker = await testWorker({ events: true });
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const handler = createDashboard(worker, { auth: { token: "s3cret-token" } });
  const url = "http://dashboard.test/events";
  const denied = await handler(new Request(url));
  assert.equal(denied.status, 401);
  await denied.body?.cancel();
  const authorization = "Bearer s3cret-token";
  // No events yet: no stream, so the page polls.
  const none = await handler(new Request(url, { headers: { authorization } }));
  assert.equal(none.status, 204);
  const first = await noop.enqueue(1);
  const response = await handler(new Request(url, { headers: { authorization } }));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const messages = sseMessages(response.body!);
  const second = await noop.enqueue(2);
  const message = await messages.next();
  assert.equal(message.done, false);
  const { id, data } = message.value!;
  assert.deepEqual(JSON.parse(data), { type: "enqueued", taskId: second.id, fnName: "noop" });
  await messages.return(undefined);
  // A browser that reconnects sends the last id it saw: the stream goes on after it.
  const third = await noop.enqueue(3);
  const resumed = await handler(
    new Request(url, { headers: { authorization, "last-event-id": id } }),
  );
  const again = sseMessages(resumed.body!);
  assert.equal(JSON.parse((await again.next()).value!.data).taskId, third.id);
  await again.return(undefined);
  assert.notEqual(first.id, third.id);
});

/** The messages of a Server-Sent Events body, as `{ id, data }`; `return()` cancels the body. */
async function* sseMessages(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id: string; data: string }, void, undefined> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block.split("\n").filter((l) => !l.startsWith(":") && l.includes(": "))
            .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
        );
        if (fields.data !== undefined) yield { id: fields.id ?? "", data: fields.data };
      }
    }
  } finally {
    await reader.cancel();
  }
}

Deno.test("streaq events --once prints the events kept, one a line, and exits", async () => {
  await using worker = await testWorker({ events: true });
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const bad = worker.task(async function bad(): Promise<void> {
    await Promise.resolve();
    throw new Error("disk full");
  });
  const running = runInBackground(worker);
  let ok, failed;
  try {
    ok = await noop.enqueue(1);
    failed = await bad.enqueue();
    await ok.result({ timeout: 10_000 });
    await failed.result({ timeout: 10_000 });
  } finally {
    await running.stop();
  }
  const { code, stdout, stderr } = await runCli(worker.queueName, "events", "--once");
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 6, stdout);
  assert.match(lines[0], new RegExp(`^\\S+Z  enqueued\\s+noop \\(${ok.id}\\)$`));
  assert.ok(
    lines.some((l) =>
      new RegExp(`failed\\s+bad \\(${failed.id}\\)  try 1  worker ${worker.id}  Error: disk full$`)
        .test(l)
    ),
    stdout,
  );
  // Nothing after the newest: --once with --since now prints nothing.
  const none = await runCli(worker.queueName, "events", "--once", "--since", "now");
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, "");
  const bad2 = await runCli(worker.queueName, "events", "--since", "yesterday");
  assert.equal(bad2.code, 2);
  assert.match(bad2.stderr, /Option '--since' must be/);
});

Deno.test("a served dashboard shuts down with an events stream open, closing the stream's Redis connection", async () => {
  const connectionName = `events-serve-${crypto.randomUUID()}`;
  await using worker = await testWorker({ events: true, redisOptions: { connectionName } });
  const noop = worker.task(async function noop(): Promise<void> {});
  await noop.enqueue();
  const controller = new AbortController();
  const server = serveDashboard(worker, { port: 0, signal: controller.signal, onListen: () => {} });
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/events`);
  assert.equal(response.status, 200);
  await eventually(async () =>
    (await connectionsNamed(connectionName)).some((c) => c.cmd === "xread")
  );
  controller.abort();
  await server.finished;
  // The stream ends with the server (which cuts the connection).
  await assert.rejects(response.text());
  await eventually(
    async () => !(await connectionsNamed(connectionName)).some((c) => c.cmd === "xread"),
    { what: "the events stream's connection to close" },
  );
});
