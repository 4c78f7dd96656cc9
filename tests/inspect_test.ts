import assert from "node:assert/strict";
import { StreaqError, TaskStatus, Worker } from "../mod.ts";
import { sharedRedis, startRedis, uniqueQueue } from "./_redis.ts";
import {
  connectionsNamed,
  eventually,
  runInBackground,
  sibling,
  sleep,
  testWorker,
} from "./_helpers.ts";

/** A task body that reports when it starts and returns only once `open()` is called. */
function gate() {
  const started = Promise.withResolvers<void>();
  const opened = Promise.withResolvers<void>();
  return {
    started: started.promise,
    open: () => opened.resolve(),
    pass: async () => {
      started.resolve();
      await opened.promise;
    },
  };
}

Deno.test("status() goes from queued to running to done", async () => {
  await using worker = await testWorker();
  const g = gate();
  const wait = worker.task(async function wait(): Promise<string> {
    await g.pass();
    return "ok";
  });
  const handle = await wait.enqueue();
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  const running = runInBackground(worker);
  try {
    await g.started;
    assert.equal(await handle.status(), TaskStatus.RUNNING);
  } finally {
    g.open();
  }
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(await handle.status(), TaskStatus.DONE);
});

Deno.test("status() of an unknown id is NOT_FOUND and its info is null", async () => {
  await using worker = await testWorker();
  assert.equal(await worker.statusById("no-such-task"), TaskStatus.NOT_FOUND);
  assert.equal(await worker.infoById("no-such-task"), null);
});

Deno.test("a result with ttl 0 reaches a waiting caller but is not stored", async () => {
  await using worker = await testWorker();
  const fleeting = worker.task(async function fleeting(): Promise<string> {
    return await Promise.resolve("seen once");
  }, { ttl: 0 });
  const handle = await fleeting.enqueue();
  const waiting = handle.result({ timeout: 5_000 });
  // Let the waiter subscribe before the worker starts.
  await eventually(async () => (await pubsubSubscribers(worker.queueName, handle.id)) === 1, {
    what: "the result waiter to subscribe",
  });
  const running = runInBackground(worker);
  const result = await waiting;
  await running.stop();
  assert.equal(result.success && result.result, "seen once");
  assert.equal(await handle.status(), TaskStatus.NOT_FOUND);
  assert.equal(await resultKeyTtl(worker.queueName, handle.id), -2, "no result key");
  // Nothing is left of it: a later wait says so rather than wait for ever.
  await assertGone(handle.result(), handle.id);
});

Deno.test("a result is kept for its ttl and then gone", async () => {
  await using worker = await testWorker();
  const brief = worker.task(async function brief(): Promise<number> {
    return await Promise.resolve(1);
  }, { ttl: 300 });
  const handle = await brief.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(await handle.status(), TaskStatus.DONE);
  const ttl = await resultKeyTtl(worker.queueName, handle.id);
  assert.ok(ttl > 0 && ttl <= 300, `PTTL ${ttl}`);
  await eventually(async () => (await handle.status()) === TaskStatus.NOT_FOUND, {
    timeout: 2_000,
    what: "the result to expire",
  });
  await assert.rejects(handle.result({ timeout: 50 }), { name: "TimeoutError" });
});

Deno.test("a result with ttl null is kept forever", async () => {
  await using worker = await testWorker();
  const lasting = worker.task(async function lasting(): Promise<number> {
    return await Promise.resolve(1);
  }, { ttl: null });
  const handle = await lasting.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(await resultKeyTtl(worker.queueName, handle.id), -1);
});

