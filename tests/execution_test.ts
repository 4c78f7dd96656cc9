import assert from "node:assert/strict";
import { StreaqError, StreaqRetry, type TaskContext, taskContext, TaskStatus } from "../mod.ts";
import { sharedRedis } from "./_redis.ts";
import {
  eventually,
  pendingByWorker,
  runInBackground,
  sibling,
  sleep,
  sleepUnlessAborted,
  testWorker,
} from "./_helpers.ts";

Deno.test("a worker never runs more tasks at once than its concurrency", async () => {
  await using worker = await testWorker({ concurrency: 3 });
  let now = 0;
  let max = 0;
  const slow = worker.task(async function slow(): Promise<void> {
    now++;
    max = Math.max(max, now);
    await sleep(100);
    now--;
  });
  const handles = await worker.enqueueMany(Array.from({ length: 10 }, () => slow.enqueue()));
  const running = runInBackground(worker);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  await running.stop();
  assert.ok(results.every((r) => r.success));
  assert.equal(max, 3, "three tasks ran side by side, never more");
});

Deno.test("with prefetch 0 a busy worker holds only its running task and a sibling takes the rest", async () => {
  await using first = await testWorker({ concurrency: 1, prefetch: 0 });
  await using second = await sibling(first, { concurrency: 1, prefetch: 0 });
  const release = Promise.withResolvers<void>();
  for (const worker of [first, second]) {
    worker.task(async function held(): Promise<string> {
      await release.promise;
      return taskContext().workerId;
    });
  }
  const handles = await first.enqueueMany(
    Array.from({ length: 4 }, () => first.enqueueUnsafe<string>("held")),
  );
  const runFirst = runInBackground(first);
  await eventually(() => first.running() === 1, { what: "the first worker to start a task" });
  await sleep(100); // time in which a prefetching worker would claim more
  assert.deepEqual(await pendingByWorker(first), { [first.id]: 1 });
  const runSecond = runInBackground(second);
  await eventually(() => second.running() === 1, { what: "the second worker to start a task" });
  release.resolve();
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  await Promise.all([runFirst.stop(), runSecond.stop()]);
  const ranBy = results.map((r) => r.success && r.result);
  assert.ok(ranBy.includes(first.id), "the first worker ran some");
  assert.ok(ranBy.includes(second.id), "the second worker ran some while the first was busy");
});

Deno.test("by default a busy worker prefetches as many tasks as its concurrency", async () => {
  await using worker = await testWorker({ concurrency: 1 });
  const release = Promise.withResolvers<void>();
  const held = worker.task(async function held(): Promise<void> {
    await release.promise;
  });
  const handles = await worker.enqueueMany([held.enqueue(), held.enqueue(), held.enqueue()]);
  const running = runInBackground(worker);
  await eventually(
    async () => (await pendingByWorker(worker))[worker.id] === 2,
    { what: "one running and one prefetched delivery" },
  );
  release.resolve();
  await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  await running.stop();
});

Deno.test("prefetched tasks run highest priority first, whatever order they were fetched in", async () => {
  await using worker = await testWorker({
    concurrency: 1,
    prefetch: 5,
    priorities: ["low", "high"],
  });
  const release = Promise.withResolvers<void>();
  const order: string[] = [];
  const step = worker.task(async function step(label: string): Promise<void> {
    if (label === "blocker") await release.promise;
    order.push(label);
  });
  const pending = async () => {
    const [low, high] = await Promise.all([
      pendingByWorker(worker, "low"),
      pendingByWorker(worker, "high"),
    ]);
    return (low[worker.id] ?? 0) + (high[worker.id] ?? 0);
  };
  const blocker = await step.enqueue("blocker");
  const running = runInBackground(worker);
  await eventually(() => worker.running() === 1, { what: "the blocker to start" });
  const lows = [await step.enqueue("low 1"), await step.enqueue("low 2")];
  await eventually(async () => (await pending()) === 3, { what: "the low tasks to be prefetched" });
  const highs = [
    await step.enqueue("high 1").start({ priority: "high" }),
    await step.enqueue("high 2").start({ priority: "high" }),
  ];
  await eventually(async () => (await pending()) === 5, {
    what: "the high tasks to be prefetched",
  });
  release.resolve();
  await Promise.all([blocker, ...lows, ...highs].map((h) => h.result({ timeout: 10_000 })));
  await running.stop();
  assert.deepEqual(order, ["blocker", "high 1", "high 2", "low 1", "low 2"]);
});

