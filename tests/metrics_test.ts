import assert from "node:assert/strict";
import { StreaqCancelled, StreaqRetry, taskContext, TaskStatus } from "../mod.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { FunctionStats, TIMING_WINDOW } from "../src/run/function_stats.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";

type Handler = (request: Request) => Promise<Response>;

const ORIGIN = "http://127.0.0.1:8080";

function get(handler: Handler, path: string, headers: HeadersInit = {}): Promise<Response> {
  return handler(new Request(ORIGIN + path, { headers }));
}

Deno.test("worker.metrics() counts tasks by status, outcomes per function and timings", async () => {
  // The worker writes its outcomes within a second of them (see tests/live_numbers_test.ts).
  await using worker = await testWorker({ concurrency: 4 });
  const ok = worker.task(async function ok(n: number): Promise<number> {
    await Promise.resolve();
    return n;
  });
  const boom = worker.task(async function boom(): Promise<never> {
    await Promise.resolve();
    throw new Error("boom");
  }, { maxTries: 1 });
  const later = worker.task(async function later(): Promise<void> {});

  const empty = await worker.metrics();
  assert.equal(empty.queue, worker.queueName);
  assert.deepEqual(empty.workers, []);
  assert.deepEqual(empty.functions, {});
  assert.deepEqual(empty.lastHour, { completed: 0, failed: 0, aborted: 0, retried: 0 });

  for (let i = 0; i < 5; i++) await ok.enqueue(i);
  for (let i = 0; i < 3; i++) await boom.enqueue();
  await later.enqueue().start({ delay: 3_600_000 });
  await later.enqueue().start({ delay: 3_600_000 });
  const queued = await worker.metrics();
  assert.equal(queued.tasks.queued, 8);
  assert.equal(queued.tasks.scheduled, 2);
  assert.equal(queued.byPriority.normal.queued, 8);

  const run = runInBackground(worker);
  try {
    let m = await worker.metrics();
    await eventually(async () => {
      m = await worker.metrics();
      return m.functions.ok?.outcomes.completed === 5 && m.functions.boom?.outcomes.failed === 3 &&
        m.lastHour.completed === 5 && m.lastHour.failed === 3;
    }, { what: "the outcomes published by the worker" });
    assert.equal(m.tasks.queued, 0);
    assert.equal(m.tasks.running, 0);
    assert.equal(m.tasks.scheduled, 2);
    assert.equal(m.tasks.done, 8);
    assert.equal(m.workers.length, 1);
    assert.equal(m.workers[0].id, worker.id);
    assert.equal(m.workers[0].concurrency, 4);
    assert.deepEqual(m.workers[0].outcomes, {
      completed: 5,
      failed: 3,
      aborted: 0,
      retried: 0,
      relinquished: 0,
    });
    assert.equal(m.workers[0].functions.ok.completed, 5);
    assert.equal(m.functions.ok.runCount, 5);
    assert.equal(m.functions.ok.runTime?.samples, 5);
    assert.equal(m.functions.ok.wait?.samples, 5);
    assert.equal(m.functions.ok.waitCount, 5);
    const { p50, p90, p99 } = m.functions.ok.runTime!;
    assert.ok(0 <= p50 && p50 <= p90 && p90 <= p99, `ordered percentiles: ${p50} ${p90} ${p99}`);
    assert.equal(m.functions.later, undefined, "no outcome for the scheduled ones yet");
  } finally {
    await run.stop();
  }
});

Deno.test("worker.metrics() counts aborted and retried tries apart from failures", async () => {
  await using worker = await testWorker({ idleTimeout: 1_000 });
  let calls = 0;
  const flaky = worker.task(async function flaky(): Promise<string> {
    await Promise.resolve();
    if (++calls === 1) throw new StreaqRetry({ delay: 0 });
    return "ok";
  });
  const stuck = worker.task(async function stuck(): Promise<void> {
    const { signal } = taskContext();
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  });
  const run = runInBackground(worker);
  try {
    const f = await flaky.enqueue();
    const fr = await f.result({ timeout: 10_000 });
    assert.ok(fr.success, fr.success ? "" : String(fr.exception));
    const running = await stuck.enqueue();
    await eventually(async () => await running.status() === TaskStatus.RUNNING);
    assert.equal(await running.abort({ timeout: 5_000 }), true);
    const r = await running.result({ timeout: 5_000 });
    assert.ok(!r.success && r.exception instanceof StreaqCancelled);
    let m = await worker.metrics();
    await eventually(async () => {
      m = await worker.metrics();
      return m.functions.flaky?.outcomes.retried === 1 &&
        m.functions.flaky?.outcomes.completed === 1 && m.lastHour.retried === 1 &&
        m.functions.stuck?.outcomes.aborted === 1 && m.lastHour.aborted === 1;
    }, { what: "one retry and one success of flaky, one abort of stuck" });
    assert.equal(m.functions.flaky.runCount, 2);
    assert.equal(m.functions.flaky.outcomes.failed, 0);
    assert.equal(m.functions.stuck.outcomes.failed, 0);
  } finally {
    await run.stop();
  }
});

