import assert from "node:assert/strict";
import {
  type DependencyResults,
  type RegisteredTask,
  StreaqError,
  taskContext,
  TaskStatus,
  type Worker,
} from "../mod.ts";
import { eventually, runInBackground, sleep, testWorker } from "./_helpers.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { fanIn, threadedReader } from "./fixtures/fan_in_tasks.ts";
import { queueContextOf } from "../src/worker.ts";
import { TASK_FIELD } from "../src/redis/keys.ts";

/** A worker with two producing tasks of different result types. */
async function producers(worker?: Worker<unknown>) {
  worker ??= await testWorker({ concurrency: 8 });
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const label = worker.task(async function label(text: string): Promise<string> {
    return await Promise.resolve(`<${text}>`);
  });
  return { worker, double, label };
}

/** Never called: type-checks that a result's type flows from the task that produced it. */
export function typedByTheirTask(
  deps: DependencyResults,
  double: RegisteredTask<[number], number>,
): unknown[] {
  const n: number = deps.of(double).result;
  // @ts-expect-error double resolves to a number, not a string
  const s: string = deps.of(double).result;
  const all: number[] = deps.allOf(double).map((r) => r.success ? r.result : 0);
  return [n, s, all];
}

Deno.test("a task after two others reads both results, typed by the tasks that produced them", async () => {
  const { worker, double, label } = await producers();
  await using _ = worker;
  let seen: DependencyResults | undefined;
  const combine = worker.task(async function combine(): Promise<string> {
    seen = await taskContext().dependencyResults();
    const n: number = seen.of(double).result;
    const text: string = seen.of(label).result;
    return `${text} ${n + 1}`;
  });
  const a = double.enqueue(20);
  const b = label.enqueue("answer");
  const [handle] = await worker.enqueueMany([
    combine.enqueue().start({ after: [a.id, b.id] }),
    a,
    b,
  ]);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "<answer> 41");
  assert.deepEqual(seen?.ids, [a.id, b.id], "in the order given in after");
  assert.deepEqual(seen?.entries.map((e) => e.status), ["done", "done"]);
  assert.deepEqual(seen?.entries.map((e) => e.result?.fnName), ["double", "label"]);
});

Deno.test("allOf() reads every dependency that ran one task, and of() refuses to pick one of several", async () => {
  const { worker, double } = await producers();
  await using _ = worker;
  let refusal: unknown;
  const total = worker.task(async function total(): Promise<number> {
    const deps = await taskContext().dependencyResults();
    try {
      deps.of(double);
    } catch (error) {
      refusal = error;
    }
    return deps.allOf(double).reduce((sum, r) => sum + r.result, 0);
  });
  const parts = [1, 2, 3].map((n) => double.enqueue(n));
  const [handle] = await worker.enqueueMany([
    total.enqueue().start({ after: parts.map((p) => p.id) }),
    ...parts,
  ]);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, 12);
  assert.ok(refusal instanceof StreaqError);
  assert.match(refusal.message, /as 3 of its dependencies ran it .*use allOf\(double\)/);
});

Deno.test("a dependency whose result expired, or was never stored, is reported as expired", async () => {
  await using worker = await testWorker({ concurrency: 8 });
  const neverStored = worker.task(async function neverStored(): Promise<number> {
    return await Promise.resolve(1);
  }, { ttl: 0 });
  const shortLived = worker.task(async function shortLived(): Promise<number> {
    return await Promise.resolve(2);
  }, { ttl: 200 });
  const gate = Promise.withResolvers<void>();
  const gated = worker.task(async function gated(): Promise<string> {
    await gate.promise;
    return "open";
  });
  let seen: DependencyResults | undefined;
  let refusal: unknown;
  const reader = worker.task(async function reader(): Promise<string> {
    seen = await taskContext().dependencyResults();
    try {
      seen.of(shortLived);
    } catch (error) {
      refusal = error;
    }
    return seen.of(gated).result;
  });
  const a = neverStored.enqueue();
  const b = shortLived.enqueue();
  const c = gated.enqueue();
  const [handle, , shortHandle] = await worker.enqueueMany([
    reader.enqueue().start({ after: [a.id, b.id, c.id] }),
    a,
    b,
    c,
  ]);
  const running = runInBackground(worker);
  // The short-lived result expires (Redis's PX) while the gated dependency still runs.
  await eventually(async () => await shortHandle.status() === TaskStatus.NOT_FOUND, {
    what: "the short-lived result to expire",
  });
  gate.resolve();
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "open", "it ran: its dependencies succeeded");
  assert.deepEqual(seen?.ids, [a.id, b.id, c.id]);
  assert.deepEqual(seen?.entries.map((e) => e.status), ["expired", "expired", "done"]);
  assert.deepEqual(seen?.allOf(shortLived), []);
  assert.ok(refusal instanceof StreaqError);
  assert.match(refusal.message, /none of its dependencies has a stored result of shortLived/);
  assert.ok(refusal.message.includes(`${b.id} (expired)`), refusal.message);
});

