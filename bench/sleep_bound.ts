/**
 * The best sleep efficiency this runtime allows, with no queue at all: 256 slots each run their
 * share of 2,000 sleeps of 100 ms back to back, as a queue with zero overhead would. What stays
 * below 1 comes from the waves themselves (2,000 tasks at 256 make 8 waves, 0.977 at best) and
 * from the runtime's timers (each fires a millisecond or two late, and 256 due together run one
 * after the other). The benchmark's sleep case compares streaq and BullMQ against this.
 *
 * `deno run bench/sleep_bound.ts [runs]`
 *
 * @module
 */

const TASKS = 2_000;
const CONCURRENCY = 256;
const SLEEP_MS = 100;

async function once(): Promise<number> {
  const started = performance.now();
  let next = 0;
  const slot = async () => {
    while (next < TASKS) {
      next++;
      await new Promise((resolve) => setTimeout(resolve, SLEEP_MS));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, slot));
  const ideal = (TASKS * SLEEP_MS) / CONCURRENCY;
  return ideal / (performance.now() - started);
}

if (import.meta.main) {
  const runs = Number(Deno.args[0] ?? 5);
  const results: number[] = [];
  for (let i = 0; i < runs; i++) results.push(await once());
  results.sort((a, b) => a - b);
  console.log(
    `${TASKS} × ${SLEEP_MS} ms sleeps at ${CONCURRENCY}, no queue: efficiency median ${
      results[Math.floor(results.length / 2)].toFixed(3)
    } (runs: ${results.map((r) => r.toFixed(3)).join(", ")})`,
  );
}
