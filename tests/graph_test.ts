import assert from "node:assert/strict";
import {
  StreaqCancelled,
  StreaqError,
  StreaqRetry,
  taskContext,
  TaskStatus,
  type Worker,
} from "../mod.ts";
import {
  denoExecutable,
  eventually,
  runInBackground,
  testWorker,
  workerProcessArgs,
} from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Asserts that nothing of the queue is left but results, the streams with their consumer group,
 * health keys and per-minute metrics (all of which expire or stay bounded): no task hash,
 * waiting set, dependency set or delayed entry.
 */
async function assertNothingStranded(worker: Worker<unknown>): Promise<void> {
  const keys = await queueContextOf(worker).redis.keys(`streaq:{${worker.queueName}}:*`);
  // Failed tasks keep their record beside their result, to be rerun (src/client/rerun.ts).
  // `linked` is one key per queue, kept once a task had dependents.
  const leftovers = keys.filter((k) => !/:(result|failed|stream|health|metrics):|:linked$/.test(k))
    .sort();
  assert.deepEqual(leftovers, [], "keys left behind");
  for (const key of keys.filter((k) => k.includes(":stream:"))) {
    assert.equal(await queueContextOf(worker).redis.xlen(key), 0, `${key} still has entries`);
  }
}

/** A worker with tasks that log what they were called with. */
async function graphWorker() {
  const worker = await testWorker({ concurrency: 4 });
  const calls: string[] = [];
  const step = worker.task(async function step(name: string): Promise<string> {
    calls.push(name);
    return await Promise.resolve(name);
  });
  const fail = worker.task(async function fail(name: string): Promise<string> {
    calls.push(name);
    await Promise.resolve();
    throw new Error(`${name} broke`);
  });
  const double = worker.task(async function double(n: number): Promise<number> {
    calls.push(`double ${n}`);
    return await Promise.resolve(n * 2);
  });
  const add = worker.task(async function add(n: number, more: number): Promise<number> {
    calls.push(`add ${n} ${more}`);
    return await Promise.resolve(n + more);
  });
  const describe = worker.task(async function describe(n: number): Promise<string> {
    calls.push(`describe ${n}`);
    return await Promise.resolve(n % 2 === 0 ? `${n} is even` : `${n} is odd`);
  });
  return { worker, calls, step, fail, double, add, describe };
}

Deno.test("a task with one dependency waits, listed as scheduled, until it succeeds", async () => {
  const { worker, calls, step } = await graphWorker();
  await using _ = worker;
  const first = await step.enqueue("first").start({ delay: 300 });
  const second = await step.enqueue("second").start({ after: first.id });
  assert.equal(await second.status(), TaskStatus.SCHEDULED);
  const info = await second.info();
  assert.deepEqual(info?.dependencies, [first.id]);
  assert.equal(info?.scheduled, null);
  assert.deepEqual((await first.info())?.dependents, [second.id]);
  const scheduled = await worker.getTasksByStatus(TaskStatus.SCHEDULED);
  assert.deepEqual(scheduled.map((t) => t.taskId).sort(), [first.id, second.id].sort());

  const running = runInBackground(worker);
  const result = await second.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "second");
  assert.deepEqual(calls, ["first", "second"]);
  const [firstDone, secondDone] = [await first.result(), await second.result()];
  assert.ok(secondDone.startTime >= firstDone.finishTime);
  await assertNothingStranded(worker);
});

Deno.test("a task linked by a version without the 'linked' flag is still released: the completion finds it in the waiting set", async () => {
  const { worker, calls, step } = await graphWorker();
  await using _ = worker;
  const first = await step.enqueue("first");
  const second = await step.enqueue("second").start({ after: first.id });
  // What an older version leaves: the dependents set, and no flag.
  const client = queueContextOf(worker);
  await client.redis.del(`${client.keys.prefix}linked`);
  const running = runInBackground(worker);
  const result = await second.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "second");
  assert.deepEqual(calls, ["first", "second"]);
  await assertNothingStranded(worker);
});

