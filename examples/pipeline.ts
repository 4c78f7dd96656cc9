/**
 * An ETL-style pipeline: extract rows from a CSV text, transform them, load a summary. Each
 * stage is a task; `.pipe()` feeds one stage's result into the next as its first argument, and
 * the whole chain is sent in one round trip. A fallback (`.otherwise()`) covers a flaky source.
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/pipeline.ts
 *
 * It runs a worker in this process for the demonstration (Redis at `REDIS_URL`, default
 * redis://localhost:6379); in production the tasks live in a worker module and the pipeline is
 * enqueued from anywhere.
 *
 * @module
 */

import { Worker } from "../mod.ts";

const worker = new Worker({
  redisUrl: Deno.env.get("REDIS_URL") ?? "redis://localhost:6379",
  queueName: "streaq-example-pipeline",
  logLevel: "warn",
});

interface Sale {
  region: string;
  amount: number;
}

/** Extract: parses CSV text into rows. */
const extract = worker.task(async function extract(csv: string): Promise<Sale[]> {
  const [, ...lines] = csv.trim().split("\n");
  return await Promise.resolve(lines.map((line) => {
    const [region, amount] = line.split(",");
    return { region, amount: Number(amount) };
  }));
});

/** A source that is down today: its fallback reads a cached copy instead. */
const extractLive = worker.task(async function extractLive(_csv: string): Promise<Sale[]> {
  await Promise.resolve(); // a real source would be fetched here
  throw new Error("the live source is unavailable");
});

/** Transform: totals per region, keeping amounts at or above `minimum`. */
const totals = worker.task(
  async function totals(rows: Sale[], minimum: number): Promise<Map<string, number>> {
    const sums = new Map<string, number>();
    for (const { region, amount } of rows) {
      if (amount >= minimum) sums.set(region, (sums.get(region) ?? 0) + amount);
    }
    return await Promise.resolve(sums);
  },
);

/** Load: a one-line report (a real task would write to a database). */
const report = worker.task(async function report(sums: Map<string, number>): Promise<string> {
  const lines = [...sums].sort(([, a], [, b]) => b - a).map(([r, s]) => `${r}: ${s}`);
  return await Promise.resolve(lines.join(", "));
});

if (import.meta.main) {
  const csv = "region,amount\nnorth,120\nsouth,80\nnorth,30\neast,200\nsouth,5";
  const running = worker.run();

  // Extract, transform (with an extra argument after the piped rows), load.
  const etl = await extract.enqueue(csv).pipe(totals, 10).pipe(report);
  console.log("pipeline:", (await etl.result({ timeout: 10_000 })).result);

  // The live source fails, so its fallback (with the same argument) takes over.
  const recovered = await extractLive.enqueue(csv).otherwise(extract).pipe(totals, 0).pipe(report);
  console.log("with fallback:", (await recovered.result({ timeout: 10_000 })).result);

  worker.stop();
  await running;
  await worker.close();
}
