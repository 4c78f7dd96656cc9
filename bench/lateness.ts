/**
 * Delay lateness: how late delayed tasks start on an idle worker. Enqueues 1,000 no-op tasks
 * with delays spread over two seconds, runs one worker, and prints p50/p99/max of
 * (start time - due time). Run with `deno task bench:lateness`.
 *
 * @module
 */

import { Worker } from "../mod.ts";
import { startRedis } from "../tests/_redis.ts";

const COUNT = 1_000;
const SPREAD = 2_000;

await using redis = await startRedis();
await using worker = new Worker({
  redisUrl: redis.url,
  queueName: "lateness",
  concurrency: 64,
  logLevel: "warn",
  handleSignals: false,
});
const noop = worker.task(async function noop(): Promise<void> {}, { silent: true });
await worker.connect();
const running = worker.run();
await new Promise((r) => setTimeout(r, 200)); // let the worker settle into its idle wait

const base = Date.now() + 500;
const tasks = Array.from({ length: COUNT }, (_, i) => {
  const due = base + Math.floor((i / COUNT) * SPREAD);
  return { due, task: noop.enqueue().start({ schedule: new Date(due) }) };
});
const handles = await worker.enqueueMany(tasks.map((t) => t.task));
const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
worker.stop();
await running;

const lateness = results.map((r, i) => r.startTime - tasks[i].due).sort((a, b) => a - b);
const pick = (q: number) =>
  lateness[Math.min(lateness.length - 1, Math.floor(q * lateness.length))];
console.log(`| delayed tasks | p50 lateness | p99 lateness | max |`);
console.log(`| --- | --- | --- | --- |`);
console.log(
  `| ${COUNT} over ${SPREAD} ms | ${pick(0.5)} ms | ${pick(0.99)} ms | ${lateness.at(-1)} ms |`,
);
