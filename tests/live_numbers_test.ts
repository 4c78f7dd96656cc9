/**
 * Live numbers: what the read API, the dashboard's overview and workers pages, `streaq status`
 * and `streaq metrics` say about outcomes and running tasks follows what happened within about
 * a second, long before a heartbeat, and they all say the same.
 *
 * The workers here have an `idleTimeout` of five minutes, so their first heartbeat would come
 * after 100 s: every state below is waited for with `eventually` (10 s at most), and would time
 * out if the numbers only moved with a heartbeat.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Worker } from "../mod.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { QueueReads } from "../src/client/queue_reads.ts";
import { queueContextOf } from "../src/worker.ts";
import { formatStatus, readStatus } from "../src/cli/status.ts";
import { FinishedRates } from "../src/cli/status_rates.ts";
import { MinuteMetrics } from "../src/run/metrics.ts";
import { eventually, runInBackground, sleep, testWorker } from "./_helpers.ts";
import { runCli } from "./_cli.ts";
import { uniqueQueue } from "./_redis.ts";
import { startTopology } from "./_topologies.ts";

/** Long enough that no heartbeat falls inside a test (one comes every third of it). */
const IDLE_TIMEOUT = 300_000;
const SUCCEEDED = 20;
const FAILED = 5;
const SLOW = 3;
const CONCURRENCY = 16;

type Handler = (request: Request) => Promise<Response>;

async function getJson(handler: Handler, path: string): Promise<Record<string, unknown>> {
  const response = await handler(new Request(`http://127.0.0.1:8080${path}`));
  assert.equal(response.status, 200, path);
  return await response.json();
}

async function getHtml(handler: Handler, path: string): Promise<string> {
  const response = await handler(new Request(`http://127.0.0.1:8080${path}`));
  assert.equal(response.status, 200, path);
  return await response.text();
}

