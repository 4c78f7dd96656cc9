import assert from "node:assert/strict";
import { StreaqRetry, type Worker } from "../../mod.ts";
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
/** How much earlier than due a task may start: the time between the test's clock readings. */
const TOLERANCE = 50;

/** Records, on the test's (true) clock, when each task's try asked for a retry. */
function recordRetries(worker: Worker<unknown>, retriedAt: Map<string, number>): void {
  const handle = worker.middleware((next) => async (...args) => {
    try {
      return await next(...args);
    } catch (error) {
      if (error instanceof StreaqRetry) retriedAt.set(handle.context.taskId, Date.now());
      throw error;
    }
  });
}

Deno.test("workers and clients whose clocks are 5 s ahead and 5 s behind run every delayed and retried task once, none early", async () => {
  const random = seeded("skew");
  await using q = await reliabilityQueue("skew");
  const ahead = q.worker({ id: "ahead", clock: () => Date.now() + SKEW, idleTimeout: 2_000 });
  const behind = q.worker({ id: "behind", clock: () => Date.now() - SKEW, idleTimeout: 2_000 });
  const retriedAt = new Map<string, number>();
  recordRetries(ahead, retriedAt);
  recordRetries(behind, retriedAt);
  const runs = [runInBackground(ahead), runInBackground(behind)];
  try {
    const planned: Planned[] = Array.from({ length: 600 }, (_, n) => {
      const kind = random();
      const priority = PRIORITIES[between(random, 0, 2)];
      if (kind < 0.4) return { spec: { n }, priority, delay: between(random, 200, 3_000) };
      if (kind < 0.7) return { spec: { n, retry: between(random, 300, 1_000) }, priority };
      return { spec: { n, fail: kind > 0.95 }, priority };
    });
    // Sent one by one, in turn by the worker ahead, the worker behind and a client with a true
    // clock; the test's (true) clock reads when each was sent, so its intended time is known.
    const sent: (Sent & { sentAt: number })[] = [];
    const senders = [ahead, behind, q.client];
    for (const [i, { spec, priority, delay }] of planned.entries()) {
      const sentAt = Date.now();
      const handle = await senders[i % 3].enqueueUnsafe("job", spec).start({ priority, delay });
      sent.push({ id: handle.id, spec, delay, sentAt });
    }
    await waitForResults(q.redis, q.client.queueName, sent.map((t) => t.id));
    await Promise.all(runs.map((r) => r.stop()));

    const found = await audit(q.client, sent);
    assertAudit(found); // no duplicate at all: skew explains none
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));

    // Due times are computed and compared on Redis's clock, so skew moves none of them: a
    // delayed task starts no earlier than its delay after it was sent, a retry no earlier than
    // its delay after its try asked for it (both on the test's clock, read a little before the
    // due time is set: the tolerance covers that).
    const executions = await executionsOf(q.client);
    const lateness = (tasks: typeof sent, due: (t: Sent & { sentAt: number }) => number) =>
      tasks.map((t) => executions.get(t.id)![0].at - due(t)).sort((a, b) => a - b);
    const delayed = lateness(
      sent.filter((t) => t.delay !== undefined),
      (t) => t.sentAt + t.delay!,
    );
    const retried = lateness(
      sent.filter((t) => t.spec.retry !== undefined),
      (t) => retriedAt.get(t.id)! + t.spec.retry!,
    );
    assert.ok(delayed.length > 100 && retried.length > 100, "the load has both kinds");
    assert.ok(delayed[0] >= -TOLERANCE, `a delayed task started ${-delayed[0]} ms early`);
    assert.ok(retried[0] >= -TOLERANCE, `a retry started ${-retried[0]} ms early`);
    const range = (ms: number[]) => `${ms[0]} to ${ms.at(-1)} ms`;
    await report([{
      fault: "clock skew ±5 s between two workers (and the clients they are)",
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: null,
      notes: `against their due time, ${delayed.length} delayed tasks (200–3000 ms) ` +
        `started ${range(delayed)} late and ${retried.length} retries (300–1000 ms) ` +
        `${range(retried)} late (negative: early)`,
    }]);
  } finally {
    await Promise.all(runs.map((r) => r.stop()));
  }
});
