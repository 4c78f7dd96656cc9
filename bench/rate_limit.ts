/**
 * Draining under a rate limit: how close to the limit the achieved rate is, and how evenly the
 * starts spread, for streaq's `limit: { max, duration }` and BullMQ's worker `limiter`, on the
 * same Redis. Each library enqueues `TASKS` no-op tasks and drains them with two workers of
 * concurrency 32 under a limit of `MAX` starts per `WINDOW` ms; the start times are recorded.
 * Prints, per library: the time from the first start to the last against the least the limit
 * allows (`TASKS / MAX - 1` windows: 100 % is as fast as allowed), the most starts in any window
 * and in any window 100 ms shorter, as the processor functions saw them (a limiter counts a start
 * in Redis when the task is claimed; the function begins when the claim's reply reaches its
 * worker, and under a burst that takes a varying few to hundred milliseconds), and the spread of
 * starts per tenth of a window (coefficient of variation: 0 is perfectly even). Run with
 * `deno task bench:rate`.
 *
 * @module
 */

import { Queue, Worker as BullWorker } from "bullmq";
import { Redis } from "ioredis";
import { Worker } from "../mod.ts";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";

const TASKS = 600;
const MAX = 100;
const WINDOW = 1_000;
const CONCURRENCY = 32;

await using redis = await startRedis();

/** streaq: two workers in this process, one rate-limited no-op function. */
async function streaqStarts(): Promise<number[]> {
  const starts: number[] = [];
  const queueName = uniqueQueue("rate");
  const workers = [0, 1].map(() =>
    new Worker({
      redisUrl: redis.url,
      queueName,
      concurrency: CONCURRENCY,
      logLevel: "warn",
      handleSignals: false,
    })
  );
  const tasks = workers.map((w) =>
    w.task(async function noop(): Promise<void> {
      starts.push(Date.now());
      await Promise.resolve();
    }, { limit: { max: MAX, duration: WINDOW }, silent: true })
  );
  const handles = await workers[0].enqueueMany(
    Array.from({ length: TASKS }, () => tasks[0].enqueue()),
  );
  const running = workers.map((w) => w.run());
  await Promise.all(handles.map((h) => h.result({ timeout: 60_000 })));
  for (const w of workers) w.stop();
  await Promise.all(running);
  await Promise.all(workers.map((w) => w.close()));
  return starts;
}

/** BullMQ: two workers in this process with its queue-wide `limiter`. */
async function bullmqStarts(): Promise<number[]> {
  const starts: number[] = [];
  const name = uniqueQueue("rate");
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  await queue.addBulk(Array.from({ length: TASKS }, () => ({ name: "noop", data: {} })));
  let done = 0;
  const finished = Promise.withResolvers<void>();
  const connections: Redis[] = [];
  const workers = [0, 1].map(() => {
    const workerConnection = new Redis(redis.url, { maxRetriesPerRequest: null });
    connections.push(workerConnection);
    const w = new BullWorker(name, () => {
      starts.push(Date.now());
      return Promise.resolve();
    }, {
      connection: workerConnection,
      concurrency: CONCURRENCY,
      limiter: { max: MAX, duration: WINDOW },
    });
    w.on("completed", () => ++done === TASKS && finished.resolve());
    return w;
  });
  await finished.promise;
  await Promise.all(workers.map((w) => w.close()));
  await queue.close();
  for (const c of [connection, ...connections]) c.disconnect();
  return starts;
}

/** The most starts within any `ms` milliseconds. */
function mostWithin(sorted: readonly number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

function describe(library: string, starts: number[]): string {
  const sorted = [...starts].sort((a, b) => a - b);
  const first = sorted[0];
  const span = sorted.at(-1)! - first;
  const least = (TASKS / MAX - 1) * WINDOW;
  const slice = WINDOW / 10;
  const counts = new Array(Math.floor(span / slice) + 1).fill(0);
  for (const t of sorted) counts[Math.floor((t - first) / slice)]++;
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  const sd = Math.sqrt(counts.reduce((a, b) => a + (b - mean) ** 2, 0) / counts.length);
  return `| ${library} | ${span} ms (${(100 * least / span).toFixed(0)} %) | ${
    mostWithin(sorted, WINDOW)
  } | ${mostWithin(sorted, WINDOW - 100)} | ${(sd / mean).toFixed(2)} |`;
}

const streaq = await streaqStarts();
const bullmq = await bullmqStarts();
console.log(
  `${TASKS} no-op tasks, 2 workers of concurrency ${CONCURRENCY}, limit ${MAX} per ${WINDOW} ms`,
);
console.log("");
console.log(
  `| library | first to last start (least allowed: ${
    (TASKS / MAX - 1) * WINDOW
  } ms) | most starts in ${WINDOW} ms | in ${WINDOW - 100} ms | spread per ${
    WINDOW / 10
  } ms (CV) |`,
);
console.log("| --- | --- | --- | --- | --- |");
console.log(describe("streaq", streaq));
console.log(describe("BullMQ", bullmq));
