import assert from "node:assert/strict";
import {
  type Logger,
  StreaqCancelled,
  taskContext,
  type TaskResult,
  TaskStatus,
  Worker,
} from "../mod.ts";
import {
  eventually,
  pendingByWorker,
  runInBackground,
  sibling,
  sleep,
  testWorker,
} from "./_helpers.ts";
import { uniqueQueue } from "./_redis.ts";
import { startTopology } from "./_topologies.ts";
import { queueContextOf } from "../src/worker.ts";

/** Asserts that `result` is a failure with a StreaqCancelled exception. */
function assertCancelled(result: TaskResult<unknown>): void {
  assert.equal(result.success, false);
  assert.ok(
    result.exception instanceof StreaqCancelled,
    `expected StreaqCancelled, got ${result.exception}`,
  );
}

/**
 * A task body that waits up to 30 s for its signal, reports when it starts, and records the
 * signal's reason.
 */
function signalWaiter() {
  const started = Promise.withResolvers<void>();
  const seen: { reason?: unknown } = {};
  return {
    started: started.promise,
    seen,
    body: async (): Promise<string> => {
      const { signal } = taskContext();
      started.resolve();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30_000);
        signal.addEventListener("abort", () => {
          seen.reason = signal.reason;
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      return "ran to the end";
    },
  };
}

Deno.test("aborting a delayed task cancels it at once", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const later = worker.task(async function later(): Promise<void> {
    calls++;
    await Promise.resolve();
  });
  const handle = await later.enqueue().start({ delay: 60_000 });
  assert.equal(await handle.abort({ timeout: 0 }), true);
  assertCancelled(await handle.result({ timeout: 1_000 }));
  assert.equal(await handle.status(), TaskStatus.DONE);
  assert.equal(await handle.info(), null);
  assert.equal(await worker.queueSize({ includeScheduled: true }), 0);
  await worker.run({ burst: true });
  assert.equal(calls, 0);
});

Deno.test("aborting a queued task stays in force: the worker cancels it without running it", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const queued = worker.task(async function queued(): Promise<void> {
    calls++;
    await Promise.resolve();
  });
  const handle = await queued.enqueue();
  assert.equal(await handle.abort({ timeout: 0 }), false, "not confirmed until a worker sees it");
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assertCancelled(result);
  assert.equal(calls, 0);
  assert.equal(worker.counters.aborted, 1);
});

Deno.test("aborting a running task fires its signal with a StreaqCancelled reason", async () => {
  await using worker = await testWorker();
  const waiter = signalWaiter();
  const slow = worker.task(waiter.body, { name: "slow" });
  const handle = await slow.enqueue();
  const running = runInBackground(worker);
  await waiter.started;
  const before = performance.now();
  const aborted = await handle.abort();
  const elapsed = performance.now() - before;
  await running.stop();
  assert.equal(aborted, true);
  assert.ok(elapsed < 2_000, `abort() took ${elapsed} ms`);
  assert.ok(waiter.seen.reason instanceof StreaqCancelled);
  assertCancelled(await handle.result({ timeout: 1_000 }));
});

Deno.test("aborting a finished task or an unknown id returns false", async () => {
  await using worker = await testWorker();
  const quick = worker.task(async function quick(): Promise<number> {
    return await Promise.resolve(1);
  });
  const handle = await quick.enqueue();
  const running = runInBackground(worker);
  await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(await handle.abort({ timeout: 200 }), false);
  const result = await handle.result({ timeout: 1_000 });
  assert.equal(result.success && result.result, 1, "the result is left as it was");
  assert.equal(await worker.abortById("no-such-task", { timeout: 200 }), false);
});

Deno.test("worker.abortById aborts delayed and running tasks from another client", async () => {
  await using worker = await testWorker();
  const waiter = signalWaiter();
  const slow = worker.task(waiter.body, { name: "slow" });
  await using client = await sibling(worker);
  const delayed = await client.enqueueUnsafe("slow").start({ delay: 60_000 });
  assert.equal(await client.abortById(delayed.id, { timeout: 0 }), true);
  assertCancelled(await client.resultById(delayed.id, { timeout: 1_000 }));

  const handle = await slow.enqueue();
  const running = runInBackground(worker);
  await waiter.started;
  const aborted = await client.abortById(handle.id, { timeout: 2_000 });
  await running.stop();
  assert.equal(aborted, true);
  assert.ok(waiter.seen.reason instanceof StreaqCancelled);
  assertCancelled(await client.resultById(handle.id, { timeout: 1_000 }));
});

