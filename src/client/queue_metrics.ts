/**
 * A queue's metrics in one read: the task counts by status and priority, the live workers
 * with the outcome counters each has kept since it started, per-function outcomes and timing
 * percentiles from the workers' health records, and the outcomes of the last hour from the
 * per-minute counts. `worker.metrics()` returns it; the dashboard's Prometheus
 * endpoint renders it, and the dashboard's overview and workers page and `streaq status` show
 * the same read ({@linkcode readQueueSnapshot}), so their numbers agree. It reads what exists
 * already (the counting script, the health keys, the per-minute hashes): a task pays nothing
 * for it. Workers write their health record and per-minute counts within a second of a change
 * (see `src/run/live_flush.ts`), so the outcomes trail by about a second.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { type MinuteCounts, readMetrics } from "../run/metrics.ts";
import type { HealthRecord } from "../run/heartbeat.ts";
import { FUNCTION_OUTCOMES, type FunctionOutcome } from "../run/function_stats.ts";
import { countTasks, type PriorityCounts, type TaskCountsMetrics } from "./task_counts.ts";
import { listWorkers, type ListWorkersOptions } from "./worker_health.ts";

export type { TaskCountsMetrics } from "./task_counts.ts";

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

/** One live worker, as its last heartbeat described it. */
export interface WorkerMetrics {
  /** The worker's id. */
  readonly id: string;
  /** Its host name, or null when it may not read it. */
  readonly host: string | null;
  /** Its process id. */
  readonly pid: number;
  /** How many tasks it runs at once at most. */
  readonly concurrency: number;
  /** Tasks it was running. */
  readonly running: number;
  /** When it started (ms since the epoch). */
  readonly startedAt: number;
  /**
   * When it last wrote its record (ms since the epoch): within a second of a change while it
   * works, and at each heartbeat (every third of `idleTimeout`).
   */
  readonly heartbeatAt: number;
  /**
   * Its outcome counters since it started: they only grow while it lives. `relinquished`
   * counts running tasks handed back at shutdown.
   */
  readonly outcomes: OutcomeCounts & { readonly relinquished: number };
  /** The same counters by task function. */
  readonly functions: Readonly<Record<string, OutcomeCounts & { readonly relinquished: number }>>;
}

/**
 * Percentiles of recent timings, in ms, by nearest rank over the latest tries of each live
 * worker (up to 64 per worker and function).
 */
export interface TimingPercentiles {
  /** How many timings they were taken over. */
  readonly samples: number;
  /** The median. */
  readonly p50: number;
  /** The 90th percentile. */
  readonly p90: number;
  /** The 99th percentile. */
  readonly p99: number;
}

/** One task function's metrics, over the live workers, each since it started. */
export interface FunctionMetrics {
  /** Outcome counts; `relinquished` counts running tasks handed back at shutdown. */
  readonly outcomes: OutcomeCounts & { readonly relinquished: number };
  /** How many tries ran the function (refusals, such as an expired task, aside). */
  readonly runCount: number;
  /** Their run times added up, in ms. */
  readonly runMsSum: number;
  /** How many tries started or were refused: every outcome counted. */
  readonly waitCount: number;
  /** Their waits added up, in ms. */
  readonly waitMsSum: number;
  /** Run times of recent tries (ms), or null when none ran. */
  readonly runTime: TimingPercentiles | null;
  /**
   * Waits of recent tries, from when each was due (enqueued, or its scheduled time) to when
   * it started (ms), or null when none started.
   */
  readonly wait: TimingPercentiles | null;
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
   * ones too. Workers write them within a second of a change, so they trail by about one.
   */
  readonly lastHour: OutcomeCounts;
  /** The live workers, sorted by id. */
  readonly workers: readonly WorkerMetrics[];
  /**
   * Per task function, over the live workers (a worker's part leaves with it): outcomes since
   * each started, and percentiles of recent timings. Written within a second of a change, so
   * it trails by about one.
   */
  readonly functions: Readonly<Record<string, FunctionMetrics>>;
}

const HOUR_MINUTES = 60;

/** What the overview, the workers page and `streaq status` show: one read of the queue. */
export interface QueueSnapshot {
  /** The metrics, as `worker.metrics()` returns them. */
  readonly metrics: QueueMetrics;
  /** The minutes that `metrics.lastHour` adds up, oldest first, the current one last. */
  readonly minutes: readonly MinuteCounts[];
}

/**
 * Reads a queue's metrics: the counts, the health records and the last hour's per-minute
 * outcomes, in parallel.
 *
 * @param client The queue's context.
 * @returns The metrics; see {@linkcode QueueMetrics}.
 */
