import assert from "node:assert/strict";
import { StreaqError, StreaqRetry, taskContext, TaskStatus } from "../mod.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";

Deno.test("StreaqRetry with a delay runs the next try no earlier than that delay", async () => {
  await using worker = await testWorker();
  const starts: number[] = [];
  let retriedAt = 0;
  const later = worker.task(async function later(): Promise<number> {
    starts.push(Date.now());
    await Promise.resolve();
    if (taskContext().tries === 1) {
      retriedAt = Date.now();
      throw new StreaqRetry("wait a little", { delay: 300 });
    }
    return taskContext().tries;
  });
  const handle = await later.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, 2);
  assert.equal(result.tries, 2);
  assert.equal(starts.length, 2);
  assert.ok(starts[1] - retriedAt >= 300, `second try ${starts[1] - retriedAt} ms after the retry`);
});

Deno.test("StreaqRetry with a schedule runs the next try no earlier than that date", async () => {
  await using worker = await testWorker();
  const starts: number[] = [];
  let at: Date | undefined;
  const atTime = worker.task(async function atTime(): Promise<string> {
    starts.push(Date.now());
    await Promise.resolve();
    if (taskContext().tries === 1) {
      at = new Date(Date.now() + 300);
      throw new StreaqRetry("come back later", { schedule: at });
    }
    return "on time";
  });
  const handle = await atTime.enqueue();
  const running = runInBackground(worker);
  await eventually(async () => (await handle.info())?.scheduled != null, {
    what: "the retry to be scheduled",
  });
  assert.equal((await handle.info())?.scheduled?.getTime(), at!.getTime());
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "on time");
  assert.ok(starts[1] >= at!.getTime(), `second try ${at!.getTime() - starts[1]} ms early`);
});

Deno.test("StreaqRetry without options backs off tries² seconds: 1 s after the first try", async () => {
  await using worker = await testWorker();
  const starts: number[] = [];
  let retriedAt = 0;
  const backOff = worker.task(async function backOff(): Promise<number> {
    starts.push(Date.now());
    await Promise.resolve();
    if (taskContext().tries === 1) {
      retriedAt = Date.now();
      throw new StreaqRetry();
    }
    return taskContext().tries;
  });
  const handle = await backOff.enqueue();
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.SCHEDULED, {
    what: "the back-off to start",
  });
  const due = (await handle.info())?.scheduled?.getTime() ?? 0;
  assert.ok(
    due >= retriedAt + 1_000 && due <= retriedAt + 1_200,
    `due ${due - retriedAt} ms after the retry, expected about 1000`,
  );
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, 2);
  assert.ok(starts[1] >= due);
});

Deno.test("the default back-off after the second try is 4 s", async () => {
  await using worker = await testWorker();
  let retriedAt = 0;
  const backOff = worker.task(async function backOff(): Promise<void> {
    await Promise.resolve();
    if (taskContext().tries === 1) throw new StreaqRetry("quick first retry", { delay: 10 });
    retriedAt = Date.now();
    throw new StreaqRetry();
  }, { maxTries: 5 });
  const handle = await backOff.enqueue();
  const running = runInBackground(worker);
  await eventually(async () => {
    const info = await handle.info();
    return info?.tries === 2 && info.status === TaskStatus.SCHEDULED;
  }, { what: "the second back-off to start" });
  const due = (await handle.info())?.scheduled?.getTime() ?? 0;
  assert.equal(await handle.abort({ timeout: 5_000 }), true); // no need to wait 4 s
  await running.stop();
  assert.ok(
    due >= retriedAt + 4_000 && due <= retriedAt + 4_200,
    `due ${due - retriedAt} ms after the retry, expected about 4000`,
  );
});

Deno.test("a task that keeps asking for retries runs maxTries times and fails naming the last retry", async () => {
  await using worker = await testWorker();
  const tries: number[] = [];
  const stubborn = worker.task(async function stubborn(): Promise<void> {
    tries.push(taskContext().tries);
    await Promise.resolve();
    throw new StreaqRetry("still not ready", { delay: 10 });
  }, { maxTries: 3 });
  const handle = await stubborn.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(tries, [1, 2, 3]);
  assert.equal(result.success, false);
  assert.equal(result.tries, 3);
  const error = result.exception;
  assert.ok(error instanceof StreaqError);
  assert.ok(!(error instanceof StreaqRetry), "the final failure is not itself a retry");
  assert.match(error.message, /maxTries/);
  assert.match(error.message, /last allowed try/);
  assert.match(error.message, /still not ready/);
  const cause = error.cause as Error;
  assert.equal(cause?.name, "StreaqRetry");
  assert.ok(cause instanceof StreaqRetry);
  assert.equal(cause.message, "still not ready");
  assert.deepEqual(
    { retried: worker.counters.retried, failed: worker.counters.failed },
    { retried: 2, failed: 1 },
  );
});

Deno.test("context.tries counts 1, 2, 3 across retries", async () => {
  await using worker = await testWorker();
  const tries: number[] = [];
  const third = worker.task(async function third(): Promise<number[]> {
    const { tries: now } = taskContext();
    tries.push(now);
    await Promise.resolve();
    if (now < 3) throw new StreaqRetry("again", { delay: 10 });
    return tries;
  }, { maxTries: 5 });
  const handle = await third.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(result.success && result.result, [1, 2, 3]);
  assert.equal(result.tries, 3);
  assert.deepEqual({ ...worker.counters }, {
    completed: 1,
    failed: 0,
    retried: 2,
    aborted: 0,
    relinquished: 0,
  });
});

Deno.test("a task that throws an ordinary error is not retried", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const broken = worker.task(async function broken(): Promise<void> {
    calls++;
    await Promise.resolve();
    throw new Error("plain failure", { cause: "bad input" });
  }, { maxTries: 5 });
  const handle = await broken.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  assert.equal(await handle.status(), TaskStatus.DONE);
  await running.stop();
  assert.equal(calls, 1);
  assert.equal(result.success, false);
  assert.equal(result.tries, 1);
  assert.equal(result.exception.message, "plain failure");
  assert.equal(result.exception.cause, "bad input");
  assert.equal(worker.counters.retried, 0);
  assert.equal(worker.counters.failed, 1);
});
