import assert from "node:assert/strict";
import { TaskStatus } from "../mod.ts";
import { runInBackground, testWorker } from "./_helpers.ts";

Deno.test("a task enqueued before the worker starts runs and its result can be read", async () => {
  await using worker = await testWorker();
  const double = worker.task(async function double(n: number): Promise<number> {
    return await Promise.resolve(n * 2);
  });
  const handle = await double.enqueue(21);
  assert.equal(await handle.status(), TaskStatus.QUEUED);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(result.success, true);
  assert.equal(result.success && result.result, 42);
  assert.equal(result.tries, 1);
  assert.equal(result.workerId, worker.id);
  assert.equal(await handle.status(), TaskStatus.DONE);
});
