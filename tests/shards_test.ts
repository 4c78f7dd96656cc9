import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { StreaqCancelled, taskContext, type TaskHandle, TaskStatus, Worker } from "../mod.ts";
import { eventually, runInBackground, WorkerProcess } from "./_helpers.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";
import { type ClusterSetup, startCluster } from "./_topologies.ts";
import { shardOfFunction, shardOfKey } from "../src/shards/route.ts";
import { shardTag } from "../src/redis/keys.ts";
import { queueContextOf } from "../src/worker.ts";
import { QueueReads } from "../src/client/queue_reads.ts";

const FIXTURE = "tests/fixtures/sharded_worker.ts";

/** The hash tag Redis Cluster hashes a key by: between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close);
}

/** The masters of the cluster, by their role. */
async function mastersOf(cluster: ClusterSetup) {
  const roles = await Promise.all(cluster.servers.map((s) => s.cli("ROLE")));
  return cluster.servers.filter((_, i) => roles[i].split("\n")[0] === "master");
}

/**
 * Every command each master runs (scripts' inner commands too), as the `MONITOR` of each master
 * sees them, until `stop()`; each with the hash tags of its `streaq:` arguments.
 */
async function monitorMasters(cluster: ClusterSetup) {
  const commands: { args: string[]; tags: Set<string> }[] = [];
  // `monitor()` opens a connection of its own beside the one it is called on: both are closed.
  const connections = (await mastersOf(cluster)).map((m) =>
    new Redis({ host: m.host, port: m.port })
  );
  const monitors = await Promise.all(connections.map((c) => c.monitor()));
  for (const monitor of monitors) {
    monitor.on("monitor", (_time: string, args: string[]) => {
      // Channels are not keys: Cluster broadcasts PUBLISH to every node and SUBSCRIBE is not
      // bound to a slot, so one subscriber connection may listen to several shards' channels.
      if (/^(p?(un)?subscribe|publish)$/i.test(args[0])) return;
      const keys = args.filter((a) => typeof a === "string" && a.startsWith("streaq:"));
      commands.push({ args, tags: new Set(keys.map(hashTag)) });
    });
  }
  return {
    commands,
    stop: () => [...monitors, ...connections].forEach((c) => c.disconnect()),
  };
}

/** A queue name whose first `shards` shard tags are served by `masters` different masters. */
async function queueOnMasters(cluster: ClusterSetup, shards: number, masters: number) {
  for (;;) {
    const name = uniqueQueue("shards");
    const served = await Promise.all(
      Array.from({ length: shards }, (_, k) => cluster.masterOf(`streaq:{${shardTag(name, k)}}:`)),
    );
    if (new Set(served.map((s) => s.port)).size === masters) return name;
  }
}

function clientOf(cluster: ClusterSetup, queueName: string, shards: number) {
  const nodes = cluster.servers.slice(0, 1).map(({ host, port }) => ({ host, port }));
  return new Worker({
    cluster: { nodes },
    queueName,
    shards,
    concurrency: Math.max(shards, 6),
    handleSignals: false,
    logLevel: "error",
    idleTimeout: 2_000,
  });
}

