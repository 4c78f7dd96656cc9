import assert from "node:assert/strict";
import { StreaqError, taskContext, TaskStatus } from "../mod.ts";
import { eventually, runInBackground, sleepUnlessAborted, testWorker } from "./_helpers.ts";

interface Deps {
  readonly name: string;
  readonly run: number;
}

Deno.test("the lifespan's yielded value is worker.context inside tasks", async () => {
  await using worker = await testWorker<Deps>({
    async *lifespan() {
      await Promise.resolve();
      yield { name: "deps", run: 1 };
    },
  });
  const useDeps = worker.task(async function useDeps(): Promise<string> {
    await Promise.resolve();
    return `${worker.context.name} of run ${worker.context.run}`;
  });
  const handle = await useDeps.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "deps of run 1");
});

Deno.test("the lifespan's cleanup runs at shutdown, after the running tasks have finished", async () => {
  const events: string[] = [];
  await using worker = await testWorker<Deps>({
    gracePeriod: 2_000,
    async *lifespan() {
      events.push("set up");
      try {
        yield { name: "deps", run: 1 };
      } finally {
        await Promise.resolve();
        events.push("cleaned up");
      }
    },
  });
  const slow = worker.task(async function slow(): Promise<void> {
    events.push("task started");
    await sleepUnlessAborted(300, taskContext().signal);
    events.push(`task finished with ${worker.context.name}`);
  });
  const handle = await slow.enqueue();
  const running = runInBackground(worker);
  await eventually(() => events.includes("task started"), { what: "the task to start" });
  assert.deepEqual(events, ["set up", "task started"]);
  await running.stop();
  assert.deepEqual(events, ["set up", "task started", "task finished with deps", "cleaned up"]);
  assert.equal((await handle.result({ timeout: 1_000 })).success, true);
});

Deno.test("each run of a worker runs the lifespan again", async () => {
  let runs = 0;
  let cleanups = 0;
  await using worker = await testWorker<Deps>({
    async *lifespan() {
      runs++;
      try {
        yield { name: "deps", run: runs };
      } finally {
        await Promise.resolve();
        cleanups++;
      }
    },
  });
  const whichRun = worker.task(async function whichRun(): Promise<number> {
    return await Promise.resolve(worker.context.run);
  });
  const first = runInBackground(worker);
  const one = await (await whichRun.enqueue()).result({ timeout: 5_000 });
  await first.stop();
  assert.equal(cleanups, 1);
  const second = runInBackground(worker);
  const two = await (await whichRun.enqueue()).result({ timeout: 5_000 });
  await second.stop();
  assert.equal(one.success && one.result, 1);
  assert.equal(two.success && two.result, 2);
  assert.equal(runs, 2);
  assert.equal(cleanups, 2);
});

Deno.test("a lifespan that throws makes run() reject with its error and leaves the worker usable", async () => {
  let failNext = true;
  await using worker = await testWorker<Deps>({
    async *lifespan() {
      await Promise.resolve();
      if (failNext) throw new Error("cannot reach the database");
      yield { name: "deps", run: 2 };
    },
  });
  let calls = 0;
  const work = worker.task(async function work(): Promise<string> {
    calls++;
    return await Promise.resolve(worker.context.name);
  });
  const handle = await work.enqueue();
  await assert.rejects(worker.run(), { message: "cannot reach the database" });
  assert.equal(calls, 0);
  assert.equal(worker.running(), 0);
  assert.throws(() => worker.context, StreaqError);
  assert.equal(await handle.status(), TaskStatus.QUEUED);

  failNext = false;
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "deps");
});

Deno.test("worker.context throws a StreaqError outside a run", async () => {
  await using worker = await testWorker<Deps>({
    async *lifespan() {
      await Promise.resolve();
      yield { name: "deps", run: 1 };
    },
  });
  assert.throws(() => worker.context, (error: Error) => {
    assert.ok(error instanceof StreaqError);
    assert.match(error.message, /only while the worker runs/);
    return true;
  });
  const running = runInBackground(worker);
  await eventually(() => {
    try {
      return worker.context.name === "deps";
    } catch {
      return false;
    }
  }, { what: "the lifespan to yield" });
  await running.stop();
  assert.throws(() => worker.context, StreaqError);
});

Deno.test("without a lifespan worker.context is undefined while the worker runs", async () => {
  await using worker = await testWorker();
  const peek = worker.task(async function peek(): Promise<string> {
    return await Promise.resolve(typeof worker.context);
  });
  const handle = await peek.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "undefined");
});
