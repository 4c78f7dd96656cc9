import assert from "node:assert/strict";
import { sleep } from "../_helpers.ts";
import {
  assertAudit,
  assertQueueClean,
  audit,
  scanQueue,
  untilReleased,
  waitForResults,
} from "./_audit.ts";
import { enqueueLoad, planLoad, seeded } from "./_load.ts";
import { startProcesses, stopAll, type WorkerProcess } from "./_processes.ts";
import { report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";

const TASKS = 2_000;
/** Longest time allowed between sending SIGTERM and the worker's handler running. */
const SIGNAL_DELIVERY = 500;

/**
 * Sends SIGTERM to one of two worker processes under load, starts a replacement, and returns
 * the audit with the terminated worker's exit and how long its deliveries took to be released.
 */
async function terminateUnderLoad(name: string, gracePeriod: number) {
  const random = seeded(name);
  await using q = await reliabilityQueue(name);
  // A long idleTimeout: whatever comes back quickly was handed back, not reclaimed.
  const config = (id: string) =>
    q.process(id, { concurrency: 8, idleTimeout: 20_000, gracePeriod });
  let live = await startProcesses(q.redis, [config("t1"), config("t2")]);
  const all: WorkerProcess[] = [...live];
  try {
    const sent = await enqueueLoad(q.client, q.job, planLoad(random, TASKS, { slow: 0.6 }));
    await sleep(400);
    const [victim] = live;
    const at = Date.now();
    const exit = await victim.terminate();
    const recoverMs = await untilReleased(q.redis, q.client.queueName, victim.id) - at;
    const [replacement] = await startProcesses(q.redis, [config("t3")]);
    all.push(replacement);
    live = [live[1], replacement];
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    for (const e of await stopAll(live)) assert.equal(e.code, 0, e.stderr);
    const found = await audit(q.client, sent);
    // Explained: the earlier execution was in the terminated worker, before the signal reached
    // it. A task may start between the kill() here and the moment the worker's handler runs (a
    // few milliseconds, more on a loaded machine): it is then running at shutdown, handed back,
    // and runs again. After the handler, the worker starts nothing (it hands back instead).
    assertAudit(found, (e) => e.worker === victim.id && e.at <= at + SIGNAL_DELIVERY);
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));
    return { found, exit, recoverMs };
  } finally {
    await Promise.all(all.map((p) => p.kill()));
  }
}

Deno.test("SIGTERM without a grace period under load hands running tasks back at once, and only they run again", async () => {
  const { found, exit, recoverMs } = await terminateUnderLoad("sigterm", 0);
  assert.equal(exit.code, 0, exit.stderr);
  const { relinquished } = exit.report!.counters;
  assert.ok(relinquished > 0, "the worker was running tasks when it received SIGTERM");
  // A task handed back after its side effect runs again: at most one duplicate per hand-back.
  assert.ok(
    found.duplicated.length <= relinquished,
    `${found.duplicated.length} > ${relinquished}`,
  );
  // Handed back, not left for another worker to reclaim after the idleTimeout of 20 s.
  assert.ok(recoverMs < 10_000, `the deliveries took ${recoverMs} ms to come back`);
  await report([{
    fault: "SIGTERM under load, gracePeriod 0",
    sent: found.sent,
    results: found.results,
    lost: found.lost.length,
    duplicated: found.duplicated.length,
    recoverMs,
    notes: `recovery = signal until the worker held no delivery; ${relinquished} running tasks ` +
      `handed back (each repeats its side effect on its next try)`,
  }]);
});

Deno.test("SIGTERM with a grace period under load lets running tasks finish, so nothing runs twice", async () => {
  const { found, exit, recoverMs } = await terminateUnderLoad("sigterm-grace", 5_000);
  assert.equal(exit.code, 0, exit.stderr);
  assert.equal(exit.report!.counters.relinquished, 0);
  assert.equal(found.duplicated.length, 0);
  await report([{
    fault: "SIGTERM under load, gracePeriod 5000",
    sent: found.sent,
    results: found.results,
    lost: found.lost.length,
    duplicated: found.duplicated.length,
    recoverMs,
    notes: "recovery = signal until the worker held no delivery (its tasks finished, its " +
      "prefetched ones were handed back)",
  }]);
});
