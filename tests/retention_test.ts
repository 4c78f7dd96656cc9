import assert from "node:assert/strict";
import { Envelope } from "../src/payload/envelope.ts";
import { lua } from "../src/redis/lua/compose.ts";
import { resultHeader } from "../src/redis/lua/results.ts";
import { ENDED } from "../src/client/graph.ts";
import { StreaqCancelled } from "../mod.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";
import { DEFAULT_FAILURE_TTL, DEFAULT_RESULT_TTL } from "../src/queue_context.ts";

Deno.test("a failure is kept longer than a success by default (7 days against 5 minutes)", async () => {
  await using worker = await testWorker();
  const ok = worker.task(async function ok(): Promise<number> {
    return await Promise.resolve(1);
  });
  const bad = worker.task(async function bad(): Promise<never> {
    await Promise.resolve();
    throw new Error("boom");
  });
  const { redis, keys } = queueContextOf(worker);
  const run = runInBackground(worker);
  const good = await ok.enqueue();
  const failed = await bad.enqueue();
  await good.result({ timeout: 10_000 });
  await failed.result({ timeout: 10_000 });
  await run.stop();
  const successTtl = await redis.pttl(keys.result(good.id));
  const failureTtl = await redis.pttl(keys.result(failed.id));
  assert.ok(successTtl > 0 && successTtl <= DEFAULT_RESULT_TTL, `success PTTL ${successTtl}`);
  assert.ok(
    failureTtl > DEFAULT_FAILURE_TTL - 60_000 && failureTtl <= DEFAULT_FAILURE_TTL,
    `failure PTTL ${failureTtl}`,
  );
});

Deno.test("failureTtl and ttl set on a task govern its failures and its successes", async () => {
  await using worker = await testWorker();
  const flaky = worker.task(async function flaky(fail: boolean): Promise<string> {
    await Promise.resolve();
    if (fail) throw new Error("failed on purpose");
    return "fine";
  }, { ttl: 60_000, failureTtl: 3_600_000 });
  const forever = worker.task(async function forever(): Promise<never> {
    await Promise.resolve();
    throw new Error("kept forever");
  }, { failureTtl: null });
  const { redis, keys } = queueContextOf(worker);
  const run = runInBackground(worker);
  const good = await flaky.enqueue(false);
  const failed = await flaky.enqueue(true);
  const kept = await forever.enqueue();
  for (const t of [good, failed, kept]) await t.result({ timeout: 10_000 });
  await run.stop();
  const success = await redis.pttl(keys.result(good.id));
  const failure = await redis.pttl(keys.result(failed.id));
  assert.ok(success > 0 && success <= 60_000, `success PTTL ${success}`);
  assert.ok(failure > 3_000_000 && failure <= 3_600_000, `failure PTTL ${failure}`);
  assert.equal(await redis.pttl(keys.result(kept.id)), -1, "no expiry with failureTtl null");
});

Deno.test("an abort before the start stores its cancellation for the failureTtl", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {}, { failureTtl: 7_200_000 });
  const { redis, keys } = queueContextOf(worker);
  const t = await later.enqueue().start({ delay: 60_000 });
  assert.equal(await t.abort({ timeout: 0 }), true);
  const r = await t.result({ timeout: 1_000 });
  assert.ok(!r.success && r.exception instanceof StreaqCancelled);
  const ttl = await redis.pttl(keys.result(t.id));
  assert.ok(ttl > 7_000_000 && ttl <= 7_200_000, `PTTL ${ttl}`);
});

Deno.test("a failureTtl default is never shorter than the task's ttl", async () => {
  await using worker = await testWorker();
  const long = worker.task(async function long(): Promise<void> {}, { ttl: 30 * 86_400_000 });
  const keptForever = worker.task(async function keptForever(): Promise<void> {}, { ttl: null });
  const short = worker.task(async function short(): Promise<void> {}, { ttl: 0 });
  const brief = worker.task(async function brief(): Promise<void> {}, { ttl: 1_000 });
  assert.equal(brief.failureTtl, DEFAULT_FAILURE_TTL);
  assert.equal(long.failureTtl, 30 * 86_400_000);
  assert.equal(keptForever.failureTtl, null);
  assert.equal(short.failureTtl, 0, "a task that stores no result stores no failure either");
});

