import assert from "node:assert/strict";
import { taskContext, TaskStatus, type Worker } from "../mod.ts";
import { pendingByWorker, runInBackground, testWorker, WorkerProcess } from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";

const CRASHABLE = new URL("./fixtures/crashable_worker.ts", import.meta.url).pathname;

interface CrashableOptions {
  id: string;
  concurrency?: number;
  prefetch?: number;
  maxTries?: number;
}

/** A worker subprocess running `fixtures/crashable_worker.ts`, read line by line. */
class CrashableWorker {
  readonly #process: WorkerProcess;

  constructor(queueName: string, url: string, options: CrashableOptions) {
    this.#process = new WorkerProcess(CRASHABLE, url, queueName, JSON.stringify(options));
  }

  /** `[taskId, tries]` of every try the subprocess started so far. */
  get started(): [string, number][] {
    return this.#process.lines
      .filter((line) => line.startsWith("started "))
      .map((line) => line.split(" "))
      .map(([, id, tries]) => [id, Number(tries)]);
  }

  /** Waits until the subprocess has started `count` tries. */
  async waitForStarts(count: number, timeout = 15_000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (this.started.length < count) {
      if (Date.now() > deadline) {
        await this.#process.end("SIGKILL");
        throw new Error(
          `The worker subprocess started ${this.started.length} of ${count} tries in ${timeout} ms:\n${await this
            .#process.stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Kills the subprocess with SIGKILL: no shutdown code runs, like a crash or an OOM kill. */
  async kill(): Promise<void> {
    const status = await this.#process.end("SIGKILL");
    assert.equal(status.signal, "SIGKILL");
  }
}

async function spawnCrashable(worker: Worker<unknown>, options: CrashableOptions) {
  const redis = await sharedRedis();
  return new CrashableWorker(worker.queueName, redis.url, options);
}

Deno.test("tasks of a worker killed mid-task are re-delivered after idleTimeout and none is lost", async () => {
  await using worker = await testWorker({ idleTimeout: 1000 });
  const calls: { n: number; tries: number }[] = [];
  const work = worker.task(async function work(n: number): Promise<number> {
    calls.push({ n, tries: taskContext().tries });
    return await Promise.resolve(n * 10);
  });
  const handles = await worker.enqueueMany([1, 2, 3, 4, 5, 6].map((n) => work.enqueue(n)));

  // Two tasks run and two more are prefetched in the doomed process; two stay in the stream.
  const doomed = await spawnCrashable(worker, { id: "doomed", concurrency: 2, prefetch: 2 });
  await doomed.waitForStarts(2);
  const startedIds = doomed.started.map(([id]) => id);
  for (const id of startedIds) assert.equal(await worker.statusById(id), TaskStatus.RUNNING);
  assert.deepEqual(await pendingByWorker(worker), { doomed: 4 });
  await doomed.kill();

  const running = runInBackground(worker);
  try {
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 15_000 })));
    results.forEach((result, i) => {
      assert.equal(result.success, true);
      assert.equal(result.success && result.result, (i + 1) * 10);
      assert.equal(result.workerId, worker.id);
      assert.equal(result.tries, startedIds.includes(result.taskId) ? 2 : 1, result.taskId);
    });
    assert.equal(calls.length, 6);
    assert.equal(worker.counters.completed, 6);
    assert.equal(await worker.queueSize({ includeScheduled: true }), 0);
    assert.deepEqual(await pendingByWorker(worker), {});
  } finally {
    await running.stop();
  }
});

Deno.test("a task that kills its worker on every try fails after maxTries, naming the worker that stopped", async () => {
  await using worker = await testWorker({ idleTimeout: 1000 });
  let calls = 0;
  const work = worker.task(async function work(n: number): Promise<number> {
    calls++;
    return await Promise.resolve(n);
  }, { maxTries: 2 });
  const handle = await work.enqueue(1);

  const first = await spawnCrashable(worker, { id: "first-victim", maxTries: 2 });
  await first.waitForStarts(1);
  await first.kill();
  const second = await spawnCrashable(worker, { id: "second-victim", maxTries: 2 });
  await second.waitForStarts(1);
  assert.deepEqual(second.started, [[handle.id, 2]]);
  await second.kill();

  const running = runInBackground(worker);
  try {
    const result = await handle.result({ timeout: 15_000 });
    assert.equal(result.success, false);
    const { message } = result.exception;
    assert.match(message, /after 2 tries \(maxTries\)/);
    assert.match(message, /last reason: worker second-victim stopped before finishing try 2/);
    assert.equal(result.exception.name, "StreaqError");
    assert.equal(calls, 0, "the task must not run a third time");
    assert.equal(worker.counters.failed, 1);
    assert.equal(await worker.statusById(handle.id), TaskStatus.DONE);
  } finally {
    await running.stop();
  }
});
