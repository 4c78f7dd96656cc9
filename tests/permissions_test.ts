import assert from "node:assert/strict";
import { denoExecutable, runInBackground, testWorker } from "./_helpers.ts";
import { sharedRedis, uniqueQueue } from "./_redis.ts";
import { PROMPT, Terminal } from "./_terminal.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLIENT = new URL("./fixtures/enqueue_only_client.ts", import.meta.url).pathname;
const SHARED_CLIENT = new URL("./fixtures/shared_client.ts", import.meta.url).pathname;

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

for (const where of ["without a terminal", "in a terminal"] as const) {
  Deno.test(`environment access scoped to REDIS_URL stops a client ${where} with a streaq message naming --allow-env, and no prompt`, async () => {
    const redis = await sharedRedis();
    const args = [
      "run",
      "--cached-only",
      `--config=${ROOT}deno.json`,
      `--allow-net=${redis.host}:${redis.port}`,
      "--allow-env=REDIS_URL",
      CLIENT,
      redis.url,
      uniqueQueue("scoped-env"),
      "21",
    ];
    let code: number, output: string;
    if (where === "in a terminal") {
      await using client = new Terminal([denoExecutable(), ...args], { cwd: ROOT });
      assert.ok(await client.endsWithin(30_000), `the client still runs:\n${client.output}`);
      ({ code, output } = await client.exit());
    } else {
      const ended = await new Deno.Command(denoExecutable(), {
        args: [args[0], "--no-prompt", ...args.slice(1)],
        cwd: ROOT,
        stdin: "null",
      }).output();
      code = ended.code;
      output = new TextDecoder().decode(ended.stdout) + new TextDecoder().decode(ended.stderr);
    }
    assert.equal(output.includes(PROMPT), false, output);
    assert.notEqual(code, 0, output);
    assert.match(
      output,
      /StreaqError: Cannot load streaq as it needs access to the whole environment \(--allow-env/,
    );
    assert.match(
      output,
      /--allow-env=REDIS_URL is not enough: received environment access "(prompt|denied)"/,
    );
    assert.doesNotMatch(
      output,
      /node_modules|npm\/registry|debug\//,
      "no stack trace from inside debug",
    );
  });
}

Deno.test("a client passed as redis without disableClientInfo is warned about when the process may not read, and one with it is not", async () => {
  const redis = await sharedRedis();
  const run = async (mode: "plain" | "disabled") => {
    const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
      args: [
        "run",
        "--no-prompt",
        "--cached-only",
        `--config=${ROOT}deno.json`,
        `--allow-net=${redis.host}:${redis.port}`,
        "--allow-env",
        SHARED_CLIENT,
        mode,
        redis.url,
        uniqueQueue("shared-client"),
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, output);
    assert.match(output, /queued: 0/);
    return output;
  };
  assert.match(
    await run("plain"),
    /passed as 'redis' reads ioredis's package\.json.*disableClientInfo: true/,
  );
  assert.doesNotMatch(await run("disabled"), /disableClientInfo/);
});
