/**
 * CPU-bound tasks in threads: a synchronous task function runs in a pool of Web Workers
 * (`syncConcurrency` of them), so CPU-heavy work uses every core while the worker's event loop
 * keeps serving async tasks, heartbeats and aborts. Here: counting primes below a bound, in pure
 * TypeScript, four times in parallel.
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env --allow-read examples/cpu_heavy.ts
 *
 * Threads load this module (and streaq's own) to find the function, hence `--allow-read`. The
 * worker runs in this process for the demonstration (Redis at `REDIS_URL`, default
 * redis://localhost:6379).
 *
 * @module
 */

import { Worker } from "../mod.ts";

export const worker = new Worker({
  redisUrl: Deno.env.get("REDIS_URL") ?? "redis://localhost:6379",
  queueName: "streaq-example-cpu",
  syncConcurrency: navigator.hardwareConcurrency,
  logLevel: "warn",
});

/** Counts the primes below `limit` by trial division: deliberately CPU-bound and synchronous. */
export const countPrimes = worker.task(function countPrimes(limit: number): number {
  let count = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}, { timeout: 60_000 });

if (import.meta.main) {
  const running = worker.run();
  const started = performance.now();
  const handles = await worker.enqueueMany([1, 2, 3, 4].map(() => countPrimes.enqueue(3_000_000)));
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 120_000 })));
  const ms = Math.round(performance.now() - started);
  console.log(`${results.map((r) => r.result).join(", ")} primes, 4 tasks in ${ms} ms`);
  console.log(`${navigator.hardwareConcurrency} threads: the tasks ran that many at a time`);
  worker.stop();
  await running;
  await worker.close();
}
