import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Worker } from "../mod.ts";
import { runInBackground, sibling, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

const SECRET = "correct horse battery staple";

/**
 * A signing worker with a JSON codec whose deserializer records what it is given, and an
 * `echo` task that records its calls.
 */
async function signingWorker() {
  const decoded: string[] = [];
  const calls: unknown[][] = [];
  const worker = await testWorker({
    signingSecret: SECRET,
    serializer: JSON.stringify,
    deserializer: (data) => {
      const text = typeof data === "string" ? data : new TextDecoder().decode(data);
      decoded.push(text);
      return JSON.parse(text);
    },
  });
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    calls.push(args);
    return await Promise.resolve(args);
  });
  return { worker, echo, decoded, calls };
}

function taskKey(worker: Worker<unknown>, id: string): string {
  return `streaq:{${worker.queueName}}:task:${id}`;
}

function resultKey(worker: Worker<unknown>, id: string): string {
  return `streaq:{${worker.queueName}}:result:${id}`;
}

/** Enqueues a good task and checks that the worker still runs it. */
async function assertStillServing(echo: Awaited<ReturnType<typeof signingWorker>>["echo"]) {
  const good = await echo.enqueue("still serving");
  const result = await good.result({ timeout: 5_000 });
  assert.equal(result.success, true);
  assert.deepEqual(result.success && result.result, ["still serving"]);
}

Deno.test("with a signing secret, tasks run normally and results are stored signed", async () => {
  const { worker, echo } = await signingWorker();
  await using _ = worker;
  const running = runInBackground(worker);
  try {
    const handle = await echo.enqueue("hello", 2);
    const result = await handle.result({ timeout: 5_000 });
    assert.equal(result.success, true);
    assert.deepEqual(result.success && result.result, ["hello", 2]);
    const stored = await queueContextOf(worker).redis.getBuffer(resultKey(worker, handle.id));
    // One byte saying how the task ended, then the envelope.
    assert.equal(String.fromCharCode(stored![0]), "1", "a success");
    assert.equal(String.fromCharCode(stored![1]), "S", "a signed string envelope");
  } finally {
    await running.stop();
  }
});

Deno.test("an unsigned payload fails on a signing worker without being decoded or run", async () => {
  const { worker, echo, decoded, calls } = await signingWorker();
  await using _ = worker;
  await using unsigned = await sibling(worker, {
    serializer: JSON.stringify,
    deserializer: JSON.parse,
  });
  const running = runInBackground(worker);
  try {
    const handle = await unsigned.enqueueUnsafe("echo", "poison-unsigned");
    const result = await worker.resultById(handle.id, { timeout: 5_000 });
    assert.equal(result.success, false);
    assert.match(result.exception.message, /not signed/);
    assert.equal(calls.length, 0);
    assert.equal(decoded.some((text) => text.includes("poison")), false);
    await assertStillServing(echo);
  } finally {
    await running.stop();
  }
});

Deno.test("a tampered payload fails with a signature error without being decoded or run", async () => {
  const { worker, echo, decoded, calls } = await signingWorker();
  await using _ = worker;
  const handle = await echo.enqueue("poison-tampered", 1);
  const key = taskKey(worker, handle.id);
  const data = (await queueContextOf(worker).redis.hgetBuffer(key, "data"))!;
  const index = data.lastIndexOf("1");
  assert.ok(index > 0);
  const tampered = Buffer.from(data);
  tampered[index] = "2".charCodeAt(0);
  await queueContextOf(worker).redis.hset(key, "data", tampered);

  const running = runInBackground(worker);
  try {
    const result = await handle.result({ timeout: 5_000 });
    assert.equal(result.success, false);
    assert.match(result.exception.message, /signature does not match/);
    assert.equal(calls.length, 0);
    assert.equal(decoded.some((text) => text.includes("poison")), false);
    await assertStillServing(echo);
  } finally {
    await running.stop();
  }
});

Deno.test("a signed payload copied to another task is rejected, as the signature covers the task id", async () => {
  const { worker, echo, decoded, calls } = await signingWorker();
  await using _ = worker;
  const original = await echo.enqueue("original");
  const victim = await echo.enqueue("poison-victim");
  const data = await queueContextOf(worker).redis.hgetBuffer(taskKey(worker, original.id), "data");
  await queueContextOf(worker).redis.hset(taskKey(worker, victim.id), "data", data!);

  const running = runInBackground(worker);
  try {
    const [ok, copied] = await Promise.all([
      original.result({ timeout: 5_000 }),
      victim.result({ timeout: 5_000 }),
    ]);
    assert.equal(ok.success, true);
    assert.equal(copied.success, false);
    assert.match(copied.exception.message, /signature does not match/);
    assert.deepEqual(calls, [["original"]]);
    // Decoded as the original's payload and as its result (the same text), never as the
    // victim's payload.
    assert.equal(decoded.filter((text) => text === '["original"]').length, 2);
    await assertStillServing(echo);
  } finally {
    await running.stop();
  }
});

Deno.test("a result signed with one secret cannot be read with another", async () => {
  const { worker, echo } = await signingWorker();
  await using _ = worker;
  await using otherSecret = await sibling(worker, {
    signingSecret: "another secret",
    serializer: JSON.stringify,
    deserializer: JSON.parse,
  });
  const running = runInBackground(worker);
  try {
    const handle = await echo.enqueue("for the right reader");
    assert.equal((await handle.result({ timeout: 5_000 })).success, true);
    await assert.rejects(
      otherSecret.resultById(handle.id, { timeout: 1_000 }),
      (error: Error) =>
        error.name === "StreaqError" && /signature does not match/.test(error.message),
    );
  } finally {
    await running.stop();
  }
});

Deno.test("a signed result copied in as the payload of a task named 'result' fails the signature check", async () => {
  const { worker, echo, decoded } = await signingWorker();
  await using _ = worker;
  const calls: unknown[][] = [];
  const result = worker.task(async function result(...args: unknown[]): Promise<unknown[]> {
    calls.push(args);
    return await Promise.resolve(args);
  });
  const running = runInBackground(worker);
  try {
    const done = await echo.enqueue("a result worth copying");
    assert.equal((await done.result({ timeout: 5_000 })).success, true);
    const redis = queueContextOf(worker).redis;
    // The stored result is one byte saying how the task ended, then its signed envelope: the
    // envelope goes in as the payload of a task of the same id named `result`.
    const stored = (await redis.getBuffer(resultKey(worker, done.id)))!;
    await redis.del(resultKey(worker, done.id));
    const now = Date.now();
    await redis.hset(taskKey(worker, done.id), {
      fn: "result",
      data: stored.subarray(1),
      pri: "normal",
      ct: now,
      et: now,
      tries: 0,
    });
    const copied = () => decoded.filter((text) => text.includes("worth copying")).length;
    const seen = copied();
    await redis.xadd(`streaq:{${worker.queueName}}:stream:normal`, "*", "id", done.id);

    const forged = await worker.resultById(done.id, { timeout: 5_000 });
    assert.equal(forged.success, false);
    assert.match(forged.exception.message, /signature does not match/);
    assert.equal(copied(), seen, "the copied result was not handed to the deserializer");
    assert.deepEqual(calls, []);

    // A genuine task named `result` still runs, and its result still reads.
    const genuine = await result.enqueue("genuine");
    const outcome = await genuine.result({ timeout: 5_000 });
    assert.deepEqual(outcome.success && outcome.result, ["genuine"]);
    await assertStillServing(echo);
  } finally {
    await running.stop();
  }
});
