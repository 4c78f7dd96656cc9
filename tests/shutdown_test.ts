import assert from "node:assert/strict";
import { StreaqError, taskContext, type TaskOptions, TaskStatus, type Worker } from "../mod.ts";
import { sharedRedis, startRedis } from "./_redis.ts";
import {
  denoExecutable,
  eventually,
  pendingByWorker,
  runInBackground,
  sibling,
  sleepUnlessAborted,
  testWorker,
  workerProcessArgs,
} from "./_helpers.ts";

/** Registers `slow`: sleeps `ms` unless its signal fires, and records the signal's reason. */
function registerSlow(worker: Worker<unknown>, options: TaskOptions = {}) {
  const seen: { reason?: unknown; finishedAt?: number } = {};
  const slow = worker.task(async function slow(ms: number): Promise<string> {
    const { signal } = taskContext();
    try {
      await sleepUnlessAborted(ms, signal);
    } catch (error) {
      seen.reason = signal.reason;
      throw error;
    }
    seen.finishedAt = Date.now();
    return "slept";
  }, options);
  return { slow, seen };
}

/** Registers `slow` on a worker that completes it at once, reporting the try it was. */
function registerQuickSlow(worker: Worker<unknown>) {
  return worker.task(async function slow(_ms: number): Promise<string> {
    await Promise.resolve();
    return `done on try ${taskContext().tries}`;
  });
}

