import assert from "node:assert/strict";
import { StreaqError, taskContext, TaskStatus, type Worker } from "../mod.ts";
import { queueContextOf } from "../src/worker.ts";
import { DEFAULT_FAILURE_TTL } from "../src/queue_context.ts";
import { eventually, runInBackground, sleep, testWorker } from "./_helpers.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";

/** Every key of the worker's queue, sorted, without the queue's prefix. */
async function queueKeys(worker: Worker<unknown>): Promise<string[]> {
  const prefix = `streaq:{${worker.queueName}}:`;
  const keys = await queueContextOf(worker).redis.keys(`${prefix}*`);
  return keys.map((key) => key.slice(prefix.length)).sort();
}

/** The tasks of a test: `flaky` fails until `state.fixed`, and records what it was called with. */
function flakyTasks(worker: Worker<unknown>) {
  const state = { fixed: false, calls: [] as [string, number, number][] };
  const flaky = worker.task(async function flaky(name: string, n: number): Promise<string> {
    await Promise.resolve();
    state.calls.push([name, n, taskContext().tries]);
    if (!state.fixed) throw new Error(`bug for ${name}`);
    return `${name}:${n * 2}`;
  }, { maxTries: 1 });
  const other = worker.task(async function other(): Promise<void> {
    await Promise.resolve();
    if (!state.fixed) throw new Error("other bug");
  }, { maxTries: 1 });
  return { state, flaky, other };
}

Deno.test("a failed task rerun by id runs again with its original arguments and succeeds", async () => {
  await using worker = await testWorker();
  const { state, flaky } = flakyTasks(worker);
  const handle = await flaky.enqueue("ada", 21);
  const running = runInBackground(worker);
  try {
    const failed = await handle.result({ timeout: 5_000 });
    assert.equal(failed.success, false);
    state.fixed = true;
    const again = await worker.retryById<string>(handle.id);
    assert.equal(again.id, handle.id);
    assert.equal(again.fnName, "flaky");
    const result = await again.result({ timeout: 5_000 });
    assert.equal(result.success && result.result, "ada:42");
    assert.equal(result.tries, 1, "a rerun starts a fresh count of tries");
    assert.deepEqual(state.calls, [["ada", 21, 1], ["ada", 21, 1]]);
    assert.deepEqual(
      (await queueKeys(worker)).filter((k) => k.includes(handle.id)),
      [`result:${handle.id}`],
      "the failed record went back to run, and the success keeps none",
    );
  } finally {
    await running.stop();
  }
});

Deno.test("handle.retry() reruns a failed task and the same handle sees the new result", async () => {
  await using worker = await testWorker();
  const { state, flaky } = flakyTasks(worker);
  const handle = await flaky.enqueue("bob", 1);
  const running = runInBackground(worker);
  try {
    assert.equal((await handle.result({ timeout: 5_000 })).success, false);
    state.fixed = true;
    assert.equal(await handle.retry(), handle);
    const result = await handle.result({ timeout: 5_000 });
    assert.equal(result.success && result.result, "bob:2");
  } finally {
    await running.stop();
  }
});

Deno.test("a failed task keeps its record as long as its result; a success keeps none", async () => {
  await using worker = await testWorker();
  const { flaky } = flakyTasks(worker);
  const ok = worker.task(async function ok(n: number): Promise<number> {
    await Promise.resolve();
    return n;
  }, { ttl: 60_000 });
  const bad = await flaky.enqueue("x", 1);
  const good = await ok.enqueue(7);
  const running = runInBackground(worker);
  try {
    await bad.result({ timeout: 5_000 });
    await good.result({ timeout: 5_000 });
  } finally {
    await running.stop();
  }
  const keys = (await queueKeys(worker)).filter((k) => k.includes(bad.id) || k.includes(good.id));
  assert.deepEqual(keys, [`failed:${bad.id}`, `result:${bad.id}`, `result:${good.id}`].sort());
  const redis = queueContextOf(worker).redis;
  const prefix = `streaq:{${worker.queueName}}:`;
  const recordTtl = await redis.pttl(`${prefix}failed:${bad.id}`);
  const resultTtl = await redis.pttl(`${prefix}result:${bad.id}`);
  // A failure's failureTtl: seven days by default.
  assert.ok(recordTtl > 0 && recordTtl <= DEFAULT_FAILURE_TTL, `record ttl ${recordTtl}`);
  assert.ok(Math.abs(recordTtl - resultTtl) < 1_000, `${recordTtl} vs ${resultTtl}`);
  const record = await redis.hgetall(`${prefix}failed:${bad.id}`);
  assert.equal(record.fn, "flaky");
  assert.ok(record.data, "the encoded arguments are kept");
});

