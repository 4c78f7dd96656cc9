/**
 * The dashboard in a real browser: the installed Chromium (`CHROME_PATH` or the usual locations,
 * see `_chromium.ts`) driven by playwright-core. It runs under `tests/tools.json`, which holds
 * playwright-core outside the library's configuration: `deno task test:tools` runs it. Each test
 * serves the dashboard of a running worker on a free loopback port. The first test also saves
 * screenshots of every page at desktop and phone widths under docs/screenshots/ (git-ignored).
 */

import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { StreaqCancelled, taskContext, type TaskHandle, TaskStatus, type Worker } from "../mod.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { queueContextOf } from "../src/worker.ts";
import { findChromium } from "./_chromium.ts";
import { eventually, runInBackground, sleepUnlessAborted, testWorker } from "./_helpers.ts";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const SCREENSHOTS = new URL("../docs/screenshots/", import.meta.url);
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** A worker with tasks in every status, its dashboard on a loopback port, and a browser. */
interface Fixture extends AsyncDisposable {
  readonly worker: Worker<undefined>;
  readonly url: string;
  readonly browser: Browser;
  /** Long tasks running until aborted. */
  readonly running: TaskHandle<string>[];
  /** Finished tasks: the third failed. */
  readonly finished: TaskHandle<void>[];
  /** Tasks waiting for a free slot. */
  readonly queued: TaskHandle<void>[];
  /** Script errors and console errors (CSP violations included) of the pages opened. */
  readonly problems: string[];
  /** Opens a page of the dashboard and checks that it answered 200. */
  open(path: string, viewport?: { width: number; height: number }): Promise<Page>;
}

/** While false, `sendEmail` fails for addresses with "bounce" in them (set by the rerun test). */
const mailboxes = { fixed: false };

