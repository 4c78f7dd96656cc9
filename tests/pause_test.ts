import assert from "node:assert/strict";
import { taskContext } from "../mod.ts";
import { eventually, runInBackground, sleep, testWorker } from "./_helpers.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { uniqueQueue } from "./_redis.ts";
import { allStarts, flowClient, quietFor, startWorkers } from "./_flow.ts";

/** How late a start may come after a pause took effect ("within a second"). */
const PAUSE_BOUND = 1_000;

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`pause() stops starts in every worker process within a second, and resume() restarts them (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "pause-all");
    const { slow } = flowClient(client);
    const workers = startWorkers(topology.connection, client.queueName, 3);
    try {
      const handles = await client.enqueueMany(
        Array.from({ length: 300 }, (_, i) => slow.enqueue(i)),
      );
      await eventually(() => allStarts(workers).length >= 20, { what: "20 starts" });
      await client.pause();
      const pausedAt = Date.now();
      // Starts may still come while the pause travels; after a second, none.
      await sleep(PAUSE_BOUND);
      const before = allStarts(workers).length;
      await quietFor(
        1_500,
        "no start while the queue is paused",
        () => allStarts(workers).length === before,
      );
      assert.ok(before < 300, `all ${before} tasks started despite the pause`);
      assert.ok(allStarts(workers).every((s) => s.at <= pausedAt + PAUSE_BOUND));
      assert.deepEqual((await client.paused()).functions, []);
      assert.ok((await client.paused()).queue instanceof Date);
      // Enqueueing still works while paused.
      handles.push(await slow.enqueue(300));

      await client.resume();
      assert.equal((await client.paused()).queue, null);
      const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
      assert.ok(results.every((r) => r.success));
      // Nothing ran twice, and a task handed back because of the pause counted no try.
      const starts = allStarts(workers);
      assert.equal(new Set(starts.map((s) => s.taskId)).size, 301);
      assert.ok(starts.every((s) => s.tries === 1), "a try was counted for a paused task");
      assert.ok(results.every((r) => r.tries === 1));
      // All three processes took part after the resume.
      const resumedStarts = workers.map((w) => w.starts.filter((s) => s.at > pausedAt).length);
      assert.ok(resumedStarts.every((n) => n > 0), `starts after resume: ${resumedStarts}`);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  Deno.test(`pause({ functions }) holds that function in every worker process while the others run (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "pause-fn");
    const { slow, fast } = flowClient(client);
    const workers = startWorkers(topology.connection, client.queueName, 3);
    try {
      assert.equal(await client.pause({ functions: ["slow"] }), 1);
      assert.equal(await client.pause({ functions: ["slow"] }), 0);
      const slowTasks = await client.enqueueMany(
        Array.from({ length: 30 }, (_, i) => slow.enqueue(i)),
      );
      const fastTasks = await client.enqueueMany(
        Array.from({ length: 30 }, (_, i) => fast.enqueue(i)),
      );
      const fastResults = await Promise.all(fastTasks.map((h) => h.result({ timeout: 20_000 })));
      assert.ok(fastResults.every((r) => r.success));
      await eventually(async () => (await client.paused()).functions[0]?.held === 30, {
        what: "the 30 slow tasks set aside",
      });
      assert.equal(allStarts(workers).filter((s) => s.fn === "slow").length, 0);
      assert.ok((await Promise.all(slowTasks.map((h) => h.status()))).every((s) => s === "queued"));

      await client.resume({ functions: ["slow"] });
      assert.deepEqual(await client.paused(), { queue: null, functions: [] });
      const slowResults = await Promise.all(slowTasks.map((h) => h.result({ timeout: 20_000 })));
      assert.ok(slowResults.every((r) => r.success && r.tries === 1));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

Deno.test("a pause survives worker restarts: a worker started later starts no paused work", async () => {
  await using client = await testWorker();
  const { fast } = flowClient(client);
  await client.pause({ functions: ["fast"] });
  await using worker = await testWorker({ queueName: client.queueName });
  let ran = 0;
  worker.task(async function fast(n: number): Promise<number> {
    ran++;
    return await Promise.resolve(n);
  });
  const run = runInBackground(worker);
  const handle = await fast.enqueue(1);
  await eventually(async () => (await client.paused()).functions[0]?.held === 1, {
    what: "the task set aside",
  });
  await run.stop();
  const again = runInBackground(worker);
  await quietFor(700, "no run while paused, after a restart", () => ran === 0);
  await client.resume({ functions: ["fast"] });
  assert.equal((await handle.result({ timeout: 10_000 })).tries, 1);
  assert.equal(ran, 1);
  await again.stop();
});

Deno.test("a delivery prefetched before a pause is handed back, its try uncounted, and runs after resume", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 4 });
  const release = Promise.withResolvers<void>();
  const started: string[] = [];
  const blocker = worker.task(async function blocker(): Promise<void> {
    started.push(taskContext().taskId);
    await release.promise;
  });
  const later = worker.task(async function later(n: number): Promise<number> {
    started.push(taskContext().taskId);
    return await Promise.resolve(n);
  });
  const run = runInBackground(worker);
  const first = await blocker.enqueue();
  await eventually(() => started.length === 1, { what: "the blocker to start" });
  const rest = await worker.enqueueMany([1, 2, 3].map((n) => later.enqueue(n)));
  // The three are read ahead into the worker's buffer while the blocker runs.
  await sleep(200);
  await worker.pause();
  await sleep(200);
  release.resolve();
  assert.equal((await first.result({ timeout: 5_000 })).success, true);
  await quietFor(700, "no start of prefetched work while paused", () => started.length === 1);
  await worker.resume();
  const results = await Promise.all(rest.map((h) => h.result({ timeout: 5_000 })));
  assert.deepEqual(results.map((r) => [r.success, r.tries]), [[true, 1], [true, 1], [true, 1]]);
  await run.stop();
});