Deno.test("a task that ignores its signal is cancelled at once but keeps its slot until it settles", async () => {
  const lines: string[] = [];
  const logger: Logger = {
    debug: (line) => lines.push(line),
    info: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    error: (line) => lines.push(line),
  };
  await using worker = await testWorker({ concurrency: 1, prefetch: 0, logger, logLevel: "warn" });
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let nextStartedAt = 0;
  const stubborn = worker.task(async function stubborn(): Promise<string> {
    started.resolve();
    await release.promise; // never looks at its signal
    return "too late";
  });
  const next = worker.task(async function next(): Promise<void> {
    nextStartedAt = Date.now();
    await Promise.resolve();
  });
  const stubbornHandle = await stubborn.enqueue();
  const nextHandle = await next.enqueue();
  const running = runInBackground(worker);
  let releasedAt = 0;
  try {
    await started.promise;
    const before = performance.now();
    assert.equal(await stubbornHandle.abort({ timeout: 2_000 }), true);
    assert.ok(performance.now() - before < 2_000);
    assertCancelled(await stubbornHandle.result({ timeout: 1_000 }));
    await eventually(() => lines.some((l) => /stubborn.*has not returned/.test(l)), {
      timeout: 5_000,
      what: "the worker to log that the function has not returned",
    });
    assert.equal(nextStartedAt, 0, "the second task started while the first held the slot");
    assert.equal(await nextHandle.status(), TaskStatus.QUEUED);
    assert.equal(worker.running(), 1);
  } finally {
    releasedAt = Date.now();
    release.resolve();
  }
  const nextResult = await nextHandle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(nextResult.success, true);
  assert.ok(nextStartedAt >= releasedAt, "the second task started only once the first settled");
  assertCancelled(await stubbornHandle.result({ timeout: 1_000 }));
});

Deno.test("a prefetched task aborted while it waits for a slot is cancelled without running", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 1 });
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let ran = false;
  const blocker = worker.task(async function blocker(): Promise<void> {
    started.resolve();
    await release.promise;
  });
  const waiting = worker.task(async function waiting(): Promise<void> {
    ran = true;
    await Promise.resolve();
  });
  const running = runInBackground(worker);
  try {
    const blocked = await blocker.enqueue();
    await started.promise;
    const handle = await waiting.enqueue();
    await eventually(
      async () => (await pendingByWorker(worker))[worker.id] === 2,
      { what: "the second task to be prefetched" },
    );
    const aborted = handle.abort({ timeout: 5_000 });
    await sleep(100); // the request reaches the worker while the task is buffered
    release.resolve();
    assert.equal(await aborted, true);
    assertCancelled(await handle.result({ timeout: 1_000 }));
    assert.equal((await blocked.result({ timeout: 1_000 })).success, true);
    assert.equal(ran, false, "the aborted task ran");
  } finally {
    release.resolve();
    await running.stop();
  }
});

// A task whose result is not kept (ttl 0) leaves only the message its worker publishes: abort()
// must be listening before it sends the request, whichever topology carries the message.
for (const kind of ["standalone", "Sentinel", "Cluster"] as const) {
  Deno.test(`aborting running and queued tasks with ttl 0 answers true on ${kind}`, async () => {
    await using topology = await startTopology(kind);
    await using worker = new Worker({
      ...topology.connection,
      queueName: uniqueQueue(kind.toLowerCase()),
      logLevel: "error",
      handleSignals: false,
      concurrency: 1,
      prefetch: 0,
    });
    const waiter = signalWaiter();
    const slow = worker.task(waiter.body, { name: "slow", ttl: 0 });
    let queuedRuns = 0;
    const later = worker.task(async function later(): Promise<void> {
      queuedRuns++;
      await Promise.resolve();
    }, { ttl: 0 });
    const running = runInBackground(worker);
    try {
      // Running: the worker cancels it as soon as the request reaches it.
      const runningTask = await slow.enqueue();
      await waiter.started;
      assert.equal(await runningTask.abort({ timeout: 10_000 }), true);
      assert.ok(waiter.seen.reason instanceof StreaqCancelled);

      // Queued behind a running task: cancelled when the worker gets to it.
      const blocker = signalWaiter();
      const block = worker.task(blocker.body, { name: "block", ttl: 0 });
      const blocking = await block.enqueue();
      await blocker.started;
      const queued = await later.enqueue();
      assert.equal(await queued.status(), TaskStatus.QUEUED);
      const aborted = queued.abort({ timeout: 10_000 });
      await eventually(
        async () =>
          await queueContextOf(worker).redis.sismember(
            queueContextOf(worker).keys.aborting,
            queued.id,
          ) === 1,
        { what: "the abort request to be recorded" },
      );
      assert.equal(await blocking.abort({ timeout: 10_000 }), true, "the blocker frees the slot");
      assert.equal(await aborted, true);
      assert.equal(queuedRuns, 0, "the aborted task ran");
      assert.equal(await queued.status(), TaskStatus.NOT_FOUND, "no result kept");
    } finally {
      await running.stop();
    }
    if (kind === "Cluster") await sleep(1_500); // see tests/topology_test.ts
  });
}