/** Registers `ok` (succeeds), `bad` (fails at once) and `slow` (runs until `release`). */
function register(worker: Worker, release: Promise<void>) {
  const ok = worker.task(async function ok(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const bad = worker.task(async function bad(n: number): Promise<never> {
    await Promise.resolve();
    throw new Error(`bad ${n}`);
  });
  const slow = worker.task(async function slow(): Promise<string> {
    await release;
    return "released";
  }, { timeout: 60_000 });
  return { ok, bad, slow };
}

interface Expected {
  readonly completed: number;
  readonly failed: number;
  readonly running: number;
}

/** Waits until the read API says `expected`, then checks every number the metrics carry. */
async function readApiSays(worker: Worker, expected: Expected): Promise<void> {
  const reads = new QueueReads(queueContextOf(worker));
  let seen = "nothing";
  try {
    await eventually(async () => {
      const { metrics } = await reads.snapshot();
      const w = metrics.workers[0];
      seen = JSON.stringify({ lastHour: metrics.lastHour, running: w?.running, of: w?.outcomes });
      return metrics.lastHour.completed === expected.completed &&
        metrics.lastHour.failed === expected.failed &&
        w?.running === expected.running && w.outcomes.completed === expected.completed &&
        w.outcomes.failed === expected.failed;
    }, { what: `the read API to report ${JSON.stringify(expected)}` });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen ${seen}`);
  }
  const m = await worker.metrics();
  assert.equal(m.tasks.running, expected.running);
  assert.equal(m.tasks.done, expected.completed + expected.failed);
  assert.equal(m.workers.length, 1);
  assert.equal(m.workers[0].id, worker.id);
  assert.equal(m.workers[0].running, expected.running);
}

/** The dashboard's JSON and HTML of the overview and workers pages say `expected`. */
async function dashboardSays(worker: Worker, expected: Expected): Promise<void> {
  const handler = createDashboard(worker);
  const finished = expected.completed + expected.failed;
  const overview = await getJson(handler, "/api/overview");
  const hour = overview.lastHour as Record<string, number>;
  assert.deepEqual(
    { completed: hour.completed, failed: hour.failed, finished: hour.finished },
    { completed: expected.completed, failed: expected.failed, finished },
  );
  const counts = overview.counts as Record<string, number>;
  assert.equal(counts.running, expected.running);
  assert.equal(counts.done, finished);
  assert.equal(counts.workers, 1);
  const listed = overview.workers as { running: number; outcomes: Record<string, number> }[];
  assert.equal(listed[0].running, expected.running);
  assert.equal(listed[0].outcomes.completed, expected.completed);

  const page = await getHtml(handler, "/");
  assert.match(page, new RegExp(`<b>${finished}</b> finished`));
  assert.match(page, new RegExp(`<b>${expected.failed}</b> failed`));
  assert.match(
    page,
    new RegExp(`<div class="label">Failed</div><div class="value">${expected.failed}</div>`),
  );

  const workers = await getJson(handler, "/api/workers");
  const [w] = workers.workers as { running: number; outcomes: Record<string, number> }[];
  assert.equal(w.running, expected.running);
  assert.equal(w.outcomes.completed, expected.completed);
  assert.equal(w.outcomes.failed, expected.failed);
  const workersPage = await getHtml(handler, "/workers");
  assert.match(workersPage, new RegExp(`${expected.running} / ${CONCURRENCY}</td>`));
  assert.match(
    workersPage,
    new RegExp(`data-label="Completed" class="num">${expected.completed}</td>`),
  );
  assert.match(workersPage, new RegExp(`data-label="Failed" class="num">${expected.failed}</td>`));
}

/** The text of `streaq status` says `expected`. */
function statusSays(text: string, worker: Worker, expected: Expected): void {
  const finished = expected.completed + expected.failed;
  assert.match(
    text,
    new RegExp(
      `^last hour: ${finished} finished: ${expected.completed} succeeded, ${expected.failed} failed, 0 aborted; 0 retried$`,
      "m",
    ),
    text,
  );
  assert.match(text, new RegExp(`^tasks: 0 queued, ${expected.running} running, `, "m"), text);
  assert.match(text, new RegExp(` ${finished} done \\(results kept\\)$`, "m"), text);
  assert.match(
    text,
    new RegExp(
      `^${worker.id}\\s+\\S+\\s+${Deno.pid}\\s+${expected.running}/${CONCURRENCY}\\s+${expected.completed}\\s+${expected.failed}\\s+0\\s`,
      "m",
    ),
    text,
  );
}

/** Runs the tasks and checks the numbers on the way; `cli` also runs the command line. */
async function liveNumbersAgree(worker: Worker, { cli }: { cli: boolean }): Promise<void> {
  const release = Promise.withResolvers<void>();
  const { ok, bad, slow } = register(worker, release.promise);
  await worker.enqueueMany([
    ...Array.from({ length: SLOW }, () => slow.enqueue()),
    ...Array.from({ length: SUCCEEDED }, (_, i) => ok.enqueue(i)),
    ...Array.from({ length: FAILED }, (_, i) => bad.enqueue(i)),
  ]);
  const background = runInBackground(worker);
  try {
    const busy = { completed: SUCCEEDED, failed: FAILED, running: SLOW };
    await readApiSays(worker, busy);
    await dashboardSays(worker, busy);
    const status = await readStatus(worker);
    statusSays(formatStatus(status, { finished: {} }), worker, busy);
    if (cli) {
      const once = await runCli(worker.queueName, "status", "--once");
      assert.equal(once.code, 0, once.stderr);
      statusSays(once.stdout, worker, busy);
      const metrics = await runCli(worker.queueName, "metrics", "--json");
      assert.equal(metrics.code, 0, metrics.stderr);
      const printed = JSON.parse(metrics.stdout);
      assert.deepEqual(printed.lastHour, {
        completed: SUCCEEDED,
        failed: FAILED,
        aborted: 0,
        retried: 0,
      });
      assert.equal(printed.workers[0].running, SLOW);
    }

    release.resolve();
    const idle = { completed: SUCCEEDED + SLOW, failed: FAILED, running: 0 };
    await readApiSays(worker, idle);
    await dashboardSays(worker, idle);
    statusSays(formatStatus(await readStatus(worker), { finished: {} }), worker, idle);
  } finally {
    release.resolve();
    await background.stop();
  }
}

Deno.test("the read API, the dashboard and streaq status report outcomes and running tasks within seconds, all alike", async () => {
  await using worker = await testWorker({ idleTimeout: IDLE_TIMEOUT, concurrency: CONCURRENCY });
  await liveNumbersAgree(worker, { cli: true });
});

Deno.test("the live numbers reach a Redis Cluster within seconds too", async () => {
  await using topology = await startTopology("Cluster");
  {
    await using worker = new Worker({
      ...topology.connection,
      queueName: uniqueQueue("live"),
      logLevel: "error",
      handleSignals: false,
      idleTimeout: IDLE_TIMEOUT,
      concurrency: CONCURRENCY,
    });
    await liveNumbersAgree(worker, { cli: false });
  }
  // As in topology_test.ts: a Cluster client may still be refreshing its slot table through a
  // connection that quit() does not wait for; let it end before the sanitizer looks.
  await sleep(1_500);
});

/**
 * Checks `check` every 100 ms for `ms` ms: where "nothing happens for a while" is the point,
 * the window is named.
 */
async function quietFor(ms: number, what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assert.ok(await check(), `${what}: it did happen`);
    await sleep(100);
  }
}

Deno.test("an idle worker whose numbers did not change writes no health record between heartbeats", async () => {
  await using worker = await testWorker({ idleTimeout: IDLE_TIMEOUT });
  const ok = worker.task(async function ok(): Promise<void> {});
  const redis = queueContextOf(worker).redis;
  const key = `streaq:{${worker.queueName}}:health:${worker.id}`;
  const background = runInBackground(worker);
  try {
    await eventually(async () => (await redis.get(key)) !== null, { what: "the health record" });
    const first = await redis.get(key);
    await quietFor(2_500, "no write while idle", async () => (await redis.get(key)) === first);
    await ok.enqueue();
    let record = first;
    await eventually(async () => {
      record = await redis.get(key);
      return JSON.parse(record ?? "{}").counters?.completed === 1;
    }, { what: "the record with the task completed" });
    await quietFor(
      2_500,
      "no write once idle again",
      async () => (await redis.get(key)) === record,
    );
  } finally {
    await background.stop();
  }
});

Deno.test("streaq metrics prints the queue's metrics as text, and as JSON with --json", async () => {
  await using worker = await testWorker({ idleTimeout: IDLE_TIMEOUT });
  const done = worker.task(async function done(): Promise<void> {});
  const broken = worker.task(async function broken(): Promise<never> {
    await Promise.resolve();
    throw new TypeError("broken");
  });
  await worker.enqueueMany([done.enqueue(), done.enqueue(), broken.enqueue()]);
  await done.enqueue().start({ delay: 3_600_000 });
  const background = runInBackground(worker);
  try {
    await eventually(async () => {
      const m = await worker.metrics();
      return m.lastHour.completed === 2 && m.lastHour.failed === 1;
    }, { what: "the outcomes in the metrics" });
    const text = await runCli(worker.queueName, "metrics");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^queue ${worker.queueName} at \\d{4}-`, "m"));
    assert.match(text.stdout, /^tasks: 0 queued, 0 running, 1 scheduled, 0 waiting, 3 done /m);
    assert.match(text.stdout, /^normal\s+0\s+0\s+1$/m);
    assert.match(
      text.stdout,
      /^last hour: 3 finished: 2 succeeded, 1 failed, 0 aborted; 0 retried$/m,
    );
    assert.match(
      text.stdout,
      new RegExp(`^${worker.id}\\s+\\S+\\s+${Deno.pid}\\s+0/16\\s+2\\s+1\\s`, "m"),
    );
    assert.match(text.stdout, /^broken\s+0\s+1\s+0\s+0\s+\d+\/\d+\/\d+\s+\d+\/\d+\/\d+$/m);
    assert.match(text.stdout, /^done\s+2\s+0\s+0\s+0\s+\d+\/\d+\/\d+\s+\d+\/\d+\/\d+$/m);

    const json = await runCli(worker.queueName, "metrics", "--json");
    assert.equal(json.code, 0, json.stderr);
    const metrics = JSON.parse(json.stdout);
    assert.equal(metrics.queue, worker.queueName);
    assert.equal(metrics.tasks.scheduled, 1);
    assert.equal(metrics.tasks.done, 3);
    assert.deepEqual(metrics.lastHour, { completed: 2, failed: 1, aborted: 0, retried: 0 });
    assert.equal(metrics.functions.done.outcomes.completed, 2);
    assert.equal(metrics.functions.broken.outcomes.failed, 1);
    assert.equal(metrics.workers[0].id, worker.id);

    const wrong = await runCli(worker.queueName, "metrics", "--once");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /Option '--once' applies to status and events, not metrics/);
  } finally {
    await background.stop();
  }
});