Deno.test("a task past its timeout fails with a TimeoutError that its signal also carries", async () => {
  await using worker = await testWorker();
  let reason: unknown;
  const stuck = worker.task(async function stuck(): Promise<string> {
    const { signal } = taskContext();
    try {
      await sleepUnlessAborted(10_000, signal);
    } finally {
      reason = signal.reason;
    }
    return "not reached";
  }, { timeout: 200 });
  const handle = await stuck.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.equal(result.exception.name, "TimeoutError");
  assert.match(result.exception.message, /timed out after 200 ms/);
  assert.equal((reason as Error)?.name, "TimeoutError");
  assert.equal(worker.counters.failed, 1);
});

Deno.test("a task not started within its expire time fails as expired without running", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const perishable = worker.task(async function perishable(): Promise<void> {
    calls++;
    await Promise.resolve();
  }, { expire: 100 });
  const handle = await perishable.enqueue();
  await sleep(250);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof StreaqError);
  assert.match(result.exception.message, /expired/);
  assert.equal(calls, 0);
});

Deno.test("a task started within its expire time runs normally", async () => {
  await using worker = await testWorker();
  const fresh = worker.task(async function fresh(): Promise<string> {
    return await Promise.resolve("fresh");
  }, { expire: 5_000 });
  const handle = await fresh.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "fresh");
});

Deno.test("a unique task refuses a second instance while one runs, and only the holder frees the lock", async () => {
  const redis = await sharedRedis();
  await using worker = await testWorker({ concurrency: 2 });
  const release = Promise.withResolvers<void>();
  let calls = 0;
  const only = worker.task(async function only(): Promise<string> {
    calls++;
    await release.promise;
    return taskContext().taskId;
  }, { unique: true, timeout: 10_000 });
  const lock = `streaq:{${worker.queueName}}:lock:only`;
  const [a, b] = await worker.enqueueMany([only.enqueue(), only.enqueue()]);
  const running = runInBackground(worker);
  const refused = await Promise.race([
    a.result({ timeout: 5_000 }).then((r) => ({ loser: a, winner: b, result: r })),
    b.result({ timeout: 5_000 }).then((r) => ({ loser: b, winner: a, result: r })),
  ]);
  assert.equal(refused.result.success, false);
  assert.match(refused.result.exception.message, /unique/);
  assert.match(refused.result.exception.message, new RegExp(`${refused.winner.id}.*running`));
  assert.equal(await refused.winner.status(), TaskStatus.RUNNING);
  assert.equal(await redis.cli("GET", lock), refused.winner.id, "the refused one left the lock");
  release.resolve();
  const won = await refused.winner.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(won.success && won.result, refused.winner.id);
  assert.equal(calls, 1);
  assert.equal(await redis.cli("EXISTS", lock), "0", "the holder released the lock");
});

Deno.test("taskContext() and registeredTask.context describe the running task", async () => {
  await using worker = await testWorker({ priorities: ["normal", "urgent"] });
  const seen: { fromFunction: TaskContext; fromTask: TaskContext; aborted: boolean }[] = [];
  const inspect = worker.task(async function inspectSelf(): Promise<void> {
    await Promise.resolve();
    const fromFunction = taskContext();
    seen.push({ fromFunction, fromTask: inspect.context, aborted: fromFunction.signal.aborted });
  }, { timeout: 5_000, ttl: 60_000 });
  const before = Date.now();
  const handle = await inspect.enqueue().start({ priority: "urgent" });
  const after = Date.now();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, true);
  assert.equal(seen.length, 1);
  const [{ fromFunction: context, fromTask, aborted }] = seen;
  assert.equal(fromTask, context);
  assert.equal(context.taskId, handle.id);
  assert.equal(context.fnName, "inspectSelf");
  assert.equal(context.tries, 1);
  assert.equal(context.timeout, 5_000);
  assert.equal(context.ttl, 60_000);
  assert.equal(context.workerId, worker.id);
  assert.equal(context.priority, "urgent");
  assert.equal(typeof context.enqueueTime, "number");
  assert.ok(
    context.enqueueTime >= before - 1_000 && context.enqueueTime <= after + 1_000,
    `enqueueTime ${context.enqueueTime} is a ms epoch near ${before}`,
  );
  assert.ok(context.signal instanceof AbortSignal);
  assert.equal(aborted, false);
  assert.throws(() => taskContext(), StreaqError);
  assert.throws(() => inspect.context, StreaqError);
});

