import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { StreaqRetry, taskContext, TaskStatus, Worker } from "../mod.ts";
import { eventually, runInBackground } from "./_helpers.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";
import { DEFAULT_FAILURE_TTL } from "../src/queue_context.ts";

/** Every key of the server, by SCAN. */
async function allKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys.sort();
}

function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

Deno.test("every key a queue writes carries its hash tag, and finished tasks leave only their results", async () => {
  // A server of its own, so that every key on it belongs to this queue.
  await using server = await startRedis();
  const queueName = uniqueQueue("keys");
  const prefix = `streaq:{${queueName}}:`;
  await using worker = new Worker({
    redisUrl: server.url,
    queueName,
    priorities: ["low", "high"],
    handleSignals: false,
    logLevel: "error",
  });
  const redis = queueContextOf(worker).redis;
  const seen = new Set<string>();
  const snapshot = async () => {
    for (const key of await allKeys(redis)) seen.add(key);
  };

  const plain = worker.task(async function plain(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const failing = worker.task(async function failing(): Promise<never> {
    await Promise.resolve();
    throw new Error("expected failure");
  });
  const retried = worker.task(async function retried(): Promise<number> {
    const { tries } = taskContext();
    if (tries === 1) throw new StreaqRetry("once more", { delay: 100 });
    return await Promise.resolve(tries);
  });
  const hanging = worker.task(async function hanging(): Promise<never> {
    return await waitForAbort(taskContext().signal);
  });
  const release = Promise.withResolvers<void>();
  const exclusiveStarted = Promise.withResolvers<void>();
  const exclusive = worker.task(async function exclusive(): Promise<string> {
    exclusiveStarted.resolve();
    await release.promise;
    return "done";
  }, { unique: true, timeout: 10_000 });
  let unstoredRan = false;
  const unstored = worker.task(async function unstored(): Promise<string> {
    unstoredRan = true;
    return await Promise.resolve("gone");
  }, { ttl: 0 });

  const handles = await worker.enqueueMany([
    plain.enqueue(1),
    plain.enqueue(2).start({ priority: "high" }),
    plain.enqueue(3).start({ delay: 300 }),
    failing.enqueue(),
    retried.enqueue(),
    exclusive.enqueue(),
  ]);
  const unstoredTask = await unstored.enqueue();
  const delayedForever = await hanging.enqueue().start({ delay: 60_000 });
  const runningThenAborted = await hanging.enqueue();
  await snapshot();

  const running = runInBackground(worker);
  try {
    assert.equal(await delayedForever.abort({ timeout: 0 }), true);
    await exclusiveStarted.promise;
    await eventually(async () => (await runningThenAborted.status()) === "running");
    await snapshot();
    assert.ok(seen.has(`${prefix}lock:exclusive`), [...seen].join("\n"));
    assert.equal(await runningThenAborted.abort({ timeout: 5_000 }), true);
    release.resolve();
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
    assert.deepEqual(results.map((r) => r.success), [true, true, true, false, true, true]);
    // A result with ttl 0 reaches only callers already waiting: wait for the task itself.
    await eventually(() => unstoredRan && worker.running() === 0);
    await eventually(async () => (await worker.queueSize({ includeScheduled: true })) === 0);
    await snapshot();

    const strays = [...seen].filter((key) => !key.startsWith(prefix));
    assert.deepEqual(strays, [], "keys without the queue's hash tag prefix");

    // What stays once everything finished: results within their TTL, the failed records of the
    // tasks that failed after they started (kept as long as their results, to rerun them), the
    // (empty) streams that hold the consumer group, and the health key of the running worker.
    const finished = [
      ...[...handles, delayedForever, runningThenAborted].map((h) => `${prefix}result:${h.id}`),
      ...[handles[3], runningThenAborted].map((h) => `${prefix}failed:${h.id}`),
    ];
    const expected = [
      ...finished,
      `${prefix}stream:low`,
      `${prefix}stream:high`,
      `${prefix}health:${worker.id}`,
    ].sort();
    // Per-minute outcome counts (src/run/metrics.ts) may be flushed by a heartbeat meanwhile: they
    // expire on their own within two hours.
    const metrics = (await allKeys(redis)).filter((key) => key.startsWith(`${prefix}metrics:`));
    for (const key of metrics) {
      const ttl = await redis.ttl(key);
      assert.ok(ttl > 0 && ttl <= 7_200, `${key} expires (ttl ${ttl})`);
    }
    assert.deepEqual((await allKeys(redis)).filter((key) => !metrics.includes(key)), expected);
    assert.equal(await unstoredTask.status(), TaskStatus.NOT_FOUND);
    for (const priority of ["low", "high"]) {
      const stream = `${prefix}stream:${priority}`;
      assert.equal(await redis.xlen(stream), 0, stream);
      const groups = await redis.xinfo("GROUPS", stream) as unknown[][];
      assert.equal(groups.length, 1);
    }
    for (const key of finished) {
      const ttl = await redis.pttl(key);
      // Successes are kept five minutes, failures (the aborted ones) seven days.
      assert.ok(ttl > 0 && ttl <= DEFAULT_FAILURE_TTL, `${key} expires (pttl ${ttl})`);
    }
  } finally {
    release.resolve();
    await running.stop();
  }
  assert.equal(await redis.exists(`${prefix}health:${worker.id}`), 0, "health key removed");
});
