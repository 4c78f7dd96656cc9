import assert from "node:assert/strict";
import { StreaqError, StreaqRetry, type TaskContext, taskContext, Worker } from "../mod.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { runCli } from "./_cli.ts";
import { parseCommandLine } from "../src/cli/args.ts";
import { queueContextOf } from "../src/worker.ts";
import { createDashboard } from "../src/ui/mod.ts";

const ORIGIN = "http://127.0.0.1:8080";

Deno.test("the lines a task logged are readable after it failed, and kept as long as its failure", async () => {
  await using worker = await testWorker();
  const fragile = worker.task(async function fragile(n: number): Promise<void> {
    const ctx = taskContext();
    ctx.log("starting with", n);
    ctx.log({ step: "parse", rows: 3 });
    await Promise.resolve();
    throw new Error("bad row 2");
  }, { maxTries: 1, failureTtl: 600_000 });
  const handle = await fragile.enqueue(7);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, false);
  const lines = await handle.logs();
  assert.deepEqual(lines.map((l) => l.message), ["starting with 7", '{ step: "parse", rows: 3 }']);
  assert.ok(lines.every((l) => l.tries === 1 && l.time instanceof Date));
  assert.ok(Math.abs(lines[0].time.getTime() - Date.now()) < 60_000, "stamped with the time");
  assert.deepEqual(await worker.logsById(handle.id), lines);
  const { redis, keys } = queueContextOf(worker);
  const pttl = await redis.pttl(keys.logs(handle.id));
  assert.ok(pttl > 0 && pttl <= 600_000, `kept as long as the failure, got pttl ${pttl}`);
});

Deno.test("the newest 100 lines are kept, and a 10 MB line is cut with a marker, the task unharmed", async () => {
  await using worker = await testWorker();
  const chatty = worker.task(async function chatty(): Promise<string> {
    const ctx = taskContext();
    for (let i = 1; i <= 250; i++) ctx.log(`line ${i}`);
    await Promise.resolve();
    ctx.log("x".repeat(10 * 1024 * 1024));
    ctx.log("é".repeat(5_000));
    return "done";
  });
  const handle = await chatty.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.result, "done");
  const lines = await handle.logs();
  assert.equal(lines.length, 100);
  assert.equal(lines[0].message, "line 153");
  assert.equal(lines[97].message, "line 250");
  const big = lines[98].message;
  assert.match(big, /^x+… \[truncated, \d+ more characters\]$/);
  const dropped = Number(/truncated, (\d+) more/.exec(big)![1]);
  assert.equal(big.indexOf("…") + dropped, 10 * 1024 * 1024);
  assert.ok(new TextEncoder().encode(big).byteLength <= 2048);
  const accents = lines[99].message;
  assert.match(accents, /^é+… \[truncated, \d+ more characters\]$/);
  assert.ok(new TextEncoder().encode(accents).byteLength <= 2048, "cut on a character boundary");
});

Deno.test("1,000 lines logged in a loop are written in a few pipelines, not one round trip each", async () => {
  await using redis = await startRedis();
  await using worker = new Worker({
    redisUrl: redis.url,
    queueName: uniqueQueue("logs"),
    logLevel: "error",
    handleSignals: false,
  });
  const looped = Promise.withResolvers<number>();
  const loop = worker.task(async function loop(): Promise<void> {
    const ctx = taskContext();
    const start = performance.now();
    for (let i = 1; i <= 1_000; i++) {
      ctx.log(`step ${i}`);
      if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    looped.resolve(performance.now() - start);
  });
  const handle = await loop.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 10_000 });
  await running.stop();
  const elapsed = await looped.promise;
  const stats = await redis.cli("INFO", "commandstats");
  const rpush = Number(/cmdstat_rpush:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  assert.ok(rpush >= 1, "written");
  // One write per 100 ms window, plus the first and the one at the end.
  assert.ok(rpush <= Math.ceil(elapsed / 100) + 2, `${rpush} writes for ${elapsed.toFixed(0)} ms`);
  const lines = await handle.logs();
  assert.equal(lines.length, 100);
  assert.equal(lines.at(-1)!.message, "step 1000");
});

