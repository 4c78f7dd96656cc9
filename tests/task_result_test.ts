import assert from "node:assert/strict";
import { StreaqError, type TaskResult } from "../mod.ts";
import { runInBackground, testWorker } from "./_helpers.ts";

/** What a user sees of a result: its enumerable fields, as logged or sent on as JSON. */
const shown = (result: TaskResult<unknown>) => JSON.parse(JSON.stringify(result));

Deno.test("a result shows its own side and throws, naming the task, when read on the other", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const refuse = worker.task(async function refuse(): Promise<number> {
    await Promise.resolve();
    throw new RangeError("too big");
  });
  const running = runInBackground(worker);
  try {
    const ok = await (await double.enqueue(21)).result({ timeout: 5_000 });
    const failed = await (await refuse.enqueue()).result({ timeout: 5_000 });

    assert.equal(ok.success && ok.result, 42);
    assert.equal(shown(ok).result, 42);
    assert.equal("exception" in shown(ok), false, "a success shows no exception");
    assert.throws(() => ok.exception, (error: Error) => {
      assert.ok(error instanceof StreaqError);
      assert.match(error.message, new RegExp(`Task double \\(${ok.taskId}\\) succeeded`));
      return true;
    });

    assert.equal(failed.success, false);
    assert.equal(!failed.success && failed.exception.message, "too big");
    assert.equal("exception" in shown(failed), true);
    assert.equal("result" in shown(failed), false, "a failure shows no result");
    assert.throws(() => failed.result, (error: Error) => {
      assert.ok(error instanceof StreaqError);
      assert.match(error.message, new RegExp(`Task refuse \\(${failed.taskId}\\) failed.*too big`));
      assert.equal((error.cause as Error).name, "RangeError");
      return true;
    });

    const fields = ["taskId", "fnName", "createdTime", "enqueueTime", "startTime", "finishTime"];
    for (const result of [ok, failed]) {
      assert.ok(Object.isFrozen(result));
      assert.deepEqual(Object.keys(result).slice(0, fields.length), fields);
      assert.equal(result.workerId, worker.id);
      assert.equal(result.tries, 1);
    }
  } finally {
    await running.stop();
  }
});