Deno.test("sharded queues on a 3-master Cluster", async (t) => {
  await using cluster = await startCluster();
  const connection = JSON.stringify({
    cluster: { nodes: [{ host: cluster.servers[0].host, port: cluster.servers[0].port }] },
  });

  for (const shards of [1, 3, 6]) {
    await t.step(
      `shards: ${shards}: tasks from two worker processes all complete exactly once, results found by id, no command names two shards`,
      async () => {
        const queueName = await queueOnMasters(cluster, shards, Math.min(shards, 3));
        const monitor = await monitorMasters(cluster);
        const processes = [0, 1].map(() =>
          new WorkerProcess(FIXTURE, connection, queueName, String(shards), String(shards * 2))
        );
        try {
          await using client = clientOf(cluster, queueName, shards);
          const record = client.stub<[number], number>("record");
          const handles = await client.enqueueMany(
            Array.from({ length: 120 }, (_, i) => record.enqueue(i)),
          );
          const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
          assert.deepEqual(results.map((r) => r.result), handles.map((_, i) => i));
          // Each id ran once, in one of the two processes.
          await eventually(() =>
            processes.flatMap((p) => p.lines).filter((l) => l.startsWith("ran ")).length >= 120
          );
          const ran = processes.flatMap((p) => p.lines).filter((l) => l.startsWith("ran "));
          assert.equal(ran.length, 120);
          assert.equal(new Set(ran).size, 120);
          // A client of its own finds every result by id alone, whatever shard it is on.
          await using other = clientOf(cluster, queueName, shards);
          for (const h of handles.slice(0, 20)) {
            assert.equal((await other.resultById(h.id)).result, handles.indexOf(h));
            assert.equal(await other.statusById(h.id), TaskStatus.DONE);
          }
          // The tasks went to every shard: each shard's result keys hold some.
          const perShard = new Map<number, number>();
          for (const h of handles) {
            const k = shardOfKey(h.id, shards);
            perShard.set(k, (perShard.get(k) ?? 0) + 1);
          }
          assert.equal(perShard.size, shards);
          // And the shards' keys are on min(shards, 3) masters (the queue name was chosen so).
          const owners = new Set<number>();
          for (const h of handles) {
            const key = `streaq:{${shardTag(queueName, shardOfKey(h.id, shards))}}:result:${h.id}`;
            assert.equal(await (await cluster.masterOf(key)).cli("EXISTS", key), "1");
            owners.add((await cluster.masterOf(key)).port);
          }
          assert.equal(owners.size, Math.min(shards, 3));
        } finally {
          await Promise.all(processes.map((p) => p.end("SIGTERM")));
          monitor.stop();
        }
        const mine = monitor.commands.filter((c) =>
          [...c.tags].some((tag) => tag === queueName || tag.startsWith(queueName + "{"))
        );
        assert.ok(mine.length > 100, `saw ${mine.length} commands of the queue`);
        const crossing = mine.filter((c) => c.tags.size > 1);
        assert.deepEqual(
          crossing.slice(0, 3).map((c) => c.args.join(" ")),
          [],
          "commands naming two shards",
        );
      },
    );
  }

  await t.step(
    "a queue's shard count is stored at first use, and another count is refused naming both",
    async () => {
      const queueName = uniqueQueue("shards");
      await using three = clientOf(cluster, queueName, 3);
      await three.enqueueUnsafe("record", 1);
      await using six = clientOf(cluster, queueName, 6);
      await assert.rejects(
        async () => void await six.enqueueUnsafe("record", 2),
        /with 'shards' 6: it was created with 3/,
      );
      await assert.rejects(
        () => six.run({ burst: true }),
        /with 'shards' 6: it was created with 3/,
      );
      await using one = clientOf(cluster, queueName, 1);
      await assert.rejects(
        async () => void await one.enqueueUnsafe("record", 3),
        /with 'shards' 1: it was created with 3/,
      );
      // An unsharded queue holding tasks is not silently sharded.
      const plain = uniqueQueue("shards");
      await using unsharded = clientOf(cluster, plain, 1);
      await unsharded.enqueueUnsafe("record", 1);
      await using sharded = clientOf(cluster, plain, 3);
      await assert.rejects(
        async () => void await sharded.enqueueUnsafe("record", 2),
        /already holds tasks unsharded/,
      );
    },
  );

  await t.step(
    "abort by id reaches a task on any shard, from a client that did not send it",
    async () => {
      const queueName = uniqueQueue("shards");
      // Three slots per shard: the three tasks run at once wherever their ids put them.
      await using worker = new Worker({
        cluster: { nodes: cluster.servers.slice(0, 1).map(({ host, port }) => ({ host, port })) },
        queueName,
        shards: 3,
        concurrency: 9,
        handleSignals: false,
        logLevel: "error",
      });
      const started = new Set<string>();
      const hang = worker.task(async function hang(): Promise<void> {
        const { taskId, signal } = taskContext();
        started.add(taskId);
        await new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason))
        );
      });
      const run = runInBackground(worker);
      try {
        const handles = await worker.enqueueMany([hang.enqueue(), hang.enqueue(), hang.enqueue()]);
        await eventually(() => started.size === 3, { what: "three tasks running" });
        await using other = clientOf(cluster, queueName, 3);
        for (const h of handles) assert.equal(await other.abortById(h.id), true);
        for (const h of handles) {
          const r = await other.resultById(h.id);
          assert.equal(r.success, false);
          assert.ok(r.exception instanceof StreaqCancelled);
        }
      } finally {
        await run.stop();
      }
    },
  );

  await t.step("priorities: within a shard a higher priority always starts first", async () => {
    const queueName = uniqueQueue("shards");
    const nodes = cluster.servers.slice(0, 1).map(({ host, port }) => ({ host, port }));
    await using worker = new Worker({
      cluster: { nodes },
      queueName,
      shards: 3,
      concurrency: 3,
      prefetch: 0,
      priorities: ["low", "high"],
      handleSignals: false,
      logLevel: "error",
    });
    const order: string[] = [];
    const job = worker.task(async function job(): Promise<void> {
      order.push(taskContext().taskId);
      await new Promise((resolve) => setTimeout(resolve, 2));
    });
    const low = await worker.enqueueMany(
      Array.from({ length: 30 }, () => job.enqueue().start({ priority: "low" })),
    );
    const high = await worker.enqueueMany(
      Array.from({ length: 30 }, () => job.enqueue().start({ priority: "high" })),
    );
    await worker.run({ burst: true });
    assert.equal(order.length, 60);
    const highIds = new Set(high.map((h) => h.id));
    for (let shard = 0; shard < 3; shard++) {
      const mine = order.filter((id) => shardOfKey(id, 3) === shard);
      const firstLow = mine.findIndex((id) => !highIds.has(id));
      const lastHigh = mine.findLastIndex((id) => highIds.has(id));
      assert.ok(lastHigh < firstLow, `shard ${shard}: a low task started before a high one`);
    }
    assert.equal(low.length, 30);
  });

  await t.step(
    "limited, unique and rate-limited functions each go to one shard, and their limits hold across two worker processes; a cron job runs once per occurrence",
    async () => {
      const queueName = uniqueQueue("shards");
      const processes = [0, 1].map(() =>
        new WorkerProcess(FIXTURE, connection, queueName, "3", "6", "cron")
      );
      try {
        // A worker stores the functions it pins when it starts: a client that only names one
        // (a stub without options) routes it alike once it reads them, at its first send.
        const pins = `streaq:{${queueName}}:shards`;
        const master = await cluster.masterOf(pins);
        await eventually(async () => await master.cli("HEXISTS", pins, "f:rated") === "1", {
          timeout: 20_000,
          what: "the workers to store the pinned functions",
        });
        await using client = clientOf(cluster, queueName, 3);
        const sent = new Map<string, TaskHandle<number>[]>();
        for (const fn of ["limited", "solo", "rated"]) {
          const stub = client.stub<[number], number>(fn);
          sent.set(
            fn,
            await client.enqueueMany(Array.from({ length: 12 }, (_, i) => stub.enqueue(i))),
          );
        }
        const started = Date.now();
        await Promise.all([...sent.values()].flat().map((h) => h.result({ timeout: 30_000 })));
        const shards = queueContextOf(client).shards!;
        for (const [fn, handles] of sent) {
          for (const h of handles) assert.equal(await shards.locate(h.id), shardOfFunction(fn, 3));
        }
        const lines = processes.flatMap((p) => p.lines).map((l) => l.split(" "));
        const events = (fn: string) =>
          lines.filter(([kind, f]) => (kind === "start" || kind === "end") && f === fn)
            .map(([kind, , , ms]) => ({ kind, ms: Number(ms) }))
            .sort((a, b) => a.ms - b.ms || (a.kind === "end" ? -1 : 1));
        const mostAtOnce = (fn: string) => {
          let running = 0;
          let most = 0;
          for (const e of events(fn)) {
            running += e.kind === "start" ? 1 : -1;
            most = Math.max(most, running);
          }
          return most;
        };
        assert.ok(mostAtOnce("limited") <= 2, `${mostAtOnce("limited")} limited ran at once`);
        assert.equal(
          mostAtOnce("solo"),
          1,
          JSON.stringify(
            processes.map((p) => p.lines.filter((l) => l.includes(" solo "))),
            null,
            1,
          ),
        );
        // 12 starts at 5 a second: the last start is at least 2 windows after the first.
        const rated = events("rated").filter((e) => e.kind === "start").map((e) => e.ms);
        assert.equal(rated.length, 12);
        assert.ok(rated[11] - rated[0] >= 1_900, `12 rated starts in ${rated[11] - rated[0]} ms`);
        assert.ok(Date.now() - started >= 1_900);
        // The cron job ran about once a second, each occurrence in one process only.
        const ticks = lines.filter(([kind]) => kind === "tick").map(([, , ms]) => Number(ms));
        assert.ok(ticks.length >= 2, `${ticks.length} ticks`);
        // One occurrence run twice (by both processes) would print two ticks milliseconds apart.
        ticks.sort((a, b) => a - b);
        const gaps = ticks.slice(1).map((ms, i) => ms - ticks[i]);
        assert.ok(gaps.every((gap) => gap >= 200), `ticks this far apart: ${gaps}`);
      } finally {
        await Promise.all(processes.map((p) => p.end("SIGTERM")));
      }
    },
  );

  await t.step(
    "a worker process killed mid-task: another reclaims its tasks on every shard after idleTimeout",
    async () => {
      const queueName = uniqueQueue("shards");
      const doomed = new WorkerProcess(FIXTURE, connection, queueName, "3", "6", "hang");
      let survivor: WorkerProcess | undefined;
      try {
        await using client = clientOf(cluster, queueName, 3);
        const flaky = client.stub<[], number>("flaky");
        const handles = await client.enqueueMany(Array.from({ length: 6 }, () => flaky.enqueue()));
        const hungSoFar = () =>
          new Set(doomed.lines.filter((l) => l.startsWith("hang ")).map((l) => l.slice(5)));
        // Killed once every task it started hangs: a task whose try was counted but whose
        // function had not begun would run a second time without having been seen to hang.
        // Two hang at least, whichever shards the six tasks went to (two slots each).
        await eventually(async () => {
          const hung = hungSoFar();
          if (hung.size < 2) return false;
          const statuses = await Promise.all(handles.map((h) => h.status()));
          return handles.every((h, i) => statuses[i] !== TaskStatus.RUNNING || hung.has(h.id));
        }, { timeout: 20_000, what: "the first process to hang on every task it started" });
        await doomed.end("SIGKILL");
        const hung = hungSoFar();
        survivor = new WorkerProcess(FIXTURE, connection, queueName, "3", "6");
        const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
        for (const [i, r] of results.entries()) {
          assert.equal(r.success, true);
          // A hung task ran again (its second try); the others ran once, in the survivor.
          assert.equal(r.result, hung.has(handles[i].id) ? 2 : 1);
        }
        const shards = queueContextOf(client).shards!;
        const reclaimedOn = new Set(await Promise.all([...hung].map((id) => shards.locate(id))));
        assert.ok(reclaimedOn.size >= 1);
        // Enqueued and waited for in one call: the shard is known once the task is sent.
        const once = await flaky.enqueue().result({ timeout: 30_000 });
        assert.equal(once.success && once.result, 1);
      } finally {
        await doomed.end("SIGKILL").catch(() => {});
        await survivor?.end("SIGTERM");
      }
    },
  );

  await t.step(
    "a worker killed between a dependency's outbox write and its relay: other workers relay it, the dependent on another shard runs once",
    async () => {
      // The kill must land in the window between the completion and the relay (at most 200 ms):
      // a round where the relay won the race is tried again with a new queue.
      for (let attempt = 1;; attempt++) {
        const queueName = uniqueQueue("shards");
        const doomed = new WorkerProcess(FIXTURE, connection, queueName, "3", "6");
        const survivors: WorkerProcess[] = [];
        try {
          await eventually(() => doomed.lines.includes("ready"), { timeout: 20_000 });
          await using client = clientOf(cluster, queueName, 3);
          const shards = queueContextOf(client).shards!;
          const record = client.stub<[number], number>("record");
          const first = await record.enqueue(1);
          await first.result({ timeout: 10_000 });
          let second = await record.enqueue(2).start({ delay: 1_500 });
          while (await shards.locate(second.id) === await shards.locate(first.id)) {
            second = await record.enqueue(2).start({ delay: 1_500 });
          }
          const dependent = await record.enqueue(3).start({ after: [first.id, second.id] });
          const from = await shards.locate(second.id);
          assert.notEqual(await shards.locate(dependent.id), from);
          await second.result({ timeout: 10_000 });
          await doomed.end("SIGKILL");
          const outbox = `streaq:{${shardTag(queueName, from)}}:outbox`;
          const master = await cluster.masterOf(outbox);
          if (await master.cli("XLEN", outbox) === "0") {
            assert.ok(attempt < 8, "the relay won the race 8 times in a row");
            continue;
          }
          assert.equal(await dependent.status(), TaskStatus.SCHEDULED);
          // Two workers relay at once: the settle script is idempotent.
          survivors.push(
            ...[0, 1].map(() => new WorkerProcess(FIXTURE, connection, queueName, "3", "6")),
          );
          assert.equal((await dependent.result({ timeout: 20_000 })).result, 3);
          await eventually(async () => await master.cli("XLEN", outbox) === "0");
          const ran = () =>
            [...doomed.lines, ...survivors.flatMap((p) => p.lines)]
              .filter((l) => l === `ran ${dependent.id}`);
          await eventually(() => ran().length > 0, { what: "the dependent's line" });
          assert.equal(ran().length, 1);
          return;
        } finally {
          await doomed.end("SIGKILL").catch(() => {});
          await Promise.all(survivors.map((p) => p.end("SIGTERM")));
        }
      }
    },
  );

  await t.step("groups, dedupe keys, delays and pipelines on a sharded queue", async () => {
    const queueName = uniqueQueue("shards");
    await using worker = clientOf(cluster, queueName, 6);
    const echo = worker.task(async function echo(n: number): Promise<number> {
      return await Promise.resolve(n);
    });
    const add = worker.task(async function add(a: number, b: number): Promise<number> {
      return await Promise.resolve(a + b);
    });
    const run = runInBackground(worker);
    try {
      const grouped = await worker.enqueueMany(
        Array.from({ length: 12 }, (_, i) => echo.enqueue(i).start({ group: "g1" })),
      );
      const groupShards = await Promise.all(
        grouped.map((h) => queueContextOf(worker).shards!.locate(h.id)),
      );
      assert.equal(new Set(groupShards).size, 1, "a group stays on one shard");
      const first = await echo.enqueue(1).start({
        dedupe: { key: "k", mode: "throttle", window: 60_000 },
      });
      const second = await echo.enqueue(2).start({
        dedupe: { key: "k", mode: "throttle", window: 60_000 },
      });
      assert.equal(second.id, first.id, "the second enqueue is deduplicated");
      const delayed = await echo.enqueue(7).start({ delay: 300 });
      const piped = await echo.enqueue(5).pipe(add, 10);
      const after = await echo.enqueue(3).start({ after: [delayed.id] });
      const all: TaskHandle<number>[] = [...grouped, first, delayed, piped, after];
      const results = await Promise.all(all.map((h) => h.result({ timeout: 20_000 })));
      assert.deepEqual(results.map((r) => r.result), [...grouped.map((_, i) => i), 1, 7, 15, 3]);
    } finally {
      await run.stop();
    }
  });

  await t.step("a stop that comes while a fetch is under way still ends the run", async () => {
    // The stop closes the blocking connection while the fetch waits on the server; the loop
    // must not then send its blocking read on it: a Cluster client would hold that read until
    // it reconnects, which it never does (one run in about twenty hung here before: the Cluster client came back to "close"
    // after "end").
    // Not closed by `await using`: with the hang, closing would hang as well.
    const worker = clientOf(cluster, uniqueQueue("shards"), 1);
    worker.task(async function idle(): Promise<void> {});
    // The blocking reads sent after the stop: a Cluster connection sends them through `call`.
    let stopped = false;
    const readsAfterStop: unknown[][] = [];
    const connections = queueContextOf(worker).connections;
    const open = connections.open.bind(connections);
    connections.open = (purpose) => {
      const connection = open(purpose);
      if (purpose === "blocking") {
        const call = connection.call.bind(connection) as (...args: unknown[]) => unknown;
        (connection as { call: unknown }).call = (...args: unknown[]) => {
          if (stopped) readsAfterStop.push(args);
          return call(...args);
        };
      }
      return connection;
    };
    const run = runInBackground(worker);
    const masters = await mastersOf(cluster);
    const clients = async () => (await Promise.all(masters.map((m) => m.cli("CLIENT", "LIST"))));
    await eventually(async () => (await clients()).some((list) => /cmd=xread/.test(list)), {
      what: "the worker's blocking read",
    });
    // Writes paused: once the read's time limit passes, the loop sends its fetch (a script),
    // which waits behind the pause on the main connection; then the worker is stopped.
    await Promise.all(masters.map((m) => m.cli("CLIENT", "PAUSE", "30000", "WRITE")));
    try {
      await eventually(async () => {
        const lines = (await clients()).flatMap((list) => list.split("\n"));
        const blocked = lines.filter((line) => /flags=\w*b/.test(line));
        return blocked.length > 0 && !blocked.some((line) => /cmd=xread/.test(line));
      }, { what: "the blocking read over and a command held by the pause" });
      stopped = true;
      worker.stop();
    } finally {
      await Promise.all(masters.map((m) => m.cli("CLIENT", "UNPAUSE")));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"hung">((resolve) =>
      timer = setTimeout(() => resolve("hung"), 15_000)
    );
    const ended = await Promise.race([run.done.then(() => "ended"), late]);
    clearTimeout(timer);
    assert.equal(ended, "ended", "run() resolves after the stop");
    await worker.close();
    assert.deepEqual(readsAfterStop, [], "no read is sent on the connection the stop closed");
  });
});

