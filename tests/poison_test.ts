import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Logger, TaskStatus, type Worker } from "../mod.ts";
import { eventually, pendingByWorker, runInBackground, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

/** A logger that keeps every line, by level. */
function collectingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const add = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: add("debug"), info: add("info"), warn: add("warn"), error: add("error") };
}

function randomId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** Keys of the queue, spelled out so that the test checks the documented Redis model. */
function keysOf(worker: Worker<unknown>) {
  const prefix = `streaq:{${worker.queueName}}:`;
  return {
    stream: `${prefix}stream:normal`,
    task: (id: string) => `${prefix}task:${id}`,
  };
}

/** Stores a task hash with the given payload and queues it, as the enqueue script would. */
async function writeTask(worker: Worker<unknown>, fnName: string, data: Buffer): Promise<string> {
  const id = randomId();
  const keys = keysOf(worker);
  const now = Date.now();
  await queueContextOf(worker).redis.hset(keys.task(id), {
    fn: fnName,
    data,
    pri: "normal",
    ct: now,
    et: now,
    tries: 0,
  });
  await queueContextOf(worker).redis.xadd(keys.stream, "*", "id", id);
  return id;
}

Deno.test("poisoned stream entries and payloads fail or are dropped, and the worker keeps serving", async () => {
  const logger = collectingLogger();
  await using worker = await testWorker({ logger, logLevel: "warn" });
  const calls: unknown[][] = [];
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    calls.push(args);
    return await Promise.resolve(args);
  }, { silent: true });
  const keys = keysOf(worker);
  const redis = queueContextOf(worker).redis;
  // A real payload, enqueued before the worker runs, then cut in half.
  const truncated = await echo.enqueue("an argument long enough to be cut in half", 12345);
  const data = (await redis.hgetBuffer(keys.task(truncated.id), "data"))!;
  await redis.hset(keys.task(truncated.id), "data", data.subarray(0, data.length >> 1));

  let ended = false;
  const running = runInBackground(worker);
  running.done.finally(() => (ended = true));
  try {
    assert.equal(
      (await echo.enqueue("warm-up").then((h) => h.result({ timeout: 5_000 }))).success,
      true,
    );

    await redis.xadd(keys.stream, "*", "foo", "bar");
    const ghost = randomId();
    await redis.xadd(keys.stream, "*", "id", ghost);
    const garbage = Buffer.from(crypto.getRandomValues(new Uint8Array(64)));
    garbage[0] = 0x00; // no known envelope kind
    const randomBytes = await writeTask(worker, "echo", garbage);
    const notUtf8 = Buffer.concat([Buffer.from("s"), Buffer.from([0xff, 0xfe, 0x00, 0x80])]);
    const invalidText = await writeTask(worker, "echo", notUtf8);
    const notAList = await writeTask(worker, "echo", Buffer.from('s{"not":"a list"}'));
    const unknown = await worker.enqueueUnsafe("noSuchTask", 1);
    const good = await echo.enqueue("after the poison");

    const goodResult = await good.result({ timeout: 5_000 });
    assert.equal(goodResult.success, true);
    assert.deepEqual(goodResult.success && goodResult.result, ["after the poison"]);

    const failures: [string, RegExp][] = [
      [truncated.id, /Cannot decode payload/],
      [randomBytes, /Cannot decode payload: unknown envelope/],
      [invalidText, /Cannot decode payload/],
      [notAList, /decoded to object, not an argument list/],
      [unknown.id, /no task named 'noSuchTask'/],
    ];
    for (const [id, message] of failures) {
      const result = await worker.resultById(id, { timeout: 5_000 });
      assert.equal(result.success, false, id);
      assert.equal(result.exception.name, "StreaqError", id);
      assert.match(result.exception.message, message);
      assert.equal(await redis.exists(keys.task(id)), 0, `task hash of ${id} is deleted`);
    }

    await eventually(() => logger.lines.length >= 2, { what: "the dropped entries' log lines" });
    const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.message);
    assert.ok(
      warnings.some((m) => /dropped stream entry .* it has no task id/.test(m)),
      warnings.join("\n"),
    );
    assert.ok(
      warnings.some((m) => m.includes(`task ${ghost} has no stored data`)),
      warnings.join("\n"),
    );
    assert.equal(await worker.statusById(ghost), TaskStatus.NOT_FOUND);

    assert.deepEqual(calls, [["warm-up"], ["after the poison"]]);
    assert.equal(worker.counters.failed, failures.length);
    assert.equal(worker.counters.completed, 2);
    await eventually(async () => (await redis.xlen(keys.stream)) === 0, {
      what: "every poisoned entry to leave the stream",
    });
    assert.deepEqual(await pendingByWorker(worker), {});
    assert.equal(ended, false, "run() is still running");
    assert.equal(logger.lines.filter((l) => l.level === "error").length, 0);
  } finally {
    await running.stop();
  }
});

