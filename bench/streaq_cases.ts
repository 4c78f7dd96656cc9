/**
 * The benchmark cases for streaq: default worker options except `concurrency`, one no-op task
 * (no arguments, kept result with the default ttl), log level `warn`. The cases of a feature
 * (rate limit, groups) register a no-op function of their own with that feature's option.
 *
 * @module
 */

import { type RegisteredTask, type TaskOptions, Worker } from "../mod.ts";
import { uniqueQueue } from "../tests/_redis.ts";
import type { RedisServer } from "../tests/_redis.ts";
import { drainWithProcesses, latencyWithProcess } from "./_child.ts";
import { type Contender, LATENESS_CONCURRENCY, waitUntil } from "./_contender.ts";

/** Whether the streaq workers of the cases write events (`--events`): off unless asked. */
let withEvents = false;

/** Makes the streaq cases run with the `events` option (`deno task bench --events`). */
export function useEvents(on: boolean): void {
  withEvents = on;
}

/** A connected worker on a fresh queue, with its tasks; closed by `await using`. */
interface Setup extends AsyncDisposable {
  readonly worker: Worker;
  readonly noop: RegisteredTask<[], void>;
  readonly nap: RegisteredTask<[number], void>;
}

/** How a case's worker differs from the defaults. */
interface WorkerOptions {
  readonly concurrency?: number;
  /** The `events` option; the `--events` flag turns it on in every case. */
  readonly events?: boolean;
}

/** A worker on a fresh queue, not yet connected, with no task. */
function newWorker(redis: RedisServer, options: WorkerOptions = {}): Worker {
  return new Worker({
    redisUrl: redis.url,
    queueName: uniqueQueue("streaq"),
    concurrency: options.concurrency ?? 16,
    logLevel: "warn",
    handleSignals: false,
    events: withEvents || (options.events ?? false),
  });
}

