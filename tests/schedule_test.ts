import assert from "node:assert/strict";
import { StreaqError, taskContext, TaskStatus, type Worker } from "../mod.ts";
import { eventually, runInBackground, sibling, sleep, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";
import { PROMOTE_SCRIPT, Scheduler } from "../src/run/promote.ts";

/** Every key of the worker's queue, sorted. */
async function queueKeys(worker: Worker<unknown>): Promise<string[]> {
  return (await queueContextOf(worker).redis.keys(`streaq:{${worker.queueName}}:*`)).sort();
}

Deno.test("an every-second cron job runs once per second", async () => {
  await using worker = await testWorker();
  const runs: number[] = [];
  worker.cron("* * * * * *", async function tick() {
    runs.push(Date.now());
    await Promise.resolve();
  });
  const running = runInBackground(worker);
  await eventually(() => runs.length >= 3, { timeout: 6_000, what: "three ticks" });
  await running.stop();
  for (let i = 1; i < runs.length; i++) {
    assert.ok(runs[i] - runs[i - 1] > 500, `ticks ${runs[i - 1]} and ${runs[i]} too close`);
  }
});

Deno.test("three workers running the same cron job fire each occurrence once", async () => {
  await using first = await testWorker();
  await using second = await sibling(first);
  await using third = await sibling(first);
  const runs: number[] = [];
  for (const worker of [first, second, third]) {
    worker.cron("* * * * * *", async function shared() {
      runs.push(Date.now());
      await Promise.resolve();
    });
  }
  const running = [first, second, third].map((w) => runInBackground(w));
  await sleep(3_600);
  await Promise.all(running.map((r) => r.stop()));
  assert.ok(runs.length >= 2 && runs.length <= 4, `expected 2 to 4 runs, got ${runs.length}`);
  runs.sort((a, b) => a - b);
  for (let i = 1; i < runs.length; i++) {
    assert.ok(runs[i] - runs[i - 1] > 500, `one occurrence ran twice: ${runs.join(", ")}`);
  }
});

Deno.test("nextRun() evaluates a crontab in the worker's time zone", async () => {
  await using worker = await testWorker({ tz: "Asia/Kolkata" });
  const next = worker.nextRun("30 9 * * mon-fri");
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: "Asia/Kolkata",
    hour: "numeric",
    minute: "numeric",
    weekday: "short",
    hour12: false,
  }).formatToParts(next);
  const part = (type: string) => parts.find((p) => p.type === type)?.value;
  assert.equal(Number(part("hour")), 9);
  assert.equal(Number(part("minute")), 30);
  assert.ok(!["Sat", "Sun"].includes(part("weekday")!));
  // 9:30 in Kolkata is 4:00 UTC (no daylight saving there).
  assert.equal(next.getUTCHours(), 4);
  assert.equal(next.getUTCMinutes(), 0);
  assert.ok(next.getTime() > Date.now());
});

Deno.test("a redeployed worker's changed crontab replaces the old schedule", async () => {
  await using old = await testWorker();
  const oldRuns: number[] = [];
  old.cron("0 0 1 1 *", async function report() {
    oldRuns.push(Date.now());
    await Promise.resolve();
  });
  await old.run({ burst: true });
  const [before] = await old.schedules();
  assert.equal(before.crontab, "0 0 1 1 *");
  assert.ok(before.nextRun!.getTime() - Date.now() > 60_000);

  await using redeployed = await sibling(old);
  const newRuns: number[] = [];
  redeployed.cron("* * * * * *", async function report() {
    newRuns.push(Date.now());
    await Promise.resolve();
  });
  const running = runInBackground(redeployed);
  await eventually(() => newRuns.length >= 2, { timeout: 5_000, what: "the new schedule" });
  await running.stop();
  const schedules = await redeployed.schedules();
  assert.equal(schedules.length, 1);
  assert.equal(schedules[0].crontab, "* * * * * *");
  assert.equal(schedules[0].cronJob, true);
  assert.equal(oldRuns.length, 0);
});

Deno.test("a task enqueued with a crontab repeats until unscheduled, leaving nothing queued", async () => {
  await using worker = await testWorker();
  const runs: string[] = [];
  const ping = worker.task(async function ping(target: string): Promise<string> {
    runs.push(target);
    return await Promise.resolve(`pong ${target}`);
  });
  const handle = await ping.enqueue("db").start({ schedule: "* * * * * *" });
  const info = await handle.info();
  assert.equal(info?.status, TaskStatus.SCHEDULED);
  assert.equal(info?.crontab, "* * * * * *");
  assert.ok(info?.scheduled instanceof Date);
  const listed = await worker.getTasksByStatus(TaskStatus.SCHEDULED);
  assert.deepEqual(listed.map((t) => t.taskId), [handle.id]);

  const running = runInBackground(worker);
  await eventually(() => runs.length >= 2, { timeout: 5_000, what: "two occurrences" });
  const result = await handle.result({ timeout: 2_000 });
  assert.equal(result.success && result.result, "pong db");
  assert.equal(await handle.unschedule(), true);
  const count = runs.length;
  await sleep(1_500);
  await running.stop();
  assert.ok(runs.length <= count + 1, "it kept running after unschedule");
  assert.equal(await handle.info(), null);
  assert.deepEqual(await worker.schedules(), []);
  const keys = await queueKeys(worker);
  const leftovers = keys.filter((k) => /:(task|delayed|aborting|schedules)/.test(k));
  assert.deepEqual(leftovers, []);
  assert.equal(await worker.unscheduleById(handle.id), false);
});

