/**
 * The core behaviours, on each topology: a standalone Redis, a Sentinel setup and a Cluster.
 * Each topology is started once, by its test, and each behaviour is a step with its own queue.
 */

import assert from "node:assert/strict";
import { Cluster, Redis } from "ioredis";
import {
  StreaqCancelled,
  StreaqRetry,
  taskContext,
  TaskStatus,
  Worker,
  type WorkerOptions,
} from "../mod.ts";
import {
  denoExecutable,
  eventually,
  runInBackground,
  sleep,
  sleepUnlessAborted,
  workerProcessArgs,
} from "./_helpers.ts";
import { uniqueQueue } from "./_redis.ts";
import { startTopology, type Topology, type TopologyKind } from "./_topologies.ts";

const CLIENT = new URL("./fixtures/topology_client.ts", import.meta.url).pathname;

const NAMES: Record<TopologyKind, string> = {
  standalone: "a standalone Redis",
  Sentinel: "Redis Sentinel",
  Cluster: "Redis Cluster",
};

for (const kind of ["standalone", "Sentinel", "Cluster"] as const) {
  Deno.test(`the core behaviours hold on ${NAMES[kind]}`, async (t) => {
    await using topology = await startTopology(kind);
    for (const [name, behaviour] of BEHAVIOURS) {
      await t.step(name, () => behaviour(topology));
    }
    // An ioredis Cluster client may still be refreshing its slot table through a connection of
    // its own that `quit()` does not wait for (it closes within slotsRefreshTimeout, 1 s); on a
    // loaded machine the last step's clients can leave it behind. Let it end before the sanitizer
    // looks.
    if (kind === "Cluster") await sleep(1_500);
  });
}

type Behaviour = (topology: Topology) => Promise<void>;

/** A worker on the topology, on a queue of its own unless told otherwise. */
function workerOn<C = undefined>(
  topology: Topology,
  options: WorkerOptions<C> = {},
): Worker<C> {
  return new Worker<C>({
    ...topology.connection,
    queueName: uniqueQueue(topology.kind.toLowerCase()),
    logLevel: "error",
    handleSignals: false,
    ...options,
  });
}

