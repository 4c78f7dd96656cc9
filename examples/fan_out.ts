/**
 * Fan-out and fan-in: map a list over a task, then combine the results in a task that runs
 * `after` all of them, in one round trip. This replaces streaQ's `map`/`filter` recipe: the
 * parts run in parallel on any number of workers, and the combining task starts only when every
 * part has succeeded (if one fails, it fails with "dependency failed").
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/fan_out.ts
 *
 * It runs a worker in this process for the demonstration (Redis at `REDIS_URL`, default
 * redis://localhost:6379).
 *
 * @module
 */

import { taskContext, Worker } from "../mod.ts";

const worker = new Worker({
  redisUrl: Deno.env.get("REDIS_URL") ?? "redis://localhost:6379",
  queueName: "streaq-example-fan-out",
  concurrency: 8,
  logLevel: "warn",
});

/** One part of the work: counts the words of a chunk of text. */
const countWords = worker.task(async function countWords(chunk: string): Promise<number> {
  return await Promise.resolve(chunk.split(/\s+/).filter(Boolean).length);
});

/**
 * The fan-in: adds up the parts' results, read in one round trip and typed by `countWords`
 * (each `r.result` is a number).
 */
const sumCounts = worker.task(async function sumCounts(): Promise<number> {
  const parts = (await taskContext().dependencyResults()).allOf(countWords);
  return parts.reduce((sum, r) => sum + r.result, 0);
});

if (import.meta.main) {
  const chapters = [
    "It was the best of times, it was the worst of times",
    "it was the age of wisdom, it was the age of foolishness",
    "it was the epoch of belief, it was the epoch of incredulity",
  ];
  const running = worker.run();

  const parts = chapters.map((chapter) => countWords.enqueue(chapter));
  const total = sumCounts.enqueue().start({ after: parts.map((part) => part.id) });
  const [handle] = await worker.enqueueMany([total, ...parts]);
  console.log("words:", (await handle.result({ timeout: 10_000 })).result);

  worker.stop();
  await running;
  await worker.close();
}