Deno.test("a task with several dependencies runs only after all of them succeed", async () => {
  const { worker, calls, step } = await graphWorker();
  await using _ = worker;
  const a = step.enqueue("a").start({ delay: 200 });
  const b = step.enqueue("b").start({ delay: 400 });
  const c = step.enqueue("c").start({ after: [a.id, b.id] });
  // c comes first in the batch: the batch is sent dependencies first.
  const [hc] = await worker.enqueueMany([c, a, b]);
  const running = runInBackground(worker);
  const result = await hc.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "c");
  assert.deepEqual(calls, ["a", "b", "c"]);
  await assertNothingStranded(worker);
});

Deno.test("a failed dependency fails its dependents transitively without running them", async () => {
  const { worker, calls, step, fail } = await graphWorker();
  await using _ = worker;
  const broken = fail.enqueue("broken");
  const child = step.enqueue("child").start({ after: broken.id });
  const grandchild = step.enqueue("grandchild").start({ after: child.id });
  const [, hc, hg] = await worker.enqueueMany([broken, child, grandchild]);
  const running = runInBackground(worker);
  const [rc, rg] = await Promise.all([
    hc.result({ timeout: 5_000 }),
    hg.result({ timeout: 5_000 }),
  ]);
  await running.stop();
  assert.equal(rc.success, false);
  assert.ok(rc.exception instanceof StreaqError);
  assert.match(rc.exception.message, new RegExp(`dependency failed: ${broken.id}`));
  assert.equal(rg.success, false);
  assert.match(rg.exception.message, new RegExp(`dependency failed: ${child.id}`));
  assert.deepEqual(calls, ["broken"]);
  await assertNothingStranded(worker);
});

Deno.test("an unknown dependency fails the dependent and its own dependents", async () => {
  const { worker, calls, step } = await graphWorker();
  await using _ = worker;
  const orphan = await step.enqueue("orphan").start({ after: "no-such-task" });
  const next = await step.enqueue("next").start({ after: orphan.id });
  const running = runInBackground(worker);
  const [ro, rn] = await Promise.all([
    orphan.result({ timeout: 5_000 }),
    next.result({ timeout: 5_000 }),
  ]);
  await running.stop();
  assert.equal(ro.success, false);
  assert.match(ro.exception.message, /unknown dependency no-such-task/);
  assert.match(rn.exception.message, /dependency failed/);
  assert.deepEqual(calls, []);
  await assertNothingStranded(worker);
});

Deno.test("a dependency that already finished is honoured at enqueue", async () => {
  const { worker, calls, step, fail } = await graphWorker();
  await using _ = worker;
  const ok = await step.enqueue("ok");
  const bad = await fail.enqueue("bad");
  await worker.run({ burst: true });
  const afterOk = await step.enqueue("after ok").start({ after: ok.id });
  const afterBad = await step.enqueue("after bad").start({ after: bad.id });
  await worker.run({ burst: true });
  assert.equal((await afterOk.result({ timeout: 1_000 })).success, true);
  const rb = await afterBad.result({ timeout: 1_000 });
  assert.match(rb.exception.message, /dependency failed/);
  assert.deepEqual(calls, ["ok", "bad", "after ok"]);
  await assertNothingStranded(worker);
});

Deno.test("aborting a task that waits for dependencies cancels it and fails its dependents", async () => {
  const { worker, calls, step } = await graphWorker();
  await using _ = worker;
  const slow = step.enqueue("slow").start({ delay: 60_000 });
  const waiting = step.enqueue("waiting").start({ after: slow.id });
  const after = step.enqueue("after").start({ after: waiting.id });
  const [hs, hw, ha] = await worker.enqueueMany([slow, waiting, after]);
  assert.equal(await hw.abort({ timeout: 0 }), true);
  const rw = await hw.result({ timeout: 1_000 });
  assert.ok(rw.exception instanceof StreaqCancelled);
  const running = runInBackground(worker);
  const ra = await ha.result({ timeout: 5_000 });
  assert.ok(ra.exception instanceof StreaqCancelled);
  assert.match(ra.exception.message, new RegExp(`dependency failed: ${waiting.id} was aborted`));
  assert.equal(await hs.abort({ timeout: 0 }), true);
  await running.stop();
  assert.deepEqual(calls, []);
  await assertNothingStranded(worker);
});