Deno.test("the shards option takes an integer from 1 to 64, and needs a slot per shard", () => {
  for (const shards of [0, 65, 1.5, "3"]) {
    assert.throws(
      () => new Worker({ shards: shards as number }),
      (e: Error) =>
        e instanceof RangeError && e.message.includes("'shards' must be an integer from 1 to 64") &&
        e.message.includes(String(shards)),
    );
  }
  assert.throws(
    () => new Worker({ shards: 8, concurrency: 4 }),
    /'concurrency' must be at least 'shards' \(8\)[^]*received 4/,
  );
});

Deno.test("a stub declared with a limit or unique is pinned to its function's shard, like a registered task", () => {
  const worker = new Worker({ shards: 6, concurrency: 6 });
  worker.stub("plain");
  worker.stub("limitedStub", { limit: { concurrency: 1 } });
  worker.task(async function uniqueTask(): Promise<void> {}, { unique: true, timeout: 1_000 });
  const shards = queueContextOf(worker).shards!;
  assert.equal(shards.pinned("plain"), false);
  assert.equal(shards.pinned("limitedStub"), true);
  assert.equal(shards.pinned("uniqueTask"), true);
});

Deno.test("tasks sent together that wait for one another go to one shard; a task may wait for tasks of other shards", async () => {
  await using server = await startRedis();
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("shards"),
    shards: 6,
    concurrency: 6,
    handleSignals: false,
    logLevel: "error",
  });
  const echo = worker.task(async function echo(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const sum = worker.task(async function sum(...ns: number[]): Promise<number> {
    return await Promise.resolve(ns.reduce((a, b) => a + b, 0));
  });
  const boom = worker.task(async function boom(): Promise<never> {
    await Promise.resolve();
    throw new Error("boom");
  });
  const shards = queueContextOf(worker).shards!;
  // A fan-in sent in one batch: the three and the task after them share a shard.
  const parts = [1, 2, 3].map((n) => echo.enqueue(n));
  const total = sum.enqueue(6).start({ after: parts.map((p) => p.id) });
  const handles = await worker.enqueueMany([...parts, total]);
  const placed = await Promise.all(handles.map((h) => shards.locate(h.id)));
  assert.equal(new Set(placed).size, 1);
  // Tasks already sent to different shards: a task waits for all of them (through the relay).
  const sent: TaskHandle<number>[] = [];
  while (new Set(await Promise.all(sent.map((h) => shards.locate(h.id)))).size < 3) {
    sent.push(await echo.enqueue(1));
  }
  const acrossShards = await sum.enqueue(7).start({ after: sent.map((h) => h.id) });
  // One that fails: its dependent on another shard fails too.
  const booms = [await boom.enqueue()];
  while (await shards.locate(booms.at(-1)!.id) === await shards.locate(sent[0].id)) {
    booms.push(await boom.enqueue());
  }
  const failing = booms.at(-1)!;
  const doomed = await sum.enqueue(1).start({ after: [sent[0].id, failing.id] });
  // `streaq status` and the dashboard count every shard's tasks.
  const counts = await new QueueReads(queueContextOf(worker)).counts();
  assert.equal(counts.queued, 3 + sent.length + booms.length);
  assert.equal(counts.waiting, 3);
  // Not a burst run: a burst may end while the completion that releases a dependent is in flight.
  const run = runInBackground(worker);
  try {
    assert.equal((await handles[3].result({ timeout: 5_000 })).result, 6);
    assert.equal((await acrossShards.result({ timeout: 5_000 })).result, 7);
    const failed = await doomed.result({ timeout: 5_000 });
    assert.equal(failed.success, false);
    assert.match(failed.exception.message, new RegExp(failing.id));
    // A task waiting for tasks of other shards that finished already is settled at once.
    const late = await sum.enqueue(2).start({ after: sent.map((h) => h.id) });
    assert.equal((await late.result({ timeout: 5_000 })).result, 2);
    // Failed tasks are retried on every shard.
    await Promise.all(booms.map((h) => h.result({ timeout: 5_000 })));
    assert.equal(await worker.retryFailed({ fnName: "boom" }), booms.length);
  } finally {
    await run.stop();
  }
});

Deno.test("a sharded worker's log names the shard in each of its runs' start and stop lines", async () => {
  await using server = await startRedis();
  const lines: string[] = [];
  const keep = (line: string) => void lines.push(line);
  await using worker = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue("shards"),
    shards: 3,
    concurrency: 12,
    handleSignals: false,
    logger: { debug: keep, info: keep, warn: keep, error: keep },
  });
  worker.task(async function noop(): Promise<void> {});
  await worker.run({ burst: true });
  const started = lines.filter((l) => l.includes("started on queue"));
  assert.deepEqual(
    started.map((l) => l.match(/shard (\d) of 3 \(concurrency 4,/)?.[1]).sort(),
    ["1", "2", "3"],
    started.join("\n"),
  );
  const stopped = lines.filter((l) => /stopped, shard \d of 3 after \d+ ms of shutdown/.test(l));
  assert.equal(stopped.length, 3, lines.join("\n"));
});