async function dashboardFixture(queueName?: string): Promise<Fixture> {
  const executablePath = await findChromium();
  const worker = await testWorker({
    ...(queueName ? { queueName } : {}),
    concurrency: 3,
    prefetch: 0,
    idleTimeout: 10_000,
    priorities: ["low", "normal", "high"],
  });
  const resizeImage = worker.task(async function resizeImage(url: string): Promise<string> {
    await sleepUnlessAborted(60_000, taskContext().signal);
    return url;
  }, { timeout: 120_000 });
  const sendEmail = worker.task(
    async function sendEmail(to: string, _body: { subject: string }): Promise<void> {
      await Promise.resolve();
      if (to.includes("bounce") && !mailboxes.fixed) {
        throw new Error(`mailbox ${to} does not exist`);
      }
    },
  );
  worker.cron("0 3 * * *", async function nightlyReport(): Promise<string> {
    return await Promise.resolve("sent");
  });
  const finished = await worker.enqueueMany(
    ["ada", "grace", "bounce1", "linus", "bounce2", "margaret"].map((name) =>
      sendEmail.enqueue(`${name}@example.com`, { subject: "Welcome" })
    ),
  );
  const background = runInBackground(worker);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createDashboard(worker, { basePath: "/admin/queues" }),
  );
  let browser: Browser | undefined;
  let running: TaskHandle<string>[] = [];
  let queued: TaskHandle<void>[] = [];
  const dispose = async () => {
    await browser?.close();
    await server.shutdown();
    await background.stop();
    await worker.close();
  };
  try {
    await Promise.all(finished.map((h) => h.result({ timeout: 5_000 })));
    running = await worker.enqueueMany(
      ["a.png", "b.png", "c.png"].map((f) => resizeImage.enqueue(`https://img.example/${f}`)),
    );
    await eventually(async () => (await worker.queueSize()) === 0 && worker.running() === 3);
    queued = await worker.enqueueMany(
      Array.from(
        { length: 12 },
        (_, i) =>
          sendEmail.enqueue(`user${i}@example.com`, { subject: `Invoice #${1000 + i}` })
            .start({ priority: ["low", "normal", "high"][i % 3] }),
      ),
    );
    await sendEmail.enqueue("later@example.com", { subject: "Reminder" }).start({
      delay: 3_600_000,
    });
    await sendEmail.enqueue("team@example.com", { subject: "Digest" }).start({
      schedule: "0 */6 * * *",
    });
    await eventually(async () => (await worker.schedules()).length === 2);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  } catch (error) {
    await dispose();
    throw error;
  }
  const url = `http://127.0.0.1:${server.addr.port}/admin/queues`;
  const problems: string[] = [];
  return {
    problems,
    worker,
    url,
    browser,
    running,
    finished,
    queued,
    async open(path, viewport = DESKTOP) {
      const page = await browser!.newPage({ viewport });
      page.setDefaultTimeout(10_000);
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      const response = await page.goto(url + path);
      assert.equal(response?.status(), 200, path);
      return page;
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/** Waits until `text` shows in the first element matching `selector`. */
async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor();
}

/**
 * Adds an hour of made-up history to the per-minute counts, so the screenshots show a chart
 * that looks like a busy queue rather than one bar.
 */
async function seedHistory(worker: Worker<undefined>): Promise<void> {
  const queue = queueContextOf(worker);
  const pipeline = queue.redis.pipeline();
  const now = Math.floor(Date.now() / 60_000);
  for (let i = 1; i < 60; i++) {
    const key = queue.keys.metrics(now - i);
    const load = Math.round(40 + 25 * Math.sin(i / 7) + 10 * Math.sin(i * 1.7));
    pipeline.hincrby(key, "completed", load);
    pipeline.hincrby(key, "failed", Math.round((i % 11 === 3 ? 9 : 1) + (i % 4)));
    pipeline.hincrby(key, "retried", i % 3);
    pipeline.expire(key, 7_200);
  }
  await pipeline.exec();
}

Deno.test("every page loads in a browser at desktop and phone widths, with no script error", async () => {
  await using f = await dashboardFixture("shop");
  await seedHistory(f.worker);
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  const taskPath = `/tasks/${f.finished[2].id}`;
  const pages: [string, string, string][] = [
    ["overview", "/", "Last hour"],
    ["tasks", "/tasks", "resizeImage"],
    ["task", taskPath, "does not exist"],
    ["workers", "/workers", f.worker.id],
    ["schedules", "/schedules", "nightlyReport"],
  ];
  for (const [viewport, label] of [[DESKTOP, "desktop"], [PHONE, "phone"]] as const) {
    for (const [name, path, expected] of pages) {
      const page = await f.open(path, viewport);
      await waitForText(page, "main", expected);
      const width = await page.evaluate<number>("document.documentElement.scrollWidth");
      assert.ok(width <= viewport.width, `${name} fits ${label} width (${width} px)`);
      await page.screenshot({ path: new URL(`${name}-${label}.png`, SCREENSHOTS).pathname });
      await page.close();
    }
  }
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("the task list filters by function, status and priority, and opens a task's page", async () => {
  await using f = await dashboardFixture();
  const page = await f.open("/tasks");
  await page.getByLabel("Function").fill("sendEmail");
  await page.getByLabel("Status").selectOption("queued");
  await page.waitForURL(/fn=sendEmail&status=queued/);
  await waitForText(page, ".count-line", "1–12 of 12 tasks");
  const statuses = await page.locator("tbody td[data-label=Status]").allTextContents();
  assert.equal(statuses.length, 12);
  assert.ok(statuses.every((s) => s.trim() === "queued"), statuses.join());

  await page.getByLabel("Priority").selectOption("high");
  await waitForText(page, ".count-line", "1–4 of 4 tasks");
  const functions = await page.locator("tbody td[data-label=Function]").allTextContents();
  assert.deepEqual(functions.map((s) => s.trim()), Array(4).fill("sendEmail"));

  await page.locator("tbody td[data-label=Task] a").first().click();
  await page.waitForURL(/\/admin\/queues\/tasks\/[0-9a-f]{32}$/);
  await waitForText(page, "h1", "sendEmail");
  await waitForText(page, "pre.args", "Invoice #");
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("a running task aborted from its page fails as cancelled", async () => {
  await using f = await dashboardFixture();
  const [target] = f.running;
  const page = await f.open(`/tasks/${target.id}`);
  await waitForText(page, "h1 .badge", "running");
  await page.getByRole("button", { name: "Abort task" }).click();
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor();
  assert.match(await dialog.textContent() ?? "", /Abort task resizeImage/);
  await dialog.getByRole("button", { name: "Abort task" }).click();
  await waitForText(page, "h1 .badge", "cancelled");
  await waitForText(page, "pre.error", "StreaqCancelled");
  const result = await target.result({ timeout: 1_000 });
  assert.ok(!result.success && result.exception instanceof StreaqCancelled);
  assert.equal(await f.running[1].status(), TaskStatus.RUNNING, "only that task was aborted");
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("failed tasks rerun from the dashboard, one from its page and the rest from the failed list, succeed with their original arguments", async () => {
  await using f = await dashboardFixture();
  const [bounce1, bounce2] = [f.finished[2], f.finished[4]];
  // The fixture's worker is busy with long tasks: free its slots so the reruns run.
  for (const h of f.running) assert.equal(await h.abort(), true);
  mailboxes.fixed = true;
  try {
    const page = await f.open(`/tasks/${bounce1.id}`);
    await waitForText(page, "h1 .badge", "failed");
    await page.getByRole("button", { name: "Retry" }).click();
    const dialog = page.locator("dialog#confirm");
    await dialog.waitFor();
    assert.match(await dialog.textContent() ?? "", /Rerun task sendEmail/);
    await dialog.getByRole("button", { name: "Retry" }).click();
    await waitForText(page, "h1 .badge", "succeeded");
    const first = await bounce1.result({ timeout: 1_000 });
    assert.equal(first.success, true);

    const list = await f.open("/tasks?status=failed&fn=sendEmail");
    await list.getByRole("button", { name: "Retry 1 failed task" }).click();
    const bulk = list.locator("dialog#confirm");
    await bulk.waitFor();
    assert.match(await bulk.textContent() ?? "", /Rerun the 1 failed task of sendEmail/);
    await bulk.getByRole("button", { name: "Retry 1 failed task" }).click();
    await list.getByText("1 failed task was queued again").waitFor();
    await eventually(async () => (await bounce2.result({ timeout: 5_000 })).success, {
      what: "the second rerun to succeed",
    });
    await page.close();
    await list.close();
    assert.deepEqual(f.problems, [], "no script or console errors");
  } finally {
    mailboxes.fixed = false;
  }
});

Deno.test("a cron job unscheduled from the schedules page stops being scheduled", async () => {
  await using f = await dashboardFixture();
  const page = await f.open("/schedules");
  await waitForText(page, "tbody", "nightlyReport");
  await page.locator("tr", { hasText: "nightlyReport" }).getByRole("button", { name: "Unschedule" })
    .click();
  await page.locator("dialog#confirm").getByRole("button", { name: "Unschedule" }).click();
  await page.locator("tbody tr", { hasText: "nightlyReport" }).waitFor({ state: "detached" });
  await waitForText(page, ".count-line", "1 repeating task");
  assert.deepEqual((await f.worker.schedules()).map((s) => s.fnName), ["sendEmail"]);
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("an argument with HTML in it is shown as text, never run", async () => {
  await using f = await dashboardFixture();
  const payload =
    `<script>document.title = "pwned"</script><img src=x onerror="document.title='pwned'">`;
  const handle = await f.worker.enqueueUnsafe("sendEmail", payload, { subject: payload })
    .start({ delay: 3_600_000 });
  const page = await f.open(`/tasks/${handle.id}`);
  const shown = await page.locator("pre.args").textContent() ?? "";
  assert.ok(shown.includes(payload.replaceAll('"', '\\"')), shown);
  assert.equal(await page.locator("main script, main img").count(), 0);
  assert.notEqual(await page.title(), "pwned");
  await page.goto(`${f.url}/tasks?status=scheduled`);
  await waitForText(page, "tbody", "<script>");
  assert.equal(await page.locator("main script, main img").count(), 0);
  assert.notEqual(await page.title(), "pwned");
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("pages refresh their data every few seconds without reloading", async () => {
  await using f = await dashboardFixture();
  const page = await f.open("/");
  const queued = page.locator(".stat", { hasText: "Queued" }).locator(".value");
  assert.equal((await queued.textContent())?.trim(), "12");
  await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
  await f.worker.enqueueUnsafe("sendEmail", "new@example.com", { subject: "Hi" });
  await queued.filter({ hasText: /^\s*13\s*$/ }).waitFor({ timeout: 8_000 });
  assert.equal(await page.evaluate(() => "notReloaded" in globalThis), true);
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});

Deno.test("with events, a task's page shows its progress bar and log lines, then its completion, without a reload", async () => {
  const executablePath = await findChromium();
  await using worker = await testWorker({ events: true, concurrency: 2 });
  const gate = Promise.withResolvers<void>();
  const exportReport = worker.task(async function exportReport(rows: number): Promise<number> {
    const ctx = taskContext();
    await ctx.progress(40);
    ctx.log(`exported ${rows / 2} of ${rows} rows`);
    await gate.promise;
    return rows;
  });
  const background = runInBackground(worker);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createDashboard(worker, { basePath: "/ops" }),
  );
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  const problems: string[] = [];
  try {
    const handle = await exportReport.enqueue(1000);
    await eventually(async () => (await worker.infoById(handle.id))?.progress === 40);
    const page = await browser.newPage({ viewport: DESKTOP });
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    let eventStreams = 0;
    page.on("request", (r) => {
      if (r.url().endsWith("/ops/events")) eventStreams++;
    });
    const eventStream = page.waitForResponse((r) => r.url().endsWith("/ops/events"));
    const response = await page.goto(`http://127.0.0.1:${server.addr.port}/ops/tasks/${handle.id}`);
    assert.equal(response?.status(), 200);
    const events = await eventStream;
    assert.equal(events.status(), 200);
    assert.match(events.headers()["content-type"], /^text\/event-stream/);
    await page.locator("#live-status[data-via=events]").waitFor();
    await page.locator("#live .badge", { hasText: "running" }).waitFor();
    assert.equal(
      await page.locator("#live [role=progressbar]").first().getAttribute("aria-valuenow"),
      "40",
    );
    await waitForText(page, "#live pre.logs", "exported 500 of 1000 rows");
    const before = navigations;
    gate.resolve();
    assert.equal((await handle.result({ timeout: 5_000 })).success, true);
    // The completed event refreshes the page; with events the poll runs only every 30 s.
    await page.locator("#live .badge", { hasText: "succeeded" }).waitFor({ timeout: 5_000 });
    await waitForText(page, "#live pre.result", "1000");
    assert.equal(navigations, before, "the page was not reloaded");
    // Still on the one events connection: the refresh came from its event, not from polling.
    assert.equal(await page.locator("#live-status").getAttribute("data-via"), "events");
    assert.equal(eventStreams, 1);
    await page.close();
    assert.deepEqual(problems, [], "no script or console errors");
  } finally {
    gate.resolve();
    await browser.close();
    await server.shutdown();
    await background.stop();
  }
});

Deno.test("without events the events endpoint answers 204 and the page goes on polling", async () => {
  await using f = await dashboardFixture();
  const response = await fetch(`${f.url}/events`);
  assert.equal(response.status, 204);
  await response.body?.cancel();
  const page = await f.open("/");
  await page.locator("#live-status[data-via=polling]").waitFor();
  const queued = page.locator(".stat", { hasText: "Queued" }).locator(".value");
  await f.worker.enqueueUnsafe("sendEmail", "polled@example.com", { subject: "Hi" });
  await queued.filter({ hasText: /^\s*13\s*$/ }).waitFor({ timeout: 8_000 });
  await page.close();
  assert.deepEqual(f.problems, [], "no script or console errors");
});