const BEHAVIOURS: [string, Behaviour][] = [
  ["an enqueued task runs and its result comes back to the caller", async (topology) => {
    await using worker = workerOn(topology);
    const double = worker.task(async function double(n: number): Promise<number> {
      return await Promise.resolve(n * 2);
    });
    const running = runInBackground(worker);
    const handle = await double.enqueue(21);
    const result = await handle.result({ timeout: 5_000 });
    assert.equal(result.success && result.result, 42);
    assert.equal(await handle.status(), TaskStatus.DONE);
    await running.stop();
  }],

  ["a client process that read its result exits by itself, without close()", async (topology) => {
    await using worker = workerOn(topology);
    worker.task(async function double(n: number): Promise<number> {
      return await Promise.resolve(n * 2);
    });
    const running = runInBackground(worker);
    try {
      const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
        args: workerProcessArgs(CLIENT),
        env: {
          STREAQ_CONNECTION: JSON.stringify(topology.connection),
          STREAQ_QUEUE: worker.queueName,
        },
        stdin: "null",
        signal: AbortSignal.timeout(30_000), // a client that does not exit is killed, and fails
      }).output();
      const printed = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assert.equal(code, 0, printed);
      assert.match(printed, /result: 42/);
    } finally {
      await running.stop();
    }
  }],

  ["a delayed task runs after its delay, not before", async (topology) => {
    await using worker = workerOn(topology);
    const stamp = worker.task(async function stamp(): Promise<number> {
      return await Promise.resolve(Date.now());
    });
    const running = runInBackground(worker);
    const sent = Date.now();
    const handle = await stamp.enqueue().start({ delay: 400 });
    assert.equal(await handle.status(), TaskStatus.SCHEDULED);
    const result = await handle.result({ timeout: 5_000 });
    await running.stop();
    assert.ok(result.success && result.result - sent >= 400, "it ran before its delay");
  }],

  ["a task that raises StreaqRetry runs again and then succeeds", async (topology) => {
    await using worker = workerOn(topology);
    const flaky = worker.task(async function flaky(): Promise<number> {
      const { tries } = taskContext();
      if (tries < 3) throw new StreaqRetry("not yet", { delay: 50 });
      return await Promise.resolve(tries);
    });
    const running = runInBackground(worker);
    const result = await (await flaky.enqueue()).result({ timeout: 5_000 });
    await running.stop();
    assert.equal(result.success && result.result, 3);
    assert.equal(result.tries, 3);
  }],

  [
    "a retry policy retries the errors it names and fails with the last one as cause",
    async (topology) => {
      await using worker = workerOn(topology, {
        retry: { attempts: 3, backoff: { type: "exponential", delay: 20 }, retryOn: [TypeError] },
      });
      const flaky = worker.task(async function flaky(fail: number): Promise<number> {
        const { tries } = taskContext();
        if (tries <= fail) throw new TypeError(`network error on try ${tries}`);
        return await Promise.resolve(tries);
      });
      const running = runInBackground(worker);
      const [ok, down] = await worker.enqueueMany([flaky.enqueue(2), flaky.enqueue(3)]);
      const [recovered, failed] = [
        await ok.result({ timeout: 5_000 }),
        await down.result({ timeout: 5_000 }),
      ];
      await running.stop();
      assert.equal(recovered.success && recovered.result, 3);
      assert.equal(failed.success, false);
      assert.equal(failed.tries, 3);
      assert.match((failed.exception as Error).message, /failed after 3 tries/);
      assert.equal(((failed.exception as Error).cause as Error).message, "network error on try 3");
    },
  ],

  ["aborting a running task cancels it through its signal", async (topology) => {
    await using worker = workerOn(topology);
    const started = Promise.withResolvers<void>();
    const slow = worker.task(async function slow(): Promise<void> {
      started.resolve();
      await sleepUnlessAborted(30_000, taskContext().signal);
    });
    const running = runInBackground(worker);
    const handle = await slow.enqueue();
    await started.promise;
    assert.equal(await handle.abort({ timeout: 5_000 }), true);
    const result = await handle.result({ timeout: 1_000 });
    await running.stop();
    assert.equal(result.success, false);
    assert.ok(!result.success && result.exception instanceof StreaqCancelled);
  }],

  ["tasks of a higher priority run before lower ones enqueued earlier", async (topology) => {
    await using worker = workerOn(topology, {
      priorities: ["low", "high"],
      concurrency: 1,
      prefetch: 0,
    });
    const order: string[] = [];
    const record = worker.task(async function record(label: string): Promise<void> {
      order.push(label);
      await Promise.resolve();
    });
    await worker.enqueueMany([record.enqueue("low1"), record.enqueue("low2")]);
    await record.enqueue("high1").start({ priority: "high" });
    await record.enqueue("high2").start({ priority: "high" });
    await worker.run({ burst: true });
    assert.deepEqual(order, ["high1", "high2", "low1", "low2"]);
  }],

  ["two workers running the same cron job fire each occurrence once", async (topology) => {
    await using first = workerOn(topology);
    await using second = workerOn(topology, { queueName: first.queueName });
    const runs: number[] = [];
    for (const worker of [first, second]) {
      worker.cron("* * * * * *", async function tick() {
        runs.push(Date.now());
        await Promise.resolve();
      });
    }
    const running = [first, second].map((w) => runInBackground(w));
    await sleep(2_600);
    await Promise.all(running.map((r) => r.stop()));
    assert.ok(runs.length >= 1 && runs.length <= 3, `expected 1 to 3 runs, got ${runs.length}`);
    runs.sort((a, b) => a - b);
    for (let i = 1; i < runs.length; i++) {
      assert.ok(runs[i] - runs[i - 1] > 500, `one occurrence ran twice: ${runs.join(", ")}`);
    }
  }],

  ["a pipeline passes each result on to the next stage", async (topology) => {
    await using worker = workerOn(topology);
    const double = worker.task(async function double(n: number): Promise<number> {
      return await Promise.resolve(n * 2);
    });
    const describe = worker.task(async function describe(n: number): Promise<string> {
      return await Promise.resolve(`${n} is ${n % 2 ? "odd" : "even"}`);
    });
    const running = runInBackground(worker);
    const handle = await double.enqueue(3).pipe(double).pipe(describe);
    const result = await handle.result({ timeout: 5_000 });
    await running.stop();
    assert.equal(result.success && result.result, "12 is even");
  }],

  ["a unique task refuses a second instance while one runs", async (topology) => {
    await using worker = workerOn(topology, { concurrency: 2 });
    const release = Promise.withResolvers<void>();
    const only = worker.task(async function only(): Promise<string> {
      await release.promise;
      return taskContext().taskId;
    }, { unique: true, timeout: 10_000 });
    const [a, b] = await worker.enqueueMany([only.enqueue(), only.enqueue()]);
    const running = runInBackground(worker);
    const refused = await Promise.race([
      a.result({ timeout: 5_000 }).then((r) => ({ winner: b, result: r })),
      b.result({ timeout: 5_000 }).then((r) => ({ winner: a, result: r })),
    ]);
    release.resolve();
    const won = await refused.winner.result({ timeout: 5_000 });
    await running.stop();
    assert.ok(!refused.result.success && /unique/.test(refused.result.exception.message));
    assert.equal(won.success && won.result, refused.winner.id);
  }],

  ["worker.metrics() counts the tasks that ran, per function, and the live workers", async (
    topology,
  ) => {
    await using worker = workerOn(topology, { idleTimeout: 1_000 });
    const fine = worker.task(async function fine(): Promise<void> {});
    const broken = worker.task(async function broken(): Promise<void> {
      await Promise.reject(new Error("broken"));
    }, { maxTries: 1 });
    for (let i = 0; i < 3; i++) await fine.enqueue();
    await broken.enqueue();
    const running = runInBackground(worker);
    try {
      let m = await worker.metrics();
      await eventually(async () => {
        m = await worker.metrics();
        return m.functions.fine?.outcomes.completed === 3 &&
          m.functions.broken?.outcomes.failed === 1 && m.lastHour.completed === 3;
      }, { what: "the outcomes in the metrics" });
      assert.deepEqual(m.workers.map((w) => w.id), [worker.id]);
      assert.equal(m.tasks.done, 4);
      assert.equal(m.tasks.queued, 0);
    } finally {
      await running.stop();
    }
  }],

  ["finished tasks are listed as done", async (topology) => {
    await using worker = workerOn(topology);
    const echo = worker.task(async function echo(n: number): Promise<number> {
      return await Promise.resolve(n);
    });
    const handles = await worker.enqueueMany([1, 2, 3].map((n) => echo.enqueue(n)));
    await worker.run({ burst: true });
    const done = await worker.getTasksByStatus(TaskStatus.DONE);
    assert.deepEqual(done.map((r) => r.taskId).sort(), handles.map((h) => h.id).sort());
    assert.deepEqual(done.map((r) => r.success && r.result).sort(), [1, 2, 3]);
  }],

  ["workers share an ioredis client passed as redis, and close() leaves it open", async (
    topology,
  ) => {
    const { redisUrl, sentinel, cluster } = topology.connection;
    const shared = cluster
      ? new Cluster(cluster.nodes.map((n) => ({ ...n })), { lazyConnect: true })
      : sentinel
      ? new Redis({ sentinels: [...sentinel.nodes], name: sentinel.masterName, lazyConnect: true })
      : new Redis(redisUrl!, { lazyConnect: true });
    try {
      const queueName = uniqueQueue("shared");
      const options = {
        redis: shared,
        queueName,
        logLevel: "error",
        handleSignals: false,
      } as const;
      const triple = async (n: number) => await Promise.resolve(n * 3);
      {
        await using worker = new Worker(options);
        await using client = new Worker(options);
        worker.task(triple, { name: "triple" });
        const running = runInBackground(worker);
        const handle = await client.enqueueUnsafe<number>("triple", 5);
        assert.equal((await handle.result({ timeout: 5_000 })).result, 15);
        await running.stop();
      }
      assert.equal(shared.status, "ready", "closing the workers closed the shared client");
      assert.equal(await shared.exists(`streaq:{${queueName}}:stream:normal`), 1);
    } finally {
      await shared.quit();
    }
  }],

  ["several queues on one Redis each run their own tasks, spread over a Cluster's shards", async (
    topology,
  ) => {
    const workers = Array.from({ length: 12 }, () => workerOn(topology));
    try {
      const results = await Promise.all(workers.map(async (worker) => {
        const name = worker.task(async function name(): Promise<string> {
          return await Promise.resolve(taskContext().workerId);
        });
        const handle = await name.enqueue();
        await worker.run({ burst: true });
        return (await handle.result({ timeout: 5_000 })) as { result: string };
      }));
      assert.deepEqual(results.map((r) => r.result), workers.map((w) => w.id));
      if (topology.cluster) {
        // Twelve random queue names all on one of three masters: a chance of 3 in 3^12.
        const masters = await Promise.all(
          workers.map((w) => topology.cluster!.masterOf(`streaq:{${w.queueName}}:`)),
        );
        assert.ok(new Set(masters).size > 1, "every queue landed on the same shard");
      }
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  }],
];
