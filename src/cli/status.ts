/**
 * `status <module>`: a live view of a queue. Tasks per status and priority, the last hour's
 * outcomes, the throughput, the live workers (from their health keys) and the tasks running
 * now, refreshed every second; `--once` prints one view and exits. In a terminal the view is
 * drawn on the alternate screen, in colour (unless `NO_COLOR` is set), and the terminal is
 * restored when it ends; elsewhere it is plain text, one view per refresh.
 *
 * The counts, the last hour and the workers come from the read the dashboard's overview and
 * `worker.metrics()` make (`QueueReads.snapshot`), so the numbers agree with the dashboard's.
 * Workers write their records and per-minute counts within a second of a change, so the view
 * trails by about a second. Tasks finished per second come from the same per-minute counts;
 * tasks added and started per second from the streams (Redis 7 and later). Everything is read
 * with a bounded number of commands, whatever the size of the queue.
 *
 * @module
 */

import {
  type MinuteCounts,
  type PriorityStatus,
  type QueueMetrics,
  QueueReads,
} from "../client/queue_reads.ts";
import type { TaskInfo } from "../result.ts";
import { queueContextOf, type Worker } from "../worker.ts";
import { ANSI, type Paint, PLAIN, Screen } from "./screen.ts";
import { clean, count, duration, table } from "./text_table.ts";
import {
  FinishedRates,
  type FinishedThroughput,
  type Rates,
  StreamRates,
  type StreamThroughput,
} from "./status_rates.ts";
import { formatLimits, formatPauses } from "./pause.ts";
import type { FunctionLimit, PauseState } from "../client/pause.ts";

/** What the view shows, read in one go. */
export interface QueueStatus {
  readonly queue: string;
  readonly at: number;
  /** Counts, last hour and workers: what the dashboard's overview shows. */
  readonly metrics: QueueMetrics;
  /** The minutes `metrics.lastHour` adds up, for the finished rate. */
  readonly minutes: readonly MinuteCounts[];
  /** The streams, from the highest priority to the lowest, for the added and started rates. */
  readonly streams: readonly PriorityStatus[];
  /** The first running tasks, at most `RUNNING_SHOWN`. */
  readonly running: readonly TaskInfo[];
  /** The pauses in force (`streaq pause`). */
  readonly pauses: PauseState;
  /** The concurrency limits in force (the `limit` task option). */
  readonly limits: readonly FunctionLimit[];
}

const RUNNING_SHOWN = 10;
/** Deliveries looked at per priority to find running tasks (prefetched ones are skipped). */
const DELIVERIES_LOOKED_AT = 50;
const REFRESH = 1_000;

/** Reads the status of the worker's queue. */
// deno-lint-ignore no-explicit-any
export async function readStatus(worker: Worker<any>): Promise<QueueStatus> {
  const reads = new QueueReads(queueContextOf(worker));
  const [{ metrics, minutes }, { priorities }, pauses, limits] = await Promise.all([
    // Every live worker, however large the keyspace: status has no page to keep fast.
    reads.snapshot({ scanCount: 500, maxScanCalls: Infinity }),
    reads.streamSizes(),
    reads.pauses(),
    reads.limits(),
  ]);
  const running = await reads.runningTasks(priorities, {
    limit: RUNNING_SHOWN,
    deliveriesPerPriority: DELIVERIES_LOOKED_AT,
  });
  return {
    queue: worker.queueName,
    at: metrics.time,
    metrics,
    minutes,
    streams: priorities,
    running,
    pauses,
    limits,
  };
}

/** The throughput shown: finished from the per-minute counts, added and started from the streams. */
export interface Throughput {
  readonly finished: FinishedThroughput;
  /** Undefined when the server does not count stream entries (before Redis 7). */
  readonly streams?: StreamThroughput;
}