Deno.test("info() describes a waiting or running task and is null once it is done", async () => {
  await using worker = await testWorker({ priorities: ["normal", "high"] });
  const g = gate();
  const book = worker.task(async function book(_when: Date, _seats: Map<string, number>) {
    await g.pass();
  });
  const when = new Date("2030-05-06T07:08:09.010Z");
  const seats = new Map([["A1", 1], ["B2", 2]]);
  const before = Date.now();
  const handle = await book.enqueue(when, seats).start({ priority: "high" });
  const info = await handle.info();
  assert.ok(info);
  assert.equal(info.taskId, handle.id);
  assert.equal(info.fnName, "book");
  assert.ok(info.args[0] instanceof Date && info.args[0].getTime() === when.getTime());
  assert.ok(info.args[1] instanceof Map);
  assert.deepEqual(info.args[1], seats);
  assert.equal(info.tries, 0);
  assert.equal(info.priority, "high");
  assert.equal(info.status, TaskStatus.QUEUED);
  assert.equal(info.scheduled, null);
  assert.ok(info.createdTime >= before && info.createdTime <= Date.now());

  const running = runInBackground(worker);
  try {
    await g.started;
    const during = await handle.info();
    assert.equal(during?.status, TaskStatus.RUNNING);
    assert.equal(during?.tries, 1);
  } finally {
    g.open();
  }
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(await handle.info(), null);
});

Deno.test("result({ timeout }) rejects with a TimeoutError when the task never runs", async () => {
  await using worker = await testWorker();
  const never = worker.task(async function never(): Promise<void> {});
  const handle = await never.enqueue();
  const started = performance.now();
  await assert.rejects(handle.result({ timeout: 50 }), (error: Error) => {
    assert.equal(error.name, "TimeoutError");
    assert.match(error.message, new RegExp(handle.id));
    return true;
  });
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 40 && elapsed < 2_000, `rejected after ${elapsed} ms`);
});

/** Asserts that `waiting` rejects with the StreaqError of a wait for a task that is gone. */
async function assertGone(waiting: Promise<unknown>, id: string): Promise<void> {
  await assert.rejects(waiting, (error: Error) => {
    assert.ok(error instanceof StreaqError, `expected a StreaqError, got ${error}`);
    assert.equal(
      error.message,
      `Cannot wait for the result of task ${id} as it does not exist: never enqueued, expired, or lost`,
    );
    return true;
  });
}

Deno.test("result() of a task never enqueued rejects, saying the task does not exist, long before its timeout", async () => {
  await using worker = await testWorker();
  worker.task(async function noop(): Promise<void> {});
  const id = crypto.randomUUID();
  // A TimeoutError after 60 s would fail the assertion: the rejection comes from the check.
  await assertGone(worker.resultById(id, { timeout: 60_000 }), id);
  await assertGone(worker.resultById("cron:neverRegistered"), "cron:neverRegistered");
  assert.equal(await pubsubSubscribers(worker.queueName, id), 0, "the wait unsubscribed");
});

Deno.test("a result wait started before its task's enqueue lands resolves with the result", async () => {
  // The task's payload is encoded by a serializer that waits for the test: the task is on its
  // way, and lands only once the wait has looked for it and found nothing.
  const encoding = Promise.withResolvers<void>();
  await using worker = await testWorker({
    serializer: async (value) => {
      await encoding.promise;
      return JSON.stringify(value);
    },
    deserializer: (text) => JSON.parse(text as string),
  });
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const unsent = double.enqueue(21);
  const waiting = worker.resultById<number>(unsent.id, { timeout: 10_000 });
  await eventually(async () => (await pubsubSubscribers(worker.queueName, unsent.id)) === 1, {
    what: "the wait to subscribe",
  });
  await sleep(300); // the wait's first look finds no task
  assert.equal(await worker.statusById(unsent.id), TaskStatus.NOT_FOUND);
  encoding.resolve();
  await unsent;
  const running = runInBackground(worker);
  const result = await waiting;
  await running.stop();
  assert.equal(result.success && result.result, 42);
});

Deno.test("a result wait rejects when its task's keys are lost (a Redis emptied under it)", async () => {
  await using server = await startRedis();
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue(),
    logLevel: "error",
    handleSignals: false,
  });
  const never = worker.task(async function never(): Promise<void> {});
  const handle = await never.enqueue();
  const waiting = handle.result({ timeout: 60_000 });
  const channel = `streaq:{${worker.queueName}}:done:${handle.id}`;
  await eventually(async () => (await server.cli("PUBSUB", "NUMSUB", channel)).endsWith("\n1"), {
    what: "the wait to subscribe",
  });
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  await server.cli("FLUSHDB");
  await assertGone(waiting, handle.id);
});

