import assert from "node:assert/strict";
import { Worker } from "../../mod.ts";
import { eventually, sleep } from "../_helpers.ts";
import { startRedis, uniqueQueue } from "../_redis.ts";
import {
  assertAudit,
  assertQueueClean,
  audit,
  DoneCounter,
  scanQueue,
  usedMemory,
  waitForResults,
} from "./_audit.ts";
import { enqueueLoad, planLoad, PRIORITIES, seeded } from "./_load.ts";
import { startProcesses, stopAll } from "./_processes.ts";
import { mb, report } from "./_report.ts";
import { registerJob } from "./_tasks.ts";
import { queueContextOf } from "../../src/worker.ts";

const TASKS = 10_000;
const PROCESSES = 3;
const ABORTED = 10;

Deno.test("under a mixed load through three worker processes every task ends with exactly one result and nothing is left behind", async () => {
  const random = seeded("load");
  await using redis = await startRedis();
  await using client = new Worker({
    redisUrl: redis.url,
    queueName: uniqueQueue("load"),
    priorities: PRIORITIES,
    logLevel: "error",
    handleSignals: false,
  });
  const job = registerJob(client);
  const done = await DoneCounter.start(redis.url, client.queueName);
  const processes = await startProcesses(
    queueContextOf(client).redis,
    Array.from({ length: PROCESSES }, (_, i) => ({
      redisUrl: redis.url,
      queueName: client.queueName,
      id: `load-${i + 1}`,
      concurrency: 16,
    })),
  );
  try {
    const started = Date.now();
    const sent = await enqueueLoad(client, job, planLoad(random, TASKS));
    // Long tasks, aborted while queued or running.
    const long = await enqueueLoad(
      client,
      job,
      Array.from({ length: ABORTED }, (_, i) => ({
        spec: { n: TASKS + i, ms: 30_000 },
        priority: "high",
      })),
    );
    await sleep(200);
    const aborts = await Promise.all(long.map((t) => client.abortById(t.id, { timeout: 10_000 })));
    long.forEach((t) => (t.aborted = true));
    assert.deepEqual(aborts, long.map(() => true), "every abort is confirmed");
    sent.push(...long);

    await waitForResults(queueContextOf(client).redis, client.queueName, sent.map((t) => t.id));
    const drainMs = Date.now() - started;
    await eventually(() => done.counts.size === sent.length, { what: "every result published" });
    const exits = await stopAll(processes);
    for (const exit of exits) assert.equal(exit.code, 0, exit.stderr);

    const found = await audit(client, sent);
    assertAudit(found);
    assert.deepEqual(done.repeated, [], "no result is published twice");
    const keyspace = await scanQueue(queueContextOf(client).redis, client.queueName);
    assertQueueClean(keyspace);
    assert.equal(keyspace.kinds.result, sent.length);

    const rss = Math.max(...exits.map((e) => e.report!.rss));
    const heap = Math.max(...exits.map((e) => e.report!.heapUsed));
    const memory = await usedMemory(queueContextOf(client).redis);
    await report([{
      fault: `load: ${sent.length} mixed tasks, ${PROCESSES} processes`,
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: null,
      notes: `drained in ${drainMs} ms (${
        Math.round(sent.length / (drainMs / 1000))
      } tasks/s, delays up to 1.5 s included); ${ABORTED} aborted; worker rss ≤ ${
        mb(rss)
      }, heap ≤ ${mb(heap)}; Redis used_memory ${
        mb(memory)
      } holding ${sent.length} results (ttl 5 min)`,
    }]);
  } finally {
    await Promise.all(processes.map((p) => p.kill()));
    await done.close();
  }
});
