import assert from "node:assert/strict";
import { StreaqError, type TaskContext, taskContext, Worker } from "../mod.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { progressFixture, threadedLogger, threadedReporter } from "./fixtures/progress_tasks.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { queueContextOf } from "../src/worker.ts";
import { TASK_FIELD } from "../src/redis/keys.ts";

const ORIGIN = "http://127.0.0.1:8080";

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

Deno.test("taskContext() in code a timed-out task left running answers its facts, and its methods fail", async () => {
  await using worker = await testWorker();
  const resume = gate();
  const seen = Promise.withResolvers<
    {
      taskId: string;
      tries: number;
      aborted: boolean;
      progress: unknown;
      log: unknown;
      dependencies: unknown;
    }
  >();
  const stubborn = worker.task(async function stubborn(): Promise<void> {
    await resume.wait(); // ignores its signal: runs on after its timeout
    const ctx = taskContext();
    const progress = await ctx.progress(10).then(() => "written", (error) => error);
    const dependencies = await ctx.dependencyResults().then(() => "read", (error) => error);
    let log: unknown = "written";
    try {
      ctx.log("late");
    } catch (error) {
      log = error;
    }
    seen.resolve({
      taskId: ctx.taskId,
      tries: ctx.tries,
      aborted: ctx.signal.aborted,
      progress,
      log,
      dependencies,
    });
  }, { timeout: 100, maxTries: 1 });
  const handle = await stubborn.enqueue();
  const running = runInBackground(worker);
  try {
    const result = await handle.result({ timeout: 10_000 });
    assert.equal(result.success, false);
    resume.open();
    const late = await seen.promise;
    assert.equal(late.taskId, handle.id);
    assert.equal(late.tries, 1);
    assert.equal(late.aborted, true, "the signal of a timed-out try stays aborted");
    for (const failure of [late.progress, late.log, late.dependencies]) {
      assert.ok(failure instanceof StreaqError, `got ${failure}`);
      assert.match(failure.message, new RegExp(`stubborn \\(${handle.id}\\).*has finished`));
    }
  } finally {
    resume.open();
    await running.stop();
  }
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

Deno.test("the dashboard shows a running task's progress as a bar on its page and in the task list", async () => {
  await using worker = await testWorker();
  const g = gate();
  const reported = Promise.withResolvers<void>();
  const export_ = worker.task(async function exportRows(): Promise<void> {
    await taskContext().progress(37.5);
    reported.resolve();
    await g.wait();
  });
  const other = worker.task(async function describeStage(): Promise<void> {
    await taskContext().progress("stage 2 of 3");
    await g.wait();
  });
  const handle = await export_.enqueue();
  const described = await other.enqueue();
  const handler = createDashboard(worker);
  const running = runInBackground(worker);
  try {
    await reported.promise;
    await eventually(async () => (await handle.progress()) === 37.5, { what: "the write" });
    await eventually(async () => (await described.progress()) === "stage 2 of 3", {
      what: "the second task's write",
    });
    const page = await (await handler(new Request(`${ORIGIN}/tasks/${handle.id}`))).text();
    assert.match(page, /<dt>Progress<\/dt>/);
    assert.match(page, /role="progressbar"[^>]*aria-valuenow="37.5"/);
    assert.match(page, /<rect width="37.5" height="6" \/>/);
    assert.match(page, /37\.5%/);
    const detail = await (await handler(new Request(`${ORIGIN}/api/tasks/${handle.id}`))).json();
    assert.equal(detail.progress, 37.5);
    const text = await (await handler(new Request(`${ORIGIN}/tasks/${described.id}`))).text();
    assert.match(text, /stage 2 of 3/);
    assert.doesNotMatch(text, /role="progressbar"/);

    const list = await (await handler(new Request(`${ORIGIN}/tasks?status=running`))).text();
    assert.match(list, /aria-valuenow="37.5"/);
    const rows = await (await handler(new Request(`${ORIGIN}/api/tasks?status=running`))).json();
    const byId = Object.fromEntries(
      (rows.tasks as { id: string; progress: unknown }[]).map((t) => [t.id, t.progress]),
    );
    assert.equal(byId[handle.id], 37.5);
    assert.equal(byId[described.id], '"stage 2 of 3"');
  } finally {
    g.open();
  }
  await handle.result({ timeout: 5_000 });
  await described.result({ timeout: 5_000 });
  await running.stop();
});

Deno.test("a synchronous task in a task thread that reports progress fails, saying why", async () => {
  await using worker = await testWorker({ concurrency: 2, syncConcurrency: 1 });
  worker.include(progressFixture);
  const handle = await threadedReporter.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof StreaqError, String(result.exception));
  assert.match(result.exception.message, /progress of task threadedReporter .* in a task thread/);
  assert.match(result.exception.message, /thread: false/);
});

Deno.test("a synchronous task in a task thread that logs fails, saying why", async () => {
  await using worker = await testWorker({ concurrency: 2, syncConcurrency: 1 });
  worker.include(progressFixture);
  const handle = await threadedLogger.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof StreaqError, String(result.exception));
  assert.match(result.exception.message, /log line of task threadedLogger .* in a task thread/);
});

Deno.test("with a signing secret, progress is signed and read back, on the dashboard too", async () => {
  await using worker = await testWorker({ signingSecret: "progress-secret" });
  const g = gate();
  const signed = worker.task(async function signed(): Promise<void> {
    await taskContext().progress({ done: 2, of: 5 });
    await taskContext().progress(40);
    await g.wait();
  });
  const handle = await signed.enqueue();
  const running = runInBackground(worker);
  try {
    await eventually(async () => (await handle.progress()) === 40, { what: "progress 40" });
    assert.equal((await handle.info())?.progress, 40);
    const { redis, keys } = queueContextOf(worker);
    const stored = await redis.hgetBuffer(keys.task(handle.id), TASK_FIELD.progress);
    assert.equal(String.fromCharCode(stored![0]), "S", "a signed text envelope");
    const rows = await (await createDashboard(worker)(
      new Request(`${ORIGIN}/api/tasks?status=running`),
    )).json();
    assert.equal(rows.tasks[0].progress, 40);
  } finally {
    g.open();
  }
  await handle.result({ timeout: 5_000 });
  await running.stop();
});

Deno.test("progress and task logs work on Redis Cluster", async () => {
  await using topology = await startTopology("Cluster");
  const worker = topologyWorker(topology, "cluster");
  try {
    const g = gate();
    const clustered = worker.task(async function clustered(): Promise<void> {
      const ctx = taskContext();
      ctx.log("on a cluster");
      await ctx.progress(75);
      await g.wait();
      throw new Error("and then failed");
    }, { maxTries: 1 });
    const handle = await clustered.enqueue();
    const running = runInBackground(worker);
    try {
      await eventually(async () => (await handle.progress()) === 75, { what: "progress 75" });
      assert.equal((await handle.info())?.progress, 75);
    } finally {
      g.open();
    }
    assert.equal((await handle.result({ timeout: 10_000 })).success, false);
    await running.stop();
    assert.deepEqual((await handle.logs()).map((l) => l.message), ["on a cluster"]);
  } finally {
    await worker.close();
  }
});
