import assert from "node:assert/strict";
import { taskContext } from "../mod.ts";
import {
  eventually,
  pendingByWorker,
  runInBackground,
  sibling,
  sleep,
  testWorker,
} from "./_helpers.ts";

// The prefetch depth adapts (src/run/read_ahead.ts): a worker whose tasks finish faster than a
// round trip to Redis reads further ahead than `concurrency`, and one whose tasks run long
// holds no more than `concurrency` ready, so that a sibling runs the rest.

const CONCURRENCY = 4;

Deno.test("a worker whose tasks finish faster than a round trip reads ahead more than its concurrency", async () => {
  await using worker = await testWorker({ concurrency: CONCURRENCY });
  const release = Promise.withResolvers<void>();
  let gatedRunning = 0;
  const quick = worker.task(async function quick(): Promise<void> {});
  const gated = worker.task(async function gated(): Promise<void> {
    gatedRunning++;
    await release.promise;
  });
  // One backlog: the quick tasks, then gated ones that wait. While the quick ones run the worker
  // runs dry between refills and reads further ahead; what it holds once the gated ones block
  // every slot shows how far.
  const quickCount = 4_000;
  await worker.enqueueMany(Array.from({ length: quickCount }, () => quick.enqueue()));
  const handles = await worker.enqueueMany(
    Array.from({ length: 8 * CONCURRENCY }, () => gated.enqueue()),
  );
  const running = runInBackground(worker);
  try {
    // Held: running, read ahead, and outcomes on their way (XPENDING counts them all).
    await eventually(
      async () =>
        gatedRunning === CONCURRENCY &&
        (await pendingByWorker(worker))[worker.id] > 2 * CONCURRENCY,
      { what: `the gated tasks to block every slot, and more than ${CONCURRENCY} held besides` },
    );
  } finally {
    release.resolve();
  }
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  await running.stop();
  assert.ok(results.every((r) => r.success));
});

Deno.test("after fast tasks, a worker whose tasks run long holds only concurrency ready, and a sibling runs the rest at the same time", async () => {
  await using first = await testWorker({ concurrency: CONCURRENCY });
  await using second = await sibling(first, { concurrency: CONCURRENCY });
  const runningNow = new Map<string, number>();
  let together = false;
  for (const worker of [first, second]) {
    worker.task(async function quick(): Promise<void> {});
    worker.task(async function long(): Promise<string> {
      const { workerId } = taskContext();
      runningNow.set(workerId, (runningNow.get(workerId) ?? 0) + 1);
      if ((runningNow.get(first.id) ?? 0) > 0 && (runningNow.get(second.id) ?? 0) > 0) {
        together = true;
      }
      await sleep(200);
      runningNow.set(workerId, runningNow.get(workerId)! - 1);
      return workerId;
    });
  }
  // The first worker alone drains quick tasks: it reads further ahead meanwhile.
  const quickCount = 4_000;
  await first.enqueueMany(
    Array.from({ length: quickCount }, () => first.enqueueUnsafe("quick")),
  );
  const runFirst = runInBackground(first);
  await eventually(() => first.counters.completed === quickCount, {
    what: "the quick tasks to be done",
  });
  // Then long tasks: three waves' worth. Holding `concurrency` running and as many ready, the
  // first worker leaves a wave to the second.
  const handles = await first.enqueueMany(
    Array.from({ length: 3 * CONCURRENCY }, () => first.enqueueUnsafe<string>("long")),
  );
  await eventually(() => first.running() === CONCURRENCY, {
    what: "the first worker to run long tasks",
  });
  let held = 0;
  await eventually(
    async () => (held = (await pendingByWorker(first))[first.id]) >= 2 * CONCURRENCY,
    { what: "the first worker to read ahead" },
  );
  assert.equal(
    held,
    2 * CONCURRENCY,
    "the first worker holds concurrency running and as many ready",
  );
  const runSecond = runInBackground(second);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  await Promise.all([runFirst.stop(), runSecond.stop()]);
  const bySecond = results.filter((r) => r.success && r.result === second.id).length;
  assert.equal(bySecond, CONCURRENCY, "the second worker ran the wave the first did not hold");
  assert.ok(together, "both workers ran long tasks at the same time");
});

Deno.test("a worker that read far ahead while tasks were fast gives back what it read beyond concurrency once they run long", async () => {
  await using first = await testWorker({ concurrency: CONCURRENCY });
  await using second = await sibling(first, { concurrency: CONCURRENCY });
  for (const worker of [first, second]) {
    worker.task(async function quick(): Promise<void> {});
    worker.task(async function long(): Promise<string> {
      await sleep(300);
      return taskContext().workerId;
    });
  }
  // One backlog: quick tasks, then long ones, as many as the first worker may read ahead.
  await first.enqueueMany(Array.from({ length: 4_000 }, () => first.enqueueUnsafe("quick")));
  const handles = await first.enqueueMany(
    Array.from({ length: 12 * CONCURRENCY }, () => first.enqueueUnsafe<string>("long")),
  );
  const runFirst = runInBackground(first);
  await eventually(() => first.counters.completed >= 4_000, { what: "the quick tasks to be done" });
  const runSecond = runInBackground(second);
  await eventually(() => second.running() > 0 && first.running() > 0, {
    what: "both workers to run long tasks at the same time",
  });
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 20_000 })));
  await Promise.all([runFirst.stop(), runSecond.stop()]);
  assert.ok(results.every((r) => r.success));
  const byFirst = results.filter((r) => r.success && r.result === first.id).length;
  assert.ok(
    byFirst < 12 * CONCURRENCY * 0.75,
    `the first worker ran ${byFirst} of ${12 * CONCURRENCY}: the second took a fair share`,
  );
});