/** The view as text lines, coloured with `paint`. */
export function formatStatus(
  status: QueueStatus,
  throughput: Throughput,
  paint: Paint = PLAIN,
): string {
  const { bold, dim } = paint;
  const { tasks, byPriority, lastHour, workers } = status.metrics;
  const priorities = Object.keys(byPriority).reverse();
  const finished = lastHour.completed + lastHour.failed + lastHour.aborted;
  const lines = [
    `${bold(`queue ${clean(status.queue)}`)} at ${dim(new Date(status.at).toISOString())}`,
    "",
    table(
      ["priority", "queued", "running", "scheduled"],
      priorities.map((p) => [
        clean(p),
        count(byPriority[p].queued, paint.yellow),
        count(byPriority[p].running, paint.cyan),
        byPriority[p].scheduled === null ? "-" : count(byPriority[p].scheduled!, paint.yellow),
      ]),
      paint,
    ),
    `tasks: ${count(tasks.queued, paint.yellow)} queued, ${
      count(tasks.running, paint.cyan)
    } running, ${count(tasks.scheduled, paint.yellow)} scheduled, ${tasks.waiting} waiting, ${
      count(tasks.done, paint.green)
    }${tasks.doneExact ? "" : "+"} done (results kept)`,
    `last hour: ${finished} finished: ${count(lastHour.completed, paint.green)} succeeded, ${
      count(lastHour.failed, paint.red)
    } failed, ${count(lastHour.aborted, paint.red)} aborted; ${
      count(lastHour.retried, paint.yellow)
    } retried`,
    // Flow control (src/cli/pause.ts): two lines.
    formatPauses(status.pauses, status.at, paint),
    formatLimits(status.limits),
    "",
    formatThroughput(throughput, paint),
    "",
    `${bold("workers")}: ${workers.length} live`,
  ];
  if (workers.length > 0) {
    const sorted = workers.toSorted((a, b) =>
      a.startedAt - b.startedAt || a.id.localeCompare(b.id)
    );
    lines.push(table(
      ["id", "host", "pid", "running", "completed", "failed", "retried", "up", "last report"],
      sorted.map((w) => [
        clean(w.id),
        clean(w.host ?? "-"),
        String(w.pid),
        `${w.running}/${w.concurrency}`,
        count(w.outcomes.completed, paint.green),
        count(w.outcomes.failed, paint.red),
        count(w.outcomes.retried, paint.yellow),
        duration(status.at - w.startedAt),
        `${duration(status.at - w.heartbeatAt)} ago`,
      ]),
      paint,
    ));
  }
  lines.push("", `${bold("running tasks")}: ${runningCount(status.running.length)}`);
  if (status.running.length > 0) {
    lines.push(table(
      ["id", "function", "try", "enqueued"],
      status.running.map((t) => [
        clean(t.taskId),
        clean(t.fnName),
        String(t.tries),
        `${duration(status.at - t.createdTime)} ago`,
      ]),
      paint,
    ));
  }
  return lines.join("\n");
}

function formatThroughput(throughput: Throughput, paint: Paint): string {
  const label = paint.bold("throughput");
  const { finished, streams } = throughput;
  const each = (r: Rates | undefined, done: number | undefined) =>
    `${rate(r?.added)} added/s, ${rate(r?.started)} started/s, ${
      paint.green(rate(done))
    } finished/s`;
  const windowMs = finished.windowMs;
  const span = windowMs === undefined ? "" : ` over ${Math.round(windowMs / 1000)} s`;
  return `${label}: ${each(streams?.last, finished.last)} ${paint.dim("(last second)")}
            ${each(streams?.window, finished.window)} ${paint.dim(`(average${span})`)}`;
}

/** Options of {@linkcode showStatus}. */
export interface ShowStatusOptions {
  /** Print one view and return. */
  readonly once: boolean;
  /** Stops the live view. */
  readonly signal: AbortSignal;
}

/**
 * Prints the view once, or every second until the signal aborts: on the alternate screen,
 * redrawn in place and coloured (unless `NO_COLOR` is set) when stdout is a terminal, else as
 * plain text, one view per refresh.
 */
// deno-lint-ignore no-explicit-any
export async function showStatus(worker: Worker<any>, options: ShowStatusOptions): Promise<void> {
  const streams = new StreamRates();
  const finished = new FinishedRates();
  const throughput = (status: QueueStatus): Throughput => ({
    finished: finished.update(status.at, status.minutes),
    streams: streams.update(status.at, status.streams),
  });
  if (options.once || !Deno.stdout.isTerminal()) {
    while (!options.signal.aborted) {
      const status = await untilAborted(readStatus(worker), options.signal);
      if (!status) return;
      console.log(`${formatStatus(status, throughput(status))}\n`);
      if (options.once) return;
      await pause(REFRESH, options.signal);
    }
    return;
  }
  const paint = Deno.noColor ? PLAIN : ANSI;
  using screen = new Screen();
  while (!options.signal.aborted) {
    const status = await untilAborted(readStatus(worker), options.signal);
    if (!status) return;
    const text = formatStatus(status, throughput(status), paint);
    screen.draw([...text.split("\n"), "", paint.dim("(Ctrl-C to quit)")]);
    await pause(REFRESH, options.signal);
  }
}

/** The value of `promise`, or undefined as soon as the signal aborts (Ctrl-C is not kept waiting). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const abort = () => resolve(undefined);
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function runningCount(shown: number): string {
  if (shown === 0) return "none";
  return shown < RUNNING_SHOWN ? String(shown) : `the first ${shown}`;
}

function rate(value: number | undefined): string {
  return value === undefined ? "-" : value.toFixed(1);
}