Deno.test("failureTtl and keepResults refuse bad values, naming them", async () => {
  await using worker = await testWorker();
  assert.throws(
    () => worker.task(async function a(): Promise<void> {}, { failureTtl: -1 }),
    /Cannot register task a as 'failureTtl' must be a number of milliseconds ≥ 0 or null: received -1/,
  );
  assert.throws(
    () => worker.task(async function b(): Promise<void> {}, { keepResults: 0 }),
    /Cannot register task b as 'keepResults' must be an integer ≥ 1: received 0/,
  );
  assert.throws(
    () =>
      worker.task(async function c(): Promise<void> {}, { keepResults: "5" as unknown as number }),
    /'keepResults' must be an integer ≥ 1: received "5"/,
  );
});

Deno.test("keepResults keeps exactly the newest N results of a function", async () => {
  // One at a time, each a few ms long: finish times differ, in the order the functions end.
  await using worker = await testWorker({ concurrency: 1 });
  const ended: number[] = [];
  const kept = worker.task(async function kept(n: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, 3));
    ended.push(n);
    if (n % 3 === 0) throw new Error(`failure ${n}`);
    return n;
  }, { keepResults: 5 });
  const other = worker.task(async function other(): Promise<void> {});
  const { redis, keys } = queueContextOf(worker);
  const handles = await worker.enqueueMany(Array.from({ length: 30 }, (_, i) => kept.enqueue(i)));
  const others = await worker.enqueueMany(Array.from({ length: 10 }, () => other.enqueue()));
  await worker.run({ burst: true });
  const stored = [];
  for (const [n, t] of handles.entries()) if (await redis.exists(keys.result(t.id))) stored.push(n);
  assert.equal(ended.length, 30);
  assert.deepEqual(stored, ended.slice(-5).sort((a, b) => a - b), "the newest five, no other");
  for (const n of stored) {
    const r = await handles[n].result({ timeout: 1_000 });
    assert.equal(r.success, n % 3 !== 0, "successes and failures count alike");
  }
  // A failed task's record, kept to rerun it, goes with its result.
  for (const [n, t] of handles.entries()) {
    if (n % 3 !== 0) continue;
    assert.equal(await redis.exists(keys.failed(t.id)), stored.includes(n) ? 1 : 0, `task ${n}`);
  }
  assert.equal(await redis.zcard(keys.kept("kept")), 5, "the index holds the kept ones only");
  assert.equal(await redis.exists(...others.map((t) => keys.result(t.id))), 10, "others untouched");
  assert.equal(await redis.exists(keys.kept("other")), 0, "no index for a function without it");
});

Deno.test("the Lua reading of a result's header agrees with the stored layout", async () => {
  await using worker = await testWorker();
  const { redis } = queueContextOf(worker);
  const script = lua(
    resultHeader,
    `local ended, finish, fn = resultHeader(ARGV[1]) return {ended or false, tostring(finish), fn or false}`,
  );
  const record = {
    taskId: "t1",
    fnName: "a function with a long name ".repeat(10),
    createdTime: 1_700_000_000_123,
    enqueueTime: 1_700_000_000_100,
    startTime: 1_700_000_005_000,
    finishTime: 1_700_000_004_999,
    tries: 300,
    workerId: "w",
  };
  const binary = {
    serializer: (v: unknown) => new TextEncoder().encode(JSON.stringify(v)),
    deserializer: (b: string | Uint8Array) => JSON.parse(new TextDecoder().decode(b as Uint8Array)),
  };
  for (
    const envelope of [
      new Envelope({}),
      new Envelope({ signingSecret: "secret" }),
      new Envelope(binary),
      new Envelope({ ...binary, signingSecret: "secret" }),
    ]
  ) {
    for (
      const [success, value, ended] of [[true, 42, ENDED.success], [
        false,
        new Error("x"),
        ENDED.failure,
      ]] as const
    ) {
      const { blob } = await envelope.sealResult({ ...record, success, value });
      const [e, finish, fn] = await redis.eval(script, 0, blob) as string[];
      assert.deepEqual([e, Number(finish), fn], [ended, record.finishTime, record.fnName]);
    }
  }
  const cut = await redis.eval(script, 0, "1s\x10\x01") as unknown[];
  assert.equal(cut[0], null, "a header cut short reads as nothing");
});