Deno.test("a failure whose result is not stored (ttl 0) keeps nothing and cannot be rerun", async () => {
  await using worker = await testWorker();
  const gone = worker.task(async function gone(): Promise<void> {
    await Promise.resolve();
    throw new Error("no trace");
  }, { ttl: 0, maxTries: 1 });
  const handle = await gone.enqueue();
  const running = runInBackground(worker);
  try {
    await eventually(async () => (await handle.status()) === TaskStatus.NOT_FOUND, {
      what: "the task to finish without a trace",
    });
  } finally {
    await running.stop();
  }
  assert.deepEqual((await queueKeys(worker)).filter((k) => k.includes(handle.id)), []);
  await assert.rejects(worker.retryById(handle.id), /as it is unknown/);
});

Deno.test("retryFailed reruns the failed tasks of one function, and reports the count", async () => {
  await using worker = await testWorker();
  const { state, flaky, other } = flakyTasks(worker);
  const handles = await worker.enqueueMany([
    flaky.enqueue("a", 1),
    flaky.enqueue("b", 2),
    flaky.enqueue("c", 3),
    other.enqueue(),
  ]);
  const running = runInBackground(worker);
  try {
    for (const h of handles) assert.equal((await h.result({ timeout: 5_000 })).success, false);
    state.fixed = true;
    assert.equal(await worker.retryFailed({ fnName: "flaky" }), 3);
    for (const h of handles.slice(0, 3)) {
      assert.equal((await h.result({ timeout: 5_000 })).success, true);
    }
    assert.equal(await handles[3].status(), TaskStatus.DONE);
    assert.equal((await handles[3].result()).success, false, "the other function is left alone");
    assert.equal(await worker.retryFailed({ fnName: "flaky" }), 0, "nothing failed is left");
    assert.equal(await worker.retryFailed(), 1, "without options: every failed task");
    assert.equal((await handles[3].result({ timeout: 5_000 })).success, true);
  } finally {
    await running.stop();
  }
});

Deno.test("retryFailed with since reruns only the tasks that failed at or after that time", async () => {
  await using worker = await testWorker();
  const { state, flaky } = flakyTasks(worker);
  const running = runInBackground(worker);
  try {
    const early = await worker.enqueueMany([flaky.enqueue("e1", 1), flaky.enqueue("e2", 2)]);
    for (const h of early) await h.result({ timeout: 5_000 });
    await sleep(5); // the clock moves past the early failures' millisecond
    const since = new Date();
    await sleep(5);
    const late = await flaky.enqueue("late", 3);
    await late.result({ timeout: 5_000 });
    state.fixed = true;
    assert.equal(await worker.retryFailed({ fnName: "flaky", since }), 1);
    assert.equal((await late.result({ timeout: 5_000 })).success, true);
    for (const h of early) assert.equal((await h.result()).success, false);
  } finally {
    await running.stop();
  }
});

