/**
 * The worker process of `latency_split.ts`: a streaq worker like the latency case's
 * (concurrency 16, one no-op task run on the main thread) that notes when each task starts, on
 * the clock the other process reads too (`performance.timeOrigin + performance.now()`). Prints
 * `ready`, serves until its standard input closes, then prints the start times as one JSON line.
 *
 * Usage: `deno run _latency_split_worker.ts <redisUrl> <queue> <mod.ts URL>`
 *
 * @module
 */

import { serveUntilInputCloses } from "./_child.ts";

const [url, queue, mod] = Deno.args;
const { Worker } = await import(mod) as typeof import("../mod.ts");
await using worker = new Worker({
  redisUrl: url,
  queueName: queue,
  concurrency: 16,
  logLevel: "warn",
  handleSignals: false,
});
const starts: number[] = [];
worker.task(function noop(): Promise<void> {
  starts.push(performance.timeOrigin + performance.now());
  return Promise.resolve();
}, { thread: false });
await worker.connect();
await serveUntilInputCloses(worker);
console.log(JSON.stringify(starts));
