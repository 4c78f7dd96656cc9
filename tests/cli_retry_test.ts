import assert from "node:assert/strict";
import { taskContext } from "../mod.ts";
import { parseCommandLine, sinceTime, UsageError } from "../src/cli/args.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { runCli } from "./_cli.ts";

Deno.test("streaq retry reruns one failed task by id, or the failed tasks of a function, and prints the count", async () => {
  await using worker = await testWorker();
  let fixed = false;
  const flaky = worker.task(async function flaky(n: number): Promise<number> {
    await Promise.resolve();
    if (!fixed) throw new Error("bug");
    return n * taskContext().tries;
  }, { maxTries: 1 });
  const handles = await worker.enqueueMany([flaky.enqueue(1), flaky.enqueue(2), flaky.enqueue(3)]);
  let running = runInBackground(worker);
  for (const h of handles) assert.equal((await h.result({ timeout: 5_000 })).success, false);
  await running.stop();
  fixed = true;

  const one = await runCli(worker.queueName, "retry", handles[0].id);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, `1 failed task queued again: flaky (${handles[0].id})\n`);

  const again = await runCli(worker.queueName, "retry", handles[0].id);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Cannot retry task \S+ as it has not finished/);

  const many = await runCli(worker.queueName, "retry", "--function", "flaky", "--since", "1h");
  assert.equal(many.code, 0, many.stderr);
  assert.match(many.stdout, /^2 failed tasks of flaky that failed since \S+ queued again$/m);

  running = runInBackground(worker);
  try {
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 5_000 })));
    assert.deepEqual(results.map((r) => r.success && r.result), [1, 2, 3]);
  } finally {
    await running.stop();
  }
});

Deno.test("streaq retry without a task id or a selection, or with both, is a usage error", () => {
  assert.throws(() => parseCommandLine(["retry", "w.ts"]), /Missing what to retry/);
  assert.throws(
    () => parseCommandLine(["retry", "w.ts", "id1", "--function", "f"]),
    /A task id cannot be combined with '--function' or '--since'/,
  );
  assert.throws(
    () => parseCommandLine(["retry", "w.ts", "--since", "yesterday"]),
    (error: Error) =>
      error instanceof UsageError &&
      /Option '--since' must be an ISO 8601 time .*: received "yesterday"/.test(error.message),
  );
  assert.throws(
    () => parseCommandLine(["run", "w.ts", "--function", "f"]),
    /Option '--function' applies to clean, retry, pause and resume, not run/,
  );
  assert.deepEqual(parseCommandLine(["retry", "w.ts:worker", "abc"]), {
    command: "retry",
    target: { module: "w.ts", exportName: "worker" },
    taskId: "abc",
    fnName: undefined,
    since: undefined,
  });
});

Deno.test("--since takes an ISO 8601 time or a duration ago", () => {
  const now = Date.UTC(2026, 0, 31, 12);
  assert.equal(sinceTime("2h", now).toISOString(), "2026-01-31T10:00:00.000Z");
  assert.equal(sinceTime("7d", now).toISOString(), "2026-01-24T12:00:00.000Z");
  assert.equal(sinceTime("2026-01-30T09:00Z", now).toISOString(), "2026-01-30T09:00:00.000Z");
  assert.equal(sinceTime("2026-01-30", now).toISOString(), "2026-01-30T00:00:00.000Z");
  assert.throws(() => sinceTime("2h ago", now), UsageError);
});
