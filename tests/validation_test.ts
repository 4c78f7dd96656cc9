import assert from "node:assert/strict";
import {
  type StartOptions,
  StreaqError,
  StreaqRetry,
  taskContext,
  type TaskOptions,
  type TaskStatus,
  Worker,
  type WorkerOptions,
} from "../mod.ts";
import { testWorker } from "./_helpers.ts";

/** Nothing listens here; the tests below never send a command, so nothing connects. */
const NOWHERE = "redis://127.0.0.1:9";

function offlineWorker(options: WorkerOptions = {}): Worker {
  return new Worker({ redisUrl: NOWHERE, handleSignals: false, ...options });
}

/** Asserts that `fn` throws a TypeError, RangeError or StreaqError whose message matches. */
function assertBadInput(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: Error) => {
    assert.ok(
      error instanceof TypeError || error instanceof RangeError || error instanceof StreaqError,
      `unexpected error class ${error?.constructor?.name}`,
    );
    assert.match(error.message, message);
    return true;
  });
}

/** Same as {@linkcode assertBadInput} for a promise. */
async function assertRejectsBadInput(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(
      error instanceof TypeError || error instanceof RangeError || error instanceof StreaqError,
      `unexpected error class ${error?.constructor?.name}`,
    );
    assert.match(error.message, message);
    return true;
  });
}

/** Creating a worker with options of any shape. */
function create(options: Record<string, unknown>): () => Worker {
  return () => offlineWorker(options as WorkerOptions);
}

Deno.test("new Worker() rejects an unknown option, naming it", () => {
  assertBadInput(create({ concurency: 4 }), /'concurency' is not an option/);
});

Deno.test("new Worker() rejects a bad concurrency or prefetch, naming it and the value", () => {
  assertBadInput(create({ concurrency: 0 }), /'concurrency'.*received 0 \(number\)/);
  assertBadInput(create({ concurrency: 1.5 }), /'concurrency'.*received 1\.5 \(number\)/);
  assertBadInput(create({ concurrency: "8" }), /'concurrency'.*received "8" \(string\)/);
  assertBadInput(create({ prefetch: -1 }), /'prefetch'.*received -1 \(number\)/);
});

Deno.test("new Worker() rejects bad durations, naming the option and the value", () => {
  assertBadInput(create({ idleTimeout: 10 }), /'idleTimeout'.*1000.*received 10 \(number\)/);
  assertBadInput(create({ gracePeriod: -1 }), /'gracePeriod'.*received -1 \(number\)/);
});

Deno.test("new Worker() rejects empty, repeated or non-array priorities", () => {
  assertBadInput(create({ priorities: [] }), /'priorities'.*received \[\]/);
  assertBadInput(create({ priorities: ["a", "a"] }), /'priorities'.*received \["a","a"\]/);
  assertBadInput(create({ priorities: "high" }), /'priorities'.*received "high" \(string\)/);
});

Deno.test("new Worker() rejects an unknown time zone or log level", () => {
  assertBadInput(create({ tz: "Mars/Olympus" }), /'tz'.*received "Mars\/Olympus"/);
  assertBadInput(create({ logLevel: "loud" }), /'logLevel'.*received "loud"/);
});

Deno.test("new Worker() rejects a queue name with braces or spaces", () => {
  assertBadInput(create({ queueName: "a{b}" }), /'queueName'.*received "a\{b\}"/);
  assertBadInput(create({ queueName: "my queue" }), /'queueName'.*received "my queue"/);
});

Deno.test("new Worker() rejects a serializer without a deserializer", () => {
  assertBadInput(
    create({ serializer: (value: unknown) => JSON.stringify(value) }),
    /'serializer' and 'deserializer'/,
  );
});

Deno.test("worker.task() rejects an anonymous function without a name, saying so", () => {
  const worker = offlineWorker();
  assertBadInput(() => worker.task(() => 1), /anonymous.*options\.name/);
  assert.equal(worker.task(() => 1, { name: "named" }).name, "named");
});

Deno.test("worker.task() rejects a duplicate name, naming it", () => {
  const worker = offlineWorker();
  worker.task(async function report(): Promise<void> {});
  assertBadInput(
    () => worker.task(async function report(): Promise<void> {}),
    /report.*already registered/,
  );
});

Deno.test("worker.task() rejects bad task options, naming the option and the value", () => {
  const worker = offlineWorker();
  const register = (options: Record<string, unknown>) => () =>
    worker.task(async function job(): Promise<void> {}, options as TaskOptions);
  assertBadInput(register({ unique: true }), /'unique'.*'timeout'/);
  assertBadInput(register({ timeout: 0 }), /'timeout'.*received 0 \(number\)/);
  assertBadInput(register({ timeout: "5s" }), /'timeout'.*received "5s" \(string\)/);
  assertBadInput(register({ maxTries: 0 }), /'maxTries'.*received 0 \(number\)/);
  assertBadInput(register({ ttl: -1 }), /'ttl'.*received -1 \(number\)/);
  assertBadInput(register({ retries: 3 }), /'retries' is not an option/);
  assert.equal(worker.registry.size, 0, "no rejected task was registered");
});

