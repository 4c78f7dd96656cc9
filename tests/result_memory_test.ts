import assert from "node:assert/strict";
import { denoExecutable, workerProcessArgs } from "./_helpers.ts";
import { sharedRedis, uniqueQueue } from "./_redis.ts";

const WAITS = new URL("./fixtures/result_waits.ts", import.meta.url).pathname;

Deno.test("a finished result wait holds no memory, however long its timeout", async () => {
  const redis = await sharedRedis();
  const [run, ...rest] = workerProcessArgs(WAITS, redis.url, uniqueQueue());
  const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
    args: [run, "--v8-flags=--expose-gc", ...rest],
  }).output();
  const output = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const { bytesPerWait } = JSON.parse(output.trim().split("\n").at(-1)!);
  // A wait that kept its ten-minute timer and abort signals held about 650 bytes until then.
  assert.ok(bytesPerWait < 100, `each finished wait left ${bytesPerWait} bytes on the heap`);
});
