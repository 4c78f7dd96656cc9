import assert from "node:assert/strict";
import { runInBackground } from "../_helpers.ts";
import {
  assertAudit,
  assertQueueClean,
  audit,
  executionsOf,
  scanQueue,
  waitForResults,
} from "./_audit.ts";
import { between, type Planned, PRIORITIES, seeded, type Sent } from "./_load.ts";
import { report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";

const SKEW = 5_000;

Deno.test("workers whose clocks are 5 s ahead and 5 s behind run every delayed and retried task exactly once", async () => {
  const random = seeded("skew");
  await using q = await reliabilityQueue("skew");
  const ahead = q.worker({ id: "ahead", clock: () => Date.now() + SKEW, idleTimeout: 2_000 });
  const behind = q.worker({ id: "behind", clock: () => Date.now() - SKEW, idleTimeout: 2_000 });
  const runs = [runInBackground(ahead), runInBackground(behind)];
  try {
    const planned: Planned[] = Array.from({ length: 600 }, (_, n) => {
      const kind = random();
      const priority = PRIORITIES[between(random, 0, 2)];
      if (kind < 0.4) return { spec: { n }, priority, delay: between(random, 200, 3_000) };
      if (kind < 0.7) return { spec: { n, retry: between(random, 300, 1_000) }, priority };
      return { spec: { n, fail: kind > 0.95 }, priority };
    });
    // Sent one by one from the test's (true) clock, so each task's intended time is known.
    const sent: (Sent & { sentAt: number })[] = [];
    for (const { spec, priority, delay } of planned) {
      const sentAt = Date.now();
      const handle = await q.job.enqueue(spec).start({ priority, delay });
      sent.push({ id: handle.id, spec, delay, sentAt });
    }
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    await Promise.all(runs.map((r) => r.stop()));

    const found = await audit(q.client, sent);
    assertAudit(found); // no duplicate at all: skew explains none
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));

    // What skew does to timing: the worker ahead promotes delayed tasks and retries early; a
    // retry scheduled by the worker behind is due at once.
    const executions = await executionsOf(q.client);
    const lateness = (tasks: typeof sent, wanted: (t: Sent) => number) =>
      tasks.map((t) => executions.get(t.id)![0].at - t.sentAt - wanted(t)).sort((a, b) => a - b);
    const delayed = lateness(sent.filter((t) => t.delay !== undefined), (t) => t.delay!);
    const retried = lateness(sent.filter((t) => t.spec.retry !== undefined), (t) => t.spec.retry!);
    assert.ok(delayed[0] < -100, "some delayed tasks ran early, promoted by the worker ahead");
    assert.ok(delayed[0] >= -SKEW - 100, "never earlier than the skew");
    const range = (ms: number[]) => `${ms[0]} to ${ms.at(-1)} ms`;
    await report([{
      fault: "clock skew ±5 s between two workers",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: null,
      notes: `against their intended time, ${delayed.length} delayed tasks (200–3000 ms) ` +
        `started ${range(delayed)} late and ${retried.length} retries (300–1000 ms) ` +
        `${range(retried)} late (negative: early)`,
    }]);
  } finally {
    await Promise.all(runs.map((r) => r.stop()));
  }
});