export async function readQueueMetrics(client: QueueContext): Promise<QueueMetrics> {
  return (await readQueueSnapshot(client)).metrics;
}

/**
 * Reads a queue's metrics and the minutes of the last hour they add up, in parallel.
 *
 * @param client The queue's context.
 * @param options How far to scan for the workers' health keys.
 * @returns The metrics, and the minutes.
 */
export async function readQueueSnapshot(
  client: QueueContext,
  options: ListWorkersOptions = {},
): Promise<QueueSnapshot> {
  const time = client.now();
  const [counts, health, minutes] = await Promise.all([
    countTasks(client),
    listWorkers(client, options),
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
  const workers = health.map(workerMetrics);
  const functions = functionMetrics(health);
  const queue = client.keys.queueName;
  return {
    metrics: { queue, time, tasks, byPriority, lastHour, workers, functions },
    minutes,
  };
}

/**
 * Reads the queue's live workers, as {@linkcode readQueueSnapshot} describes them.
 *
 * @param client The queue's context.
 * @param options How far to scan for the workers' health keys.
 * @returns The workers, sorted by id.
 */
export async function readWorkerMetrics(
  client: QueueContext,
  options: ListWorkersOptions = {},
): Promise<WorkerMetrics[]> {
  return (await listWorkers(client, options)).map(workerMetrics);
}

type Outcomes = Record<FunctionOutcome, number>;

function zeroOutcomes(): Outcomes {
  return { completed: 0, failed: 0, aborted: 0, retried: 0, relinquished: 0 };
}

/** Adds the counts of `from` (a health record's, so possibly partial) to `to`. */
function addOutcomes(to: Outcomes, from: Readonly<Record<string, number>> | undefined): Outcomes {
  for (const outcome of FUNCTION_OUTCOMES) to[outcome] += Number(from?.[outcome]) || 0;
  return to;
}

function workerMetrics(record: HealthRecord): WorkerMetrics {
  const functions: Record<string, Outcomes> = {};
  for (const [name, f] of Object.entries(record.functions ?? {})) {
    functions[name] = addOutcomes(zeroOutcomes(), f.counts);
  }
  return {
    id: record.id,
    host: record.host ?? null,
    pid: record.pid,
    concurrency: record.concurrency,
    running: record.running,
    startedAt: record.startedAt,
    heartbeatAt: record.heartbeatAt,
    outcomes: addOutcomes(zeroOutcomes(), record.counters),
    functions,
  };
}

interface Merged {
  readonly outcomes: Outcomes;
  runCount: number;
  runMsSum: number;
  waitMsSum: number;
  readonly runMs: number[];
  readonly waitMs: number[];
}

/** Adds up the functions' counts of the workers, and takes percentiles of their timings. */
function functionMetrics(health: readonly HealthRecord[]): Record<string, FunctionMetrics> {
  const merged = new Map<string, Merged>();
  for (const worker of health) {
    for (const [name, r] of Object.entries(worker.functions ?? {})) {
      let m = merged.get(name);
      if (!m) {
        m = {
          outcomes: zeroOutcomes(),
          runCount: 0,
          runMsSum: 0,
          waitMsSum: 0,
          runMs: [],
          waitMs: [],
        };
        merged.set(name, m);
      }
      addOutcomes(m.outcomes, r.counts);
      m.runCount += Number(r.runCount) || 0;
      m.runMsSum += Number(r.runMsSum) || 0;
      m.waitMsSum += Number(r.waitMsSum) || 0;
      m.runMs.push(...(r.runMs ?? []));
      m.waitMs.push(...(r.waitMs ?? []));
    }
  }
  const functions: Record<string, FunctionMetrics> = {};
  for (const name of [...merged.keys()].sort()) {
    const m = merged.get(name)!;
    functions[name] = {
      outcomes: m.outcomes,
      runCount: m.runCount,
      runMsSum: m.runMsSum,
      waitCount: FUNCTION_OUTCOMES.reduce((sum, o) => sum + m.outcomes[o], 0),
      waitMsSum: m.waitMsSum,
      runTime: percentiles(m.runMs),
      wait: percentiles(m.waitMs),
    };
  }
  return functions;
}

/** Nearest-rank percentiles of `values`, or null when there are none. */
function percentiles(values: number[]): TimingPercentiles | null {
  if (values.length === 0) return null;
  const sorted = values.toSorted((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  return { samples: sorted.length, p50: rank(50), p90: rank(90), p99: rank(99) };
}