async function setup(redis: RedisServer, options: WorkerOptions = {}): Promise<Setup> {
  const worker = newWorker(redis, options);
  const noop = worker.task(async function noop(): Promise<void> {});
  const nap = worker.task(async function nap(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
  await worker.connect();
  return { worker, noop, nap, [Symbol.asyncDispose]: () => worker.close() };
}

/**
 * A connected worker on a fresh queue with one task function registered with `options`: the
 * feature cases register their function alone, since a registered function with a rate limit
 * changes how the whole worker fetches (no read-ahead).
 */
async function setupWith<Args extends unknown[]>(
  redis: RedisServer,
  concurrency: number,
  options: TaskOptions<Args>,
): Promise<{ worker: Worker; task: RegisteredTask<Args, void> } & AsyncDisposable> {
  const worker = newWorker(redis, { concurrency });
  const task = worker.task(async function noop(..._args: Args): Promise<void> {}, options);
  await worker.connect();
  return { worker, task, [Symbol.asyncDispose]: () => worker.close() };
}

/** Runs the worker until `tasks` outcomes are written; the clock stops there. */
async function runUntilDone(worker: Worker, tasks: number, stopClock: () => void): Promise<void> {
  const running = worker.run();
  try {
    await waitUntil(
      () => worker.counters.completed >= tasks,
      running,
      () =>
        worker.counters.failed > 0 ? `tasks failed: ${JSON.stringify(worker.counters)}` : undefined,
    );
    stopClock();
  } finally {
    worker.stop();
    await running;
  }
}

/** streaq's side of the benchmark. */
export const streaq: Contender = {
  name: "streaq",

  async enqueueOneByOne({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    for (let i = 0; i < tasks; i++) await s.noop.enqueue();
    meter.stop();
  },

  async enqueueConcurrently({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await Promise.all(Array.from({ length: tasks }, () => s.noop.enqueue()));
    meter.stop();
  },

  async enqueueBatch({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.worker.enqueueMany(Array.from({ length: tasks }, () => s.noop.enqueue()));
    meter.stop();
  },

  async enqueueBatchDeduplicated({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.worker.enqueueMany(
      Array.from({ length: tasks }, (_, i) => s.noop.enqueue().start({ dedupe: { key: `k${i}` } })),
    );
    meter.stop();
  },

  async enqueueBatchWithIds({ redis, meter }, tasks) {
    await using s = await setup(redis);
    await meter.start();
    await s.worker.enqueueMany(
      Array.from({ length: tasks }, (_, i) => s.noop.enqueue().start({ id: `t${i}` })),
    );
    meter.stop();
  },

  async drain({ redis, meter }, tasks, concurrency, options = {}) {
    await using s = await setup(redis, { concurrency, events: options.events });
    await meter.baseline();
    await s.worker.enqueueMany(Array.from({ length: tasks }, () => s.noop.enqueue()));
    await meter.start();
    await runUntilDone(s.worker, tasks, () => meter.stop());
  },

  async rateLimitedDrain({ redis, meter }, tasks, concurrency, limit) {
    await using s = await setupWith<[]>(redis, concurrency, { limit });
    await s.worker.enqueueMany(Array.from({ length: tasks }, () => s.task.enqueue()));
    await meter.start();
    await runUntilDone(s.worker, tasks, () => meter.stop());
  },

  async groupedDrain({ redis, meter }, tasks, groups, concurrency) {
    await using s = await setupWith<[number]>(redis, concurrency, {
      group: (group) => `g${group}`,
    });
    const perGroup = Math.ceil(tasks / groups);
    await s.worker.enqueueMany(
      Array.from({ length: tasks }, (_, i) => s.task.enqueue(Math.floor(i / perGroup))),
    );
    await meter.start();
    await runUntilDone(s.worker, tasks, () => meter.stop());
  },

  async sleep({ redis, meter }, tasks, concurrency, sleepMs) {
    await using s = await setup(redis, { concurrency });
    await s.worker.enqueueMany(Array.from({ length: tasks }, () => s.nap.enqueue(sleepMs)));
    await meter.start();
    await runUntilDone(s.worker, tasks, () => meter.stop());
  },

  async latency({ redis, meter }, samples, warmup) {
    await using s = await setup(redis);
    return await latencyWithProcess({
      meter,
      child: {
        script: "_worker_streaq.ts",
        url: redis.url,
        queue: s.worker.queueName,
        concurrency: 16,
      },
      samples,
      warmup,
      roundTrip: async () => {
        const result = await (await s.noop.enqueue()).result({ timeout: 10_000 });
        if (!result.success) throw new Error("a no-op task failed");
      },
    });
  },

  async lateness({ redis, meter }, tasks, spreadMs) {
    // Measured where BullMQ's case measures it, in the task as it starts: waiting for each
    // task's result would add a thousand result waits (subscriptions, reads) to what Redis
    // spends, which BullMQ's case does not have.
    const worker = newWorker(redis, { concurrency: LATENESS_CONCURRENCY });
    const lateness: number[] = [];
    const late = worker.task(async function late(due: number): Promise<void> {
      lateness.push(Date.now() - due);
      await Promise.resolve();
    });
    await worker.connect();
    const running = worker.run();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // idle, waiting for tasks
      await meter.start(); // before the due times are set: it takes a few milliseconds
      const base = Date.now() + 500;
      await worker.enqueueMany(Array.from({ length: tasks }, (_, i) => {
        const due = base + Math.floor((i / tasks) * spreadMs);
        return late.enqueue(due).start({ schedule: new Date(due) });
      }));
      await waitUntil(
        () => worker.counters.completed >= tasks,
        running,
        () =>
          worker.counters.failed > 0
            ? `tasks failed: ${JSON.stringify(worker.counters)}`
            : undefined,
      );
      meter.stop();
      return lateness.sort((a, b) => a - b);
    } finally {
      worker.stop();
      await running;
      await worker.close();
    }
  },

  async processes({ redis, meter }, tasks, workers, concurrency) {
    await using s = await setup(redis);
    await drainWithProcesses({
      meter,
      child: {
        script: "_worker_streaq.ts",
        url: redis.url,
        queue: s.worker.queueName,
        concurrency,
      },
      workers,
      tasks,
      enqueue: async () => {
        await s.worker.enqueueMany(Array.from({ length: tasks }, () => s.noop.enqueue()));
      },
    });
  },
};