Deno.test("start() rejects conflicting, negative or invalid options, naming them", () => {
  const worker = offlineWorker({ priorities: ["low", "high"] });
  const job = worker.task(async function job(): Promise<void> {});
  const start = (options: Record<string, unknown>) => () =>
    job.enqueue().start(options as StartOptions);
  assertBadInput(
    start({ delay: 1_000, schedule: new Date("2030-01-01T00:00:00Z") }),
    /'delay' and 'schedule'.*1000.*2030-01-01/,
  );
  assertBadInput(start({ delay: -5 }), /'delay'.*received -5 \(number\)/);
  assertBadInput(start({ delay: NaN }), /'delay'.*received NaN/);
  assertBadInput(start({ schedule: new Date("not a date") }), /'schedule'.*Invalid Date/);
  assertBadInput(start({ priority: "urgent" }), /'priority'.*low, high.*received "urgent"/);
  assertBadInput(start({ dealy: 10 }), /'dealy' is not an option/);
});

Deno.test("enqueueing arguments that cannot be serialized fails naming the task and the argument, storing nothing", async () => {
  await using worker = await testWorker();
  const take = worker.task(async function take(..._args: unknown[]): Promise<void> {});
  class Point {
    constructor(readonly x: number) {}
  }
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  const cases: [unknown[], RegExp][] = [
    [[1, { onDone: () => {} }], /\[1\]\.onDone.*function/],
    [[new Point(1)], /\[0\].*class.*Point/],
    [["a", Symbol("s")], /\[1\].*symbol/i],
    [[circular], /\[0\]\.self.*circular/],
  ];
  for (const [args, where] of cases) {
    await assert.rejects(async () => await take.enqueue(...args), (error: Error) => {
      assert.ok(error instanceof TypeError, `${error?.constructor?.name}: ${error.message}`);
      assert.match(error.message, /task take/);
      assert.match(error.message, where);
      return true;
    });
  }
  const bad = take.enqueue(() => {});
  await assert.rejects(worker.enqueueMany([take.enqueue("fine"), bad]), TypeError);
  await assert.rejects(
    async () => await bad,
    TypeError,
    "awaiting a task of the batch rejects too",
  );
  assert.equal(await worker.queueSize({ includeScheduled: true }), 0);
});

Deno.test("StreaqRetry rejects a bad delay, naming it and the value", () => {
  assertBadInput(() => new StreaqRetry("again", { delay: -1 }), /'delay'.*received -1/);
  assertBadInput(() => new StreaqRetry("again", { delay: NaN }), /'delay'.*received NaN/);
  assertBadInput(
    () => new StreaqRetry("again", { delay: 1, schedule: new Date() }),
    /'delay' and 'schedule'/,
  );
});

Deno.test("result(), abort() and getTasksByStatus() reject bad options, naming them", async () => {
  await using worker = offlineWorker({ priorities: ["low", "high"] });
  await assertRejectsBadInput(
    worker.resultById("some-id", { timeout: -1 }),
    /'timeout'.*received -1/,
  );
  await assertRejectsBadInput(worker.abortById("some-id", { timeout: -1 }), /'timeout'.*-1/);
  await assertRejectsBadInput(worker.getTasksByStatus("queued", { limit: -1 }), /'limit'.*-1/);
  await assertRejectsBadInput(
    worker.getTasksByStatus("finished" as TaskStatus),
    /'status'.*"finished"/,
  );
  await assertRejectsBadInput(
    worker.getTasksByStatus("queued", { priority: "urgent" }),
    /'priority'.*"urgent"/,
  );
});

Deno.test("worker.context outside a running worker throws a StreaqError", () => {
  const worker = offlineWorker();
  assert.throws(() => worker.context, StreaqError);
});

Deno.test("taskContext() and registeredTask.context outside a task throw a StreaqError", () => {
  const worker = offlineWorker();
  const job = worker.task(async function job(): Promise<void> {});
  assert.throws(() => taskContext(), StreaqError);
  assert.throws(() => job.context, StreaqError);
});

Deno.test("registeredTask.run() calls the function here, without the queue", async () => {
  const worker = offlineWorker();
  const calls: number[][] = [];
  const add = worker.task(async function add(a: number, b: number): Promise<number> {
    calls.push([a, b]);
    return await Promise.resolve(a + b);
  });
  assert.equal(await add.run(2, 3), 5);
  assert.deepEqual(calls, [[2, 3]]);
  await worker.close();
});