Deno.test("a wake that comes while the scheduler promotes makes it promote again before it sleeps", async () => {
  // The promotion of the last delayed task is in flight when a task due later is added and
  // announced (a repeating task's next occurrence, say, written by a completion that ran at
  // once): the answer says nothing more is due, and the scheduler must not sleep past the task.
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {});
  await worker.connect();
  const client = queueContextOf(worker);
  // The answers of the promotions, held back on demand.
  type Call = { args?: unknown[]; resolve(reply: unknown): void };
  const connection = client.redis as unknown as { sendCommand(call: Call): unknown };
  const send = connection.sendCommand.bind(connection);
  let holding = false;
  let promotions = 0;
  const held: (() => void)[] = [];
  connection.sendCommand = (call: Call) => {
    if (call.args?.[0] === PROMOTE_SCRIPT.sha) {
      promotions++;
      if (holding) {
        const resolve = call.resolve;
        call.resolve = (reply) => held.push(() => resolve.call(call, reply));
      }
    }
    return send(call);
  };
  const first = await later.enqueue().start({ schedule: new Date(Date.now() + 300) });
  const scheduler = new Scheduler(client, (error) => {
    throw error;
  });
  scheduler.start();
  try {
    await eventually(() => promotions === 1, { what: "the first promotion" });
    holding = true;
    await eventually(() => held.length === 1, { what: "the promotion of the first task" });
    assert.equal(await first.status(), TaskStatus.QUEUED);
    const due = Date.now() + 100;
    const second = await later.enqueue().start({ schedule: new Date(due) });
    scheduler.notify(due);
    holding = false;
    held[0]();
    // Without the notice, the scheduler would sleep until the next due time that promotion saw
    // (none: 5 s, its longest sleep) before it promoted the second task.
    await eventually(async () => (await second.status()) === TaskStatus.QUEUED, {
      timeout: 2_500,
      what: "the second task promoted",
    });
  } finally {
    await scheduler.stop();
  }
});

Deno.test("an occurrence later than maxScheduleDrift is skipped, the next ones run", async () => {
  await using registrar = await testWorker();
  registrar.cron("* * * * * *", async function pulse() {}, { maxScheduleDrift: 200 });
  await registrar.run({ burst: true });
  await sleep(2_200); // the registered occurrence is now stale

  await using worker = await sibling(registrar);
  const runs: number[] = [];
  worker.cron("* * * * * *", async function pulse() {
    runs.push(Date.now());
    await Promise.resolve();
  }, { maxScheduleDrift: 200 });
  const running = runInBackground(worker);
  await eventually(async () => {
    const [schedule] = await worker.schedules();
    return schedule?.lastResult !== null && schedule?.lastResult !== undefined;
  }, { what: "the stale occurrence's result" });
  const [first] = await worker.schedules();
  assert.equal(first.lastResult?.success, false);
  assert.match(first.lastResult!.exception.message, /maxScheduleDrift/);
  await eventually(() => runs.length >= 1, { timeout: 4_000, what: "a later occurrence" });
  await running.stop();
});

Deno.test("an occurrence that fell due while no worker ran runs when one starts", async () => {
  await using registrar = await testWorker();
  registrar.cron("*/5 * * * * *", async function catchUp() {});
  await registrar.run({ burst: true });
  const [registered] = await registrar.schedules();
  await sleep(registered.nextRun!.getTime() - Date.now() + 300);

  await using worker = await sibling(registrar);
  const runs: number[] = [];
  worker.cron("*/5 * * * * *", async function catchUp() {
    runs.push(Date.now());
    await Promise.resolve();
  });
  const started = Date.now();
  const running = runInBackground(worker);
  await eventually(() => runs.length >= 1, { timeout: 6_000, what: "the late occurrence" });
  await running.stop();
  // The regular next occurrence is at least 4 s away: a run this soon is the missed one.
  assert.ok(runs[0] - started < 2_000, `first run ${runs[0] - started} ms after start`);
});