Deno.test("a registered task's context throws inside another task", async () => {
  await using worker = await testWorker();
  const other = worker.task(async function other(): Promise<void> {
    await Promise.resolve();
  });
  const asker = worker.task(async function asker(): Promise<string> {
    await Promise.resolve();
    try {
      return other.context.taskId;
    } catch (error) {
      return (error as Error).name;
    }
  });
  const handle = await asker.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "StreaqError");
});

Deno.test("tasks running side by side each see their own context", async () => {
  await using worker = await testWorker({ concurrency: 2 });
  let started = 0;
  const bothStarted = Promise.withResolvers<void>();
  const whoAmI = worker.task(async function whoAmI(label: string): Promise<string[]> {
    const early = taskContext().taskId;
    if (++started === 2) bothStarted.resolve();
    await bothStarted.promise;
    await sleep(label === "a" ? 50 : 10);
    return [early, taskContext().taskId];
  });
  const [a, b] = await worker.enqueueMany([whoAmI.enqueue("a"), whoAmI.enqueue("b")]);
  const running = runInBackground(worker);
  const [ra, rb] = await Promise.all([a.result({ timeout: 5_000 }), b.result({ timeout: 5_000 })]);
  await running.stop();
  assert.deepEqual(ra.success && ra.result, [a.id, a.id]);
  assert.deepEqual(rb.success && rb.result, [b.id, b.id]);
});

Deno.test("synchronous task functions run, see their context, and can fail", async () => {
  await using worker = await testWorker();
  // Inline (thread: false): these closures exist only in this test, not in a module a task
  // thread could import; tests/threads_test.ts covers threaded ones.
  const add = worker.task(function add(a: number, b: number): string {
    return `${a + b} in ${taskContext().fnName}`;
  }, { thread: false });
  const boom = worker.task(function boom(): number {
    throw new RangeError("sync boom");
  }, { thread: false });
  const [sum, failed] = await worker.enqueueMany([add.enqueue(2, 3), boom.enqueue()]);
  const running = runInBackground(worker);
  const [r1, r2] = await Promise.all([
    sum.result({ timeout: 5_000 }),
    failed.result({ timeout: 5_000 }),
  ]);
  await running.stop();
  assert.equal(r1.success && r1.result, "5 in add");
  assert.equal(r2.success, false);
  assert.ok(r2.exception instanceof RangeError);
  assert.equal(r2.exception.message, "sync boom");
});

Deno.test("a task returning a value that cannot be serialized fails with a TypeError and the worker goes on", async () => {
  await using worker = await testWorker();
  const makeCallback = worker.task(async function makeCallback(): Promise<() => number> {
    return await Promise.resolve(() => 1);
  });
  const fine = worker.task(async function fine(): Promise<string> {
    return await Promise.resolve("fine");
  });
  const bad = await makeCallback.enqueue();
  const running = runInBackground(worker);
  const badResult = await bad.result({ timeout: 5_000 });
  const good = await (await fine.enqueue()).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(badResult.success, false);
  assert.ok(badResult.exception instanceof TypeError);
  assert.match(badResult.exception.message, /makeCallback.*cannot be serialized/);
  assert.match(badResult.exception.message, /function/);
  assert.equal(good.success && good.result, "fine");
  assert.deepEqual(
    { completed: worker.counters.completed, failed: worker.counters.failed },
    { completed: 1, failed: 1 },
  );
});

Deno.test("middleware runs first-registered outermost and can change arguments and results", async () => {
  await using worker = await testWorker();
  const trace: string[] = [];
  worker.middleware((next) => async (...args) => {
    trace.push("outer before");
    const result = await next(...args.map((a) => (a as number) * 10));
    trace.push("outer after");
    return `result: ${result}`;
  });
  worker.middleware((next) => async (...args) => {
    trace.push("inner before");
    const result = await next(...args.map((a) => (a as number) + 1));
    trace.push("inner after");
    return (result as number) * 2;
  });
  const echo = worker.task(async function echo(n: number): Promise<number> {
    trace.push(`task ${n}`);
    return await Promise.resolve(n);
  });
  const handle = await echo.enqueue(4);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(trace, [
    "outer before",
    "inner before",
    "task 41",
    "inner after",
    "outer after",
  ]);
  assert.equal(result.success && result.result, "result: 82");
});