Deno.test("a task hash without its payload fails that task alone, saying which field is missing", async () => {
  const logger = collectingLogger();
  await using worker = await testWorker({ logger, logLevel: "warn" });
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    return await Promise.resolve(args);
  }, { silent: true });
  const keys = keysOf(worker);
  const redis = queueContextOf(worker).redis;
  const before = await echo.enqueue("before");
  const hollow = await echo.enqueue("its payload goes missing");
  const after = await echo.enqueue("after");
  await redis.hdel(keys.task(hollow.id), "data");

  const running = runInBackground(worker);
  try {
    const failed = await hollow.result({ timeout: 5_000 });
    assert.equal(failed.success, false);
    assert.equal(failed.exception.name, "StreaqError");
    assert.equal(
      failed.exception.message,
      `Cannot run task echo (${hollow.id}): it has no payload in Redis (field 'data' of its hash is missing)`,
    );
    for (const handle of [before, after]) {
      assert.equal((await handle.result({ timeout: 5_000 })).success, true, handle.id);
    }
    assert.equal(
      (await echo.enqueue("still serving").then((h) => h.result({ timeout: 5_000 }))).success,
      true,
    );
    assert.equal(await redis.exists(keys.task(hollow.id)), 0, "its hash is deleted");
    assert.deepEqual(await pendingByWorker(worker), {});
    assert.deepEqual(logger.lines.filter((l) => l.level === "error"), []);
  } finally {
    await running.stop();
  }
});

Deno.test("each stream entry without a task id is dropped with its own warning naming it, however the worker reads it", async () => {
  const logger = collectingLogger();
  await using worker = await testWorker({ logger, logLevel: "warn", concurrency: 2 });
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    return await Promise.resolve(args);
  }, { silent: true });
  const keys = keysOf(worker);
  const redis = queueContextOf(worker).redis;
  // Between tasks, so that a busy worker reads most of them with the calls that complete the
  // tasks before them (which claim the next deliveries), the rest with its fetches.
  const entries: string[] = [];
  const good: string[] = [];
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 6; j++) good.push((await echo.enqueue(i, j)).id);
    entries.push((await redis.xadd(keys.stream, "*", "foo", `${i}`))!);
  }
  for (let j = 0; j < 6; j++) good.push((await echo.enqueue("last", j)).id);
  await worker.run({ burst: true });

  for (const id of good) assert.equal((await worker.resultById(id)).success, true, id);
  const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.message);
  for (const entry of entries) {
    assert.equal(
      warnings.filter((m) =>
        m.endsWith(`] dropped stream entry ${entry} of ${keys.stream}: it has no task id`)
      ).length,
      1,
      `one warning for ${entry}:\n${warnings.join("\n")}`,
    );
  }
  assert.equal(warnings.length, entries.length, warnings.join("\n"));
  assert.equal(await redis.xlen(keys.stream), 0, "the entries left the stream");
  assert.deepEqual(await pendingByWorker(worker), {});
});

Deno.test("an undecodable payload or result says 'Cannot decode' once, naming what it decoded", async () => {
  await using worker = await testWorker();
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    return await Promise.resolve(args);
  }, { silent: true });
  const redis = queueContextOf(worker).redis;
  const notJson = await writeTask(worker, "echo", Buffer.from("s[not json"));
  const notUtf8 = await writeTask(worker, "echo", Buffer.from([0x62, 0xff, 0xfe, 0x00]));
  const done = await echo.enqueue("a result to spoil");
  await worker.run({ burst: true });

  for (const [id, reason] of [[notJson, "not valid JSON"], [notUtf8, "not valid UTF-8"]]) {
    const result = await worker.resultById(id, { timeout: 5_000 });
    assert.equal(result.success, false);
    assert.match(result.exception.message, new RegExp(`^Cannot decode payload: ${reason}`));
    assert.doesNotMatch(result.exception.message, /Cannot decode.*Cannot decode/);
  }

  // A stored result whose value is cut short: the header reads, the value does not.
  const resultKey = `streaq:{${worker.queueName}}:result:${done.id}`;
  const stored = (await redis.getBuffer(resultKey))!;
  await redis.set(resultKey, stored.subarray(0, stored.length - 3));
  await assert.rejects(
    worker.resultById(done.id, { timeout: 1_000 }),
    (error: Error) => {
      assert.match(error.message, /^Cannot decode result: not valid JSON/);
      assert.doesNotMatch(error.message, /Cannot decode.*Cannot decode/);
      return true;
    },
  );
});
