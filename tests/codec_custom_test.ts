import assert from "node:assert/strict";
import type { Worker } from "../mod.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

class QuotaError extends Error {
  override name = "QuotaError";
}

async function storedPayload(worker: Worker<unknown>, id: string): Promise<Uint8Array> {
  const key = `streaq:{${worker.queueName}}:task:${id}`;
  return (await queueContextOf(worker).redis.hgetBuffer(key, "data"))!;
}

Deno.test("JSON.stringify and JSON.parse work as a codec for arguments, results and errors", async () => {
  await using worker = await testWorker({ serializer: JSON.stringify, deserializer: JSON.parse });
  const greet = worker.task(
    async function greet(user: { name: string; tags: string[] }, times: number) {
      return await Promise.resolve({ text: `hello ${user.name}`.repeat(times), tags: user.tags });
    },
  );
  const overQuota = worker.task(async function overQuota(): Promise<never> {
    await Promise.resolve();
    throw new QuotaError("over quota", { cause: "limit is 10" });
  });
  const handle = await greet.enqueue({ name: "Ada", tags: ["a", "b"] }, 2);
  const failing = await overQuota.enqueue();
  // The payload is the serializer's own text behind the one-byte envelope.
  const payload = new TextDecoder().decode(await storedPayload(worker, handle.id));
  assert.equal(payload, 's[{"name":"Ada","tags":["a","b"]},2]');

  const running = runInBackground(worker);
  try {
    const result = await handle.result({ timeout: 5_000 });
    assert.deepEqual(result.success && result.result, {
      text: "hello Adahello Ada",
      tags: ["a", "b"],
    });
    const failure = await failing.result({ timeout: 5_000 });
    assert.equal(failure.success, false);
    assert.equal(failure.exception.name, "QuotaError");
    assert.equal(failure.exception.message, "over quota");
    assert.equal(failure.exception.cause, "limit is 10");
    assert.match(failure.exception.stack ?? "", /overQuota/);
  } finally {
    await running.stop();
  }
});

Deno.test("a binary serializer round-trips and its deserializer receives a Uint8Array", async () => {
  const received: string[] = [];
  await using worker = await testWorker({
    serializer: (value) => new TextEncoder().encode(JSON.stringify(value)),
    // A deserializer may accept only the kind its serializer produces.
    deserializer: (data: Uint8Array) => {
      received.push(data instanceof Uint8Array ? "bytes" : typeof data);
      return JSON.parse(new TextDecoder().decode(data));
    },
  });
  const sum = worker.task(async function sum(numbers: number[]): Promise<{ total: number }> {
    return await Promise.resolve({ total: numbers.reduce((a, b) => a + b, 0) });
  });
  const handle = await sum.enqueue([1, 2, 3, 4]);
  assert.equal(String.fromCharCode((await storedPayload(worker, handle.id))[0]), "b");
  const running = runInBackground(worker);
  try {
    const result = await handle.result({ timeout: 5_000 });
    assert.deepEqual(result.success && result.result, { total: 10 });
    assert.ok(received.length >= 2, "payload and result were decoded");
    assert.deepEqual(new Set(received), new Set(["bytes"]));
  } finally {
    await running.stop();
  }
});

Deno.test("a batch whose serializer refuses one task, at once or later, fails whole and stores nothing", async () => {
  // Answers in a promise, except for "now", which it refuses at once: the refusal of "later",
  // whose promise is under way when "now" is refused, must not go unhandled (it would end the
  // process), and the batch must fail as a whole.
  await using worker = await testWorker({
    serializer: (value) => {
      const [word] = value as string[];
      if (word === "now") throw new RangeError("refused at once");
      if (word === "later") return Promise.reject(new RangeError("refused later"));
      return Promise.resolve(JSON.stringify(value));
    },
    deserializer: (data: string) => JSON.parse(data),
  });
  const say = worker.task(async function say(_word: string): Promise<void> {});
  for (const words of [["fine", "later", "now"], ["fine", "later"], ["now", "fine"]]) {
    await assert.rejects(
      worker.enqueueMany(words.map((word) => say.enqueue(word))),
      (error: Error) => {
        assert.ok(error instanceof TypeError, `${error?.constructor?.name}: ${error.message}`);
        assert.match(error.message, /task say .*cannot be serialized: refused (at once|later)/);
        return true;
      },
    );
  }
  // A rejection left unhandled surfaces at the next turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(await worker.queueSize({ includeScheduled: true }), 0);
  await worker.enqueueMany([say.enqueue("fine")]);
  assert.equal(await worker.queueSize(), 1);
});

Deno.test("an async serializer and deserializer work end to end", async () => {
  let serialized = 0;
  let deserialized = 0;
  await using worker = await testWorker({
    serializer: async (value) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      serialized++;
      return JSON.stringify(value);
    },
    deserializer: async (data: string) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      deserialized++;
      return JSON.parse(data);
    },
  });
  const shout = worker.task(async function shout(text: string): Promise<string> {
    return await Promise.resolve(text.toUpperCase());
  });
  const failing = worker.task(async function failing(): Promise<never> {
    await Promise.resolve();
    throw new RangeError("out of range");
  });
  const running = runInBackground(worker);
  try {
    const result = await (await shout.enqueue("hey")).result({ timeout: 5_000 });
    assert.equal(result.success && result.result, "HEY");
    const failure = await (await failing.enqueue()).result({ timeout: 5_000 });
    assert.equal(failure.success, false);
    assert.equal(failure.exception.name, "RangeError");
    assert.equal(failure.exception.message, "out of range");
    assert.ok(serialized >= 4 && deserialized >= 4, `${serialized} / ${deserialized}`);
  } finally {
    await running.stop();
  }
});

Deno.test("the default codec keeps Date, Map, Set, BigInt, Uint8Array and undefined intact", async () => {
  await using worker = await testWorker();
  const seenInTask: string[] = [];
  const echo = worker.task(async function echo(...args: unknown[]): Promise<unknown[]> {
    seenInTask.push(...args.map((a) => a === undefined ? "undefined" : a!.constructor.name));
    return await Promise.resolve(args);
  });
  const args = [
    new Date("2030-01-02T03:04:05.678Z"),
    new Map<unknown, unknown>([["a", 1], [2, new Set(["x"])]]),
    new Set([1, "two", 3n]),
    12345678901234567890n,
    new Uint8Array([0, 1, 254, 255]),
    undefined,
    { nested: [undefined, new Date(0), { big: -1n }] },
  ];
  const running = runInBackground(worker);
  try {
    const handle = await echo.enqueue(...args);
    const result = await handle.result({ timeout: 5_000 });
    assert.equal(result.success, true);
    assert.deepStrictEqual(result.success && result.result, args);
    assert.deepEqual(seenInTask, [
      "Date",
      "Map",
      "Set",
      "BigInt",
      "Uint8Array",
      "undefined",
      "Object",
    ]);
  } finally {
    await running.stop();
  }
});