Deno.test("concurrent result() waiters share one subscriber connection and all get results", async () => {
  const connectionName = `waiters-${crypto.randomUUID()}`;
  await using client = await testWorker({ redisOptions: { connectionName } });
  const square = async function square(n: number): Promise<number> {
    return await Promise.resolve(n * n);
  };
  const task = client.task(square);
  await using worker = await sibling(client);
  worker.task(square);
  const inputs = Array.from({ length: 25 }, (_, i) => i);
  const handles = await client.enqueueMany(inputs.map((n) => task.enqueue(n)));
  const waiting = handles.map((h) => h.result({ timeout: 10_000 }));
  await eventually(async () => {
    const connections = await connectionsNamed(connectionName);
    // And to the queue's listeners channel, which tells completions that someone waits.
    return connections.some((c) => c.sub === String(inputs.length + 1));
  }, { what: "one connection subscribed to every result channel" });
  assert.equal((await connectionsNamed(connectionName)).length, 2, "commands and subscriber");

  const running = runInBackground(worker);
  const results = await Promise.all(waiting);
  await running.stop();
  assert.deepEqual(results.map((r) => r.success && r.result), inputs.map((n) => n * n));
  await eventually(
    async () => (await connectionsNamed(connectionName)).every((c) => Number(c.sub) <= 1),
    {
      what: "the waiters to unsubscribe (the listeners channel stays)",
    },
  );
});

Deno.test("result() of a task that already finished resolves from the stored result", async () => {
  await using worker = await testWorker();
  const triple = worker.task(async function triple(n: number): Promise<number> {
    return await Promise.resolve(n * 3);
  });
  const handle = await triple.enqueue(5);
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.DONE);
  await running.stop();
  const result = await handle.result({ timeout: 1_000 });
  assert.equal(result.success && result.result, 15);
});

Deno.test("getTasksByStatus lists queued and scheduled tasks, honouring limit and priority", async () => {
  await using worker = await testWorker({ priorities: ["low", "high"] });
  const noop = worker.task(async function noop(_label: string): Promise<void> {});
  const ids = async (label: string, options: { priority?: string; delay?: number } = {}) =>
    (await noop.enqueue(label).start(options)).id;
  const q1 = await ids("q1");
  const q2 = await ids("q2");
  const q3 = await ids("q3");
  const q4 = await ids("q4", { priority: "high" });
  const q5 = await ids("q5", { priority: "high" });
  const s1 = await ids("s1", { delay: 60_000 });
  const s2 = await ids("s2", { delay: 61_000 });
  const s3 = await ids("s3", { delay: 62_000 });
  const s4 = await ids("s4", { delay: 63_000, priority: "high" });
  const list = async (status: TaskStatus, options = {}) =>
    (await worker.getTasksByStatus(status, options)).map((t) => t.taskId);

  // Queued tasks come in the order workers fetch them: higher priority first, oldest first.
  assert.deepEqual(await list(TaskStatus.QUEUED), [q4, q5, q1, q2, q3]);
  assert.deepEqual(await list(TaskStatus.QUEUED, { limit: 2 }), [q4, q5]);
  assert.deepEqual(await list(TaskStatus.QUEUED, { limit: 3 }), [q4, q5, q1]);
  assert.deepEqual(await list(TaskStatus.QUEUED, { priority: "low" }), [q1, q2, q3]);
  assert.deepEqual(await list(TaskStatus.QUEUED, { priority: "low", limit: 2 }), [q1, q2]);
  assert.deepEqual(await list(TaskStatus.QUEUED, { limit: 0 }), []);
  // Scheduled tasks come soonest first.
  assert.deepEqual(await list(TaskStatus.SCHEDULED), [s1, s2, s3, s4]);
  assert.deepEqual(await list(TaskStatus.SCHEDULED, { limit: 3 }), [s1, s2, s3]);
  assert.deepEqual(await list(TaskStatus.SCHEDULED, { priority: "high" }), [s4]);
  assert.deepEqual(await list(TaskStatus.SCHEDULED, { priority: "low", limit: 1 }), [s1]);
  assert.deepEqual(await list(TaskStatus.RUNNING), []);
  assert.deepEqual(await list(TaskStatus.DONE), []);
  const infos = await worker.getTasksByStatus(TaskStatus.SCHEDULED, { limit: 1 });
  assert.equal(infos[0].status, TaskStatus.SCHEDULED);
  assert.deepEqual(infos[0].args, ["s1"]);
});

