/**
 * Faults under a running worker: a Redis restart, a Sentinel failover and a Cluster failover.
 * Tasks are enqueued before, during and after each fault; every task whose enqueue call
 * resolved must come back with a successful result. Each test prints how long the worker took
 * to run tasks again after the fault began.
 */

import assert from "node:assert/strict";
import { StreaqError, taskContext, type TaskHandle, Worker, type WorkerOptions } from "../mod.ts";
import { eventually, runInBackground, sleep, sleepUnlessAborted } from "./_helpers.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { startCluster, startSentinelSetup } from "./_topologies.ts";

/** Tasks sent before the fault, and again after it. */
const BATCH = 30;
/** How often a task is sent while the fault lasts (ms). */
const DURING_EVERY = 50;

interface FaultReport {
  /** Enqueue calls that resolved, and so must have a successful result. */
  acknowledged: number;
  /** Enqueue calls that failed (Redis did not answer within `redisTimeout`). */
  refused: number;
  /** From the fault to the first run of a task sent after the fault began (ms). */
  resumedAfter: number;
}

/**
 * Runs a worker on `connection`, sends tasks before, during and after `fault` (which returns
 * when it began), and checks that every acknowledged task succeeds.
 */
async function survive(
  connection: WorkerOptions,
  fault: (queueName: string) => Promise<number>,
): Promise<FaultReport> {
  await using worker = new Worker({
    ...connection,
    queueName: uniqueQueue("fault"),
    logLevel: "error",
    handleSignals: false,
    concurrency: 4,
    // A completion whose reply was lost is redelivered after this long.
    idleTimeout: 3_000,
  });
  const sentAt = new Map<number, number>();
  const startedAt = new Map<number, number>();
  const work = worker.task(async function work(n: number): Promise<number> {
    startedAt.set(n, Date.now());
    await sleep(20);
    return n;
  });
  const running = runInBackground(worker);
  const handles: TaskHandle<number>[] = [];
  let refused = 0;
  let next = 0;
  const send = async () => {
    const n = next++;
    sentAt.set(n, Date.now());
    try {
      handles.push(await work.enqueue(n));
    } catch (error) {
      assert.ok(error instanceof StreaqError, `unexpected enqueue error: ${error}`);
      refused++;
    }
  };

  for (let i = 0; i < BATCH; i++) await send();
  let faultOver = false;
  const during: Promise<void>[] = [];
  const sending = (async () => {
    while (!faultOver) {
      during.push(send());
      await sleep(DURING_EVERY);
    }
  })();
  const faultAt = await fault(worker.queueName).finally(() => faultOver = true);
  await sending;
  for (let i = 0; i < BATCH; i++) await send();
  await Promise.all(during);

  const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
  await running.stop();
  const succeeded = results.filter((r) => r.success).length;
  assert.equal(succeeded, handles.length, "an acknowledged task was lost or failed");
  assert.ok(handles.length >= 2 * BATCH, `only ${handles.length} enqueues were acknowledged`);
  const resumed = Math.min(
    ...[...startedAt].filter(([n]) => sentAt.get(n)! >= faultAt).map(([, at]) => at),
  );
  return { acknowledged: handles.length, refused, resumedAfter: resumed - faultAt };
}

function report(what: string, outage: number, r: FaultReport): void {
  console.log(
    `${what}: Redis back after ${outage} ms; worker ran tasks again ${r.resumedAfter} ms after the fault; ${r.acknowledged} tasks acknowledged, all succeeded; ${r.refused} enqueues refused`,
  );
}

