import assert from "node:assert/strict";
import { StreaqRetry, taskContext, Worker } from "../mod.ts";
import { eventually, runInBackground, sibling, testWorker } from "./_helpers.ts";
import { startRedis, uniqueQueue } from "./_redis.ts";

// The private redis-server of these tests runs on this machine: its clock is the test's.
const HOUR = 3_600_000;
const ahead = () => Date.now() + HOUR;
const behind = () => Date.now() - HOUR;

Deno.test("a delay counts from Redis's clock, whatever the enqueuing process's clock says", async () => {
  for (const clock of [ahead, behind]) {
    await using client = await testWorker({ clock });
    const job = client.task(async function job() {});
    const before = Date.now();
    const handle = await job.enqueue().start({ delay: 5_000 });
    const after = Date.now();
    const due = (await handle.info())!.scheduled!.getTime();
    assert.ok(
      due >= before + 5_000 && due <= after + 5_000,
      `due ${due - before} ms after the enqueue began, ${due - after} after it ended`,
    );
  }
});

Deno.test("a delayed task is not promoted early by a worker whose clock is ahead", async () => {
  await using client = await testWorker();
  const ran: number[] = [];
  const job = client.task(async function job() {
    ran.push(Date.now());
    await Promise.resolve();
  });
  await using worker = await sibling(client, { clock: ahead });
  worker.task(async function job() {
    ran.push(Date.now());
    await Promise.resolve();
  });
  const running = runInBackground(worker);
  try {
    const sentAt = Date.now();
    const handle = await job.enqueue().start({ delay: 800 });
    assert.equal((await handle.result({ timeout: 5_000 })).success, true);
    assert.ok(ran[0] >= sentAt + 800, `ran ${ran[0] - sentAt} ms after it was sent`);
  } finally {
    await running.stop();
  }
});

Deno.test("a retry asked for on a worker whose clock is behind waits its delay on every worker", async () => {
  const tries: number[] = [];
  const flaky = async function flaky() {
    tries.push(Date.now());
    await Promise.resolve();
    if (taskContext().tries === 1) throw new StreaqRetry("not yet", { delay: 700 });
  };
  await using late = await testWorker({ clock: behind });
  const task = late.task(flaky);
  await using onTime = await sibling(late);
  onTime.task(flaky);
  const runs = [runInBackground(late)];
  try {
    const handle = await task.enqueue();
    await eventually(() => tries.length === 1, { what: "the first try" });
    // A worker with a true clock promotes the retry: it must find it due 700 ms later, not an
    // hour ago.
    runs.push(runInBackground(onTime));
    assert.equal((await handle.result({ timeout: 5_000 })).success, true);
    assert.equal(tries.length, 2);
    assert.ok(tries[1] - tries[0] >= 700, `retried ${tries[1] - tries[0]} ms after the first try`);
  } finally {
    await Promise.all(runs.map((r) => r.stop()));
  }
});

Deno.test("a worker whose clock is ahead runs each cron occurrence within maxScheduleDrift", async () => {
  await using worker = await testWorker({ clock: ahead });
  const runs: number[] = [];
  worker.cron("* * * * * *", async function pulse() {
    runs.push(Date.now());
    await Promise.resolve();
  }, { maxScheduleDrift: 500 });
  const running = runInBackground(worker);
  try {
    // Measured on its own clock, every occurrence would be an hour late and skipped; and it
    // would look for the next occurrence an hour from now.
    await eventually(() => runs.length >= 3, { timeout: 6_000, what: "three occurrences" });
    const [schedule] = await worker.schedules();
    assert.equal(schedule.lastResult?.success, true);
    assert.ok(schedule.nextRun!.getTime() - Date.now() < 2_000, "the next run is a second away");
  } finally {
    await running.stop();
  }
});

/** How many TIME commands the server ran (scripts' calls included) since its stats were reset. */
async function timeCalls(server: { cli(...args: string[]): Promise<string> }): Promise<number> {
  const stats = await server.cli("INFO", "commandstats");
  return Number(/cmdstat_time:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

Deno.test("enqueuing tasks to run now reads no clock in Redis; a delayed task reads it once", async () => {
  await using server = await startRedis();
  await using client = new Worker({
    redisUrl: server.url,
    queueName: uniqueQueue(),
    logLevel: "error",
    handleSignals: false,
  });
  const job = client.task(async function job(n: number) {
    return await Promise.resolve(n);
  });
  await job.enqueue(0); // connected, scripts loaded
  await server.cli("CONFIG", "RESETSTAT");
  await client.enqueueMany(Array.from({ length: 50 }, (_, n) => job.enqueue(n)));
  await Promise.all(Array.from({ length: 50 }, (_, n) => job.enqueue(n)));
  assert.equal(await timeCalls(server), 0);
  await job.enqueue(1).start({ delay: 60_000 });
  assert.equal(await timeCalls(server), 1);
});
