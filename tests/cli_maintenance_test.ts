import assert from "node:assert/strict";
import { TaskStatus } from "../mod.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { runCli } from "./_cli.ts";
import { parseCommandLine, UsageError } from "../src/cli/args.ts";
import { queueContextOf } from "../src/worker.ts";

Deno.test("streaq clean, drain and obliterate remove what they say and print how many", async () => {
  await using worker = await testWorker();
  const ok = worker.task(async function ok(): Promise<void> {});
  const bad = worker.task(async function bad(): Promise<never> {
    await Promise.resolve();
    throw new Error("no");
  });
  await worker.enqueueMany([ok.enqueue(), ok.enqueue(), bad.enqueue()]);
  await worker.run({ burst: true });
  const waiting = await worker.enqueueMany([ok.enqueue(), ok.enqueue().start({ delay: 60_000 })]);

  const failed = await runCli(worker.queueName, "clean", "--failed", "--older-than", "0s");
  assert.equal(failed.code, 0, failed.stderr);
  assert.equal(failed.stdout, `removed 1 result from queue ${worker.queueName}\n`);
  const all = await runCli(worker.queueName, "clean");
  assert.equal(all.stdout, `removed 2 results from queue ${worker.queueName}\n`);

  const drained = await runCli(worker.queueName, "drain");
  assert.equal(drained.code, 0, drained.stderr);
  assert.equal(drained.stdout, `removed 2 waiting tasks from queue ${worker.queueName}\n`);
  for (const t of waiting) assert.equal(await t.status(), TaskStatus.NOT_FOUND);

  const run = runInBackground(worker);
  const { redis, keys } = queueContextOf(worker);
  await eventually(async () => (await redis.exists(keys.health(worker.id))) === 1);
  const refused = await runCli(worker.queueName, "obliterate");
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(
      `cannot obliterate queue ${worker.queueName}: .*1 worker is alive \\(${worker.id}\\)`,
    ),
  );
  const forced = await runCli(worker.queueName, "obliterate", "--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, new RegExp(`^removed queue ${worker.queueName}: \\d+ keys?\\n$`));
  await run.stop();
});

Deno.test("the maintenance commands' options are checked: a bad duration or a conflict is a usage error", () => {
  const cases: [string[], RegExp][] = [
    [
      ["clean", "w.ts", "--older-than", "soon"],
      /Option '--older-than' must be a duration, in milliseconds or with a unit \(ms, s, m, h, d, as in 90s or 7d\): received "soon"/,
    ],
    [
      ["clean", "w.ts", "--failed", "--succeeded"],
      /'--succeeded' and '--failed' cannot be combined/,
    ],
    [["drain", "w.ts", "--force"], /Option '--force' applies to obliterate, not drain/],
    [["obliterate", "w.ts", "--failed"], /Option '--failed' applies to clean, not obliterate/],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => parseCommandLine(args),
      (e: Error) => e instanceof UsageError && message.test(e.message),
    );
  }
  assert.deepEqual(parseCommandLine(["clean", "w.ts", "--older-than", "7d", "--function", "f"]), {
    command: "clean",
    target: { module: "w.ts" },
    olderThan: 604_800_000,
    status: undefined,
    fnName: "f",
  });
  assert.deepEqual(parseCommandLine(["obliterate", "w.ts", "--force"]), {
    command: "obliterate",
    target: { module: "w.ts" },
    force: true,
  });
});