Deno.test("the dashboard serves Prometheus text at /metrics, below its base path", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker, { basePath: "/admin" });
  const response = await get(handler, "/admin/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  assert.match(text, /^# HELP streaq_tasks /m);
  assert.match(text, /^# TYPE streaq_tasks gauge$/m);
  assert.ok(
    text.includes(`streaq_tasks{queue="${worker.queueName}",status="queued"} 0\n`),
    text,
  );
  assert.equal((await get(handler, "/metrics")).status, 404, "only below the base path");
  const head = await handler(new Request(ORIGIN + "/admin/metrics", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const post = await handler(new Request(ORIGIN + "/admin/metrics", { method: "POST" }));
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
});

Deno.test("/metrics needs the dashboard's token, as a bearer header, and answers a scraper plainly", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker, { auth: { token: "correct-horse-battery" } });

  const anonymous = await get(handler, "/metrics");
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer/);
  assert.equal(anonymous.headers.get("set-cookie"), null);
  assert.doesNotMatch(await anonymous.text(), /<form|streaq_tasks/, "no sign-in form, no data");

  const wrong = await get(handler, "/metrics", { authorization: "Bearer nope" });
  assert.equal(wrong.status, 403);
  assert.doesNotMatch(await wrong.text(), /streaq_tasks/);

  // A token in the URL does not sign a scraper in (it would end up in logs).
  const queried = await get(handler, "/metrics?token=correct-horse-battery");
  assert.equal(queried.status, 401);
  assert.equal(queried.headers.get("set-cookie"), null);
  await queried.body?.cancel();

  const right = await get(handler, "/metrics", { authorization: "Bearer correct-horse-battery" });
  assert.equal(right.status, 200);
  assert.match(await right.text(), /^streaq_tasks\{/m);
});

Deno.test("/metrics takes basic credentials or an auth function like the pages", async () => {
  await using worker = await testWorker();
  const basic = createDashboard(worker, {
    auth: { basic: { username: "prometheus", password: "scrape-me" } },
  });
  const none = await get(basic, "/metrics");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Basic/);
  await none.body?.cancel();
  const bad = await get(basic, "/metrics", { authorization: `Basic ${btoa("prometheus:no")}` });
  assert.equal(bad.status, 401);
  await bad.body?.cancel();
  const good = await get(basic, "/metrics", {
    authorization: `Basic ${btoa("prometheus:scrape-me")}`,
  });
  assert.equal(good.status, 200);
  await good.body?.cancel();

  const byFunction = createDashboard(worker, {
    auth: (request) => request.headers.get("x-internal") === "yes",
  });
  const refused = await get(byFunction, "/metrics");
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const allowed = await get(byFunction, "/metrics", { "x-internal": "yes" });
  assert.equal(allowed.status, 200);
  await allowed.body?.cancel();
});

Deno.test("a worker keeps the last 64 timings of each function, and counts every outcome", () => {
  const stats = new FunctionStats();
  for (let i = 1; i <= 100; i++) stats.note("f", "completed", i, i * 10);
  stats.note("f", "failed", 5); // refused: it never ran
  const record = stats.snapshot().f;
  assert.equal(record.counts.completed, 100);
  assert.equal(record.counts.failed, 1);
  assert.equal(record.runCount, 100);
  assert.equal(record.runMsSum, 10 * (100 * 101) / 2);
  assert.equal(record.runMs.length, TIMING_WINDOW);
  assert.equal(record.runMs[0], (100 - TIMING_WINDOW + 1) * 10, "the oldest timings go first");
  assert.equal(record.waitMs.length, TIMING_WINDOW);
  assert.equal(record.waitMs.at(-1), 5);
  assert.equal(record.waitMsSum, (100 * 101) / 2 + 5);
});
