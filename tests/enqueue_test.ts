import assert from "node:assert/strict";
import { StreaqError, type Task, TaskStatus, Worker } from "../mod.ts";
import {
  collectingLogger,
  connectionsNamed,
  eventually,
  runInBackground,
  sibling,
  testWorker,
} from "./_helpers.ts";

Deno.test("awaiting a task sends it once, however often it is awaited", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const count = worker.task(async function count(n: number): Promise<number> {
    calls++;
    return await Promise.resolve(n);
  });
  const task = count.enqueue(7);
  assert.match(task.id, /^\S{8,}$/, "the id exists before the task is sent");

  const [first, second] = await Promise.all([task, task]);
  const third = await task;
  assert.equal(first.id, task.id);
  assert.equal(second.id, task.id);
  assert.equal(third.id, task.id);
  assert.equal(await worker.queueSize(), 1);

  await worker.run({ burst: true });
  assert.equal((await first.result({ timeout: 5_000 })).success, true);
  assert.equal(calls, 1);
  assert.equal(worker.counters.completed, 1);
});

Deno.test("enqueueMany sends a batch in input order and returns the handles in input order", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 0 });
  const order: number[] = [];
  const record = worker.task(async function record(n: number): Promise<number> {
    order.push(n);
    return await Promise.resolve(n * 10);
  });
  const inputs = Array.from({ length: 10 }, (_, i) => i);
  const tasks = inputs.map((n) => record.enqueue(n));
  const handles = await worker.enqueueMany(tasks);
  assert.deepEqual(handles.map((h) => h.id), tasks.map((t) => t.id));
  assert.equal((await tasks[3]).id, tasks[3].id, "awaiting a task of the batch does not resend it");
  assert.equal(await worker.queueSize(), inputs.length);
  const queued = await worker.getTasksByStatus(TaskStatus.QUEUED);
  assert.deepEqual(queued.map((info) => info.taskId), tasks.map((t) => t.id));

  await worker.run({ burst: true });
  assert.deepEqual(order, inputs);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  assert.deepEqual(results.map((r) => r.success && r.result), inputs.map((n) => n * 10));
});

Deno.test("enqueueMany stores a task given twice once, and a task given another's id once", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const twice = noop.enqueue(1);
  const handles = await worker.enqueueMany([twice, noop.enqueue(2), twice]);
  assert.deepEqual(handles.map((h) => h.id), [twice.id, handles[1].id, twice.id]);
  assert.deepEqual(
    handles.map((h) => h.deduplicated),
    [false, false, false],
    "stored by this batch",
  );
  assert.equal(await worker.queueSize(), 2);
  // An id given to a task that a task of the same batch was assigned: one task, as for an id
  // given twice.
  const first = noop.enqueue(3);
  const same = await worker.enqueueMany([first, noop.enqueue(4).start({ id: first.id })]);
  assert.deepEqual(same.map((h) => [h.id, h.deduplicated]), [[first.id, false], [first.id, true]]);
  assert.equal(await worker.queueSize(), 3);
});

Deno.test("enqueueMany stores a batch of 20,000 tasks", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  const tasks = Array.from({ length: 20_000 }, (_, i) => noop.enqueue(i));
  const handles = await worker.enqueueMany(tasks);
  assert.equal(handles.length, 20_000);
  assert.equal(handles[19_999].id, tasks[19_999].id);
  assert.equal(await worker.queueSize(), 20_000);
});

Deno.test("enqueueUnsafe runs a task registered on the worker by name", async () => {
  await using worker = await testWorker();
  worker.task(async function greet(name: string): Promise<string> {
    return await Promise.resolve(`hello ${name}`);
  });
  await using client = await sibling(worker);
  const handle = await client.enqueueUnsafe<string>("greet", "Ada");
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "hello Ada");
  assert.equal(result.fnName, "greet");
});

