/**
 * `status <module>`: a live view of a queue. Queue sizes per priority, delayed tasks, the
 * throughput, the live workers (from their health keys) and the tasks running now, refreshed
 * every second; `--once` prints one view and exits. In a terminal the view is drawn on the
 * alternate screen, in colour (unless `NO_COLOR` is set), and the terminal is restored when it
 * ends; elsewhere it is plain text, one view per refresh.
 *
 * The throughput is measured at each refresh from the streams themselves, not from the
 * workers' health records (refreshed only at each heartbeat, every third of `idleTimeout`):
 * a stream's `entries-added` counter (Redis 7 and later) counts tasks added, and since
 * finished tasks are deleted from it, added minus the change of its length counts finished
 * ones. Everything is read with a bounded number of commands, whatever the size of the queue.
 *
 * @module
 */

import { type HealthRecord, type PriorityStatus, QueueReads } from "../client/queue_reads.ts";
import type { TaskInfo } from "../result.ts";
import { queueContextOf, type Worker } from "../worker.ts";
import { escapeControl } from "../logger.ts";
import { ANSI, type Paint, PLAIN, Screen } from "./screen.ts";
import { formatLimits, formatPauses } from "./pause.ts";
import type { FunctionLimit, PauseState } from "../client/pause.ts";
import { type Rates, StreamRates, type StreamThroughput, ThroughputMeter } from "./status_rates.ts";

/** What the view shows, read in one go. */
export interface QueueStatus {
  readonly queue: string;
  readonly at: number;
  /** From the highest priority to the lowest. */
  readonly priorities: readonly PriorityStatus[];
  /** Delayed, scheduled and backing-off tasks. */
  readonly scheduled: number;
  readonly workers: readonly HealthRecord[];
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
  const { priorities, scheduled } = await reads.streamSizes();
  const [workers, running, pauses, limits] = await Promise.all([
    // Every live worker, however large the keyspace: status has no page to keep fast.
    reads.workers({ scanCount: 500, maxScanCalls: Infinity }),
    reads.runningTasks(priorities, {
      limit: RUNNING_SHOWN,
      deliveriesPerPriority: DELIVERIES_LOOKED_AT,
    }),
    reads.pauses(),
    reads.limits(),
  ]);
  return {
    queue: worker.queueName,
    at: Date.now(),
    priorities,
    scheduled,
    workers: workers.sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id)),
    running,
    pauses,
    limits,
  };
}

/** The throughput shown: from the streams, or from the heartbeats where they cannot say. */
export type Throughput =
  | { readonly source: "streams"; readonly rates: StreamThroughput }
  | { readonly source: "heartbeats"; readonly recent?: number; readonly average?: number };

/** The view as text lines, coloured with `paint`. */
export function formatStatus(
  status: QueueStatus,
  throughput: Throughput,
  paint: Paint = PLAIN,
): string {
  const { bold, dim } = paint;
  const lines = [
    `${bold(`queue ${clean(status.queue)}`)} at ${dim(new Date(status.at).toISOString())}`,
    "",
    table(
      ["priority", "queued", "in workers"],
      status.priorities.map((p) => [
        clean(p.name),
        count(p.queued, paint.yellow),
        count(p.delivered, paint.cyan),
      ]),
      paint,
    ),
    `scheduled (delayed, scheduled or backing off): ${count(status.scheduled, paint.yellow)}`,
    // Flow control (src/cli/pause.ts): two lines.
    formatPauses(status.pauses, status.at, paint),
    formatLimits(status.limits),
    "",
    formatThroughput(throughput, paint),
    "",
    `${bold("workers")}: ${status.workers.length} live`,
  ];
  if (status.workers.length > 0) {
    lines.push(table(
      ["id", "host", "pid", "running", "completed", "failed", "retried", "up", "last beat"],
      status.workers.map((w) => [
        clean(w.id),
        clean(w.host ?? "-"),
        String(w.pid),
        `${w.running}/${w.concurrency}`,
        count(w.counters.completed ?? 0, paint.green),
        count(w.counters.failed ?? 0, paint.red),
        count(w.counters.retried ?? 0, paint.yellow),
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
  if (throughput.source === "heartbeats") {
    return `${label}: ${rate(throughput.recent)} tasks/s between heartbeats, ${
      rate(throughput.average)
    } tasks/s on average (this Redis does not count stream entries: Redis 7 does)`;
  }
  const { last, window, windowMs } = throughput.rates;
  const each = (r: Rates | undefined) =>
    `${rate(r?.added)} added/s, ${rate(r?.started)} started/s, ${
      paint.green(rate(r?.finished))
    } finished/s`;
  const span = windowMs === undefined ? "" : ` over ${Math.round(windowMs / 1000)} s`;
  return `${label}: ${each(last)} ${paint.dim("(last second)")}\n            ${each(window)} ${
    paint.dim(`(average${span})`)
  }`;
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
  const heartbeats = new ThroughputMeter();
  const throughput = (status: QueueStatus): Throughput => {
    const rates = streams.update(status.at, status.priorities);
    return rates
      ? { source: "streams", rates }
      : { source: "heartbeats", ...heartbeats.update(status.workers) };
  };
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

/** A value from Redis made safe for the terminal: control characters made visible. */
function clean(text: string): string {
  return escapeControl(String(text));
}

/** A number, coloured when it is not zero. */
function count(n: number, colour: (text: string) => string): string {
  return n === 0 ? "0" : colour(String(n));
}

function table(header: string[], rows: string[][], paint: Paint): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i]))));
  const pad = (c: string, i: number) => {
    const room = " ".repeat(widths[i] - width(c));
    return i === 0 ? c + room : room + c;
  };
  const line = (cells: string[]) => cells.map(pad).join("  ").trimEnd();
  return [paint.dim(line(header)), ...rows.map(line)].join("\n");
}

/** The visible width of a cell: colour codes take no room. */
function width(text: string): number {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").length;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

function runningCount(shown: number): string {
  if (shown === 0) return "none";
  return shown < RUNNING_SHOWN ? String(shown) : `the first ${shown}`;
}

function rate(value: number | undefined): string {
  return value === undefined ? "-" : value.toFixed(1);
}
