/**
 * The draining process of `drain_allocations.ts`: `deno run … _drain_alloc_child.ts <mod> <redis
 * url> <queue> <tasks> <concurrency> <top>` drains a warm-up of a tenth of `tasks`, then `tasks`
 * no-op tasks with the sampling heap profiler on, and prints one JSON line: the sampled bytes per
 * task and the `top` sites.
 *
 * @module
 */

import { startSites, stopSites } from "./_alloc_sites.ts";
import { readyToDrain, runUntil } from "./_noop_drain.ts";

const [mod, redisUrl, queueName, tasksArg, concurrencyArg, topArg] = Deno.args;
const TASKS = Number(tasksArg);
const WARMUP = Math.round(TASKS / 10);
const { Worker } = await import(mod);

const worker = await readyToDrain(
  Worker,
  { redisUrl, queueName, concurrency: Number(concurrencyArg) },
  WARMUP,
  TASKS,
);
await startSites();
await runUntil(worker, WARMUP + TASKS);
const all = await stopSites(TASKS, Number.MAX_SAFE_INTEGER);
await worker.close();
const bytesPerTask = all.reduce((sum, line) => sum + Number(line.trim().split(" ")[0]), 0);
console.log(JSON.stringify({ bytesPerTask, sites: all.slice(0, Number(topArg)) }));