Deno.test("a task after a failed dependency fails with 'dependency failed' and its function is not called", async () => {
  const { worker, double } = await producers();
  await using _ = worker;
  const broken = worker.task(async function broken(): Promise<number> {
    await Promise.resolve();
    throw new Error("broken broke");
  }, { maxTries: 1 });
  let called = false;
  const after = worker.task(async function after(): Promise<number> {
    called = true;
    return (await taskContext().dependencyResults()).ids.length;
  });
  const a = broken.enqueue();
  const b = double.enqueue(1);
  const [handle] = await worker.enqueueMany([
    after.enqueue().start({ after: [a.id, b.id] }),
    a,
    b,
  ]);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.match(result.exception.message, new RegExp(`dependency failed: ${a.id} did not succeed`));
  assert.equal(called, false);
});

Deno.test("a fallback reads the failure of the task it stands in for", async () => {
  await using worker = await testWorker({ concurrency: 4 });
  const flaky = worker.task(async function flaky(n: number): Promise<number> {
    await Promise.resolve();
    throw new Error(`flaky broke on ${n}`);
  }, { maxTries: 1 });
  const rescue = worker.task(async function rescue(n: number): Promise<number> {
    const guarded = (await taskContext().dependencyResults()).of(flaky);
    if (guarded.success) return guarded.result; // typed: a number
    return guarded.exception.message.length + n;
  });
  const first = flaky.enqueue(1);
  const fallback = await first.otherwise(rescue);
  const running = runInBackground(worker);
  const result = await fallback.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "flaky broke on 1".length + 1);
});

Deno.test("a pipeline stage finds its source among its dependencies, with the ids given as after", async () => {
  const { worker, double, label } = await producers();
  await using _ = worker;
  let seen: DependencyResults | undefined;
  const stage = worker.task(async function stage(n: number): Promise<string> {
    seen = await taskContext().dependencyResults();
    return `${n} ${seen.of(label).result}`;
  });
  const side = await label.enqueue("side");
  const source = double.enqueue(4);
  const handle = await source.pipe(stage).start({ after: side.id });
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "8 <side>");
  assert.deepEqual(seen?.ids, [source.id, side.id], "the source first");
  assert.equal(seen?.of(double).result, 8);
});

Deno.test("a task without dependencies gets an empty answer", async () => {
  const { worker, double } = await producers();
  await using _ = worker;
  let seen: DependencyResults | undefined;
  let refusal: unknown;
  const alone = worker.task(async function alone(): Promise<number> {
    seen = await taskContext().dependencyResults();
    try {
      seen.of(double);
    } catch (error) {
      refusal = error;
    }
    return seen.entries.length;
  });
  const handle = await alone.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, 0);
  assert.deepEqual(seen?.ids, []);
  assert.deepEqual(seen?.allOf(double), []);
  assert.ok(refusal instanceof StreaqError);
  assert.match(refusal.message, /none of its dependencies .*\(it has none\)/);
});

