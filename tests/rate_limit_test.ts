import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { StreaqRateLimited, taskContext, type Worker } from "../mod.ts";
import { queueContextOf } from "../src/worker.ts";
import { DeliveryWriter } from "../src/run/complete.ts";
import { fetchDeliveries } from "../src/run/fetch.ts";
import { writeLimits } from "../src/run/flow_limits.ts";
import { createConsumerGroups } from "../src/run/startup.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { allStarts, flowClient, FlowWorker, mostInWindow, startWorkers } from "./_flow.ts";
import { sharedRedis } from "./_redis.ts";

/** The rate limit of `rated` in `fixtures/flow_worker.ts`: 5 starts per second. */
const MAX = 5;
const WINDOW = 1_000;
/**
 * Starts are counted when a worker claims a task; the function starts when the claim's reply
 * reaches the worker, a few milliseconds later, and that delay varies: windows are checked this
 * much shorter.
 */
const LATENCY = 100;

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`limit: { max, duration } starts at most max tasks per window across worker processes, the others waiting without a try (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "rate");
    const { rated, fast } = flowClient(client);
    const workers = startWorkers(topology.connection, client.queueName, 3, "rated");
    try {
      const handles = await client.enqueueMany(
        Array.from({ length: 20 }, (_, i) => rated.enqueue(i)),
      );
      const others = await client.enqueueMany(
        Array.from({ length: 10 }, (_, i) => fast.enqueue(i)),
      );
      const fastResults = await Promise.all(others.map((h) => h.result({ timeout: 10_000 })));
      const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
      assert.ok(results.every((r) => r.success && r.tries === 1), "a waiting task counted a try");
      const starts = allStarts(workers).filter((s) => s.fn === "rated").map((s) => s.at);
      assert.equal(starts.length, 20);
      const most = mostInWindow(starts, WINDOW - LATENCY);
      assert.ok(most <= MAX, `${most} starts within ${WINDOW - LATENCY} ms, over the limit ${MAX}`);
      // 20 starts at 5 a second span at least three full windows.
      const span = Math.max(...starts) - Math.min(...starts);
      assert.ok(span >= 3 * WINDOW - LATENCY, `20 starts within ${span} ms`);
      // A rate-limited function does not hold the others back.
      const lastFast = Math.max(...fastResults.map((r) => r.finishTime));
      assert.ok(lastFast < Math.max(...starts), "the other function waited for the rate limit");
      const { redis, keys } = queueContextOf(client);
      assert.equal(await redis.llen(keys.held("rated")), 0, "no task is left aside");
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

Deno.test("info() of a task waiting for its rate window says so, and limits() counts it", async () => {
  await using worker = await testWorker();
  const starts: number[] = [];
  const metered = worker.task(async function metered(n: number): Promise<number> {
    starts.push(taskContext().tries);
    return await Promise.resolve(n);
  }, { limit: { max: 2, duration: 60_000 } });
  const running = runInBackground(worker);
  try {
    const handles = await worker.enqueueMany([1, 2, 3].map((n) => metered.enqueue(n)));
    await Promise.all(handles.slice(0, 2).map((h) => h.result({ timeout: 5_000 })));
    await eventually(async () => (await worker.limits())[0]?.waiting === 1, {
      what: "the third task waiting for the window",
    });
    const info = await handles[2].info();
    assert.equal(info?.status, "queued");
    assert.equal(info?.tries, 0);
    assert.match(
      info?.waitReason ?? "",
      /^rate-limited until \S+: metered starts at most 2 per 60000 ms$/,
    );
    assert.deepEqual(await worker.limits(), [
      {
        name: "metered",
        concurrency: null,
        running: 0,
        max: 2,
        duration: 60_000,
        started: 2,
        waiting: 1,
        groups: null,
      },
    ]);
    assert.equal(starts.length, 2);
  } finally {
    await running.stop();
  }
});

Deno.test("limit.max and limit.duration are checked at registration and go together", async () => {
  await using worker = await testWorker();
  const fn = async () => await Promise.resolve();
  assert.throws(
    () => worker.task(fn, { name: "a", limit: { max: 0, duration: 1_000 } }),
    /Cannot register task a as 'limit.max' must be an integer ≥ 1: received 0 \(number\)/,
  );
  assert.throws(
    () => worker.task(fn, { name: "b", limit: { max: 5, duration: -1 } }),
    /Cannot register task b as 'limit.duration' must be .*received -1 \(number\)/,
  );
  assert.throws(
    () => worker.task(fn, { name: "c", limit: { max: 5 } }),
    /Cannot register task c as 'limit.max' and 'limit.duration' go together .*: received max 5 \(number\) and duration undefined/,
  );
});

Deno.test("a task that throws StreaqRateLimited holds its function back on every worker for that long, and its try is not counted", async () => {
  const BLOCK = 3_000;
  // One slot here: the subprocesses take most of the tasks once the block is over.
  await using worker = await testWorker({ concurrency: 1, prefetch: 0 });
  let thrownAt = 0;
  const callApi = worker.task(async function callApi(n: number): Promise<number> {
    if (thrownAt === 0) {
      thrownAt = Date.now();
      throw new StreaqRateLimited(BLOCK, "429 Too Many Requests");
    }
    return await Promise.resolve(n);
  });
  const { fast } = flowClient(worker);
  const running = runInBackground(worker);
  const connection = { redisUrl: (await sharedRedis()).url };
  let others: FlowWorker[] = [];
  try {
    const first = await callApi.enqueue(0);
    await eventually(() => thrownAt > 0, { what: "the 429" });
    others = [0, 1].map((i) => new FlowWorker(connection, worker.queueName, `api-${i}`, "api"));
    const rest = await worker.enqueueMany([1, 2, 3, 4, 5, 6].map((n) => callApi.enqueue(n)));
    const quick = await fast.enqueue(1);
    assert.match(
      (await first.info())?.waitReason ?? "",
      /^rate-limited until \S+: callApi reported a rate limit$/,
    );
    const quickResult = await quick.result({ timeout: 10_000 });
    const results = await Promise.all([first, ...rest].map((h) => h.result({ timeout: 20_000 })));
    assert.ok(results.every((r) => r.success));
    assert.equal(results[0].tries, 1, "the try that met the limit was counted");
    const until = thrownAt + BLOCK;
    for (const r of results) {
      assert.ok(r.startTime >= until - LATENCY, `a task started ${until - r.startTime} ms early`);
    }
    // The subprocesses started some of them: the block held everywhere.
    assert.ok(allStarts(others).some((s) => s.fn === "callApi"), "no other process ran callApi");
    assert.ok(quickResult.finishTime < until, "another function waited for the block");
    const { redis, keys } = queueContextOf(worker);
    assert.equal(await redis.hexists(keys.flow, "u:callApi"), 0, "the block outlived its time");
  } finally {
    await Promise.all(others.map((w) => w.stop()));
    await running.stop();
  }
});

Deno.test("StreaqRateLimited needs a finite, non-negative number of milliseconds", () => {
  assert.throws(
    () => new StreaqRateLimited(-5),
    /Cannot create StreaqRateLimited as 'ms' must be a finite number ≥ 0: received -5 \(number\)/,
  );
  assert.equal(new StreaqRateLimited(1_500).ms, 1_500);
});

/** The limit of `limited` in the tests below: a window long enough to stay full throughout. */
const MINUTE_LIMIT = { max: 3, duration: 60_000 };

/**
 * A worker whose function `limited` starts at most three tasks a minute, with `count` of its
 * tasks queued, and its limits and consumer groups written as a run would write them, so that
 * its calls can be driven one by one.
 */
async function limitedQueue(count: number): Promise<Worker> {
  const worker = await testWorker();
  const limited = worker.task(async function limited(_n: number): Promise<void> {}, {
    limit: MINUTE_LIMIT,
  });
  const client = queueContextOf(worker);
  await writeLimits(client, [{ name: "limited", limit: MINUTE_LIMIT }]);
  await createConsumerGroups(client);
  await worker.enqueueMany(Array.from({ length: count }, (_, i) => limited.enqueue(i)));
  return worker;
}

Deno.test("a fetch or a completion call that fills a rate window says when it opens, for the tasks it set aside", async () => {
  // The call that fills the window sets the rest of the function's tasks aside. Its worker then
  // waits for new entries, which may never come: unless the call says when the window opens, the
  // tasks set aside wait for the read's time limit (seconds) rather than for the window.
  await using worker = await limitedQueue(6);
  const client = queueContextOf(worker);
  const fetched = await fetchDeliveries(client, "w1", client.prioritiesHighFirst, 2, 0, 0);
  assert.equal(fetched.deliveries.length, 2, "two of three starts taken: no window is full");
  assert.equal(fetched.wakeIn, undefined);

  // Its completion call claims for two free slots: one start is left in the window.
  const wakes: number[] = [];
  const writer = new DeliveryWriter(client, "w1", {
    reserveClaims: () => ({ start: 2, prefetch: 0 }),
    claimed() {},
    admit() {},
    wakeIn: (ms) => wakes.push(ms),
  });
  const done = { kind: "final", result: Buffer.from([0x73]), ttl: 60_000 } as const;
  await writer.complete(fetched.deliveries[0], done, undefined, true);
  assert.equal(wakes.length, 1, "the completion call filled the window and said when it opens");
  assert.ok(wakes[0] > 50_000 && wakes[0] <= 60_001, `opens in ${wakes[0]} ms`);
  assert.equal(await client.redis.llen(client.keys.held("limited")), 1, "the fourth set aside");

  // With tasks set aside and the window full, a fetch says when it opens too.
  const again = await fetchDeliveries(client, "w1", client.prioritiesHighFirst, 2, 0, 0);
  assert.equal(again.deliveries.length, 0);
  assert.equal(await client.redis.llen(client.keys.held("limited")), 3);
  assert.ok(again.wakeIn! > 50_000 && again.wakeIn! <= 60_001, `opens in ${again.wakeIn} ms`);
});

Deno.test("a fetch that fills a rate window says when it opens, for the tasks it set aside", async () => {
  await using worker = await limitedQueue(8);
  const client = queueContextOf(worker);
  const fetched = await fetchDeliveries(client, "w1", client.prioritiesHighFirst, 10, 0, 0);
  assert.equal(fetched.deliveries.length, 3, "three starts fill the window");
  assert.equal(await client.redis.llen(client.keys.held("limited")), 5, "the others set aside");
  assert.ok(fetched.wakeIn! > 50_000 && fetched.wakeIn! <= 60_001, `opens in ${fetched.wakeIn} ms`);
});