Deno.test("getTasksByStatus lists running and done tasks, honouring limit and priority", async () => {
  await using worker = await testWorker({
    priorities: ["low", "high"],
    concurrency: 3,
    prefetch: 0,
  });
  const g = gate();
  const hold = worker.task(async function hold(_label: string): Promise<void> {
    await g.pass();
  });
  const low1 = await hold.enqueue("low1");
  const low2 = await hold.enqueue("low2");
  const low3 = await hold.enqueue("low3");
  const high1 = await hold.enqueue("high1").start({ priority: "high" });
  const list = async (status: TaskStatus, options = {}) =>
    (await worker.getTasksByStatus(status, options)).map((t) => t.taskId).sort();
  const sorted = (...handles: { id: string }[]) => handles.map((h) => h.id).sort();

  const running = runInBackground(worker);
  try {
    await eventually(async () => (await list(TaskStatus.RUNNING)).length === 3, {
      what: "three running tasks",
    });
    assert.deepEqual(await list(TaskStatus.RUNNING), sorted(high1, low1, low2));
    assert.equal((await list(TaskStatus.RUNNING, { limit: 2 })).length, 2);
    assert.deepEqual(await list(TaskStatus.RUNNING, { priority: "high" }), sorted(high1));
    assert.deepEqual(await list(TaskStatus.RUNNING, { priority: "low" }), sorted(low1, low2));
    assert.deepEqual(await list(TaskStatus.QUEUED), sorted(low3));
  } finally {
    g.open();
  }
  const handles = [low1, low2, low3, high1];
  await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  await running.stop();
  const done = await worker.getTasksByStatus(TaskStatus.DONE);
  assert.deepEqual(done.map((r) => r.taskId).sort(), sorted(...handles));
  assert.ok(done.every((r) => r.success && r.fnName === "hold"));
  assert.equal((await worker.getTasksByStatus(TaskStatus.DONE, { limit: 2 })).length, 2);
  assert.deepEqual(await list(TaskStatus.RUNNING), []);
});

Deno.test("getTasksByStatus refuses a status it cannot list, naming the value and the statuses it lists", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(): Promise<void> {});
  await noop.enqueue();
  for (const status of [TaskStatus.NOT_FOUND, "finished", "", 3]) {
    await assert.rejects(worker.getTasksByStatus(status as TaskStatus), (error: Error) => {
      assert.ok(error instanceof RangeError, `unexpected error class ${error?.constructor?.name}`);
      assert.equal(
        error.message,
        "Cannot list tasks as 'status' must be one of queued, running, scheduled, done: " +
          `received ${JSON.stringify(status)} (${typeof status})`,
      );
      return true;
    });
  }
  assert.equal((await worker.getTasksByStatus(TaskStatus.QUEUED)).length, 1);
});

Deno.test("queueSize() counts tasks waiting for a worker, and scheduled ones when asked", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 0 });
  const g = gate();
  const hold = worker.task(async function hold(): Promise<void> {
    await g.pass();
  });
  assert.equal(await worker.queueSize(), 0);
  for (let i = 0; i < 3; i++) await hold.enqueue();
  for (let i = 0; i < 2; i++) await hold.enqueue().start({ delay: 60_000 });
  assert.equal(await worker.queueSize(), 3);
  assert.equal(await worker.queueSize({ includeScheduled: true }), 5);
  const running = runInBackground(worker);
  try {
    await g.started;
    assert.equal(await worker.queueSize(), 2, "a running task is no longer waiting");
    assert.equal(await worker.queueSize({ includeScheduled: true }), 4);
  } finally {
    g.open();
  }
  await running.stop();
});