Deno.test("a task under a name nobody registered fails naming it, and the worker keeps serving", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const unknown = await worker.enqueueUnsafe("nobodyRegisteredThis", 1);
  const good = await double.enqueue(2);
  const running = runInBackground(worker);
  const failed = await unknown.result({ timeout: 5_000 });
  const succeeded = await good.result({ timeout: 5_000 });
  const later = await (await double.enqueue(3)).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(failed.success, false);
  assert.ok(failed.exception instanceof StreaqError);
  assert.match(failed.exception.message, /nobodyRegisteredThis/);
  assert.equal(succeeded.success && succeeded.result, 4);
  assert.equal(later.success && later.result, 6);
});

Deno.test("start({ delay }) schedules the task and it runs no earlier than due", async () => {
  await using worker = await testWorker();
  const stamp = worker.task(async function stamp(): Promise<number> {
    return await Promise.resolve(Date.now());
  });
  const before = Date.now();
  const handle = await stamp.enqueue().start({ delay: 300 });
  const after = Date.now();
  assert.equal(await handle.status(), TaskStatus.SCHEDULED);
  const info = await handle.info();
  assert.ok(info?.scheduled instanceof Date, "info().scheduled is a Date");
  const due = info.scheduled.getTime();
  assert.ok(due >= before + 300 && due <= after + 300, `due ${due - before} ms after enqueue`);
  assert.equal(info.status, TaskStatus.SCHEDULED);

  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, true);
  assert.ok(result.startTime >= due, `started ${due - result.startTime} ms before due`);
  assert.ok(result.success && result.result >= due);
});

Deno.test("start({ schedule }) schedules the task at that Date and it runs no earlier", async () => {
  await using worker = await testWorker();
  const stamp = worker.task(async function stamp(): Promise<number> {
    return await Promise.resolve(Date.now());
  });
  const due = new Date(Date.now() + 300);
  const handle = await stamp.enqueue().start({ schedule: due });
  assert.equal(await handle.status(), TaskStatus.SCHEDULED);
  assert.equal((await handle.info())?.scheduled?.getTime(), due.getTime());
  assert.equal(await worker.queueSize(), 0);
  assert.equal(await worker.queueSize({ includeScheduled: true }), 1);

  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.ok(result.startTime >= due.getTime(), "started before its schedule");
  assert.ok(result.success && result.result >= due.getTime());
});

Deno.test("a schedule in the past runs the task now", async () => {
  await using worker = await testWorker();
  const stamp = worker.task(async function stamp(): Promise<number> {
    return await Promise.resolve(Date.now());
  });
  const handle = await stamp.enqueue().start({ schedule: new Date(Date.now() - 60_000) });
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  assert.equal((await handle.info())?.scheduled, null);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 3_000 });
  await running.stop();
  assert.equal(result.success, true);
});

Deno.test("tasks of a higher priority run before lower ones enqueued earlier", async () => {
  await using worker = await testWorker({
    priorities: ["low", "high"],
    concurrency: 1,
    prefetch: 0,
  });
  const order: string[] = [];
  const record = worker.task(async function record(label: string): Promise<void> {
    order.push(label);
    await Promise.resolve();
  });
  const first = await record.enqueue("low1");
  await record.enqueue("low2");
  await record.enqueue("low3");
  await record.enqueue("high1").start({ priority: "high" });
  await record.enqueue("high2").start({ priority: "high" });
  assert.equal((await first.info())?.priority, "low", "the lowest priority is the default");

  await worker.run({ burst: true });
  assert.deepEqual(order, ["high1", "high2", "low1", "low2", "low3"]);
});

Deno.test("enqueueing connects on first use and close() releases every connection", async () => {
  // Building a worker and registering a task opens nothing: this Redis URL leads nowhere.
  const offline = new Worker({ redisUrl: "redis://127.0.0.1:9", handleSignals: false });
  offline.task(async function idle(): Promise<void> {});
  await offline.close();

  const connectionName = `lazy-${crypto.randomUUID()}`;
  const worker = await testWorker({ redisOptions: { connectionName } });
  const noop = worker.task(async function noop(): Promise<void> {});
  assert.equal((await connectionsNamed(connectionName)).length, 0);
  const handle = await noop.enqueue();
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  await assert.rejects(handle.result({ timeout: 50 }), { name: "TimeoutError" });
  assert.equal((await connectionsNamed(connectionName)).length, 2, "commands and subscriber");
  await worker.close();
  await eventually(async () => (await connectionsNamed(connectionName)).length === 0, {
    timeout: 2_000,
    what: "the server to see the worker's connections closed",
  });
});