Deno.test("a cron job whose function no longer exists stops being scheduled", async () => {
  await using registrar = await testWorker();
  registrar.cron("* * * * * *", async function retired() {});
  await registrar.run({ burst: true });
  assert.equal((await registrar.schedules()).length, 1);

  await using worker = await sibling(registrar);
  worker.task(async function other() {});
  const running = runInBackground(worker);
  await eventually(async () => (await worker.schedules()).length === 0, {
    timeout: 4_000,
    what: "the retired cron job to be dropped",
  });
  const result = await worker.resultById("cron:retired", { timeout: 1_000 });
  assert.equal(result.success, false);
  assert.match(result.exception.message, /no task named 'retired'/);
  await sleep(1_200);
  await running.stop();
  assert.equal(await worker.statusById("cron:retired"), TaskStatus.DONE);
  assert.deepEqual(await worker.getTasksByStatus(TaskStatus.SCHEDULED), []);
});

Deno.test("unscheduleById() stops a cron job named as registered or by its id; an unknown name answers false", async () => {
  await using worker = await testWorker();
  let runs = 0;
  worker.cron("* * * * * *", async function everySecond() {
    runs++;
    await Promise.resolve();
  });
  worker.cron("0 0 1 1 *", async function yearly() {});
  const running = runInBackground(worker);
  await eventually(() => runs >= 1, { timeout: 4_000, what: "a first run of everySecond" });
  assert.equal(await worker.unscheduleById("everySecond"), true, "by the name it was given");
  assert.equal(await worker.unscheduleById("cron:yearly"), true, "by its id");
  assert.equal(await worker.unscheduleById("everySecond"), false, "already unscheduled");
  assert.equal(await worker.unscheduleById("neverRegistered"), false);
  assert.equal(await worker.unscheduleById("cron:neverRegistered"), false);
  // An occurrence running when it was unscheduled finishes and is not scheduled again.
  await eventually(async () => (await worker.schedules()).length === 0, {
    timeout: 4_000,
    what: "both cron jobs to leave the schedules",
  });
  const count = runs;
  await sleep(1_500);
  await running.stop();
  assert.ok(runs <= count + 1, `everySecond ran ${runs - count} times after it was unscheduled`);
});

Deno.test("cron occurrences run at the priority the cron job names", async () => {
  await using worker = await testWorker({ priorities: ["low", "high"] });
  const seen: string[] = [];
  worker.cron("* * * * * *", async function urgent() {
    seen.push(taskContext().priority);
    await Promise.resolve();
  }, { priority: "high" });
  worker.cron("* * * * * *", async function routine() {
    seen.push(taskContext().priority);
    await Promise.resolve();
  });
  const running = runInBackground(worker);
  await eventually(() => seen.length >= 2, { timeout: 4_000, what: "both cron jobs" });
  await running.stop();
  assert.ok(seen.includes("high") && seen.includes("low"), `priorities seen: ${seen}`);
});

Deno.test("a cron job can also be enqueued by hand", async () => {
  await using worker = await testWorker();
  const yearly = worker.cron("0 0 1 1 *", async function yearly(): Promise<string> {
    return await Promise.resolve("ran by hand");
  });
  assert.equal(yearly.crontab, "0 0 1 1 *");
  assert.equal(yearly.unique, true);
  assert.equal(yearly.timeout, 3_600_000);
  const handle = await yearly.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 3_000 });
  await running.stop();
  assert.equal(result.success && result.result, "ran by hand");
});

Deno.test("a schedule in the past runs now", async () => {
  await using worker = await testWorker();
  const now = worker.task(async function now(): Promise<number> {
    return await Promise.resolve(Date.now());
  });
  const handle = await now.enqueue().start({ schedule: new Date(Date.now() - 60_000) });
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 3_000 });
  await running.stop();
  assert.equal(result.success, true);
});

Deno.test("bad schedules are refused with clear errors", async () => {
  await using worker = await testWorker();
  const task = worker.task(async function job() {});
  assert.throws(
    () => worker.cron("61 * * * *", async function badMinute() {}),
    /Cannot register cron job badMinute as the crontab is invalid.*received "61 \* \* \* \*"/,
  );
  assert.throws(
    () => worker.cron("* * * *", async function fourFields() {}),
    /must have 5 fields .* or 6 .*not 4: received "\* \* \* \*"/,
  );
  assert.throws(
    () => worker.cron("@sometimes", async function badMacro() {}),
    /must be one of @yearly.*received "@sometimes"/,
  );
  assert.throws(
    () => task.enqueue().start({ schedule: "every minute" }),
    /Cannot enqueue task job with a 'schedule' as the crontab/,
  );
  assert.throws(
    () => worker.task(async function drifting() {}, { maxScheduleDrift: 1_000 } as never),
    /'maxScheduleDrift' applies only to cron jobs.*received maxScheduleDrift 1000/,
  );
  assert.throws(
    () => worker.cron("* * * * *", async function wrongPriority() {}, { priority: "urgent" }),
    /'priority' must be one of normal: received "urgent"/,
  );
  assert.throws(() => worker.nextRun("nope"), RangeError);
  await assert.rejects(
    async () => await testWorker({ tz: "Mars/Olympus_Mons" }),
    /'tz' must be an IANA time zone name.*received "Mars\/Olympus_Mons"/,
  );
  assert.throws(() => worker.context, StreaqError);
});
