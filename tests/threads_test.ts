import assert from "node:assert/strict";
import { StreaqCancelled, StreaqError, taskContext } from "../mod.ts";
import { runInBackground, sleep, testWorker } from "./_helpers.ts";
import { cpu, endless, explode, forever, spin, type Spun, whoami } from "./fixtures/cpu_tasks.ts";
import { registerAdd } from "./fixtures/nested_sync_task.ts";

/** A worker on the test Redis running the fixture's threaded tasks. */
async function threadedWorker(options: { syncConcurrency?: number } = {}) {
  const worker = await testWorker({ concurrency: 8, syncConcurrency: 2, ...options });
  worker.include(cpu);
  return worker;
}

Deno.test("two CPU-bound sync tasks run in parallel threads while async tasks keep being served", async () => {
  await using worker = await threadedWorker();
  const ping = worker.task(async function ping(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const spins = await worker.enqueueMany([spin.enqueue(1_500), spin.enqueue(1_500)]);
  const running = runInBackground(worker);
  await sleep(200);
  const pongs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const result = await (await ping.enqueue(i)).result({ timeout: 2_000 });
    pongs.push(result.finishTime);
    await sleep(50);
  }
  const [a, b] = await Promise.all(spins.map((h) => h.result({ timeout: 10_000 })));
  await running.stop();
  const [first, second] = [a.result as Spun, b.result as Spun];
  assert.equal(first.scope, "DedicatedWorkerGlobalScope", "ran in a thread");
  // In parallel: each started before the other finished, by most of their length.
  const overlap = Math.min(first.finished, second.finished) -
    Math.max(first.started, second.started);
  assert.ok(overlap > 600, `the two tasks overlapped by only ${overlap} ms`);
  // The event loop stayed free: async tasks finished while both threads were busy.
  const busyUntil = Math.min(first.finished, second.finished);
  assert.ok(pongs.filter((t) => t < busyUntil).length >= 3, `pongs: ${pongs}, busy ${busyUntil}`);
});

Deno.test("a threaded task past its timeout is stopped and its thread replaced", async () => {
  await using worker = await threadedWorker({ syncConcurrency: 1 });
  const stuck = await forever.enqueue();
  const running = runInBackground(worker);
  const result = await stuck.result({ timeout: 5_000 });
  assert.equal(result.success, false);
  assert.equal(result.exception.name, "TimeoutError");
  // The only thread was terminated; a new one serves the next call.
  const next = await (await spin.enqueue(10)).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(next.success, true);
});

Deno.test("aborting a threaded task stops it", async () => {
  await using worker = await threadedWorker({ syncConcurrency: 1 });
  const handle = await endless.enqueue();
  const running = runInBackground(worker);
  await sleep(300);
  assert.equal(await handle.abort({ timeout: 3_000 }), true);
  const result = await handle.result();
  assert.ok(result.exception instanceof StreaqCancelled);
  const next = await (await spin.enqueue(10)).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(next.success, true);
});

Deno.test("a threaded task sees its context fields, but no worker context", async () => {
  await using worker = await threadedWorker();
  const handle = await whoami.enqueue("x");
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(result.result, {
    label: "x",
    taskId: handle.id,
    fnName: "whoami",
    tries: 1,
    workerId: worker.id,
    scope: "DedicatedWorkerGlobalScope",
    workerContext: "StreaqError",
  });
});

Deno.test("an error thrown in a thread comes back with its class, message and stack", async () => {
  await using worker = await threadedWorker();
  const handle = await explode.enqueue("on purpose");
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.ok(result.exception instanceof RangeError);
  assert.equal(result.exception.message, "exploded: on purpose");
  assert.match(result.exception.stack ?? "", /cpu_tasks\.ts/);
});

Deno.test("thread: false runs a sync function inline on the main thread", async () => {
  await using worker = await testWorker();
  const inline = worker.task(function inline(): string {
    return `${globalThis.constructor.name} ${taskContext().fnName}`;
  }, { thread: false });
  const handle = await inline.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.result, "Window inline");
});

Deno.test("a sync task registered inside a function fails saying how to fix it; thread: false runs it", async () => {
  await using worker = await testWorker();
  const add = registerAdd(worker);
  const handle = await add.enqueue(2, 3);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success, false);
  const { message } = result.exception;
  assert.match(message, /^task add is not registered by file:.*nested_sync_task\.ts when loaded/);
  assert.match(message, /sees only the tasks registered at its top level/);
  assert.match(message, /Register the task at the module's top level/);
  assert.match(message, /pass \{ thread: false \} to run it on the event loop/);
  assert.match(message, /see docs\/testing\.md/);

  // The fix it names works.
  await using inline = await testWorker();
  const inlineAdd = registerAdd(inline, { thread: false });
  const fixed = await inlineAdd.enqueue(2, 3);
  await inline.run({ burst: true });
  assert.equal((await fixed.result({ timeout: 1_000 })).result, 5);
});

