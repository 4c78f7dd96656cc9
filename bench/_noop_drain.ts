/**
 * A worker draining no-op tasks in a benchmark: made ready with a warm-up drain, then run until
 * it has completed a number of tasks. Any checkout's `Worker` will do.
 *
 * @module
 */

/** The members of a streaq worker (of any checkout) that these helpers use. */
export interface DrainingWorker {
  readonly counters: { readonly completed: number };
  task(fn: () => Promise<void>): { enqueue(): unknown };
  connect(): Promise<void>;
  enqueueMany(tasks: unknown[]): Promise<unknown>;
  run(): Promise<void>;
  stop(): void;
  close(): Promise<void>;
}

/**
 * A connected worker of concurrency `concurrency` on `queueName`, which has drained `warmup` no-op
 * tasks (code compiled, scripts loaded) and holds `count` more, queued: run it until it has
 * completed `warmup + count` ({@linkcode runUntil}).
 */
export async function readyToDrain(
  // deno-lint-ignore no-explicit-any
  Worker: new (options: any) => DrainingWorker,
  options: { redisUrl: string; queueName: string; concurrency: number },
  warmup: number,
  count: number,
): Promise<DrainingWorker> {
  const worker = new Worker({ ...options, logLevel: "warn", handleSignals: false });
  const noop = worker.task(async function noop(): Promise<void> {});
  await worker.connect();
  await worker.enqueueMany(Array.from({ length: warmup }, () => noop.enqueue()));
  await runUntil(worker, warmup);
  await worker.enqueueMany(Array.from({ length: count }, () => noop.enqueue()));
  return worker;
}

/**
 * Runs `worker` until it has completed `count` tasks in all (its counters count from its
 * creation), then stops it and waits for its run to end.
 */
export async function runUntil(worker: DrainingWorker, count: number): Promise<void> {
  const running = worker.run();
  while (worker.counters.completed < count) await new Promise((r) => setTimeout(r, 1));
  worker.stop();
  await running;
}
