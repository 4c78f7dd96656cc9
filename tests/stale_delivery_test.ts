import assert from "node:assert/strict";
import { type Logger, taskContext, TaskStatus } from "../mod.ts";
import {
  eventually,
  pendingByWorker,
  runInBackground,
  sibling,
  sleep,
  sleepUnlessAborted,
  testWorker,
} from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

/** A logger that keeps every line, by level. */
function collectingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const add = (level: string) => (message: string) => void lines.push({ level, message });
  return {
    lines,
    debug: add("debug"),
    info: add("info"),
    warn: add("warn"),
    error: add("error"),
  };
}

Deno.test("a stalled worker that finishes after its delivery was reclaimed does not overwrite the result", async () => {
  // Worker A heart-beats every 20 s, so for the next seconds it looks dead to worker B,
  // which reclaims deliveries idle for more than 1 s.
  const logger = collectingLogger();
  await using stalled = await testWorker({ idleTimeout: 60_000, logger, logLevel: "warn" });
  await using rescuer = await sibling(stalled, { idleTimeout: 1000 });
  const release = Promise.withResolvers<string>();
  const startedOnA = Promise.withResolvers<number>();
  stalled.task(async function answer(): Promise<string> {
    startedOnA.resolve(taskContext().tries);
    return await release.promise;
  });
  rescuer.task(async function answer(): Promise<string> {
    return await Promise.resolve(`from ${rescuer.id} on try ${taskContext().tries}`);
  });

  const runA = runInBackground(stalled);
  let runB: ReturnType<typeof runInBackground> | undefined;
  try {
    const handle = await stalled.enqueueUnsafe<string>("answer");
    // Only A runs at first: B starts once A holds the task.
    assert.equal(await startedOnA.promise, 1);
    assert.equal(await handle.status(), TaskStatus.RUNNING);
    runB = runInBackground(rescuer);

    const result = await handle.result({ timeout: 10_000 });
    assert.equal(result.success, true);
    assert.equal(result.success && result.result, `from ${rescuer.id} on try 2`);
    assert.equal(result.workerId, rescuer.id);
    assert.equal(result.tries, 2);

    release.resolve("from A");
    await eventually(() => logger.lines.some((l) => l.level === "warn"), {
      what: "worker A to log that it lost the delivery",
    });
    const warning = logger.lines.find((l) => l.level === "warn")!.message;
    assert.match(warning, new RegExp(`answer \\(${handle.id}\\)`));
    assert.match(warning, /no longer owns the delivery/);

    const stored = await stalled.resultById<string>(handle.id, { timeout: 1000 });
    assert.equal(stored.success && stored.result, `from ${rescuer.id} on try 2`);
    assert.equal(stored.workerId, rescuer.id);
    assert.equal(stalled.counters.completed, 0);
    assert.equal(stalled.counters.failed, 0);
    assert.equal(rescuer.counters.completed, 1);
    assert.equal(await handle.status(), TaskStatus.DONE);
    assert.deepEqual(await pendingByWorker(stalled), {});
  } finally {
    release.resolve("from A");
    await Promise.all([runA.stop(), runB?.stop()]);
  }
});

Deno.test("a prefetched task whose delivery another worker took before it started is stopped", async () => {
  const logger = collectingLogger();
  await using worker = await testWorker({ concurrency: 1, prefetch: 1, logger, logLevel: "warn" });
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const reasons: unknown[] = [];
  const blocker = worker.task(async function blocker(): Promise<void> {
    started.resolve();
    await release.promise;
  });
  const victim = worker.task(async function victim(): Promise<void> {
    const { signal } = taskContext();
    await sleepUnlessAborted(5_000, signal);
    reasons.push(signal.reason);
  });
  const running = runInBackground(worker);
  try {
    await blocker.enqueue();
    await started.promise;
    const handle = await victim.enqueue();
    await eventually(
      async () => (await pendingByWorker(worker))[worker.id] === 2,
      { what: "the second task to be prefetched" },
    );
    // Another consumer takes the buffered delivery, as a sibling reclaiming it would: once it
    // has been idle for the least idleTimeout a worker may have (a fresher one cannot be taken).
    const stream = `streaq:{${worker.queueName}}:stream:normal`;
    const redis = queueContextOf(worker).redis;
    const entries = await redis.xrange(stream, "-", "+");
    const entry = entries.find(([, fields]) => fields[1] === handle.id)![0];
    await sleep(1_000);
    const claimed = await redis.xclaim(stream, "workers", "another-worker", 1_000, entry, "JUSTID");
    assert.deepEqual(claimed, [entry]);
    release.resolve();
    await eventually(
      () => logger.lines.some((l) => /taken over by another worker/.test(l.message)),
      { what: "the worker to notice" },
    );
    // The run this worker began (if its function got as far as starting) was stopped, and it
    // wrote nothing: the delivery, and the task, belong to the other worker now.
    await eventually(() => worker.running() === 0, { what: "the run to stop" });
    for (const reason of reasons) assert.match(String(reason), /another worker took/);
    assert.equal(await handle.status(), TaskStatus.QUEUED);
    assert.equal((await pendingByWorker(worker))["another-worker"], 1);
  } finally {
    release.resolve();
    await running.stop();
  }
});
