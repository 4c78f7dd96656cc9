import assert from "node:assert/strict";
import { denoExecutable, runInBackground, testWorker } from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLIENT = new URL("./fixtures/enqueue_only_client.ts", import.meta.url).pathname;

Deno.test("a client with only net access to Redis and env access can import streaq, enqueue and read a result", async () => {
  const redis = await sharedRedis();
  await using worker = await testWorker();
  worker.task(async function double(value: number): Promise<number> {
    return await Promise.resolve(value * 2);
  });
  const running = runInBackground(worker);
  try {
    const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
      args: [
        "run",
        "--no-prompt",
        "--cached-only",
        `--config=${ROOT}deno.json`,
        `--allow-net=${redis.host}:${redis.port}`,
        "--allow-env",
        CLIENT,
        redis.url,
        worker.queueName,
        "21",
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    const errors = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `the client exited with code ${code}:\n${errors}`);
    const printed = JSON.parse(new TextDecoder().decode(stdout).trim());
    assert.deepEqual(
      { success: printed.success, value: printed.value, workerId: printed.workerId },
      { success: true, value: 42, workerId: worker.id },
    );
    assert.equal(errors.includes("NotCapable"), false, errors);
  } finally {
    await running.stop();
  }
});
