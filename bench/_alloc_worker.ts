/**
 * The worker process of `allocations.ts`: a streaq worker like the latency case's
 * (`_worker_streaq.ts`: concurrency 16, one no-op task run on the main thread), which counts the
 * heap bytes it allocates from one task's start to the next (completing one task, waiting for
 * and fetching the next, running it) and marks its GC window around `--samples` tasks after
 * `--warmup` ones. Prints `ready`, serves until its standard input closes, then prints one JSON
 * {@linkcode WorkerReport} line.
 *
 * @module
 */

import { allocChildArgs } from "./_alloc_args.ts";
import { HeapCounter, markWindow, mean, median } from "./_gc_trace.ts";
import { startSites, stopSites } from "./_alloc_sites.ts";
import { serveUntilInputCloses } from "./_child.ts";

/** What the worker process prints last. */
export interface WorkerReport {
  readonly role: "worker";
  /** Heap bytes per delivered task: median and mean of the cycles with no collection. */
  readonly medianBytes: number;
  readonly meanBytes: number;
  /** Cycles counted (those with a collection in them are dropped). */
  readonly counted: number;
  readonly completed: number;
}

const { values, worker: made } = await allocChildArgs();
const warmup = Number(values.warmup);
const samples = Number(values.samples);

await using worker = made;
const counter = new HeapCounter();
const cycles: number[] = [];
let started = 0;
worker.task(function noop(): Promise<void> {
  started++;
  const bytes = counter.take();
  if (started > warmup && started <= warmup + samples && bytes !== undefined) cycles.push(bytes);
  if (started === warmup && values.sites) void startSites(values.retained);
  if (started === warmup || started === warmup + samples) {
    markWindow();
    counter.take();
  }
  return Promise.resolve();
}, { thread: false });
await worker.connect();

await serveUntilInputCloses(worker);
if (values.sites) { for (const line of await stopSites(samples)) console.log(`site: ${line}`); }
const report: WorkerReport = {
  role: "worker",
  medianBytes: median(cycles),
  meanBytes: mean(cycles),
  counted: cycles.length,
  completed: worker.counters.completed,
};
console.log(JSON.stringify(report));