Deno.test("a three-stage pipeline passes each result on and returns the last", async () => {
  const { worker, calls, double, add, describe } = await graphWorker();
  await using _ = worker;
  const handle = await double.enqueue(3).pipe(add, 4).pipe(describe);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "10 is even");
  assert.deepEqual(calls, ["double 3", "add 6 4", "describe 10"]);
  await assertNothingStranded(worker);
});

Deno.test("a pipeline stage keeps its input however long it waits, beyond the input's ttl", async () => {
  const worker = await testWorker();
  await using _ = worker;
  const produce = worker.task(async function produce(): Promise<Map<string, Date>> {
    return await Promise.resolve(new Map([["at", new Date(0)]]));
  }, { ttl: 50 });
  const consume = worker.task(async function consume(input: Map<string, Date>): Promise<number> {
    return await Promise.resolve(input.get("at")!.getTime() + 1);
  });
  const gate = worker.task(async function gate() {});
  const gateTask = gate.enqueue().start({ delay: 600 });
  const pipeline = produce.enqueue().pipe(consume).start({ after: gateTask.id });
  const [, handle] = await worker.enqueueMany([gateTask, pipeline]);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, 1);
  await assertNothingStranded(worker);
});

Deno.test("a pipeline whose middle stage is retried several times finishes with the right value", async () => {
  const { worker, double, describe } = await graphWorker();
  await using _ = worker;
  const flaky = worker.task(async function flaky(n: number): Promise<number> {
    if (taskContext().tries < 3) throw new StreaqRetry({ delay: 20 });
    return await Promise.resolve(n + 1);
  }, { maxTries: 5 });
  const handle = await double.enqueue(2).pipe(flaky).pipe(describe);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "5 is odd");
  await assertNothingStranded(worker);
});

Deno.test("a failing pipeline stage fails the stages after it", async () => {
  const { worker, calls, double, describe } = await graphWorker();
  await using _ = worker;
  const broken = worker.task(async function broken(_n: number): Promise<number> {
    await Promise.resolve();
    throw new Error("no");
  });
  const handle = await double.enqueue(1).pipe(broken).pipe(describe);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.match(result.exception.message, /dependency failed/);
  assert.deepEqual(calls, ["double 1"]);
  await assertNothingStranded(worker);
});

Deno.test("aborting the head of a pipeline cancels the rest", async () => {
  const { worker, calls, double, add, describe } = await graphWorker();
  await using _ = worker;
  const head = double.enqueue(1).start({ delay: 60_000 });
  const handle = await head.pipe(add, 1).pipe(describe);
  assert.equal(await worker.abortById(head.id, { timeout: 0 }), true);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.ok(result.exception instanceof StreaqCancelled);
  assert.deepEqual(calls, []);
  await assertNothingStranded(worker);
});

Deno.test("a fallback runs with the same arguments only when its task fails", async () => {
  const { worker, calls, step, fail } = await graphWorker();
  await using _ = worker;
  const recovered = await fail.enqueue("primary").otherwise(step);
  const passed = await step.enqueue("fine").otherwise(fail);
  const running = runInBackground(worker);
  const [rr, rp] = await Promise.all([
    recovered.result({ timeout: 5_000 }),
    passed.result({ timeout: 5_000 }),
  ]);
  await running.stop();
  assert.equal(rr.success && rr.result, "primary");
  assert.equal(rp.success && rp.result, "fine");
  assert.deepEqual(calls.sort(), ["fine", "primary", "primary"]);
  await assertNothingStranded(worker);
});

