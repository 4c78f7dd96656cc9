/**
 * A streaq worker in its own process, for the benchmark cases that need one (see `_child.ts`):
 * one no-op task, `serve` or `burst` mode, one JSON report line at the end.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Worker } from "../mod.ts";
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

await using worker = new Worker({
  redisUrl: values.url,
  queueName: values.queue,
  concurrency: Number(values.concurrency),
  logLevel: "warn",
  handleSignals: false,
});
let lastEnd = 0;
worker.task(function noop(): Promise<void> {
  lastEnd = performance.timeOrigin + performance.now();
  return Promise.resolve();
}, { thread: false });
await worker.connect();

const stdin = readLines(Deno.stdin.readable)[Symbol.asyncIterator]();
if (values.mode === "serve") {
  const running = worker.run();
  console.log("ready");
  while (!(await stdin.next()).done) {
    // Serves until stdin closes.
  }
  worker.stop();
  await running;
} else {
  console.log("ready");
  await stdin.next(); // "go"
  await worker.run({ burst: true });
}
const report: ChildReport = { completed: worker.counters.completed, lastEnd };
console.log(JSON.stringify(report));
