import assert from "node:assert/strict";
import { eventually, sleep } from "../_helpers.ts";
import {
  assertAudit,
  audit,
  DoneCounter,
  executionsOf,
  pendingOf,
  waitForResults,
} from "./_audit.ts";
import { enqueueLoad, planLoad, seeded } from "./_load.ts";
import { startProcesses, stopAll, type WorkerProcess } from "./_processes.ts";
import { report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";

Deno.test("tasks running longer than idleTimeout in a live worker are never taken over by a sibling", async () => {
  await using q = await reliabilityQueue("long");
  const idleTimeout = 1000;
  // Two streams, several deliveries each: every one of them must be heart-beaten.
  const long = await enqueueLoad(
    q.client,
    q.job,
    Array.from({ length: 12 }, (_, n) => ({
      spec: { n, ms: 3 * idleTimeout },
      priority: n % 2 ? "high" : "low",
    })),
  );
  const [owner] = await startProcesses(q.redis, [
    q.process("owner", { concurrency: 6, prefetch: 6, idleTimeout }),
  ]);
  const processes = [owner];
  try {
    await eventually(async () => (await pendingOf(q.redis, q.client.queueName, "owner")) === 12);
    processes.push(
      ...await startProcesses(q.redis, [q.process("sibling", { concurrency: 6, idleTimeout })]),
    );
    await waitForResults(q.redis, q.client.queueName, long.map((t) => t.id), 20_000);
    for (const exit of await stopAll(processes)) assert.equal(exit.code, 0, exit.stderr);
    const found = await audit(q.client, long);
    assertAudit(found);
    const executions = await executionsOf(q.client);
    assert.ok(
      long.every((t) => executions.get(t.id)![0].worker === "owner"),
      "the owner ran all of them, the prefetched ones included",
    );
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
  }
});

Deno.test("a task that blocks its worker's event loop past idleTimeout runs again elsewhere, and the stale run never overwrites the result", async () => {
  const random = seeded("stall");
  await using q = await reliabilityQueue("stall");
  const done = await DoneCounter.start(q.server.url, q.client.queueName);
  const config = (id: string) => q.process(id, { concurrency: 4, idleTimeout: 1000 });
  const processes: WorkerProcess[] = [];
  try {
    processes.push(...await startProcesses(q.redis, [config("stalled")]));
    const [stuck] = await enqueueLoad(q.client, q.job, [
      { spec: { n: -1, spin: 3_000 }, priority: "high" },
    ]);
    await eventually(async () => (await executionsOf(q.client)).has(stuck.id), {
      what: "the stalled worker to start the blocking task",
    });
    const at = Date.now();
    // Other tasks keep coming, to both workers.
    processes.push(...await startProcesses(q.redis, [config("rescuer")]));
    const load = await enqueueLoad(q.client, q.job, planLoad(random, 300, { delayed: 0 }));
    const sent = [stuck, ...load];
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    const recoverMs = (await q.client.resultById(stuck.id)).finishTime - at;
    await sleep(3_000 - (Date.now() - at)); // the stalled run has finished by now
    const exits = await stopAll(processes);
    for (const exit of exits) assert.equal(exit.code, 0, exit.stderr);

    const result = await q.client.resultById<number>(stuck.id);
    assert.equal(result.success && result.result, -2);
    assert.equal(result.workerId, "rescuer", "the rescuer's result is kept");
    assert.equal(result.tries, 2);
    assert.equal(done.counts.get(stuck.id), 1, "the stale run published nothing");
    assert.match(exits[0].stderr, new RegExp(`${stuck.id}.*no longer owns the delivery`));
    const found = await audit(q.client, sent);
    // Explained: a first execution in the stalled worker, begun before or during its stall.
    assertAudit(found, (e) => e.worker === "stalled" && e.at <= at + 3_000);
    assert.ok(found.duplicated.some((d) => d.id === stuck.id));
    await report([{
      fault: "event loop blocked 3 s in a task (idleTimeout 1000)",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs,
      notes: "recovery = stall start until the rescuer's result; duplicates: the blocking task " +
        "and the tasks the stalled worker held meanwhile; the stale completion was refused",
    }]);
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
    await done.close();
  }
});
