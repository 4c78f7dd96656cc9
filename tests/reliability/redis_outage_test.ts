/**
 * Redis going away under load, with executions counted. The crash-and-restart of a Redis under
 * an in-process worker, Sentinel and Cluster failovers, and enqueueing while Redis is down are
 * in `tests/failover_test.ts`; here worker processes run a mixed load through a graceful
 * restart and through a pause that makes Redis unresponsive for three seconds.
 */

import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { sleep } from "../_helpers.ts";
import {
  assertAudit,
  assertQueueClean,
  audit,
  countResults,
  scanQueue,
  waitForResults,
} from "./_audit.ts";
import { enqueueLoad, planLoad, seeded, type Sent } from "./_load.ts";
import { startProcesses, stopAll } from "./_processes.ts";
import { report } from "./_report.ts";
import { type ReliabilityQueue, reliabilityQueue } from "./_setup.ts";

const TASKS = 3_000;

/** Polls until more than `before` of the tasks have results; returns when (ms since epoch). */
async function untilProgress(redis: Redis, q: ReliabilityQueue, sent: Sent[], before: number) {
  const ids = sent.map((t) => t.id);
  while ((await countResults(redis, q.client.queueName, ids)) <= before) await sleep(10);
  return Date.now();
}

Deno.test("a Redis restarted under load loses no acknowledged task, and only tasks in flight run twice", async () => {
  const random = seeded("restart");
  // Graceful: Redis writes its append-only file before it exits, so it comes back with the queue.
  await using q = await reliabilityQueue("restart", ["--appendonly", "yes"]);
  const config = (id: string) => q.process(id, { concurrency: 8, idleTimeout: 2_000 });
  const processes = await startProcesses(q.redis, [config("r1"), config("r2")]);
  try {
    const sent = await enqueueLoad(q.client, q.job, planLoad(random, TASKS, { slow: 0.3 }));
    await sleep(500);
    const at = Date.now();
    await q.server.restart();
    const back = Date.now();
    const before = await countResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    const recoverMs = await untilProgress(q.redis, q, sent, before) - back;
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    for (const exit of await stopAll(processes)) assert.equal(exit.code, 0, exit.stderr);
    const found = await audit(q.client, sent);
    // Explained: an earlier execution was under way while Redis went down.
    assertAudit(found, (e) => e.at <= back);
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));
    await report([{
      fault: "Redis restarted under load (2 processes)",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs,
      notes: `Redis down for ${back - at} ms (graceful restart, append-only file); recovery = ` +
        `Redis back until results are written again`,
    }]);
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
  }
});

Deno.test("Redis unresponsive for 3 s under load (CLIENT PAUSE) loses nothing and, within idleTimeout, runs nothing twice", async () => {
  const random = seeded("pause");
  await using q = await reliabilityQueue("pause");
  // Longer than the pause plus a heartbeat interval: no delivery looks stale afterwards.
  const config = (id: string) => q.process(id, { concurrency: 8, idleTimeout: 8_000 });
  const processes = await startProcesses(q.redis, [config("p1"), config("p2")]);
  try {
    const sent = await enqueueLoad(q.client, q.job, planLoad(random, TASKS, { slow: 0.3 }));
    await sleep(300);
    const pause = 3_000;
    await q.server.cli("CLIENT", "PAUSE", String(pause), "ALL");
    const resumesAt = Date.now() + pause;
    // Blocks until the pause ends, like every command of the workers.
    const before = await countResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    assert.ok(Date.now() >= resumesAt - 50, "the command waited for the pause");
    const recoverMs = await untilProgress(q.redis, q, sent, before) - resumesAt;
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    for (const exit of await stopAll(processes)) assert.equal(exit.code, 0, exit.stderr);
    const found = await audit(q.client, sent);
    assertAudit(found);
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));
    await report([{
      fault: "Redis unresponsive 3 s (CLIENT PAUSE ALL)",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: Math.max(0, recoverMs),
      notes: "idleTimeout 8000; recovery = pause end until results are written again",
    }]);
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
  }
});
