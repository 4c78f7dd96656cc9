import assert from "node:assert/strict";
import { runInBackground, sleep } from "../_helpers.ts";
import { assertAudit, audit, usedMemory, waitForResults } from "./_audit.ts";
import type { Sent } from "./_load.ts";
import type { JobSpec } from "./_tasks.ts";
import { StreaqError, type Task } from "../../mod.ts";
import { mb, report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";

const PAD = "x".repeat(2_048);

Deno.test("at Redis maxmemory, enqueue fails with an out-of-memory error, stores nothing, and every acknowledged task still gets its result", async () => {
  await using q = await reliabilityQueue("oom", [
    "--maxmemory",
    "2mb",
    "--maxmemory-policy",
    "noeviction",
  ]);
  const slow = q.worker({ id: "slow", concurrency: 2 });
  const runs = [runInBackground(slow)];
  try {
    // Tasks arrive faster than one slow worker runs them, until Redis is full.
    const sent: Sent[] = [];
    let refusal: Error | undefined;
    let rejected: Task<number>[] = [];
    const batchOf = (first: number) =>
      Array.from({ length: 20 }, (_, i) => q.job.enqueue({ n: first + i, ms: 50, pad: PAD }));
    for (let batch = 0; !refusal; batch++) {
      assert.ok(batch < 500, "Redis never filled up");
      const tasks = batchOf(batch * 20);
      try {
        await q.client.enqueueMany(tasks);
        sent.push(...tasks.map((t) => ({ id: t.id, spec: t.args[0] as JobSpec })));
      } catch (error) {
        refusal = error as Error;
        rejected = tasks;
      }
    }
    const full = Date.now();
    const memory = await usedMemory(q.redis);
    assert.ok(refusal instanceof StreaqError, `a StreaqError, not ${refusal.name}`);
    assert.match(refusal.message, /Redis is out of memory/);
    assert.match(refusal.message, /OOM/);
    assert.match(refusal.message, /maxmemory/);
    const stored = await q.redis.exists(
      ...rejected.map((t) => `streaq:{${q.client.queueName}}:task:${t.id}`),
    );
    assert.equal(stored, 0, "a refused batch stores none of its tasks");

    // A worker started while Redis is full starts, and helps drain the queue.
    const helper = q.worker({ id: "helper", concurrency: 8 });
    const helping = runInBackground(helper);
    runs.push(helping);
    let refusedToStart: unknown;
    helping.done.catch((error) => (refusedToStart = error));
    // What a caller does: send the same work again (new tasks) until Redis accepts it.
    let recoverMs: number | undefined;
    while (recoverMs === undefined) {
      const again = batchOf((rejected[0].args[0] as JobSpec).n);
      try {
        await q.client.enqueueMany(again);
        sent.push(...again.map((t) => ({ id: t.id, spec: t.args[0] as JobSpec })));
        recoverMs = Date.now() - full;
      } catch (error) {
        assert.match((error as Error).message, /OOM/);
        await sleep(50);
      }
    }
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    assert.equal(refusedToStart, undefined, "the worker started at maxmemory runs");
    assert.ok(helper.counters.completed > 0, "the worker started at maxmemory ran tasks");
    await Promise.all(runs.map((r) => r.stop()));
    const found = await audit(q.client, sent);
    assertAudit(found);
    await report([{
      fault: "Redis maxmemory 2mb, noeviction",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs,
      notes:
        `enqueue refused at used_memory ${mb(memory)} ("${refusal.message.split("\n")[0]}"); ` +
        `recovery = first refusal until the refused batch, sent again, was accepted (the ` +
        `workers drained the queue meanwhile, one started while Redis was full)`,
    }]);
  } finally {
    await Promise.all(runs.map((r) => r.stop()));
  }
});
