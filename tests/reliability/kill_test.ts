import assert from "node:assert/strict";
import { eventually, sleep } from "../_helpers.ts";
import {
  assertAudit,
  assertQueueClean,
  audit,
  executionsOf,
  pendingOf,
  scanQueue,
  untilReleased,
  waitForResults,
} from "./_audit.ts";
import { between, enqueueLoad, planLoad, seeded } from "./_load.ts";
import { startProcesses, stopAll, type WorkerProcess } from "./_processes.ts";
import { report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";

const TASKS = 3_000;
const ROUNDS = 3;

Deno.test("SIGKILLing worker processes at random moments under load loses no task, and only the tasks they had started run twice", async () => {
  const random = seeded("sigkill");
  await using q = await reliabilityQueue("sigkill");
  const config = (id: string) => q.process(id, { concurrency: 8, idleTimeout: 1000 });
  let live = await startProcesses(q.redis, [config("k1-0"), config("k2-0")]);
  const all: WorkerProcess[] = [...live];
  const kills: { id: string; at: number }[] = [];
  const recoveries: number[] = [];
  try {
    // Half the tasks work 20 to 60 ms, so every kill finds tasks in the middle of their work.
    const sent = await enqueueLoad(q.client, q.job, planLoad(random, TASKS, { slow: 0.5 }));
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 200, 800));
      const victim = live[between(random, 0, live.length - 1)];
      const at = Date.now();
      const exit = await victim.kill();
      assert.equal(exit.signal, "SIGKILL");
      kills.push({ id: victim.id, at });
      // A replacement, as a supervisor would start; the survivor keeps working meanwhile.
      const [replacement] = await startProcesses(q.redis, [
        config(`${victim.id.split("-")[0]}-${round}`),
      ]);
      all.push(replacement);
      live = [...live.filter((p) => p !== victim), replacement];
      // Recovered: every delivery the dead worker held was taken over (after idleTimeout).
      recoveries.push(await untilReleased(q.redis, q.client.queueName, victim.id) - at);
    }
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    const exits = await stopAll(live);
    for (const exit of exits) assert.equal(exit.code, 0, exit.stderr);

    const found = await audit(q.client, sent);
    // A duplicate is explained when its earlier executions started in a worker later killed.
    assertAudit(found, (e) => kills.some((k) => k.id === e.worker && e.at <= k.at));
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));
    await report([{
      fault: `SIGKILL of a worker process, ${ROUNDS} rounds (2 processes)`,
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: Math.max(...recoveries),
      notes: `idleTimeout 1000; recovery = kill until every delivery the dead worker held was ` +
        `taken over (${recoveries.map((ms) => `${ms} ms`).join(", ")}); duplicates: tasks ` +
        `whose side effect happened in the killed worker before it died`,
    }]);
  } finally {
    await Promise.all(all.map((p) => p.kill()));
  }
});

Deno.test("under a backlog, every task a killed worker held is taken over soon after idleTimeout, not one per reclaim", async () => {
  await using q = await reliabilityQueue("reclaim");
  // 10 running and 10 prefetched deliveries in the doomed worker.
  const held = await enqueueLoad(
    q.client,
    q.job,
    Array.from({ length: 20 }, (_, n) => ({ spec: { n, hangIn: "doomed" }, priority: "high" })),
  );
  const [doomed] = await startProcesses(q.redis, [
    q.process("doomed", { concurrency: 10, prefetch: 10, idleTimeout: 1000 }),
  ]);
  let survivor: WorkerProcess | undefined;
  let drainer: WorkerProcess | undefined;
  try {
    await eventually(async () => (await pendingOf(q.redis, q.client.queueName, "doomed")) === 20, {
      what: "the doomed worker to hold 20 deliveries",
    });
    // A backlog keeps the survivor's slots and prefetch buffer full.
    const backlog = await enqueueLoad(
      q.client,
      q.job,
      Array.from({ length: 4_000 }, (_, i) => ({ spec: { n: 20 + i, ms: 1 }, priority: "high" })),
    );
    [survivor] = await startProcesses(q.redis, [
      q.process("survivor", { concurrency: 2, prefetch: 2, idleTimeout: 1000 }),
    ]);
    const at = Date.now();
    await doomed.kill();
    const recoverMs = await untilReleased(q.redis, q.client.queueName, "doomed") - at;
    // The backlog has served its purpose: a bigger worker drains the rest.
    [drainer] = await startProcesses(q.redis, [q.process("drainer", { concurrency: 32 })]);
    const sent = [...held, ...backlog];
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    for (const exit of await stopAll([survivor, drainer])) assert.equal(exit.code, 0, exit.stderr);
    const found = await audit(q.client, sent);
    assertAudit(found, (e) => e.worker === "doomed" && e.at <= at);
    await report([{
      fault: "SIGKILL of a worker holding 20 deliveries, survivor under a backlog",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs,
      notes: "idleTimeout 1000; recovery = kill until all 20 deliveries were taken over",
    }]);
    // Soon after idleTimeout, however busy the survivor is.
    assert.ok(recoverMs < 3_000, `the dead worker's deliveries took ${recoverMs} ms to recover`);
  } finally {
    await Promise.all([doomed.kill(), survivor?.kill(), drainer?.kill()]);
  }
});

Deno.test("a dead worker's deliveries are taken over even behind many live ones in the pending list", async () => {
  await using q = await reliabilityQueue("behind");
  const idleTimeout = 1000;
  // 30 long deliveries held by a live worker come first in the pending entries list...
  const live = await enqueueLoad(
    q.client,
    q.job,
    Array.from({ length: 30 }, (_, n) => ({ spec: { n, hangIn: "busy" }, priority: "high" })),
  );
  const [busy] = await startProcesses(q.redis, [
    q.process("busy", { concurrency: 30, prefetch: 0, idleTimeout }),
  ]);
  const processes = [busy];
  try {
    await eventually(async () => (await pendingOf(q.redis, q.client.queueName, "busy")) === 30);
    // ...then 5 held by a worker that dies.
    const stranded = await enqueueLoad(
      q.client,
      q.job,
      Array.from(
        { length: 5 },
        (_, i) => ({ spec: { n: 30 + i, hangIn: "doomed" }, priority: "high" }),
      ),
    );
    const [doomed] = await startProcesses(q.redis, [
      q.process("doomed", { concurrency: 5, prefetch: 0, idleTimeout }),
    ]);
    processes.push(doomed);
    await eventually(async () => (await executionsOf(q.client)).size === 35, {
      what: "the doomed worker to start its 5 tasks",
    });
    const at = Date.now();
    await doomed.kill();
    // A survivor with one slot asks XAUTOCLAIM for one delivery at a time, and XAUTOCLAIM looks
    // at ten pending entries per delivery asked for: it must go on past the live ones.
    const [survivor] = await startProcesses(q.redis, [
      q.process("survivor", { concurrency: 1, prefetch: 0, idleTimeout }),
    ]);
    processes.push(survivor);
    await waitForResults(q.redis, q.client.queueName, stranded.map((t) => t.id), 15_000);
    const recoverMs = Date.now() - at;
    const found = await audit(q.client, stranded);
    assertAudit(found, (e) => e.worker === "doomed" && e.at <= at);
    assert.equal(found.duplicated.length, 5);
    assert.equal(await pendingOf(q.redis, q.client.queueName, "busy"), 30, "live ones stay put");
    await report([{
      fault: "SIGKILL, dead worker's deliveries behind 30 live ones",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs,
      notes: "idleTimeout 1000; recovery = kill until the 5 stranded tasks have results",
    }]);
    assert.equal(live.length, 30);
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
  }
});
