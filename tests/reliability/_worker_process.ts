/**
 * A worker process for the reliability tests and the soak: a Worker with the `job` task of
 * `_tasks.ts`, configured by one JSON argument ({@linkcode WorkerProcessConfig}), handling
 * SIGINT/SIGTERM like a production worker module. When `run()` resolves after a signal it prints
 * one line `report <json>` with its memory use and counters, and exits.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-env _worker_process.ts '<config json>'`
 *
 * @module
 */

import { Worker } from "../../mod.ts";
import { registerJob } from "./_tasks.ts";

/** How a worker process is set up. */
export interface WorkerProcessConfig {
  readonly redisUrl: string;
  readonly queueName: string;
  /** The worker id; a replacement process needs a new one (the dead one's health key stays). */
  readonly id: string;
  readonly concurrency?: number;
  readonly prefetch?: number;
  readonly idleTimeout?: number;
  readonly gracePeriod?: number;
  readonly priorities?: readonly string[];
  /** Milliseconds added to the worker's clock (the `clock` option): clock skew. */
  readonly clockOffset?: number;
  readonly logLevel?: "debug" | "info" | "warn" | "error";
}

/** What the process prints when it exits after a signal. */
export interface ExitReport {
  readonly rss: number;
  readonly heapUsed: number;
  readonly counters: Record<string, number>;
}

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0]) as WorkerProcessConfig;
  const offset = config.clockOffset ?? 0;
  const worker = new Worker({
    redisUrl: config.redisUrl,
    queueName: config.queueName,
    id: config.id,
    concurrency: config.concurrency ?? 8,
    prefetch: config.prefetch,
    idleTimeout: config.idleTimeout ?? 1000,
    gracePeriod: config.gracePeriod ?? 0,
    priorities: config.priorities ?? ["low", "normal", "high"],
    clock: offset ? () => Date.now() + offset : undefined,
    logLevel: config.logLevel ?? "warn",
  });
  registerJob(worker);
  await worker.run();
  const { rss, heapUsed } = Deno.memoryUsage();
  const report: ExitReport = { rss, heapUsed, counters: { ...worker.counters } };
  console.log(`report ${JSON.stringify(report)}`);
  await worker.close();
}