Deno.test("a worker carries on after its Redis crashes and restarts, losing no acknowledged task", async () => {
  // Every write is on disk before it is acknowledged, as with `appendfsync always`.
  await using server = await startRedis({
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  let outage = 0;
  const r = await survive({ redisUrl: server.url }, async () => {
    const at = Date.now();
    await server.kill();
    await sleep(1_000);
    await server.restart();
    outage = Date.now() - at;
    return at;
  });
  report("Redis restart", outage, r);
});

Deno.test("a worker re-creates its consumer group when Redis comes back empty", async () => {
  await using server = await startRedis();
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("empty"),
    logLevel: "silent",
    handleSignals: false,
  });
  const echo = worker.task(async function echo(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const running = runInBackground(worker);
  assert.equal((await (await echo.enqueue(1)).result({ timeout: 5_000 })).success, true);
  await server.restart(); // no persistence: the stream and its consumer group are gone
  const result = await (await echo.enqueue(2)).result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, 2);
});

Deno.test("after a Redis restart, results and aborts travel through re-established subscriptions", async () => {
  await using server = await startRedis({
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  // The default idleTimeout: heartbeats, which also deliver aborts, come only every 20 s.
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("resubscribe"),
    logLevel: "silent",
    handleSignals: false,
  });
  const release = Promise.withResolvers<void>();
  const running = new Set<string>();
  const gated = worker.task(async function gated(label: string): Promise<string> {
    running.add(label);
    // The first waits to be released, the second to be aborted.
    if (label === "first") await release.promise;
    else await sleepUnlessAborted(30_000, taskContext().signal);
    return label;
  });
  const background = runInBackground(worker);
  const first = await gated.enqueue("first");
  await eventually(() => running.has("first"), { what: "the first task to start" });
  // Subscribed to the first task's result channel before the restart.
  const firstResult = first.result({ timeout: 20_000 });
  await sleep(100);
  await server.kill();
  await server.restart();
  await worker.connect();
  await sleep(200); // the subscribers reconnect too
  const released = Date.now();
  release.resolve();
  const result = await firstResult;
  const resultMs = Date.now() - released;
  assert.equal(result.success && result.result, "first");
  // Without the subscription, the wait would notice only at its next re-read, 5 s after it began.
  assert.ok(resultMs < 2_500, `the result took ${resultMs} ms to arrive`);

  const second = await gated.enqueue("second");
  await eventually(() => running.has("second"), { what: "the second task to start" });
  const asked = Date.now();
  assert.equal(await second.abort({ timeout: 3_000 }), true, "the abort did not reach the worker");
  const abortMs = Date.now() - asked;
  await background.stop();
  console.log(
    `after a restart: a result arrived ${resultMs} ms after the task finished, an abort was confirmed ${abortMs} ms after the request`,
  );
});

Deno.test("a worker follows a Sentinel failover, losing no acknowledged task", async () => {
  await using setup = await startSentinelSetup();
  const nodes = setup.sentinels.map(({ host, port }) => ({ host, port }));
  let outage = 0;
  const r = await survive({ sentinel: { masterName: setup.masterName, nodes } }, async () => {
    const failover = await setup.failover();
    outage = failover.ms;
    return failover.killedAt;
  });
  report("Sentinel failover", outage, r);
});

Deno.test("a worker follows a Cluster failover of its queue's shard, losing no acknowledged task", async () => {
  await using cluster = await startCluster();
  const nodes = cluster.servers.map(({ host, port }) => ({ host, port }));
  let outage = 0;
  const r = await survive({ cluster: { nodes } }, async (queueName) => {
    const failover = await cluster.failover(`streaq:{${queueName}}:`);
    outage = failover.ms;
    return failover.killedAt;
  });
  report("Cluster failover", outage, r);
  // After a failover an ioredis Cluster client refreshes its slot table through a connection of
  // its own. Closing the worker waits for the refresh (`slotRefreshOver`), but ioredis then closes
  // that connection by itself, under a timer its socket's close clears and that nothing outside
  // ioredis can reach: wait out that timer's bound (ioredis's disconnectTimeout, 2 s) so that the
  // sanitizer does not see it.
  await sleep(2_100);
});

Deno.test("an enqueue while Redis is down fails within redisTimeout, and works again once it is back", async () => {
  await using server = await startRedis();
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("down"),
    logLevel: "silent",
    handleSignals: false,
    redisTimeout: 1_000,
  });
  const noop = worker.task(async function noop(): Promise<void> {});
  await worker.connect();
  await server.kill();
  const started = Date.now();
  await assert.rejects(async () => await noop.enqueue(), (error: Error) => {
    assert.ok(error instanceof StreaqError);
    assert.match(error.message, /did not answer within 1000 ms \(option 'redisTimeout'\)/);
    return true;
  });
  const elapsed = Date.now() - started;
  console.log(`enqueue with Redis down failed after ${elapsed} ms (redisTimeout 1000 ms)`);
  assert.ok(elapsed >= 900 && elapsed < 3_000, `it failed after ${elapsed} ms`);
  await server.restart();
  const handle = await noop.enqueue();
  assert.equal(await handle.status(), "queued");
});

Deno.test("a running worker whose Redis is gone for good still stops, and close() returns", async () => {
  await using server = await startRedis();
  const worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("gone"),
    logLevel: "silent",
    handleSignals: false,
    redisTimeout: 1_000,
    gracePeriod: 500,
  });
  const noop = worker.task(async function noop(): Promise<void> {});
  const running = runInBackground(worker);
  await (await noop.enqueue()).result({ timeout: 5_000 });
  await server.kill();
  await sleep(300); // every connection is now waiting to reconnect
  const started = Date.now();
  await running.stop();
  await worker.close();
  const elapsed = Date.now() - started;
  console.log(`a worker with its Redis gone stopped and closed in ${elapsed} ms`);
  // Bounded by the grace period and redisTimeout, not by Redis coming back.
  assert.ok(elapsed < 10_000, `stopping took ${elapsed} ms`);
});