Deno.test("tasks of two priorities sent in one batch run side by side", async () => {
  // Both stream entries are created in the same millisecond, so they share an entry id.
  await using worker = await testWorker({
    priorities: ["low", "high"],
    concurrency: 2,
    prefetch: 0,
  });
  const opened = Promise.withResolvers<void>();
  let started = 0;
  const hold = worker.task(async function hold(_label: string): Promise<void> {
    started++;
    await opened.promise;
  });
  const handles = await worker.enqueueMany([
    hold.enqueue("low"),
    hold.enqueue("high").start({ priority: "high" }),
  ]);
  const running = runInBackground(worker);
  try {
    await eventually(() => started === 2, { timeout: 3_000, what: "both tasks to start" });
    assert.equal(worker.running(), 2);
  } finally {
    opened.resolve();
  }
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  await running.stop();
  assert.ok(results.every((r) => r.success));
});

Deno.test("tasks awaited together are sent together, and one with bad arguments fails alone", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(value: unknown): Promise<unknown> {
    return await Promise.resolve(value);
  });
  const sends = [1, 2, () => "not serializable", 4].map((v) => echo.enqueue(v).then((h) => h.id));
  const settled = await Promise.allSettled(sends);
  assert.deepEqual(settled.map((s) => s.status), [
    "fulfilled",
    "fulfilled",
    "rejected",
    "fulfilled",
  ]);
  assert.match(String((settled[2] as PromiseRejectedResult).reason), /cannot be serialized/);
  assert.equal(await worker.queueSize(), 3);
});

Deno.test("a task that is never awaited is sent by itself, once", async () => {
  await using worker = await testWorker();
  const count = worker.task(async function count(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  // The forgotten `await` of a new user: nothing else ever sends these.
  const forgotten = count.enqueue(1);
  const started = count.enqueue(2).start({ priority: "normal" });
  const piped = count.enqueue(3).pipe(count);
  await eventually(async () => (await worker.queueSize()) === 3, { what: "three tasks queued" });
  assert.equal(await worker.statusById(forgotten.id), TaskStatus.QUEUED);
  assert.equal(await worker.statusById(started.id), TaskStatus.QUEUED);
  assert.equal(await worker.statusById(piped.id), TaskStatus.SCHEDULED, "waits for its source");

  // Awaiting one later, or batching it, gives its handle without sending it again.
  assert.equal((await forgotten).id, forgotten.id);
  const [again] = await worker.enqueueMany([started]);
  assert.equal(again.id, started.id);
  assert.equal(await worker.queueSize(), 3);
  await worker.run({ burst: true });
  assert.equal(worker.counters.completed, 4, "each task ran once, the pipeline's two stages too");
});

Deno.test("a stage added after its source was sent waits for that source without sending it again", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const first = double.enqueue(2);
  await first; // sent now
  const second = await first.pipe(double);
  assert.equal(await worker.queueSize(), 1, "only the first stage is queued");
  await worker.run({ burst: true });
  const result = await second.result({ timeout: 5_000 });
  assert.equal(result.success && result.result, 8);
  assert.equal(worker.counters.completed, 2);
});

Deno.test("a task whose start() was refused is never sent", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(): Promise<void> {});
  let refused: Task<void> | undefined;
  assert.throws(() => {
    refused = noop.enqueue();
    refused.start({ delay: -1 });
  }, RangeError);
  const sent = await noop.enqueue(); // a later task, sent after anything the first could do
  assert.equal(await worker.statusById(sent.id), TaskStatus.QUEUED);
  assert.equal(await worker.statusById(refused!.id), TaskStatus.NOT_FOUND);
  assert.equal(await worker.queueSize(), 1);
});

