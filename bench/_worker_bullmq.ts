/**
 * A BullMQ worker in its own process, for the benchmark cases that need one (see `_child.ts`):
 * one no-op processor, `serve` or `burst` mode, one JSON report line at the end. Burst mode
 * closes the worker at its first `drained` event; `close()` lets its active jobs finish.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { type ChildReport, readLines } from "./_child.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    queue: { type: "string" },
    concurrency: { type: "string" },
    mode: { type: "string" },
  },
});

const connection = new Redis(values.url!, { maxRetriesPerRequest: null });
let lastEnd = 0;
let completed = 0;
const worker = new Worker(values.queue!, () => {
  lastEnd = performance.timeOrigin + performance.now();
  return Promise.resolve();
}, { connection, concurrency: Number(values.concurrency), autorun: false });
worker.on("completed", () => completed++);
worker.on("error", (error) => console.error("BullMQ worker error:", error));
await worker.waitUntilReady();

const stdin = readLines(Deno.stdin.readable)[Symbol.asyncIterator]();
if (values.mode === "serve") {
  const running = worker.run();
  console.log("ready");
  while (!(await stdin.next()).done) {
    // Serves until stdin closes.
  }
  await worker.close();
  await running;
} else {
  console.log("ready");
  await stdin.next(); // "go"
  const drained = new Promise<void>((resolve) => worker.once("drained", () => resolve()));
  const running = worker.run();
  await drained;
  await worker.close();
  await running;
}
await connection.quit();
const report: ChildReport = { completed, lastEnd };
console.log(JSON.stringify(report));
