import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "../src/cli/args.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { runCli } from "./_cli.ts";

Deno.test("streaq pause and resume hold and release the queue or its functions, and status shows what is paused", async () => {
  await using worker = await testWorker();
  const ran: number[] = [];
  const work = worker.task(async function work(n: number): Promise<number> {
    ran.push(n);
    return await Promise.resolve(n);
  });

  const paused = await runCli(
    worker.queueName,
    "pause",
    "--function",
    "work",
    "--function",
    "other",
  );
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(
    paused.stdout,
    /^queue \S+: paused: other \(for 0s, 0 tasks set aside\), work \(for 0s, 0 tasks set aside\)\n$/,
  );
  const running = runInBackground(worker);
  try {
    const handle = await work.enqueue(1);
    await eventually(async () => (await worker.paused()).functions[1]?.held === 1, {
      what: "the task set aside",
    });
    const status = await runCli(worker.queueName, "status", "--once");
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /^paused: other \(for \d+s, 0 tasks set aside\), work \(for \d+s, 1 task set aside\)$/m,
    );
    assert.deepEqual(ran, []);

    const resumed = await runCli(worker.queueName, "resume", "--function", "work");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^queue \S+: paused: other \(for \d+s, 0 tasks set aside\)\n$/);
    assert.equal((await handle.result({ timeout: 5_000 })).tries, 1);

    const queue = await runCli(worker.queueName, "pause");
    assert.match(queue.stdout, /paused: the whole queue \(for 0s\), other/);
    assert.equal((await runCli(worker.queueName, "resume", "--function", "other")).code, 0);
    const all = await runCli(worker.queueName, "resume");
    assert.equal(all.stdout, `queue ${worker.queueName}: nothing paused\n`);
    const status2 = await runCli(worker.queueName, "status", "--once");
    assert.match(status2.stdout, /^nothing paused\nno limit$/m);
  } finally {
    await running.stop();
  }
});

Deno.test("streaq pause takes --function once per function, and clean and retry only one", () => {
  assert.deepEqual(parseCommandLine(["pause", "w.ts", "--function", "a", "--function", "b"]), {
    command: "pause",
    target: { module: "w.ts" },
    functions: ["a", "b"],
  });
  assert.deepEqual(parseCommandLine(["resume", "w.ts"]), {
    command: "resume",
    target: { module: "w.ts" },
    functions: undefined,
  });
  assert.throws(
    () => parseCommandLine(["clean", "w.ts", "--function", "a", "--function", "b"]),
    (e: Error) =>
      e instanceof UsageError && e.message === "Option '--function' may be given once for clean",
  );
  assert.throws(
    () => parseCommandLine(["pause", "w.ts", "--function", ""]),
    /Option '--function' must be a function name: received ""/,
  );
});

Deno.test("streaq status shows each concurrency-limited function with its slots taken and tasks waiting", async () => {
  await using worker = await testWorker();
  const release = Promise.withResolvers<void>();
  const capped = worker.task(async function capped(): Promise<void> {
    await release.promise;
  }, { limit: { concurrency: 2 } });
  const running = runInBackground(worker);
  try {
    const handles = await worker.enqueueMany([1, 2, 3].map(() => capped.enqueue()));
    await eventually(async () => (await worker.limits())[0]?.waiting === 1, {
      what: "one task waiting for a slot",
    });
    const status = await runCli(worker.queueName, "status", "--once");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^limited: capped \(2 of 2 running, 1 waiting\)$/m);
    release.resolve();
    await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
  } finally {
    release.resolve();
    await running.stop();
  }
});