Deno.test("tasks finished per second count the growth of each minute, and a minute leaving the hour is no drop", () => {
  const minute = (start: number, completed: number, failed = 0) => ({
    start: start * 60_000,
    completed,
    failed,
    aborted: 0,
    retried: 0,
  });
  const rates = new FinishedRates();
  assert.deepEqual(rates.update(1_000, [minute(1, 10), minute(2, 5)]), {});
  // Minute 1 leaves the window, minute 2 grows by 3, minute 3 is new with 2 (1 failed).
  const next = rates.update(3_000, [minute(2, 8), minute(3, 1, 1)]);
  assert.equal(next.last, 5 / 2);
  assert.equal(next.window, 5 / 2);
  assert.equal(next.windowMs, 2_000);
  const later = rates.update(4_000, [minute(2, 8), minute(3, 1, 1)]);
  assert.equal(later.last, 0);
  assert.equal(later.window, 5 / 3);
});

Deno.test("per-minute counts that could not be written are kept for the next flush, in their minute", () => {
  const counters = { completed: 0, failed: 0, aborted: 0, retried: 0, relinquished: 0 };
  const metrics = new MinuteMetrics(counters);
  counters.completed = 3;
  metrics.observe(counters, 60_000);
  counters.failed = 1;
  const first = metrics.take(counters, 120_000);
  assert.deepEqual([...first], [
    [1, { completed: 3, failed: 0, aborted: 0, retried: 0 }],
    [2, { completed: 0, failed: 1, aborted: 0, retried: 0 }],
  ]);
  assert.equal(metrics.pending, false);
  metrics.restore(first); // the write failed
  counters.failed = 2;
  const second = metrics.take(counters, 121_000);
  assert.deepEqual([...second], [
    [1, { completed: 3, failed: 0, aborted: 0, retried: 0 }],
    [2, { completed: 0, failed: 2, aborted: 0, retried: 0 }],
  ]);
});