Deno.test("middleware runs on the main thread around a threaded task", async () => {
  await using worker = await threadedWorker();
  const seen: string[] = [];
  const mw = worker.middleware((next) => async (...args) => {
    seen.push(`${mw.context.fnName} in ${globalThis.constructor.name}`);
    const label = `${args[0]}!`;
    const value = await next(label) as { label: string };
    return { ...value, label: value.label.toUpperCase() };
  });
  const handle = await whoami.enqueue("hi");
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal((result.result as { label: string }).label, "HI!");
  assert.equal((result.result as { scope: string }).scope, "DedicatedWorkerGlobalScope");
  assert.deepEqual(seen, ["whoami in Window"]);
});

Deno.test("include() adds another worker's tasks, cron jobs and middleware", async () => {
  await using app = await testWorker();
  const other = await testWorker();
  await using _ = other;
  const trace: string[] = [];
  other.middleware((next) => async (...args) => {
    trace.push("other middleware");
    return await next(...args);
  });
  const greet = other.task(async function greet(name: string): Promise<string> {
    return await Promise.resolve(`hello ${name}`);
  });
  other.cron("0 0 1 1 *", async function yearly() {});
  app.include(other);
  assert.ok(app.registry.has("greet") && app.registry.has("yearly"));
  assert.equal(greet.worker, app, "the task now enqueues through the including worker");
  const handle = await greet.enqueue("Ada");
  assert.equal(await app.statusById(handle.id), "queued");
  await app.run({ burst: true });
  assert.equal((await handle.result({ timeout: 1_000 })).result, "hello Ada");
  assert.deepEqual(trace, ["other middleware"]);
  assert.deepEqual((await app.schedules()).map((s) => s.fnName), ["yearly"]);
  assert.throws(() => app.include(app), /into itself/);
});

Deno.test("include() keeps middleware around its own worker's tasks, the including worker's outermost", async () => {
  await using app = await testWorker();
  const billing = await testWorker();
  const audit = await testWorker();
  await using _billing = billing;
  await using _audit = audit;
  const trace: string[] = [];
  for (const [worker, layer] of [[app, "app"], [billing, "billing"], [audit, "audit"]] as const) {
    const handle = worker.middleware((next) => async (...args) => {
      trace.push(`${layer} around ${handle.context.fnName}`);
      return await next(...args);
    });
  }
  const ping = app.task(async function ping(): Promise<string> {
    return await Promise.resolve("pong");
  });
  const charge = billing.task(async function charge(cents: number): Promise<number> {
    return await Promise.resolve(cents);
  });
  const log = audit.task(async function log(line: string): Promise<string> {
    return await Promise.resolve(line);
  });
  billing.include(audit);
  app.include(billing);
  const run = async (send: () => PromiseLike<{ result(): Promise<unknown> }>) => {
    trace.length = 0;
    const handle = await send();
    await app.run({ burst: true });
    await handle.result();
    return [...trace];
  };
  assert.deepEqual(await run(() => ping.enqueue()), ["app around ping"]);
  assert.deepEqual(await run(() => charge.enqueue(5)), [
    "app around charge",
    "billing around charge",
  ]);
  assert.deepEqual(await run(() => log.enqueue("x")), [
    "app around log",
    "billing around log",
    "audit around log",
  ]);
});

Deno.test("include() refuses a task name both workers have", async () => {
  await using app = await testWorker();
  await using other = await testWorker();
  app.task(async function shared() {});
  other.task(async function shared() {});
  other.task(async function unique() {});
  assert.throws(() => app.include(other), /both have a task named shared/);
  assert.equal(app.registry.has("unique"), false, "nothing is included on a conflict");
});

Deno.test("a stub enqueues with its declared types and gets the result of the real task", async () => {
  await using backend = await testWorker();
  await using workerSide = await testWorker({ queueName: backend.queueName });
  workerSide.task(async function measure(text: string): Promise<number> {
    return await Promise.resolve(text.length);
  });
  const measure = backend.stub<[text: string], number>("measure");
  const handle = await measure.enqueue("streaq");
  await workerSide.run({ burst: true });
  const result = await handle.result({ timeout: 1_000 });
  const length: number = result.result;
  assert.equal(length, 6);
  await assert.rejects(measure.run("x"), StreaqError);
  assert.equal(backend.registry.has("measure"), false, "a stub is not run by its worker");
});
