import assert from "node:assert/strict";
import { StreaqError, type TaskContext, taskContext, Worker } from "../mod.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";

/** A gate a task waits on until the test opens it. */
function gate() {
  const opened = Promise.withResolvers<void>();
  return { wait: () => opened.promise, open: () => opened.resolve() };
}

Deno.test("a client sees a running task's progress in info() and on its handle", async () => {
  await using worker = await testWorker();
  const first = gate();
  const second = gate();
  const report = worker.task(async function report(): Promise<string> {
    const ctx = taskContext();
    await ctx.progress(42);
    await first.wait();
    await ctx.progress({ stage: "upload", done: 3, of: 7 });
    await second.wait();
    return "ok";
  });
  const handle = await report.enqueue();
  assert.equal(await handle.progress(), undefined);
  assert.equal((await handle.info())?.progress, undefined);
  const running = runInBackground(worker);
  try {
    await eventually(async () => (await handle.info())?.progress === 42, {
      what: "progress 42 in info()",
    });
    assert.equal(await handle.progress(), 42);
    first.open();
    await eventually(async () => (await handle.progress()) !== 42, { what: "the next value" });
    assert.deepEqual(await handle.progress(), { stage: "upload", done: 3, of: 7 });
    assert.deepEqual((await worker.infoById(handle.id))?.progress, {
      stage: "upload",
      done: 3,
      of: 7,
    });
  } finally {
    first.open();
    second.open();
  }
  assert.equal((await handle.result({ timeout: 5_000 })).result, "ok");
  // The value goes with the task.
  assert.equal(await handle.progress(), undefined);
  await running.stop();
});

Deno.test("a value the codec cannot encode is a TypeError from progress(); the task goes on", async () => {
  await using worker = await testWorker();
  let caught: unknown;
  const careful = worker.task(async function careful(): Promise<string> {
    const ctx = taskContext();
    await ctx.progress(10);
    try {
      await ctx.progress({ callback: () => {} });
    } catch (error) {
      caught = error;
    }
    await ctx.progress(100);
    return "finished";
  });
  const handle = await careful.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.result, "finished");
  assert.ok(caught instanceof TypeError);
  assert.match(caught.message, /progress of task careful \(.+\).*cannot be serialized/);
  assert.match(caught.message, /functions are not supported/);
});

Deno.test("progress() after the try has finished is a StreaqError", async () => {
  await using worker = await testWorker();
  let kept: TaskContext | undefined;
  const quick = worker.task(async function quick(): Promise<number> {
    kept = taskContext();
    return await Promise.resolve(1);
  });
  const handle = await quick.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  await assert.rejects(
    () => kept!.progress(50),
    (error: Error) => error instanceof StreaqError && /its try has finished/.test(error.message),
  );
  // Nothing brought the finished task's hash back.
  assert.equal(await handle.info(), null);
});

Deno.test("10,000 reports in a tight loop make a bounded number of writes, the last one included", async () => {
  await using redis = await startRedis();
  await using worker = new Worker({
    redisUrl: redis.url,
    queueName: uniqueQueue("progress"),
    logLevel: "error",
    handleSignals: false,
  });
  const begin = gate();
  const end = gate();
  const looped = Promise.withResolvers<number>();
  const loop = worker.task(async function loop(): Promise<void> {
    const ctx = taskContext();
    await begin.wait();
    const start = performance.now();
    for (let i = 1; i <= 10_000; i++) await ctx.progress(i);
    looped.resolve(performance.now() - start);
    await end.wait();
  });
  const hsets = async () => {
    const stats = await redis.cli("INFO", "commandstats");
    return Number(/cmdstat_hset:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };
  const handle = await loop.enqueue();
  const running = runInBackground(worker);
  try {
    await eventually(async () => (await handle.info())?.status === "running", {
      what: "the task to start",
    });
    const before = await hsets();
    begin.open();
    const elapsed = await looped.promise;
    await eventually(async () => (await handle.progress()) === 10_000, {
      what: "the last value written",
    });
    const writes = (await hsets()) - before;
    // One write per 100 ms window, plus the first and the trailing one.
    assert.ok(writes >= 1, `expected a write, got ${writes}`);
    assert.ok(
      writes <= Math.ceil(elapsed / 100) + 2,
      `${writes} writes for a loop of ${elapsed.toFixed(0)} ms`,
    );
    // An unchanged value is not written again.
    const settled = await hsets();
    assert.equal(await handle.progress(), 10_000);
    assert.equal(await hsets(), settled);
  } finally {
    begin.open();
    end.open();
  }
  await handle.result({ timeout: 5_000 });
  await running.stop();
});

Deno.test("a task that never reports writes no progress", async () => {
  await using worker = await testWorker();
  const g = gate();
  const silent = worker.task(async function silent(): Promise<void> {
    await g.wait();
  });
  const handle = await silent.enqueue();
  const running = runInBackground(worker);
  try {
    await eventually(async () => (await handle.info())?.status === "running", {
      what: "the task to start",
    });
    assert.equal((await handle.info())?.progress, undefined);
  } finally {
    g.open();
  }
  await handle.result({ timeout: 5_000 });
  await running.stop();
});