Deno.test("a rerun of a task that is not failed is refused with a message saying why", async () => {
  await using worker = await testWorker();
  const ok = worker.task(async function ok(): Promise<string> {
    await Promise.resolve();
    return "fine";
  });
  const queued = await ok.enqueue();
  await assert.rejects(
    worker.retryById(queued.id),
    (error: Error) =>
      error instanceof StreaqError &&
      /Cannot retry task .* as it has not finished/.test(error.message),
  );
  await assert.rejects(
    worker.retryById("no-such-task"),
    /Cannot retry task no-such-task as it is unknown/,
  );
  const running = runInBackground(worker);
  try {
    await queued.result({ timeout: 5_000 });
  } finally {
    await running.stop();
  }
  await assert.rejects(queued.retry(), /Cannot retry task .* as it succeeded/);
  assert.equal(await worker.retryFailed(), 0);
  await assert.rejects(worker.retryById(""), TypeError);
});

Deno.test("concurrent reruns of one failed task queue it once", async () => {
  await using worker = await testWorker();
  const { state, flaky } = flakyTasks(worker);
  const handle = await flaky.enqueue("once", 1);
  let running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  state.fixed = true;
  const outcomes = await Promise.allSettled(
    Array.from({ length: 5 }, () => worker.retryById(handle.id)),
  );
  assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 1);
  for (const o of outcomes) {
    if (o.status === "rejected") assert.match(String(o.reason), /as it has not finished/);
  }
  assert.equal(await worker.retryFailed(), 0);
  running = runInBackground(worker);
  try {
    assert.equal((await handle.result({ timeout: 5_000 })).success, true);
  } finally {
    await running.stop();
  }
  assert.equal(state.calls.length, 2, "one failed run, one rerun");
});

Deno.test("retryFailed checks its options", async () => {
  await using worker = await testWorker();
  await assert.rejects(
    worker.retryFailed({ fnName: "" }),
    /Cannot retry failed tasks as 'fnName' must be a non-empty string: received "" \(string\)/,
  );
  await assert.rejects(
    worker.retryFailed({ since: new Date("nope") }),
    /Cannot retry failed tasks as 'since' must be a valid Date: received Date Invalid Date/,
  );
});

Deno.test("a task that failed with its dependency reruns after it, once the dependency's rerun succeeded", async () => {
  await using worker = await testWorker();
  const { state, flaky } = flakyTasks(worker);
  const report = worker.task(async function report(label: string): Promise<string> {
    return await Promise.resolve(`report ${label}`);
  });
  const first = await flaky.enqueue("dep", 5);
  const dependent = await report.enqueue("after dep").start({ after: [first.id] });
  const running = runInBackground(worker);
  try {
    const failed = await dependent.result({ timeout: 5_000 });
    assert.equal(failed.success, false, "it fails with its dependency");
    state.fixed = true;
    await first.retry();
    assert.equal((await first.result({ timeout: 5_000 })).success, true);
    await dependent.retry();
    const result = await dependent.result({ timeout: 5_000 });
    assert.equal(result.success && result.result, "report after dep");
  } finally {
    await running.stop();
  }
});

Deno.test("on a Redis Cluster, failed tasks rerun by id and by function", async () => {
  await using topology = await startTopology("Cluster");
  const worker = topologyWorker(topology, "cluster");
  try {
    const { state, flaky } = flakyTasks(worker);
    const handles = await worker.enqueueMany([flaky.enqueue("c1", 1), flaky.enqueue("c2", 2)]);
    const running = runInBackground(worker);
    try {
      for (const h of handles) assert.equal((await h.result({ timeout: 5_000 })).success, false);
      state.fixed = true;
      await worker.retryById(handles[0].id);
      assert.equal(await worker.retryFailed({ fnName: "flaky" }), 1);
      const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
      assert.deepEqual(results.map((r) => r.success && r.result), ["c1:2", "c2:4"]);
    } finally {
      await running.stop();
    }
  } finally {
    await worker.close();
  }
  // See tests/topology_test.ts: a Cluster client's slot refresh may outlive quit() briefly.
  await sleep(1_500);
});
