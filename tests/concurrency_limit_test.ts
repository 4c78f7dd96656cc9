import assert from "node:assert/strict";
import { taskContext } from "../mod.ts";
import { queueContextOf } from "../src/worker.ts";
import { eventually, runInBackground, sleepUnlessAborted, testWorker } from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { flowClient, FlowWorker, mostAtOnce, quietFor, startWorkers } from "./_flow.ts";

/** The limit of `limited` in `fixtures/flow_worker.ts`. */
const LIMIT = 3;

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`limit: { concurrency } runs at most N tasks of the function at once across worker processes, and the others meanwhile (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "limit");
    const { limited, fast } = flowClient(client);
    // Three processes of 2 slots and 2 read ahead each: up to 12 at once without the limit.
    const workers = startWorkers(topology.connection, client.queueName, 3);
    try {
      const handles = await client.enqueueMany(
        Array.from({ length: 60 }, (_, i) => limited.enqueue(i)),
      );
      const others = await client.enqueueMany(
        Array.from({ length: 20 }, (_, i) => fast.enqueue(i)),
      );
      const results = await Promise.all(handles.map((h) => h.result({ timeout: 60_000 })));
      assert.ok(results.every((r) => r.success && r.tries === 1), "a waiting task counted a try");
      assert.ok((await Promise.all(others.map((h) => h.result({ timeout: 10_000 }))))
        .every((r) => r.success));
      const most = mostAtOnce(workers, "limited");
      assert.ok(most <= LIMIT, `${most} tasks of limited ran at once, over the limit ${LIMIT}`);
      assert.ok(most >= 2, `the limit let only ${most} run at once`);
      const { redis, keys } = queueContextOf(client);
      assert.equal(await redis.zcard(keys.active("limited")), 0, "no slot is left taken");
      assert.equal(await redis.llen(keys.held("limited")), 0, "no task is left aside");
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

Deno.test("slots held by a worker killed with SIGKILL are freed when its tasks are taken over, never leaked", async () => {
  await using client = await testWorker();
  const { limited, fast } = flowClient(client);
  const connection = { redisUrl: (await sharedRedis()).url };
  // The first process's first tries never end: it takes every slot (2 running, 1 read ahead).
  const hanging = new FlowWorker(connection, client.queueName, "hanging", "hang");
  const handles = await client.enqueueMany(Array.from({ length: 8 }, (_, i) => limited.enqueue(i)));
  const { redis, keys } = queueContextOf(client);
  await eventually(() => hanging.starts.length === 2, { what: "two hanging starts" });
  await eventually(async () => await redis.zcard(keys.active("limited")) === LIMIT, {
    what: "every slot taken",
  });
  const other = new FlowWorker(connection, client.queueName, "other");
  try {
    await eventually(async () => await redis.exists(keys.health("other")) === 1, {
      what: "the other worker to run",
    });
    await quietFor(
      700,
      "no start of limited while every slot is held",
      () => other.starts.every((s) => s.fn !== "limited"),
    );
    const killedAt = await hanging.kill();
    // After idleTimeout (2 s) the other worker takes the dead one's deliveries over, with their
    // slots, and finishes everything.
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
    assert.ok(results.every((r) => r.success));
    assert.equal((await (await fast.enqueue(1)).result({ timeout: 10_000 })).success, true);
    const most = mostAtOnce([hanging, other], "limited", new Map([[hanging, killedAt]]));
    assert.ok(most <= LIMIT, `${most} tasks of limited ran at once, over the limit ${LIMIT}`);
    assert.equal(await redis.zcard(keys.active("limited")), 0, "a slot leaked");
    assert.equal(await redis.llen(keys.held("limited")), 0);
  } finally {
    await other.stop();
  }
});

Deno.test("limit is checked at registration: a concurrency of 0, a fraction or an unknown limit is an error naming it", async () => {
  await using worker = await testWorker();
  const fn = async () => await Promise.resolve();
  assert.throws(
    () => worker.task(fn, { name: "a", limit: { concurrency: 0 } }),
    (e: Error) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot register task a as 'limit.concurrency' must be an integer ≥ 1: received 0 (number)",
  );
  assert.throws(
    () => worker.task(fn, { name: "b", limit: { concurrency: 1.5 } }),
    /'limit.concurrency' must be an integer ≥ 1: received 1.5 \(number\)/,
  );
  assert.throws(
    // @ts-expect-error: not a limit
    () => worker.task(fn, { name: "c", limit: { rate: 3 } }),
    /Cannot register task c as 'rate' is not an option: expected one of concurrency, max, duration/,
  );
  assert.throws(
    // @ts-expect-error: not an object
    () => worker.task(fn, { name: "d", limit: 3 }),
    /Cannot register task d as 'limit' must be an object such as \{ concurrency: 5 \}: received 3 \(number\)/,
  );
});

Deno.test("limits() and info() say which tasks wait for a concurrency slot, and each freed slot starts the next", async () => {
  await using worker = await testWorker();
  const release = Promise.withResolvers<void>();
  const capped = worker.task(async function capped(n: number): Promise<number> {
    await release.promise;
    return n;
  }, { limit: { concurrency: 1 } });
  const running = runInBackground(worker);
  try {
    const handles = await worker.enqueueMany([1, 2, 3].map((n) => capped.enqueue(n)));
    await eventually(async () => (await worker.limits())[0]?.waiting === 2, {
      what: "two tasks waiting for the slot",
    });
    assert.deepEqual(await worker.limits(), [
      {
        name: "capped",
        concurrency: 1,
        running: 1,
        max: null,
        duration: null,
        started: 0,
        waiting: 2,
        groups: null,
      },
    ]);
    const infos = await Promise.all(handles.map((h) => h.info()));
    assert.deepEqual(infos.map((i) => i?.status), ["running", "queued", "queued"]);
    assert.deepEqual(infos.map((i) => i?.waitReason), [
      null,
      "waiting for a concurrency slot: every slot of capped is taken",
      "waiting for a concurrency slot: every slot of capped is taken",
    ]);
    release.resolve();
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
    assert.deepEqual(results.map((r) => [r.success, r.tries]), [[true, 1], [true, 1], [true, 1]]);
    assert.deepEqual(await worker.limits(), [
      {
        name: "capped",
        concurrency: 1,
        running: 0,
        max: null,
        duration: null,
        started: 0,
        waiting: 0,
        groups: null,
      },
    ]);
  } finally {
    release.resolve();
    await running.stop();
  }
});

Deno.test("a limit removed from the code is lifted at the next worker start, and the tasks that waited for a slot run", async () => {
  await using before = await testWorker();
  const capped = before.task(async function capped(n: number): Promise<number> {
    await sleepUnlessAborted(60_000, taskContext().signal);
    return n;
  }, { limit: { concurrency: 1 } });
  let running = runInBackground(before);
  const handles = await before.enqueueMany([1, 2, 3, 4].map((n) => capped.enqueue(n)));
  await eventually(async () => (await before.limits())[0]?.waiting === 3, {
    what: "three tasks waiting for the slot",
  });
  await running.stop(); // hands the running task back: it frees the slot, one waiting task goes back
  assert.deepEqual(await before.limits(), [
    {
      name: "capped",
      concurrency: 1,
      running: 0,
      max: null,
      duration: null,
      started: 0,
      waiting: 2,
      groups: null,
    },
  ]);

  await using after = await testWorker({ queueName: before.queueName });
  after.task(async function capped(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  running = runInBackground(after);
  try {
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
    assert.ok(results.every((r) => r.success));
    assert.deepEqual(await after.limits(), []);
  } finally {
    await running.stop();
  }
});
