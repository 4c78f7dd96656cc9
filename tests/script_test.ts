import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Command } from "ioredis";
import { encodeCommand } from "../src/redis/_resp.ts";
import { runScript, script } from "../src/redis/_script.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

const ECHO = script("return {KEYS[1], unpack(ARGV)}");

const awkward = [
  "",
  "plain",
  "résumé ✓ 🎉",
  0,
  -17,
  1.5,
  Buffer.alloc(0),
  Buffer.from([0, 255, 13, 10, 36, 42]),
  "x".repeat(1_000),
  ...Array.from({ length: 12 }, (_, i) => `many-${i}`),
];

Deno.test("a command is laid out byte for byte as ioredis lays it out", () => {
  const theirs = new Command("evalsha", awkward.slice(), {});
  const expected = Buffer.from(theirs.toWritable({}));
  assert.deepEqual(Buffer.from(encodeCommand("evalsha", theirs.args as never)), expected);
});

Deno.test("text, numbers and bytes reach a script unchanged", async () => {
  await using worker = await testWorker();
  const reply = await runScript(
    queueContextOf(worker).redis,
    ECHO,
    ["k"],
    awkward,
    true,
  ) as Buffer[];
  const sent = awkward.map((a) => typeof a === "number" ? Buffer.from(String(a)) : Buffer.from(a));
  assert.deepEqual(reply, [Buffer.from("k"), ...sent]);
});

Deno.test("a script Redis has forgotten (SCRIPT FLUSH) is sent again, alone or in a pipeline", async () => {
  await using worker = await testWorker();
  const redis = queueContextOf(worker).redis;
  assert.deepEqual(await runScript(redis, ECHO, ["k"], ["a"]), ["k", "a"]);
  await redis.script("FLUSH");
  assert.deepEqual(await runScript(redis, ECHO, ["k"], ["b"]), ["k", "b"]);
  await redis.script("FLUSH");
  const pipeline = redis.pipeline();
  runScript(pipeline, ECHO, ["k"], ["c"]);
  pipeline.ping();
  assert.deepEqual(await pipeline.exec(), [[null, ["k", "c"]], [null, "PONG"]]);
});

Deno.test("a worker goes on running tasks after Redis forgets its scripts", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const running = runInBackground(worker);
  try {
    assert.equal((await (await double.enqueue(1)).result({ timeout: 5_000 })).result, 2);
    await queueContextOf(worker).redis.script("FLUSH");
    assert.equal((await (await double.enqueue(2)).result({ timeout: 5_000 })).result, 4);
  } finally {
    await running.stop();
  }
});
