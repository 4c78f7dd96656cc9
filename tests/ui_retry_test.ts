import assert from "node:assert/strict";
import { TaskStatus, type Worker } from "../mod.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { runInBackground, testWorker } from "./_helpers.ts";
import { get, ORIGIN, post, session } from "./_dashboard.ts";

/** A worker whose `flaky` task fails until `state.fixed`, with three failed tasks run. */
async function failedTasks(worker: Worker<unknown>) {
  const state = { fixed: false };
  const flaky = worker.task(async function flaky(n: number): Promise<number> {
    await Promise.resolve();
    if (!state.fixed) throw new Error(`bug ${n}`);
    return n;
  }, { maxTries: 1 });
  const other = worker.task(async function other(): Promise<void> {
    await Promise.resolve();
    throw new Error("still broken");
  }, { maxTries: 1 });
  const handles = await worker.enqueueMany([
    flaky.enqueue(1),
    flaky.enqueue(2),
    flaky.enqueue(3),
    other.enqueue(),
  ]);
  const running = runInBackground(worker);
  try {
    for (const h of handles) assert.equal((await h.result({ timeout: 5_000 })).success, false);
  } finally {
    await running.stop();
  }
  return { state, handles };
}

Deno.test("a failed task's page has a Retry button whose POST, with the CSRF token, queues it again", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker);
  const { handles: [first] } = await failedTasks(worker);
  const page = await (await get(handler, `/tasks/${first.id}`)).text();
  assert.match(page, new RegExp(`action="/tasks/${first.id}/retry"`));
  assert.match(page, /data-confirm="Rerun task flaky \([0-9a-f]+\) with its original arguments\?/);
  const api = await (await get(handler, `/api/tasks/${first.id}`)).json();
  assert.equal(api.retryable, true);

  const { cookie, token } = await session(handler);
  const path = `/tasks/${first.id}/retry`;
  const refused = await post(handler, path);
  assert.equal(refused.status, 403, "no token, no rerun");
  await refused.body?.cancel();
  const viaGet = await get(handler, path);
  assert.equal(viaGet.status, 405, "a GET changes nothing");
  await viaGet.body?.cancel();
  assert.equal(await first.status(), TaskStatus.DONE, "nothing was rerun yet");

  const retried = await post(handler, path, { cookie, token });
  assert.equal(retried.status, 200);
  assert.deepEqual(await retried.json(), {
    ok: true,
    status: 200,
    message: `Task ${first.id} was queued again`,
    back: `/tasks/${first.id}`,
  });
  assert.equal(await first.status(), TaskStatus.QUEUED);
  const again = await post(handler, path, { cookie, token });
  assert.equal(again.status, 409, "a queued task is not rerun twice");
  assert.match((await again.json()).message, /as it has not finished/);
  const unknown = await post(handler, "/tasks/0123456789abcdef/retry", { cookie, token });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();

  const browser = await handler(
    new Request(ORIGIN + path.replace(first.id, (await failedAgain(worker)).id), {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: token }),
    }),
  );
  assert.equal(browser.status, 303, "a form post redirects back to the task");
  await browser.body?.cancel();
});

/** One more failed task of `worker`'s queue. */
async function failedAgain(worker: Worker<unknown>) {
  const broken = worker.task(async function broken(): Promise<void> {
    await Promise.resolve();
    throw new Error("broken");
  }, { maxTries: 1 });
  const handle = await broken.enqueue();
  const running = runInBackground(worker);
  try {
    await handle.result({ timeout: 5_000 });
  } finally {
    await running.stop();
  }
  return handle;
}

Deno.test("the failed tasks list offers to retry them all with their count, and the POST reruns the filter's function", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker);
  const { state, handles } = await failedTasks(worker);
  const list = await (await get(handler, "/tasks?status=failed&fn=flaky")).text();
  assert.match(list, />Retry 3 failed tasks</);
  assert.match(list, /action="\/tasks\/retry-failed\?fn=flaky"/);
  assert.doesNotMatch(
    await (await get(handler, "/tasks?status=queued")).text(),
    /retry-failed/,
    "only the failed tasks list offers it",
  );
  assert.match(await (await get(handler, "/tasks?status=failed")).text(), />Retry 4 failed tasks</);

  const { cookie, token } = await session(handler);
  const refused = await post(handler, "/tasks/retry-failed?fn=flaky");
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const done = await post(handler, "/tasks/retry-failed?fn=flaky", { cookie, token });
  assert.equal(done.status, 200);
  assert.equal((await done.json()).message, "3 failed tasks were queued again");
  state.fixed = true;
  const running = runInBackground(worker);
  try {
    for (const h of handles.slice(0, 3)) {
      assert.equal((await h.result({ timeout: 5_000 })).success, true);
    }
  } finally {
    await running.stop();
  }
  assert.equal((await handles[3].result()).success, false, "the other function is left alone");
});