Deno.test("pause() and resume() reject bad options with a message naming them", async () => {
  await using worker = await testWorker({ queueName: uniqueQueue("pause-bad") });
  await assert.rejects(
    async () => await worker.pause({ functions: [] }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot pause as 'functions' must be a non-empty array of function names: received [] (Array)",
  );
  await assert.rejects(
    async () => await worker.resume({ functions: ["a b"] }),
    /Cannot resume as 'functions' must be a non-empty string without spaces: received "a b"/,
  );
  await assert.rejects(
    // @ts-expect-error: an unknown option
    async () => await worker.pause({ function: "x" }),
    /Cannot pause as 'function' is not an option: expected one of functions/,
  );
});

Deno.test("info() of a queued task says it waits because the queue or its function is paused", async () => {
  await using worker = await testWorker();
  const { fast } = flowClient(worker);
  const handle = await fast.enqueue(1);
  assert.equal((await handle.info())?.waitReason, null);
  await worker.pause({ functions: ["fast"] });
  assert.equal((await handle.info())?.waitReason, "paused: function fast is paused");
  await worker.pause();
  assert.equal((await handle.info())?.waitReason, "paused: the queue is paused");
  await worker.resume();
  await worker.resume({ functions: ["fast"] });
  assert.equal((await handle.info())?.waitReason, null);
  assert.equal((await handle.info())?.status, "queued");
});

Deno.test("drain() removes the tasks set aside by a pause too, and resume() then finds none", async () => {
  await using worker = await testWorker();
  const ran: number[] = [];
  const held = worker.task(async function held(n: number): Promise<number> {
    ran.push(n);
    return await Promise.resolve(n);
  });
  await worker.pause({ functions: ["held"] });
  const running = runInBackground(worker);
  try {
    const handles = await worker.enqueueMany([1, 2, 3].map((n) => held.enqueue(n)));
    await eventually(async () => (await worker.paused()).functions[0]?.held === 3, {
      what: "three tasks set aside",
    });
    assert.equal(await worker.drain(), 3);
    assert.equal((await worker.paused()).functions[0].held, 0);
    assert.deepEqual(await Promise.all(handles.map((h) => h.status())), [
      "missing",
      "missing",
      "missing",
    ]);
    await worker.resume({ functions: ["held"] });
    await quietFor(300, "nothing to run after the drain", () => ran.length === 0);
  } finally {
    await running.stop();
  }
});
