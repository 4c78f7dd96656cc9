/**
 * The draining process of `drain_allocations.ts`: `deno run … _drain_alloc_child.ts <mod> <redis
 * url> <queue> <tasks> <concurrency> <top>` drains a warm-up of a tenth of `tasks`, then `tasks`
 * no-op tasks with the sampling heap profiler on, and prints one JSON line: the sampled bytes per
 * task and the `top` sites.
 *
 * @module
 */

import { startSites, stopSites } from "./_alloc_sites.ts";

const [mod, redisUrl, queueName, tasksArg, concurrencyArg, topArg] = Deno.args;
const TASKS = Number(tasksArg);
const WARMUP = Math.round(TASKS / 10);
const { Worker } = await import(mod);

const worker = new Worker({
  redisUrl,
  queueName,
  concurrency: Number(concurrencyArg),
  logLevel: "warn",
  handleSignals: false,
});
const noop = worker.task(async function noop(): Promise<void> {});
await worker.connect();

/** Runs the worker until it has completed `count` tasks in all. */
async function runUntil(count: number): Promise<void> {
  const running = worker.run();
  while (worker.counters.completed < count) await new Promise((r) => setTimeout(r, 1));
  worker.stop();
  await running;
}

await worker.enqueueMany(Array.from({ length: WARMUP }, () => noop.enqueue()));
await runUntil(WARMUP);
await worker.enqueueMany(Array.from({ length: TASKS }, () => noop.enqueue()));
await startSites();
await runUntil(WARMUP + TASKS);
const all = await stopSites(TASKS, Number.MAX_SAFE_INTEGER);
await worker.close();
const bytesPerTask = all.reduce((sum, line) => sum + Number(line.trim().split(" ")[0]), 0);
console.log(JSON.stringify({ bytesPerTask, sites: all.slice(0, Number(topArg)) }));
