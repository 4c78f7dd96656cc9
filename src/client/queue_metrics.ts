/**
 * A queue's metrics in one read: the task counts by status and priority, the live workers
 * with the outcome counters each has kept since it started, and the outcomes of the last hour
 * from the per-minute counts. `worker.metrics()` returns it; the dashboard's Prometheus
 * endpoint renders it. It reads what exists already (the counting script, the health keys,
 * the per-minute hashes): a task pays nothing for it.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { readMetrics } from "../run/metrics.ts";
import { countTasks, type PriorityCounts } from "./task_counts.ts";
import { listWorkers } from "./worker_health.ts";

/** Outcome counts: how many tasks completed, failed, were aborted or retried. */
export interface OutcomeCounts {
  /** Tasks that succeeded. */
  readonly completed: number;
  /** Tasks that failed (errors, timeouts, refusals), aborted ones aside. */
  readonly failed: number;
  /** Tasks that failed because they were aborted. */
  readonly aborted: number;
  /** Tries that ended in a retry. */
  readonly retried: number;
}

/** Counts of a queue's tasks by status, as they are when read. */
export interface TaskCountsMetrics {
  /** In a stream and not started (prefetched ones included). */
  readonly queued: number;
  /** Started and not finished. */
  readonly running: number;
  /** Waiting for their time (delayed, scheduled or backing off before a retry). */
  readonly scheduled: number;
  /** Waiting for their dependencies. */
  readonly waiting: number;
  /** Finished tasks whose result is still kept. */
  readonly done: number;
  /** False when `done` is a lower bound (the count stopped early in a very large keyspace). */
  readonly doneExact: boolean;
  /** Repeating tasks (cron jobs and crontab schedules). */
  readonly repeating: number;
  /** Tasks whose abort was requested and not yet carried out. */
  readonly aborting: number;
}

/** One live worker, as its last heartbeat described it. */
export interface WorkerMetrics {
  /** The worker's id. */
  readonly id: string;
  /** Its host name, or null when it may not read it. */
  readonly host: string | null;
  /** How many tasks it runs at once at most. */
  readonly concurrency: number;
  /** Tasks it was running. */
  readonly running: number;
  /** When it started (ms since the epoch). */
  readonly startedAt: number;
  /** When it last reported (ms since the epoch). */
  readonly heartbeatAt: number;
  /**
   * Its outcome counters since it started: they only grow while it lives. `relinquished`
   * counts running tasks handed back at shutdown.
   */
  readonly outcomes: OutcomeCounts & { readonly relinquished: number };
}

/** A queue's metrics, as {@linkcode readQueueMetrics} reads them. */
export interface QueueMetrics {
  /** The queue's name. */
  readonly queue: string;
  /** When they were read (ms since the epoch, the queue's clock). */
  readonly time: number;
  /** Tasks by status, exact as of the read. */
  readonly tasks: TaskCountsMetrics;
  /** Queued, running and scheduled tasks by priority, lowest priority first. */
  readonly byPriority: Readonly<Record<string, PriorityCounts>>;
  /**
   * Outcomes of the last 60 minutes, the current minute included, over every worker, stopped
   * ones too. Workers write them with their heartbeat, so they trail by up to one.
   */
  readonly lastHour: OutcomeCounts;
  /** The live workers, sorted by id. */
  readonly workers: readonly WorkerMetrics[];
}

const HOUR_MINUTES = 60;

/**
 * Reads a queue's metrics: the counts, the health records and the last hour's per-minute
 * outcomes, in parallel.
 *
 * @param client The queue's context.
 * @returns The metrics; see {@linkcode QueueMetrics}.
 */
export async function readQueueMetrics(client: QueueContext): Promise<QueueMetrics> {
  const time = client.now();
  const [counts, health, minutes] = await Promise.all([
    countTasks(client),
    listWorkers(client),
    readMetrics(client, HOUR_MINUTES, time),
  ]);
  const lastHour = { completed: 0, failed: 0, aborted: 0, retried: 0 };
  for (const minute of minutes) {
    lastHour.completed += minute.completed || 0;
    lastHour.failed += minute.failed || 0;
    lastHour.aborted += minute.aborted || 0;
    lastHour.retried += minute.retried || 0;
  }
  const { byPriority, ...tasks } = counts;
  const workers = health.map((record): WorkerMetrics => {
    const counter = (name: string) => Number(record.counters?.[name]) || 0;
    return {
      id: record.id,
      host: record.host ?? null,
      concurrency: record.concurrency,
      running: record.running,
      startedAt: record.startedAt,
      heartbeatAt: record.heartbeatAt,
      outcomes: {
        completed: counter("completed"),
        failed: counter("failed"),
        aborted: counter("aborted"),
        retried: counter("retried"),
        relinquished: counter("relinquished"),
      },
    };
  });
  return { queue: client.keys.queueName, time, tasks, byPriority, lastHour, workers };
}
