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

import type { HealthRecord } from "../run/heartbeat.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import type { TaskInfo } from "../result.ts";
import { queueContextOf, type Worker } from "../worker.ts";
import { scanQueue } from "../client/scan.ts";
import { escapeControl } from "../logger.ts";
import { ANSI, type Paint, PLAIN, Screen } from "./screen.ts";
import { type Rates, StreamRates, type StreamThroughput, ThroughputMeter } from "./status_rates.ts";

/** One priority's stream. */
export interface PriorityStatus {
  readonly name: string;
  /** Waiting for a worker. */
  readonly queued: number;
  /** Delivered to a worker: running, or prefetched and about to run. */
  readonly delivered: number;
  /**
   * Entries ever added to the stream (`XINFO STREAM` `entries-added`), 0 while it does not
   * exist; undefined when the server does not say (before Redis 7).
   */
  readonly added?: number;
}

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
}

const RUNNING_SHOWN = 10;
/** Deliveries looked at per priority to find running tasks (prefetched ones are skipped). */
const DELIVERIES_LOOKED_AT = 50;
const REFRESH = 1_000;

/** Reads the status of the worker's queue. */
// deno-lint-ignore no-explicit-any
export async function readStatus(worker: Worker<any>): Promise<QueueStatus> {
  const client = queueContextOf(worker);
  const { keys, redis } = client;
  const priorities = client.prioritiesHighFirst;
  const pipeline = redis.pipeline();
  for (const p of priorities) {
    pipeline.xlen(keys.stream(p));
    pipeline.xpending(keys.stream(p), CONSUMER_GROUP);
    pipeline.xinfo("STREAM", keys.stream(p));
  }
  pipeline.zcard(keys.delayed);
  const replies = await pipeline.exec() ?? [];
  const sizes = priorities.map((name, i) => {
    const length = Number(replies[i * 3][1] ?? 0);
    const [pendingError, pending] = replies[i * 3 + 1];
    // A stream that no worker has read yet has no consumer group: nothing is delivered.
    const delivered = pendingError ? 0 : Number((pending as [number])[0] ?? 0);
    const [infoError, info] = replies[i * 3 + 2];
    // No stream yet (XINFO fails on a missing key) has had nothing added.
    const added = infoError ? (length === 0 ? 0 : undefined) : entriesAdded(info);
    return { name, queued: length - delivered, delivered, added };
  });
  const scheduled = Number(replies[replies.length - 1][1] ?? 0);
  const [workers, running] = await Promise.all([
    readHealth(worker),
    readRunning(worker, sizes),
  ]);
  return {
    queue: worker.queueName,
    at: Date.now(),
    priorities: sizes,
    scheduled,
    workers,
    running,
  };
}

/** `entries-added` of an `XINFO STREAM` reply (a flat list of names and values). */
function entriesAdded(info: unknown): number | undefined {
  if (!Array.isArray(info)) return undefined;
  const at = info.indexOf("entries-added");
  const value = at >= 0 ? Number(info[at + 1]) : NaN;
  return Number.isFinite(value) ? value : undefined;
}

// deno-lint-ignore no-explicit-any
async function readHealth(worker: Worker<any>): Promise<HealthRecord[]> {
  const queue = queueContextOf(worker);
  const { keys, redis } = queue;
  const found: string[] = [];
  for await (const batch of scanQueue(queue, keys.pattern("health:*"), { count: 500 })) {
    found.push(...batch);
  }
  if (found.length === 0) return [];
  const records: HealthRecord[] = [];
  for (const json of await redis.mget(...found)) {
    if (!json) continue; // Expired between SCAN and MGET.
    try {
      records.push(JSON.parse(json));
    } catch {
      // Not a health record of this version: skip it.
    }
  }
  return records.sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
}

/** The first running tasks, highest priority first, found among the oldest deliveries. */
async function readRunning(
  // deno-lint-ignore no-explicit-any
  worker: Worker<any>,
  sizes: readonly PriorityStatus[],
): Promise<TaskInfo[]> {
  const { keys, redis } = queueContextOf(worker);
  const running: TaskInfo[] = [];
  for (const { name, delivered } of sizes) {
    if (delivered === 0 || running.length >= RUNNING_SHOWN) continue;
    const stream = keys.stream(name);
    const pending = await redis.xpending(stream, CONSUMER_GROUP, "-", "+", DELIVERIES_LOOKED_AT);
    const pipeline = redis.pipeline();
    for (const [entryId] of pending as [string][]) pipeline.xrange(stream, entryId, entryId);
    const entries = await pipeline.exec() ?? [];
    for (const [, reply] of entries) {
      const [entry] = (reply ?? []) as [string, string[]][];
      const taskId = entry?.[1][1];
      if (!taskId || running.length >= RUNNING_SHOWN) continue;
      const info = await worker.infoById(taskId);
      if (info?.status === "running") running.push(info);
    }
  }
  return running;
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
