import assert from "node:assert/strict";
import { TaskStatus } from "../mod.ts";
import { denoExecutable, testWorker, workerProcessArgs } from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const WORKER = new URL("./fixtures/sync_task_worker.ts", import.meta.url).pathname;

/** Starts the fixture worker on `queueName` with `extra` flags before the script. */
async function startWorker(queueName: string, extra: string[]): Promise<Deno.ChildProcess> {
  const redis = await sharedRedis();
  const args = workerProcessArgs(WORKER);
  args.splice(args.indexOf(WORKER), 0, ...extra);
  return new Deno.Command(denoExecutable(), {
    args,
    env: { STREAQ_TEST_REDIS_URL: redis.url, STREAQ_TEST_QUEUE: queueName },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("a worker with synchronous tasks but no read access fails run() naming --allow-read, and takes no task", async () => {
  await using client = await testWorker();
  const square = client.task(function square(n: number): number {
    return n * n;
  });
  const handle = await square.enqueue(7);
  const child = await startWorker(client.queueName, []);
  const { code, stderr } = await child.output();
  const errors = new TextDecoder().decode(stderr);
  assert.notEqual(code, 0, errors);
  assert.match(
    errors,
    /StreaqError: Cannot run worker \w+: its synchronous tasks \(square\) run in task threads, which load \S+sync_task_worker\.ts and streaq's own modules, and this process may not read /,
  );
  assert.ok(errors.includes(`Add --allow-read=${ROOT} `), errors);
  assert.ok(errors.includes("or register the tasks with thread: false"), errors);
  // The check came before any fetch: the task is still queued, never tried.
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  assert.equal((await handle.info())?.tries, 0);
});

Deno.test("the read access that the message names lets the worker run its synchronous tasks", async () => {
  await using client = await testWorker();
  const square = client.task(function square(n: number): number {
    return n * n;
  });
  const handle = await square.enqueue(7);
  const child = await startWorker(client.queueName, [`--allow-read=${ROOT}`]);
  try {
    const result = await handle.result({ timeout: 20_000 });
    assert.equal(result.success, true);
    assert.equal(result.result, 49);
  } finally {
    child.kill("SIGTERM");
    const { code, stderr } = await child.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  }
});
