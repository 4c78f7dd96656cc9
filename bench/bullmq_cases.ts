/**
 * The benchmark cases for BullMQ: default options except `concurrency` (so completed jobs are
 * kept: `removeOnComplete` is false by default), one job name per task kind with `{}` as data,
 * connections given as ioredis clients (BullMQ cannot load ioredis itself under Deno's ESM).
 *
 * @module
 */

import { type Job, Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { type RedisServer, uniqueQueue } from "../tests/_redis.ts";
import { drainWithProcesses, latencyWithProcess } from "./_child.ts";
import { type Contender, LATENESS_CONCURRENCY, type RateLimit, waitUntil } from "./_contender.ts";

/** A connected queue on a fresh name and the connections to close; closed by `await using`. */
interface Setup extends AsyncDisposable {
  readonly name: string;
  readonly queue: Queue;
  /** A new ioredis client, closed with the setup. */
  connection(): Redis;
  /** Closes this BullMQ object with the setup, before the connections. */
  own<T extends { close(): Promise<void> }>(closable: T): T;
}

async function setup(redis: RedisServer): Promise<Setup> {
  const connections: Redis[] = [];
  const closables: { close(): Promise<void> }[] = [];
  const connection = () => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    connections.push(client);
    return client;
  };
  const name = uniqueQueue("bullmq");
  const queue = new Queue(name, { connection: connection() });
  closables.push(queue);
  await queue.waitUntilReady();
  return {
    name,
    queue,
    connection,
    own: (closable) => {
      closables.push(closable);
      return closable;
    },
    async [Symbol.asyncDispose]() {
      for (const closable of closables.reverse()) await closable.close();
      await Promise.all(connections.map((client) => client.quit().catch(() => {})));
    },
  };
}

async function processor(job: Job): Promise<void> {
  if (job.name === "nap") await new Promise((resolve) => setTimeout(resolve, job.data.ms));
}

/** Runs an in-process worker until `tasks` jobs are completed; the clock stops there. */
async function runUntilDone(
  s: Setup,
  concurrency: number,
  tasks: number,
  stopClock: () => void,
  startClock: () => Promise<void>,
  limiter?: RateLimit,
): Promise<void> {
  const worker = s.own(
    new Worker(s.name, processor, {
      connection: s.connection(),
      concurrency,
      autorun: false,
      ...(limiter ? { limiter } : {}),
    }),
  );
  let completed = 0;
  let failed = 0;
  worker.on("completed", () => completed++);
  worker.on("failed", () => failed++);
  await worker.waitUntilReady();
  await startClock();
  const running = worker.run();
  try {
    await waitUntil(
      () => completed >= tasks,
      running,
      () => failed > 0 ? `${failed} jobs failed` : undefined,
    );
    stopClock();
  } finally {
    await worker.close();
    await running;
  }
}

const noops = (tasks: number) => Array.from({ length: tasks }, () => ({ name: "noop", data: {} }));

/** BullMQ's side of the benchmark. */
export const bullmq: Contender = {
  name: "BullMQ",

  async enqueueOneByOne({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    for (let i = 0; i < tasks; i++) await s.queue.add("noop", {});
    meter.stop();
  },

  async enqueueConcurrently({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await Promise.all(Array.from({ length: tasks }, () => s.queue.add("noop", {})));
    meter.stop();
  },

  async enqueueBatch({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.queue.addBulk(noops(tasks));
    meter.stop();
  },

  async enqueueBatchDeduplicated({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.queue.addBulk(
      noops(tasks).map((job, i) => ({ ...job, opts: { deduplication: { id: `k${i}` } } })),
    );
    meter.stop();
  },

  async enqueueBatchWithIds({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.queue.addBulk(noops(tasks).map((job, i) => ({ ...job, opts: { jobId: `t${i}` } })));
    meter.stop();
  },

  // BullMQ writes its events stream in every case: `options.events` changes nothing.
  async drain({ redis, meter }, tasks, concurrency) {
    await using s = await setup(redis);
    await meter.baseline();
    await s.queue.addBulk(noops(tasks));
    await runUntilDone(s, concurrency, tasks, () => meter.stop(), () => meter.start());
  },

  async rateLimitedDrain({ redis, meter }, tasks, concurrency, limit) {
    await using s = await setup(redis);
    await s.queue.addBulk(noops(tasks));
    await runUntilDone(s, concurrency, tasks, () => meter.stop(), () => meter.start(), limit);
  },

  // No groupedDrain: groups are a BullMQ Pro feature, not in open-source BullMQ.

  async sleep({ redis, meter }, tasks, concurrency, sleepMs) {
    await using s = await setup(redis);
    await s.queue.addBulk(
      Array.from({ length: tasks }, () => ({ name: "nap", data: { ms: sleepMs } })),
    );
    await runUntilDone(s, concurrency, tasks, () => meter.stop(), () => meter.start());
  },

  async latency({ redis, meter }, samples, warmup) {
    await using s = await setup(redis);
    const events = s.own(new QueueEvents(s.name, { connection: s.connection() }));
    await events.waitUntilReady();
    return await latencyWithProcess({
      meter,
      child: { script: "_worker_bullmq.ts", url: redis.url, queue: s.name, concurrency: 16 },
      samples,
      warmup,
      roundTrip: async () => {
        const job = await s.queue.add("noop", {});
        await job.waitUntilFinished(events, 10_000);
      },
    });
  },

  async lateness({ redis, meter }, tasks, spreadMs) {
    await using s = await setup(redis);
    const lateness: number[] = [];
    const worker = s.own(
      new Worker(s.name, (job: Job) => {
        // A delayed job is due `delay` after the time it was added.
        lateness.push(Date.now() - (job.timestamp + (job.opts.delay ?? 0)));
        return Promise.resolve();
      }, { connection: s.connection(), concurrency: LATENESS_CONCURRENCY }),
    );
    await worker.waitUntilReady();
    await new Promise((resolve) => setTimeout(resolve, 200)); // idle, waiting for jobs
    await meter.start(); // before the due times are set: it takes a few milliseconds
    const base = Date.now() + 500;
    const now = Date.now();
    await s.queue.addBulk(Array.from({ length: tasks }, (_, i) => ({
      name: "noop",
      data: {},
      opts: { delay: base + Math.floor((i / tasks) * spreadMs) - now, timestamp: now },
    })));
    const deadline = Date.now() + 30_000;
    await waitUntil(
      () => lateness.length >= tasks,
      new Promise(() => {}), // the worker runs until closed
      () =>
        Date.now() > deadline
          ? `${lateness.length} of ${tasks} delayed jobs ran in 30 s`
          : undefined,
    );
    meter.stop();
    return lateness.sort((a, b) => a - b);
  },

  async processes({ redis, meter }, tasks, workers, concurrency) {
    await using s = await setup(redis);
    await drainWithProcesses({
      meter,
      child: { script: "_worker_bullmq.ts", url: redis.url, queue: s.name, concurrency },
      workers,
      tasks,
      enqueue: async () => {
        await s.queue.addBulk(noops(tasks));
      },
    });
  },
};