Deno.test("fallbacks and pipelines combine", async () => {
  const { worker, double, describe } = await graphWorker();
  await using _ = worker;
  const unreliable = worker.task(async function unreliable(_n: number): Promise<number> {
    await Promise.resolve();
    throw new Error("down");
  });
  const handle = await unreliable.enqueue(4).otherwise(double).pipe(describe);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "8 is even");
  await assertNothingStranded(worker);
});

Deno.test("enqueueMany sends pipelines and dependent tasks in one batch", async () => {
  const { worker, step, double, describe } = await graphWorker();
  await using _ = worker;
  const a = step.enqueue("a");
  const b = step.enqueue("b").start({ after: a.id });
  const pipeline = double.enqueue(5).pipe(describe);
  const handles = await worker.enqueueMany([b, pipeline, a]);
  assert.deepEqual(handles.map((h) => h.id), [b.id, pipeline.id, a.id]);
  const running = runInBackground(worker);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  await running.stop();
  assert.deepEqual(results.map((r) => r.success && r.result), ["b", "10 is even", "a"]);
  await assertNothingStranded(worker);
});

Deno.test("tasks that wait for each other in a cycle are refused", async () => {
  const { worker, step } = await graphWorker();
  await using _ = worker;
  const a = step.enqueue("a");
  const b = step.enqueue("b").start({ after: a.id });
  a.start({ after: b.id });
  await assert.rejects(worker.enqueueMany([a, b]), /in a cycle/);
  assert.throws(() => step.enqueue("x").start({ after: ["ok", "with space"] }), /'after' must be/);
  assert.throws(() => step.enqueue("x").start({ after: 42 as never }), /received 42/);
});

Deno.test("a pipeline whose worker is killed mid-stage still finishes with the right value", async () => {
  const { worker, describe } = await graphWorker();
  await using _ = worker;
  // `work` hangs in the crashable subprocess, which knows no other task; here it adds one.
  const work = worker.task(async function work(n: number): Promise<number> {
    return await Promise.resolve(n + 1);
  });
  const handle = await work.enqueue(20).pipe(describe);

  const redis = await sharedRedis();
  const child = new Deno.Command(denoExecutable(), {
    args: workerProcessArgs(
      `${ROOT}tests/fixtures/crashable_worker.ts`,
      redis.url,
      worker.queueName,
      JSON.stringify({ id: "doomed" }),
    ),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await eventually(async () => (await worker.getTasksByStatus(TaskStatus.RUNNING)).length > 0, {
      what: "the subprocess to start the stage",
    });
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  await using reclaimer = await testWorker({ queueName: worker.queueName, idleTimeout: 1_000 });
  reclaimer.task(async function work(n: number): Promise<number> {
    return await Promise.resolve(n + 1);
  });
  reclaimer.task(async function describe(n: number): Promise<string> {
    return await Promise.resolve(`${n} is ${n % 2 === 0 ? "even" : "odd"}`);
  });
  const running = runInBackground(reclaimer);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "21 is odd");
  await assertNothingStranded(worker);
});

Deno.test("a pipeline stage that does not accept the previous result does not type-check", async () => {
  const template = await Deno.readTextFile(`${ROOT}tests/fixtures/mistyped_pipeline.ts.txt`);
  const dir = await Deno.makeTempDir({ prefix: "streaq-typecheck-" });
  const file = `${dir}/mistyped_pipeline.ts`;
  try {
    await Deno.writeTextFile(file, template.replace('"../../mod.ts"', `"${ROOT}mod.ts"`));
    const output = await new Deno.Command(denoExecutable(), {
      args: ["check", `--config=${ROOT}deno.json`, file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.success, false, "a mistyped pipeline type-checked");
    // Exactly the three marked lines fail; the well-typed ones above them pass.
    const lines = [...stderr.matchAll(/mistyped_pipeline\.ts:(\d+):/g)].map((m) => m[1]);
    assert.deepEqual(lines, ["28", "30", "32"], stderr);
    assert.equal(stderr.match(/TS2345/g)?.length, 3, stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