Deno.test("middleware that throws StreaqRetry retries the task and its handle sees the context", async () => {
  await using worker = await testWorker();
  const seen: string[] = [];
  const guard = worker.middleware((next) => async (...args) => {
    const { fnName, taskId, tries } = guard.context;
    seen.push(`${fnName} ${taskId} try ${tries}`);
    if (tries === 1) throw new StreaqRetry("not yet", { delay: 10 });
    return await next(...args);
  });
  let calls = 0;
  const guarded = worker.task(async function guarded(): Promise<string> {
    calls++;
    return await Promise.resolve("through");
  });
  const handle = await guarded.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "through");
  assert.equal(result.tries, 2);
  assert.equal(calls, 1, "the retried try never reached the task");
  assert.deepEqual(seen, [`guarded ${handle.id} try 1`, `guarded ${handle.id} try 2`]);
  assert.equal(worker.counters.retried, 1);
  assert.throws(() => guard.context, StreaqError);
});

Deno.test("worker.counters counts each outcome and is a frozen snapshot", async () => {
  await using worker = await testWorker({ concurrency: 4 });
  const ok = worker.task(async function ok(): Promise<void> {
    await Promise.resolve();
  });
  const fail = worker.task(async function fail(): Promise<void> {
    await Promise.resolve();
    throw new Error("no");
  });
  const once = worker.task(async function once(): Promise<void> {
    await Promise.resolve();
    if (taskContext().tries === 1) throw new StreaqRetry("again", { delay: 10 });
  });
  const waitStarted = Promise.withResolvers<void>();
  const wait = worker.task(async function wait(): Promise<void> {
    waitStarted.resolve();
    await sleepUnlessAborted(10_000, taskContext().signal);
  });
  const initial = worker.counters;
  assert.deepEqual(initial, { completed: 0, failed: 0, retried: 0, aborted: 0, relinquished: 0 });
  const handles = await worker.enqueueMany([
    ok.enqueue(),
    fail.enqueue(),
    once.enqueue(),
    wait.enqueue(),
  ]);
  const running = runInBackground(worker);
  await Promise.all(handles.slice(0, 3).map((h) => h.result({ timeout: 5_000 })));
  await waitStarted.promise;
  assert.equal(await handles[3].abort({ timeout: 5_000 }), true);
  await running.stop();
  const counters = worker.counters;
  assert.deepEqual({ ...counters }, {
    completed: 2,
    failed: 1,
    retried: 1,
    aborted: 1,
    relinquished: 0,
  });
  assert.ok(Object.isFrozen(counters));
  assert.throws(() => {
    (counters as { completed: number }).completed = 99;
  }, TypeError);
  assert.equal(initial.completed, 0, "an earlier snapshot does not change");
});

Deno.test("the worker logs one line when a task starts and one when it ends, none for a silent task", async () => {
  const lines: string[] = [];
  const collect = (line: string) => void lines.push(line);
  await using worker = await testWorker({
    logLevel: "info",
    logger: { debug: collect, info: collect, warn: collect, error: collect },
  });
  const loud = worker.task(async function loud(): Promise<void> {
    await Promise.resolve();
  });
  const quiet = worker.task(async function quiet(): Promise<void> {
    await Promise.resolve();
  }, { silent: true });
  const failing = worker.task(async function failing(): Promise<void> {
    await Promise.resolve();
    throw new Error("broken on purpose");
  });
  const [l, q, f] = await worker.enqueueMany([loud.enqueue(), quiet.enqueue(), failing.enqueue()]);
  const running = runInBackground(worker);
  await Promise.all([l, q, f].map((h) => h.result({ timeout: 5_000 })));
  await running.stop();
  const about = (id: string) => lines.filter((line) => line.includes(id));
  assert.equal(about(l.id).length, 2, `loud lines: ${about(l.id).join("\n")}`);
  assert.ok(about(l.id).every((line) => line.includes("loud")));
  assert.equal(about(q.id).length, 0, `quiet lines: ${about(q.id).join("\n")}`);
  assert.equal(about(f.id).length, 2);
  assert.match(about(f.id)[1], /broken on purpose/);
});

Deno.test("worker.running() counts the tasks running now", async () => {
  await using worker = await testWorker({ concurrency: 4 });
  const release = Promise.withResolvers<void>();
  const held = worker.task(async function held(): Promise<void> {
    await release.promise;
  });
  assert.equal(worker.running(), 0);
  const handles = await worker.enqueueMany([held.enqueue(), held.enqueue()]);
  const running = runInBackground(worker);
  await eventually(() => worker.running() === 2, { what: "two running tasks" });
  release.resolve();
  await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  await eventually(() => worker.running() === 0, { what: "no running task" });
  await running.stop();
  assert.equal(worker.running(), 0);
});