Deno.test("a dependency without a result whose task is still there is reported as unfinished", async () => {
  const { worker, double } = await producers();
  await using _ = worker;
  const redis = queueContextOf(worker).redis;
  const keys = queueContextOf(worker).keys;
  const gate = Promise.withResolvers<void>();
  let seen: DependencyResults | undefined;
  const reader = worker.task(async function reader(): Promise<number> {
    await gate.promise;
    seen = await taskContext().dependencyResults();
    return seen.entries.length;
  });
  const a = double.enqueue(1);
  const [handle, aHandle] = await worker.enqueueMany([
    reader.enqueue().start({ after: a.id }),
    a,
  ]);
  const running = runInBackground(worker);
  await eventually(async () => await handle.status() === TaskStatus.RUNNING, {
    what: "the reader to run",
  });
  assert.equal(await aHandle.status(), TaskStatus.DONE);
  // As when the dependency is run again under its id (a rerun, a new occurrence): its result
  // is gone and its task is there.
  await redis.del(keys.result(a.id));
  await redis.hset(keys.task(a.id), TASK_FIELD.fn, "double");
  gate.resolve();
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  await redis.del(keys.task(a.id));
  assert.equal(result.success, true);
  assert.deepEqual(seen?.entries, [{ taskId: a.id, status: "unfinished", result: null }]);
});

Deno.test("a dependency result that cannot be decoded fails the read, naming the dependency", async () => {
  const { worker, double } = await producers();
  await using _ = worker;
  const { redis, keys } = queueContextOf(worker);
  const gate = Promise.withResolvers<void>();
  const reader = worker.task(async function reader(): Promise<number> {
    await gate.promise;
    return (await taskContext().dependencyResults()).entries.length;
  }, { maxTries: 1 });
  const a = double.enqueue(1);
  const [handle] = await worker.enqueueMany([reader.enqueue().start({ after: a.id }), a]);
  const running = runInBackground(worker);
  await eventually(async () => await handle.status() === TaskStatus.RUNNING, {
    what: "the reader to run",
  });
  await redis.set(keys.result(a.id), "1 not an envelope");
  gate.resolve();
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.match(
    result.exception.message,
    new RegExp(
      `Cannot read the result of dependency ${a.id} of task reader \\(${handle.id}\\): Cannot decode result`,
    ),
  );
});

Deno.test("a task that reads its dependencies after it finished is told so", async () => {
  await using worker = await testWorker({ concurrency: 2 });
  const gate = Promise.withResolvers<void>();
  const late = Promise.withResolvers<unknown>();
  const stubborn = worker.task(async function stubborn(): Promise<number> {
    await gate.promise; // ignores its signal, past its timeout
    await taskContext().dependencyResults().then(late.resolve, late.resolve);
    return 1;
  }, { timeout: 100, maxTries: 1 });
  const handle = await stubborn.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  assert.equal(result.success === false && result.exception.name, "TimeoutError");
  gate.resolve();
  const error = await late.promise;
  await running.stop();
  assert.ok(error instanceof StreaqError);
  assert.match(
    error.message,
    new RegExp(
      `task stubborn \\(${handle.id}\\) as it has finished: they can be read only while it runs`,
    ),
  );
});

Deno.test("a task in a task thread that asks for its dependency results fails, saying why", async () => {
  await using worker = await testWorker({ concurrency: 2, syncConcurrency: 1 });
  worker.include(fanIn);
  const handle = await threadedReader.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof StreaqError, String(result.exception));
  assert.match(
    result.exception.message,
    /in a task thread: a synchronous function cannot await them. Make it async and register it with thread: false/,
  );
});

Deno.test("a task after two others reads both results on a Redis Cluster", async () => {
  await using topology = await startTopology("Cluster");
  {
    await using worker = topologyWorker(topology, "cluster");
    const { double, label } = await producers(worker);
    const combine = worker.task(async function combine(): Promise<string> {
      const deps = await taskContext().dependencyResults();
      return `${deps.of(label).result} ${deps.of(double).result}`;
    });
    const a = double.enqueue(2);
    const b = label.enqueue("cluster");
    const [handle] = await worker.enqueueMany([
      combine.enqueue().start({ after: [a.id, b.id] }),
      a,
      b,
    ]);
    const running = runInBackground(worker);
    const result = await handle.result({ timeout: 20_000 });
    await running.stop();
    assert.equal(result.success && result.result, "<cluster> 4");
  }
  // As in topology_test.ts: a Cluster client may still be refreshing its slot table through a
  // connection that quit() does not wait for; let it end before the sanitizer looks.
  await sleep(1_500);
});