/** Rejects if `promise` does not settle within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("stop() with no grace period hands a running task back, and a sibling finishes it on try 2", async () => {
  await using worker = await testWorker();
  const { slow, seen } = registerSlow(worker);
  const handle = await slow.enqueue(10_000);
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  await within(running.stop(), 5_000, "shutdown");
  assert.ok(seen.reason instanceof StreaqError, `signal reason: ${seen.reason}`);
  assert.match((seen.reason as Error).message, /shut down/);
  assert.equal(seen.finishedAt, undefined);
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  assert.equal((await handle.info())?.tries, 1);
  await assert.rejects(handle.result({ timeout: 100 }), { name: "TimeoutError" });
  assert.equal(worker.counters.relinquished, 1);
  assert.equal(worker.counters.failed, 0);

  await using other = await sibling(worker);
  registerQuickSlow(other);
  const again = runInBackground(other);
  const result = await handle.result({ timeout: 5_000 });
  await again.stop();
  assert.equal(result.success && result.result, "done on try 2");
  assert.equal(result.tries, 2);
  assert.equal(result.workerId, other.id);
});

Deno.test("a task handed back on its last allowed try fails on its next delivery, naming the hand-back", async () => {
  await using worker = await testWorker();
  const { slow } = registerSlow(worker, { maxTries: 1 });
  const handle = await slow.enqueue(10_000);
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  await within(running.stop(), 5_000, "shutdown");
  assert.equal(await handle.status(), TaskStatus.QUEUED);

  await using other = await sibling(worker);
  let calls = 0;
  other.task(async function slow(_ms: number): Promise<void> {
    calls++;
    await Promise.resolve();
  }, { maxTries: 1 });
  const again = runInBackground(other);
  const result = await handle.result({ timeout: 5_000 });
  await again.stop();
  assert.equal(calls, 0, "no try beyond maxTries");
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof StreaqError);
  assert.match(result.exception.message, /maxTries/);
  assert.match(result.exception.message, new RegExp(`worker ${worker.id} shut down`));
});

Deno.test("a task started before stop() finishes within the grace period and run() resolves after it", async () => {
  await using worker = await testWorker({ gracePeriod: 2_000 });
  const { slow, seen } = registerSlow(worker);
  const handle = await slow.enqueue(300);
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  worker.stop();
  await within(running.done, 5_000, "shutdown");
  const resolvedAt = Date.now();
  assert.ok(seen.finishedAt !== undefined, "the task finished");
  assert.ok(resolvedAt >= seen.finishedAt);
  assert.equal(seen.reason, undefined, "its signal never fired");
  const result = await handle.result({ timeout: 1_000 });
  assert.equal(result.success && result.result, "slept");
  assert.equal(result.tries, 1);
});

Deno.test("the grace period never lets a task run past its own timeout", async () => {
  await using worker = await testWorker({ gracePeriod: 5_000 });
  const { slow, seen } = registerSlow(worker, { timeout: 300 });
  const handle = await slow.enqueue(10_000);
  const running = runInBackground(worker);
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  const stoppedAt = Date.now();
  await within(running.stop(), 10_000, "shutdown");
  const shutdown = Date.now() - stoppedAt;
  assert.ok(shutdown < 3_000, `shutdown took ${shutdown} ms, the grace period is 5000 ms`);
  assert.equal((seen.reason as Error)?.name, "TimeoutError");
  const result = await handle.result({ timeout: 1_000 });
  assert.equal(result.success, false);
  assert.equal(result.exception.name, "TimeoutError");
});

Deno.test("prefetched tasks are handed back at shutdown and none is lost", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 5 });
  const { slow } = registerSlow(worker);
  const handles = await worker.enqueueMany(Array.from({ length: 6 }, () => slow.enqueue(10_000)));
  const running = runInBackground(worker);
  await eventually(async () => (await pendingByWorker(worker))[worker.id] === 6, {
    what: "one running and five prefetched tasks",
  });
  assert.equal(worker.running(), 1);
  await within(running.stop(), 5_000, "shutdown");
  assert.deepEqual(await pendingByWorker(worker), {});
  const statuses = await Promise.all(handles.map((h) => h.status()));
  assert.deepEqual(statuses, Array(6).fill(TaskStatus.QUEUED));

  await using other = await sibling(worker, { concurrency: 6 });
  registerQuickSlow(other);
  const again = runInBackground(other);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  await again.stop();
  const outcomes = results.map((r) => r.success && r.result).sort();
  assert.deepEqual(outcomes, [...Array(5).fill("done on try 1"), "done on try 2"]);
});

Deno.test("a stop that comes as an idle worker's fetch is answered hands the fetched task back", async () => {
  // An idle worker's fetch waits in Redis behind its blocking read, on the read's connection: a
  // task that arrives is claimed and started before the worker hears of it. Here the task is
  // enqueued by a process run synchronously, so that this process has not read what Redis
  // answered its worker when the worker is stopped. Closing the connection then would leave the
  // task claimed and started by a stopped worker, until another reclaimed it after idleTimeout.
  await using worker = await testWorker({ concurrency: 1, idleTimeout: 60_000 });
  // The task the fixture enqueues.
  const register = (w: Worker<unknown>) =>
    w.task(async function double(value: number): Promise<number> {
      return await Promise.resolve(value * 2);
    });
  register(worker);
  const redis = await sharedRedis();
  const running = runInBackground(worker);
  await eventually(
    async () => /flags=\w*b\w* .*cmd=xread/.test(await redis.cli("CLIENT", "LIST")),
    {
      what: "the worker's blocking read",
    },
  );
  const script = new URL("./fixtures/enqueue_and_exit.ts", import.meta.url).pathname;
  const output = new Deno.Command(denoExecutable(), {
    args: workerProcessArgs(script, redis.url, worker.queueName, "21"),
    stdin: "null",
  }).outputSync();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  worker.stop();
  await within(running.done, 5_000, "shutdown");
  const id = new TextDecoder().decode(output.stdout).trim();
  assert.deepEqual(
    await pendingByWorker(worker),
    {},
    "no delivery is left with the stopped worker",
  );
  assert.equal(await worker.statusById(id), TaskStatus.QUEUED);

  await using other = await sibling(worker, { idleTimeout: 60_000 });
  register(other);
  const again = runInBackground(other);
  const result = await other.resultById(id, { timeout: 10_000 });
  await again.stop();
  assert.equal(result.success && result.result, 42);
});

Deno.test("an idle worker whose waiting connection is killed, with its fetch queued behind the read, runs the next tasks", async () => {
  await using worker = await testWorker({ concurrency: 2, idleTimeout: 60_000 });
  const double = worker.task(async function double(value: number): Promise<number> {
    return await Promise.resolve(value * 2);
  });
  const redis = await sharedRedis();
  const running = runInBackground(worker);
  let line: string | undefined;
  const blockedRead = async () =>
    (line = (await redis.cli("CLIENT", "LIST")).split("\n").find((l) =>
      /flags=\w*b\w* .*cmd=xread/.test(l)
    )) !== undefined;
  for (let round = 0; round < 3; round++) {
    await eventually(blockedRead, { what: "the worker's blocking read" });
    await redis.cli("CLIENT", "KILL", "ID", line!.match(/\bid=(\d+)/)![1]);
    const handles = await worker.enqueueMany([double.enqueue(round), double.enqueue(round + 10)]);
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
    assert.deepEqual(results.map((r) => r.success && r.result), [round * 2, (round + 10) * 2]);
  }
  await within(running.stop(), 5_000, "shutdown");
  assert.deepEqual(await pendingByWorker(worker), {});
});

Deno.test("aborting the signal given to run() shuts the worker down the same way", async () => {
  await using worker = await testWorker();
  const { slow, seen } = registerSlow(worker);
  const handle = await slow.enqueue(10_000);
  const controller = new AbortController();
  const done = worker.run({ signal: controller.signal });
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  controller.abort();
  await within(done, 5_000, "shutdown");
  assert.match((seen.reason as Error)?.message, /shut down/);
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  assert.equal(worker.counters.relinquished, 1);
});

Deno.test("run() with an already aborted signal returns without running anything", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const never = worker.task(async function never(): Promise<void> {
    calls++;
    await Promise.resolve();
  });
  const handle = await never.enqueue();
  await within(worker.run({ signal: AbortSignal.abort() }), 5_000, "run()");
  assert.equal(calls, 0);
  assert.equal(await handle.status(), TaskStatus.QUEUED);
});

Deno.test("run({ burst: true }) drains the queue and resolves by itself", async () => {
  await using worker = await testWorker({ concurrency: 2 });
  const square = worker.task(async function square(n: number): Promise<number> {
    return await Promise.resolve(n * n);
  });
  const handles = await worker.enqueueMany([1, 2, 3, 4, 5].map((n) => square.enqueue(n)));
  await within(worker.run({ burst: true }), 10_000, "a burst run");
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 1_000 })));
  assert.deepEqual(results.map((r) => r.success && r.result), [1, 4, 9, 16, 25]);
  assert.equal(await worker.queueSize(), 0);
});

Deno.test("after run() resolves the worker still enqueues and reads results, and can run again", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(text: string): Promise<string> {
    return await Promise.resolve(text);
  });
  const first = runInBackground(worker);
  const one = await (await echo.enqueue("one")).result({ timeout: 5_000 });
  await first.stop();
  assert.equal(one.success && one.result, "one");

  const handle = await echo.enqueue("two");
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  assert.equal((await handle.info())?.fnName, "echo");
  const second = runInBackground(worker);
  const two = await handle.result({ timeout: 5_000 });
  await second.stop();
  assert.equal(two.success && two.result, "two");
  assert.equal(two.workerId, worker.id);
});

Deno.test("close() on a running worker shuts it down gracefully", async () => {
  const redis = await sharedRedis();
  await using worker = await testWorker({ gracePeriod: 2_000 });
  const { slow, seen } = registerSlow(worker);
  const handle = await slow.enqueue(300);
  const done = worker.run();
  await eventually(async () => (await handle.status()) === TaskStatus.RUNNING);
  await within(worker.close(), 5_000, "close()");
  await within(done, 1_000, "run()");
  assert.ok(seen.finishedAt !== undefined, "the task finished");
  assert.equal(seen.reason, undefined);
  assert.equal(worker.running(), 0);
  const resultKey = `streaq:{${worker.queueName}}:result:${handle.id}`;
  assert.equal(await redis.cli("EXISTS", resultKey), "1");
});

Deno.test("a second run() of a running worker throws a StreaqError", async () => {
  await using worker = await testWorker();
  const running = runInBackground(worker);
  await assert.rejects(worker.run(), (error: Error) => {
    assert.ok(error instanceof StreaqError);
    assert.match(error.message, /already running/);
    return true;
  });
  const echo = worker.task(async function echo(): Promise<string> {
    return await Promise.resolve("still running");
  });
  const result = await (await echo.enqueue()).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "still running");
});

Deno.test("a worker cannot run with the id of a live worker of its queue", async () => {
  const redis = await sharedRedis();
  await using first = await testWorker({ id: "twin" });
  await using second = await sibling(first, { id: "twin" });
  const health = `streaq:{${first.queueName}}:health:twin`;
  const running = runInBackground(first);
  await eventually(async () => (await redis.cli("EXISTS", health)) === "1", {
    what: "the first worker's health key",
  });
  await assert.rejects(second.run(), (error: Error) => {
    assert.ok(error instanceof StreaqError);
    assert.match(error.message, /'id' must be unique/);
    assert.match(error.message, /already uses "twin"/);
    return true;
  });
  await running.stop();
  assert.equal(await redis.cli("EXISTS", health), "0", "a stopped worker frees its id");
  const again = runInBackground(second);
  await eventually(async () => (await redis.cli("EXISTS", health)) === "1", {
    what: "the second worker's health key",
  });
  await again.stop();
});

/** Starts `tests/fixtures/sleepy_worker.ts` in a deno subprocess on `queue`. */
async function spawnSleepyWorker(
  queue: string,
  env: Record<string, string> = {},
): Promise<Deno.ChildProcess> {
  const redis = await sharedRedis();
  const fixture = new URL("./fixtures/sleepy_worker.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  return new Deno.Command(denoExecutable(), {
    args: ["run", "--config", config, "--allow-net", "--allow-env", "--allow-read", fixture],
    env: { STREAQ_TEST_REDIS_URL: redis.url, STREAQ_TEST_QUEUE: queue, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Sends `signal` to the child once its task runs; returns what the child printed. */
async function signalWhileRunning(
  child: Deno.ChildProcess,
  isRunning: () => Promise<boolean>,
  signal: Deno.Signal,
): Promise<{ output: Deno.CommandOutput; stdout: string; stderr: string }> {
  const kill = (s: Deno.Signal) => {
    try {
      child.kill(s);
    } catch {
      // It has exited already.
    }
  };
  const killer = setTimeout(() => kill("SIGKILL"), 20_000);
  let failure: unknown;
  try {
    await eventually(isRunning, { timeout: 15_000, what: "the subprocess to run the task" });
    kill(signal);
  } catch (error) {
    failure = error;
    kill("SIGKILL");
  }
  const output = await child.output();
  clearTimeout(killer);
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  if (failure) throw new Error(`${failure}; subprocess stderr: ${stderr}`);
  if (output.signal === "SIGKILL") throw new Error(`the subprocess hung; stderr: ${stderr}`);
  return { output, stdout, stderr };
}

Deno.test("a worker process that receives SIGTERM hands its task back and exits 0", async () => {
  await using client = await testWorker();
  const sleepy = client.task(async function sleepy(_ms: number): Promise<string> {
    await Promise.resolve();
    return `done on try ${taskContext().tries}`;
  });
  const handle = await sleepy.enqueue(10_000);
  const child = await spawnSleepyWorker(client.queueName);
  const { output, stdout, stderr } = await signalWhileRunning(
    child,
    async () => (await handle.status()) === TaskStatus.RUNNING,
    "SIGTERM",
  );
  assert.equal(output.code, 0, `stderr: ${stderr}`);
  assert.match(stdout, /stopped/);
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  const running = runInBackground(client);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success && result.result, "done on try 2");
});

Deno.test("a worker process that receives SIGINT lets its task finish within the grace period", async () => {
  await using client = await testWorker();
  const handle = await client.enqueueUnsafe<string>("sleepy", 500);
  const child = await spawnSleepyWorker(client.queueName, { STREAQ_TEST_GRACE_PERIOD: "5000" });
  const { output, stderr } = await signalWhileRunning(
    child,
    async () => (await handle.status()) === TaskStatus.RUNNING,
    "SIGINT",
  );
  assert.equal(output.code, 0, `stderr: ${stderr}`);
  const result = await handle.result({ timeout: 1_000 });
  assert.match(result.success ? result.result : String(result.exception), /^slept 500 ms/);
});

Deno.test("with handleSignals: false SIGTERM kills the worker process instead", async () => {
  await using client = await testWorker();
  const handle = await client.enqueueUnsafe<string>("sleepy", 10_000);
  const child = await spawnSleepyWorker(client.queueName, { STREAQ_TEST_HANDLE_SIGNALS: "false" });
  const { output, stdout } = await signalWhileRunning(
    child,
    async () => (await handle.status()) === TaskStatus.RUNNING,
    "SIGTERM",
  );
  assert.equal(output.success, false);
  assert.equal(output.signal, "SIGTERM");
  assert.doesNotMatch(stdout, /stopped/);
  assert.equal(await handle.status(), TaskStatus.RUNNING, "nobody handed it back");
});

Deno.test("a worker stopped while its Redis is down does not wait redisTimeout for it, and afterwards, as a client, waits for Redis again", async () => {
  await using redis = await startRedis();
  const redisTimeout = 20_000;
  await using worker = await testWorker({ redisUrl: redis.url, redisTimeout });
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const running = runInBackground(worker);
  assert.equal((await (await double.enqueue(1)).result({ timeout: 10_000 })).success, true);
  await redis.kill();

  // Half of redisTimeout: a shutdown that waited for Redis would take all of it, once per step.
  await within(running.stop(), redisTimeout / 2, "the shutdown with Redis down");

  // An enqueue sent while Redis is still down waits for it, as it did before the stop.
  const sent = double.enqueue(21).then(
    (task) => task,
    (error: unknown) => new Error(String(error)),
  );
  await redis.restart();
  const task = await sent;
  if (task instanceof Error) assert.fail(`the enqueue failed: ${task.message}`);
  assert.equal(await task.status(), TaskStatus.QUEUED);
});