Deno.test("a task that is never awaited and cannot be sent is reported in the log", async () => {
  const { lines, logger } = collectingLogger();
  await using worker = await testWorker({ logger, logLevel: "error" });
  const echo = worker.task(async function echo(value: unknown): Promise<unknown> {
    return await Promise.resolve(value);
  });
  const task = echo.enqueue(() => "a function cannot be encoded");
  await eventually(() => lines.some((line) => line.includes(task.id)), {
    what: "the failed send in the log",
  });
  const line = lines.find((l) => l.includes(task.id))!;
  assert.match(line, /Cannot send task echo .* which was never awaited/);
  // Awaiting it still shows the failure to whoever does.
  await assert.rejects(Promise.resolve(task), TypeError);
});

Deno.test("awaiting a task that cannot be sent rejects without a log line", async () => {
  const { lines, logger } = collectingLogger();
  await using worker = await testWorker({ logger, logLevel: "error" });
  const echo = worker.task(async function echo(value: unknown): Promise<unknown> {
    return await Promise.resolve(value);
  });
  await assert.rejects(async () => await echo.enqueue(Symbol("unencodable")), TypeError);
  const later = await echo.enqueue("fine"); // one more round trip: a log line would be there
  assert.ok(later.id);
  assert.deepEqual(lines, []);
});

Deno.test("enqueue().result() sends the task once and resolves to its result", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const running = runInBackground(worker);
  try {
    const task = double.enqueue(21);
    const result = await task.result({ timeout: 10_000 });
    assert.equal(result.success && result.result, 42);
    // Awaiting the task afterwards gives the handle of the task sent, not a second one.
    const handle = await task;
    assert.equal(handle.id, task.id);
    assert.equal(result.taskId, task.id);
    assert.equal(worker.counters.completed, 1);
  } finally {
    await running.stop();
  }
});

Deno.test("enqueue().result() of a task deduplicated into another waits for that one's result", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(value: string): Promise<string> {
    return await Promise.resolve(value);
  });
  const first = await echo.enqueue("first").start({ delay: 300, dedupe: { key: "k" } });
  const second = echo.enqueue("second").start({ dedupe: { key: "k" } });
  const running = runInBackground(worker);
  try {
    const result = await second.result({ timeout: 10_000 });
    assert.equal(result.taskId, first.id);
    assert.equal(result.success && result.result, "first");
    assert.equal((await second).id, first.id);
  } finally {
    await running.stop();
  }
});

Deno.test("enqueue().result() of a task deduplicated into one that does not run keeps the caller's timeout and signal", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(value: string): Promise<string> {
    return await Promise.resolve(value);
  });
  // Stood for by a task due in a minute, with no worker running: only the caller ends the wait.
  const first = await echo.enqueue("first").start({ delay: 60_000, dedupe: { key: "k" } });
  // Each wait is also given the other bound, far off, so that a bound that is dropped fails the
  // test with the other's error rather than hanging it.
  const bound = new AbortController();
  const timer = setTimeout(() => bound.abort(new Error("the far bound ended the wait")), 30_000);
  try {
    const timed = echo.enqueue("second").start({ dedupe: { key: "k" } });
    await assert.rejects(
      timed.result({ timeout: 200, signal: bound.signal }),
      (e: Error) => e.name === "TimeoutError",
    );
    assert.equal((await timed).id, first.id);
    const aborted = new AbortController();
    const third = echo.enqueue("third").start({ dedupe: { key: "k" } });
    const waiting = third.result({ signal: aborted.signal, timeout: 30_000 });
    assert.equal((await third).id, first.id); // sent and stood for: now waiting on the first task
    aborted.abort(new Error("caller gave up"));
    await assert.rejects(waiting, /caller gave up/);
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("enqueue().result() rejects with the send's error when the task cannot be sent, and times out when nothing runs it", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(value: unknown): Promise<unknown> {
    return await Promise.resolve(value);
  });
  await assert.rejects(() => echo.enqueue(Symbol("unencodable")).result(), TypeError);
  const waited = echo.enqueue("nobody runs it").result({ timeout: 200 });
  await assert.rejects(waited, (e: Error) => e.name === "TimeoutError");
  await assert.rejects(
    () => echo.enqueue("x").result({ timeout: -1 }),
    (e: Error) => e instanceof RangeError && /timeout/.test(e.message) && /-1/.test(e.message),
  );
});
