/**
 * `status <module>`: a live view of a queue. Queue sizes per priority, delayed tasks, the
 * live workers (from their health keys), the tasks running now and the throughput, refreshed
 * every second in the terminal; `--once` prints one view and exits.
 *
 * Workers refresh their health record at each heartbeat (every third of `idleTimeout`), so the
 * per-worker numbers and the throughput are as of each worker's last heartbeat. Everything is
 * read with a bounded number of commands, whatever the size of the queue.
 *
 * @module
 */

import type { HealthRecord } from "../heartbeat.ts";
import { CONSUMER_GROUP } from "../keys.ts";
import type { TaskInfo } from "../result.ts";
import type { Worker } from "../worker.ts";
import { scanQueue } from "../scan.ts";

/** One priority's stream. */
export interface PriorityStatus {
  readonly name: string;
  /** Waiting for a worker. */
  readonly queued: number;
  /** Delivered to a worker: running, or prefetched and about to run. */
  readonly delivered: number;
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
  const { client } = worker;
  const { keys, redis } = client;
  const priorities = client.prioritiesHighFirst;
  const pipeline = redis.pipeline();
  for (const p of priorities) {
    pipeline.xlen(keys.stream(p));
    pipeline.xpending(keys.stream(p), CONSUMER_GROUP);
  }
  pipeline.zcard(keys.delayed);
  const replies = await pipeline.exec() ?? [];
  const sizes = priorities.map((name, i) => {
    const length = Number(replies[i * 2][1] ?? 0);
    const [pendingError, pending] = replies[i * 2 + 1];
    // A stream that no worker has read yet has no consumer group: nothing is delivered.
    const delivered = pendingError ? 0 : Number((pending as [number])[0] ?? 0);
    return { name, queued: length - delivered, delivered };
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

// deno-lint-ignore no-explicit-any
async function readHealth(worker: Worker<any>): Promise<HealthRecord[]> {
  const { keys, redis } = worker.client;
  const found: string[] = [];
  for await (const batch of scanQueue(worker.client, keys.pattern("health:*"), { count: 500 })) {
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
  const { keys, redis } = worker.client;
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

/** Throughput from the workers' counters: the change between two heartbeats of each. */
export class ThroughputMeter {
  readonly #last = new Map<string, { at: number; finished: number; rate?: number }>();

  /**
   * Takes the latest health records and returns tasks finished per second: `recent` from the
   * change since each worker's previous heartbeat (undefined until one was seen), `average`
   * since the workers started.
   */
  update(workers: readonly HealthRecord[]): { recent?: number; average?: number } {
    let recent: number | undefined;
    let finishedTotal = 0;
    let upTotal = 0;
    const seen = new Set<string>();
    for (const health of workers) {
      seen.add(health.id);
      const finished = finishedOf(health);
      finishedTotal += finished;
      upTotal += Math.max(0, health.heartbeatAt - health.startedAt);
      const last = this.#last.get(health.id);
      let rate = last?.rate;
      if (last && health.heartbeatAt > last.at) {
        rate = (finished - last.finished) / ((health.heartbeatAt - last.at) / 1000);
      }
      if (!last || health.heartbeatAt > last.at) {
        this.#last.set(health.id, { at: health.heartbeatAt, finished, rate });
      }
      if (rate !== undefined) recent = (recent ?? 0) + rate;
    }
    for (const id of this.#last.keys()) if (!seen.has(id)) this.#last.delete(id);
    // Each worker's own average, summed: total finished over the mean uptime.
    const average = upTotal > 0 ? finishedTotal / (upTotal / workers.length / 1000) : undefined;
    return { recent, average };
  }
}

function finishedOf(health: HealthRecord): number {
  const c = health.counters;
  return (c.completed ?? 0) + (c.failed ?? 0) + (c.aborted ?? 0);
}

/** The view as text lines. */
export function formatStatus(
  status: QueueStatus,
  throughput: { recent?: number; average?: number },
): string {
  const lines = [
    `queue ${status.queue} at ${new Date(status.at).toISOString()}`,
    "",
    table(
      ["priority", "queued", "in workers"],
      status.priorities.map((p) => [p.name, String(p.queued), String(p.delivered)]),
    ),
    `scheduled (delayed, scheduled or backing off): ${status.scheduled}`,
    "",
    `workers: ${status.workers.length} live`,
  ];
  if (status.workers.length > 0) {
    lines.push(table(
      ["id", "host", "pid", "running", "completed", "failed", "retried", "up", "last beat"],
      status.workers.map((w) => [
        w.id,
        w.host ?? "-",
        String(w.pid),
        `${w.running}/${w.concurrency}`,
        String(w.counters.completed ?? 0),
        String(w.counters.failed ?? 0),
        String(w.counters.retried ?? 0),
        duration(status.at - w.startedAt),
        `${duration(status.at - w.heartbeatAt)} ago`,
      ]),
    ));
  }
  lines.push(
    `throughput: ${rate(throughput.recent)} tasks/s between heartbeats, ${
      rate(throughput.average)
    } tasks/s on average`,
    "",
    `running tasks: ${runningCount(status.running.length)}`,
  );
  if (status.running.length > 0) {
    lines.push(table(
      ["id", "function", "try", "enqueued"],
      status.running.map((t) => [
        t.taskId,
        t.fnName,
        String(t.tries),
        `${duration(status.at - t.createdTime)} ago`,
      ]),
    ));
  }
  return lines.join("\n");
}

/** Options of {@linkcode showStatus}. */
export interface ShowStatusOptions {
  /** Print one view and return. */
  readonly once: boolean;
  /** Stops the live view. */
  readonly signal: AbortSignal;
}

/**
 * Prints the view once, or every second until the signal aborts (clearing the terminal
 * between views when stdout is one).
 */
// deno-lint-ignore no-explicit-any
export async function showStatus(worker: Worker<any>, options: ShowStatusOptions): Promise<void> {
  const meter = new ThroughputMeter();
  const clear = !options.once && Deno.stdout.isTerminal();
  while (!options.signal.aborted) {
    const status = await readStatus(worker);
    const text = formatStatus(status, meter.update(status.workers));
    console.log(clear ? `\x1b[2J\x1b[H${text}\n\n(Ctrl-C to quit)` : `${text}\n`);
    if (options.once) return;
    await pause(REFRESH, options.signal);
  }
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

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
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
