import assert from "node:assert/strict";
import { createDashboard } from "../src/ui/mod.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { ORIGIN, post, session } from "./_dashboard.ts";

Deno.test("the overview's flow panel pauses and resumes a function and the queue by POSTs with the CSRF token", async () => {
  await using worker = await testWorker();
  const ran: number[] = [];
  const work = worker.task(async function work(n: number): Promise<number> {
    ran.push(n);
    return await Promise.resolve(n);
  });
  worker.task(async function capped(): Promise<void> {
    await Promise.resolve();
  }, { limit: { concurrency: 4 } });
  const handler = createDashboard(worker);
  const { cookie, token, page } = await session(handler);
  assert.match(page, /<h2>Flow control<\/h2>/);
  assert.match(page, /action="\/functions\/work\/pause"/);
  assert.match(page, /action="\/queue\/pause"/);

  const refused = await post(handler, "/functions/work/pause");
  assert.equal(refused.status, 403);
  assert.deepEqual((await worker.paused()).functions, []);

  const paused = await post(handler, "/functions/work/pause", { cookie, token });
  assert.equal(paused.status, 200);
  assert.deepEqual(await paused.json(), {
    ok: true,
    status: 200,
    message: "Function work was paused",
    back: "/",
  });
  const running = runInBackground(worker);
  try {
    const handle = await work.enqueue(1);
    await eventually(async () => (await worker.paused()).functions[0]?.held === 1, {
      what: "the task set aside",
    });
    const overview = await (await handler(new Request(ORIGIN + "/", { headers: { cookie } })))
      .text();
    assert.match(overview, /action="\/functions\/work\/resume"/);
    assert.match(overview, /<td data-label="Waiting" class="num">1<\/td>/);
    assert.match(overview, /<td data-label="Limit">0 of 4 running<\/td>/);
    const taskPage = await (await handler(new Request(`${ORIGIN}/tasks/${handle.id}`))).text();
    assert.match(taskPage, /<dt>Not started as<\/dt>\s*<dd>paused: function work is paused<\/dd>/);
    const json = await (await handler(new Request(ORIGIN + "/api/"))).json();
    assert.equal(json.pauses.functions[0].name, "work");
    assert.equal(ran.length, 0);

    assert.equal((await post(handler, "/functions/work/resume", { cookie, token })).status, 200);
    assert.equal((await handle.result({ timeout: 5_000 })).tries, 1);

    assert.equal((await post(handler, "/queue/pause", { cookie, token })).status, 200);
    assert.ok((await worker.paused()).queue instanceof Date);
    const queuePage = await (await handler(new Request(ORIGIN + "/"))).text();
    assert.match(queuePage, /data-queue-state="paused"/);
    assert.match(queuePage, /action="\/queue\/resume"/);
    assert.equal((await post(handler, "/queue/resume", { cookie, token })).status, 200);
    assert.equal((await worker.paused()).queue, null);

    const bad = await post(handler, "/functions/a%20b/pause", { cookie, token });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).message, /must be a non-empty string without spaces/);
  } finally {
    await running.stop();
  }
});
