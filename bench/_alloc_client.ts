/**
 * The enqueueing process of `allocations.ts`: the latency case's round trip (enqueue one no-op
 * task, await it, wait for its result), `--warmup` times, then `--samples` times inside its GC
 * window, counting the heap bytes of the enqueue (`await task.enqueue()`) and of the result
 * wait (`await handle.result()`) apart. Prints one JSON {@linkcode ClientReport} line.
 *
 * @module
 */

import { allocChildArgs } from "./_alloc_args.ts";
import { HeapCounter, markWindow, mean, median } from "./_gc_trace.ts";
import { startSites, stopSites } from "./_alloc_sites.ts";

/** What the enqueueing process prints. */
export interface ClientReport {
  readonly role: "client";
  /** Heap bytes per enqueue and per result wait: medians and means of the clean samples. */
  readonly enqueue: { readonly median: number; readonly mean: number; readonly counted: number };
  readonly result: { readonly median: number; readonly mean: number; readonly counted: number };
  /** Round-trip times in ms (slowed a little by the counting and by --trace-gc). */
  readonly p50: number;
  readonly p99: number;
}

const { values, worker: made } = await allocChildArgs();

await using worker = made;
const noop = worker.task(async function noop(): Promise<void> {});
await worker.connect();

async function roundTrip(): Promise<void> {
  const result = await (await noop.enqueue()).result({ timeout: 10_000 });
  if (!result.success) throw new Error("a no-op task failed");
}

for (let i = 0; i < Number(values.warmup); i++) await roundTrip();
const enqueueBytes: number[] = [];
const resultBytes: number[] = [];
const times: number[] = [];
const counter = new HeapCounter();
if (values.sites) await startSites(values.retained);
markWindow();
for (let i = 0; i < Number(values.samples); i++) {
  const started = performance.now();
  counter.take();
  const handle = await noop.enqueue();
  const enqueued = counter.take();
  const result = await handle.result({ timeout: 10_000 });
  const waited = counter.take();
  times.push(performance.now() - started);
  if (!result.success) throw new Error("a no-op task failed");
  if (enqueued !== undefined) enqueueBytes.push(enqueued);
  if (waited !== undefined) resultBytes.push(waited);
}
markWindow();
if (values.sites) {
  for (const line of await stopSites(Number(values.samples))) console.log(`site: ${line}`);
}
times.sort((a, b) => a - b);
const report: ClientReport = {
  role: "client",
  enqueue: { median: median(enqueueBytes), mean: mean(enqueueBytes), counted: enqueueBytes.length },
  result: { median: median(resultBytes), mean: mean(resultBytes), counted: resultBytes.length },
  p50: times[Math.ceil(0.5 * times.length) - 1],
  p99: times[Math.ceil(0.99 * times.length) - 1],
};
console.log(JSON.stringify(report));
