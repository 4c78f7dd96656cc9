/**
 * Pausing and resuming from the dashboard in a real browser (the installed Chromium, driven by
 * playwright-core; see `ui_browser_test.ts`): the overview's flow panel pauses a function and
 * the queue with confirmed buttons, shows the task set aside, and resumes them. It saves a
 * screenshot of the panel under docs/screenshots/ (git-ignored).
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { createDashboard } from "../src/ui/mod.ts";
import { findChromium } from "./_chromium.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"];
const SCREENSHOTS = new URL("../docs/screenshots/", import.meta.url);

Deno.test("a function and the queue paused and resumed from the overview's buttons stop and restart their tasks", async () => {
  const executablePath = await findChromium();
  await using worker = await testWorker({ queueName: "shop-flow" });
  await worker.obliterate({ force: true });
  const ran: string[] = [];
  const chargeCard = worker.task(async function chargeCard(order: string): Promise<string> {
    ran.push(order);
    return await Promise.resolve(order);
  });
  worker.task(async function sendEmail(to: string): Promise<string> {
    return await Promise.resolve(to);
  }, { limit: { concurrency: 5 } });
  const background = runInBackground(worker);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createDashboard(worker, { basePath: "/admin/queues" }),
  );
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  const problems: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    await eventually(async () => (await worker.limits()).length === 1, { what: "the limit" });
    await page.goto(`http://127.0.0.1:${server.addr.port}/admin/queues/`);
    await page.locator("#flow tr", { hasText: "sendEmail" }).getByText("0 of 5 running")
      .waitFor();
    const row = page.locator("#flow tr", { hasText: "chargeCard" });
    await row.getByRole("button", { name: "Pause" }).click();
    const dialog = page.locator("dialog#confirm");
    await dialog.waitFor();
    assert.match(await dialog.textContent() ?? "", /Pause chargeCard\?/);
    await dialog.getByRole("button", { name: "Pause" }).click();
    await row.getByRole("button", { name: "Resume" }).waitFor();
    assert.deepEqual((await worker.paused()).functions.map((f) => f.name), ["chargeCard"]);

    const handle = await chargeCard.enqueue("order-1");
    await eventually(async () => (await worker.paused()).functions[0]?.held === 1, {
      what: "the task set aside",
    });
    await page.reload();
    await page.locator("#flow tr", { hasText: "chargeCard" }).locator("td[data-label=Waiting]", {
      hasText: "1",
    }).waitFor();
    await Deno.mkdir(SCREENSHOTS, { recursive: true });
    await page.locator("#flow").screenshot({
      path: new URL("flow-control-desktop.png", SCREENSHOTS).pathname,
    });
    assert.deepEqual(ran, []);

    await page.locator("#flow tr", { hasText: "chargeCard" }).getByRole("button", {
      name: "Resume",
    })
      .click();
    await dialog.getByRole("button", { name: "Resume" }).click();
    assert.equal((await handle.result({ timeout: 5_000 })).tries, 1);

    await page.getByRole("button", { name: "Pause queue" }).click();
    await dialog.getByRole("button", { name: "Pause queue" }).click();
    await page.locator("[data-queue-state=paused]").waitFor();
    assert.ok((await worker.paused()).queue instanceof Date);
    await page.getByRole("button", { name: "Resume queue" }).click();
    await dialog.getByRole("button", { name: "Resume queue" }).click();
    await page.locator("[data-queue-state=running]").waitFor();
    assert.equal((await worker.paused()).queue, null);
    await page.close();
    assert.deepEqual(problems, [], "no script or console errors");
  } finally {
    await browser.close();
    await server.shutdown();
    await background.stop();
  }
});