Deno.test("a result's wrong-side accessor throws a StreaqError", async () => {
  await using worker = await testWorker();
  const good = worker.task(async function good(): Promise<number> {
    return await Promise.resolve(1);
  });
  const bad = worker.task(async function bad(): Promise<number> {
    await Promise.resolve();
    throw new RangeError("out of range");
  });
  const [ok, failed] = [await good.enqueue(), await bad.enqueue()];
  const running = runInBackground(worker);
  const okResult = await ok.result({ timeout: 5_000 });
  const failedResult = await failed.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(okResult.success, true);
  assert.equal(okResult.result, 1);
  assert.throws(() => okResult.exception, StreaqError);
  assert.equal(failedResult.success, false);
  assert.ok(failedResult.exception instanceof RangeError);
  assert.throws(() => failedResult.result, (error: Error) => {
    assert.ok(error instanceof StreaqError);
    assert.match(error.message, /out of range/);
    assert.equal(error.cause, failedResult.exception);
    return true;
  });
});

Deno.test("a failed task's exception keeps its name, message, stack and cause", async () => {
  class PaymentError extends Error {
    override name = "PaymentError";
  }
  await using worker = await testWorker();
  let thrown: PaymentError | undefined;
  const charge = worker.task(async function charge(amount: number): Promise<void> {
    await Promise.resolve();
    thrown = new PaymentError(`card declined for ${amount}`, {
      cause: new Error("insufficient funds"),
    });
    throw thrown;
  });
  const refuse = worker.task(async function refuse(): Promise<void> {
    await Promise.resolve();
    throw new StreaqError("refused by policy");
  });
  const [charged, refused] = [await charge.enqueue(42), await refuse.enqueue()];
  const running = runInBackground(worker);
  const result = await charged.result({ timeout: 5_000 });
  const streaqResult = await refused.result({ timeout: 5_000 });
  await running.stop();

  assert.equal(result.success, false);
  const error = result.exception;
  assert.ok(error instanceof Error);
  assert.equal(error.name, "PaymentError");
  assert.equal(error.message, "card declined for 42");
  assert.ok(thrown);
  assert.equal(error.stack, thrown.stack);
  assert.match(error.stack ?? "", /charge/);
  assert.ok(error.cause instanceof Error);
  assert.equal(error.cause.message, "insufficient funds");

  assert.equal(streaqResult.success, false);
  assert.ok(streaqResult.exception instanceof StreaqError);
  assert.equal(streaqResult.exception.name, "StreaqError");
  assert.equal(streaqResult.exception.message, "refused by policy");
});

/** Subscribers of a task's result channel, as the server counts them. */
async function pubsubSubscribers(queueName: string, taskId: string): Promise<number> {
  const reply = await (await sharedRedis()).cli(
    "PUBSUB",
    "NUMSUB",
    `streaq:{${queueName}}:done:${taskId}`,
  );
  return Number(reply.split("\n")[1]);
}

/** PTTL of a task's result key: -2 when there is none, -1 when it never expires. */
async function resultKeyTtl(queueName: string, taskId: string): Promise<number> {
  return Number(await (await sharedRedis()).cli("PTTL", `streaq:{${queueName}}:result:${taskId}`));
}

Deno.test("result({ signal }) stops waiting when the signal aborts", async () => {
  await using worker = await testWorker();
  const idle = worker.task(async function idle() {});
  const handle = await idle.enqueue();
  const controller = new AbortController();
  const waiting = handle.result({ signal: controller.signal });
  controller.abort(new Error("no longer needed"));
  await assert.rejects(waiting, /no longer needed/);
});