Deno.test("each try's lines are kept, marked with the try; ttl null keeps them, ttl 0 stores none", async () => {
  await using worker = await testWorker();
  const { redis, keys } = queueContextOf(worker);
  const twice = worker.task(async function twice(): Promise<number> {
    const ctx = taskContext();
    ctx.log(`try ${ctx.tries}`);
    await Promise.resolve();
    if (ctx.tries === 1) throw new StreaqRetry("again", { delay: 0 });
    return ctx.tries;
  }, { ttl: null });
  const fleeting = worker.task(async function fleeting(): Promise<void> {
    taskContext().log("not kept");
    await Promise.resolve();
  }, { ttl: 0 });
  const quiet = worker.task(async function quiet(): Promise<void> {
    await Promise.resolve();
  });
  const a = await twice.enqueue();
  const b = await fleeting.enqueue();
  const c = await quiet.enqueue();
  const running = runInBackground(worker);
  assert.equal((await a.result({ timeout: 10_000 })).result, 2);
  await running.stop();
  assert.deepEqual((await a.logs()).map((l) => [l.tries, l.message]), [[1, "try 1"], [2, "try 2"]]);
  assert.equal(await redis.pttl(keys.logs(a.id)), -1, "kept forever with the result");
  assert.equal(await redis.exists(keys.logs(b.id)), 0);
  assert.deepEqual(await b.logs(), []);
  assert.equal(await redis.exists(keys.logs(c.id)), 0, "a task that never logs writes nothing");
});

Deno.test("log() after the try has finished is a StreaqError", async () => {
  await using worker = await testWorker();
  let kept: TaskContext | undefined;
  const quick = worker.task(async function quick(): Promise<void> {
    kept = taskContext();
    await Promise.resolve();
  });
  const handle = await quick.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.throws(
    () => kept!.log("late"),
    (error: Error) => error instanceof StreaqError && /its try has finished/.test(error.message),
  );
});

Deno.test("the dashboard's task page shows what a failed task logged, escaped", async () => {
  await using worker = await testWorker();
  const failing = worker.task(async function failing(): Promise<void> {
    const ctx = taskContext();
    ctx.log("fetching <page> & parsing");
    ctx.log("giving up");
    await Promise.resolve();
    throw new Error("no luck");
  }, { maxTries: 1 });
  const handle = await failing.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  const handler = createDashboard(worker);
  const page = await (await handler(new Request(`${ORIGIN}/tasks/${handle.id}`))).text();
  assert.match(page, /<h2>Logs \(2\)<\/h2>/);
  assert.match(page, /try 1 {2}fetching &lt;page&gt; &amp; parsing\n.*try 1 {2}giving up/);
  const detail = await (await handler(new Request(`${ORIGIN}/api/tasks/${handle.id}`))).json();
  assert.deepEqual(
    (detail.logs as { tries: number; message: string }[]).map((l) => [l.tries, l.message]),
    [[1, "fetching <page> & parsing"], [1, "giving up"]],
  );
});

Deno.test("streaq logs prints one task's lines; without a task id it is a usage error", async () => {
  await using worker = await testWorker();
  const noisy = worker.task(async function noisy(): Promise<void> {
    taskContext().log("first line");
    taskContext().log("second line");
    await Promise.resolve();
  });
  const handle = await noisy.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  const { code, stdout, stderr } = await runCli(worker.queueName, "logs", handle.id);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^\S+Z {2}try 1 {2}first line\n\S+Z {2}try 1 {2}second line\n$/);
  assert.throws(() => parseCommandLine(["logs", "w.ts"]), /Missing the task id/);
  assert.deepEqual(parseCommandLine(["logs", "w.ts:worker", "abc"]), {
    command: "logs",
    target: { module: "w.ts", exportName: "worker" },
    taskId: "abc",
  });
});

Deno.test("a task's log lines go with its result: removed by clean and by keepResults", async () => {
  await using worker = await testWorker();
  const noisy = worker.task(async function noisy(n: number): Promise<number> {
    taskContext().log(`run ${n}`);
    await Promise.resolve();
    return n;
  }, { keepResults: 1 });
  const first = await noisy.enqueue(1);
  const running = runInBackground(worker);
  await first.result({ timeout: 5_000 });
  assert.equal((await first.logs()).length, 1);
  const second = await noisy.enqueue(2);
  await second.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(await first.logs(), [], "trimmed by keepResults with its result");
  assert.deepEqual((await second.logs()).map((l) => l.message), ["run 2"]);
  assert.equal(await worker.clean(), 1);
  assert.deepEqual(await second.logs(), [], "removed by clean with its result");
});
