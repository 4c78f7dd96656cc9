/**
 * `metrics <module>`: prints the queue's metrics, as `worker.metrics()` reads them, once: tasks
 * by status and priority, the last hour's outcomes, the live workers, and per task function
 * the outcomes and the run-time and wait percentiles. `--json` prints the same object as JSON,
 * for scripts (times in ms since the epoch, durations in ms).
 *
 * @module
 */

import type { FunctionMetrics, QueueMetrics, TimingPercentiles } from "../client/queue_reads.ts";
import type { Worker } from "../worker.ts";
import { ExitCode, type MetricsCommand } from "./args.ts";
import { PLAIN } from "./screen.ts";
import { clean, duration, table } from "./text_table.ts";
import { asClient } from "./client_command.ts";

/**
 * Reads the metrics and prints them to stdout, as text or JSON.
 *
 * @returns The exit code: 0, or 1 when Redis fails.
 */
export async function printMetrics(
  worker: Worker<unknown>,
  command: MetricsCommand,
): Promise<number> {
  return await asClient(
    worker,
    `cannot read the metrics of queue ${worker.queueName}`,
    async () => {
      const metrics = await worker.metrics();
      console.log(command.json ? JSON.stringify(metrics, null, 2) : formatMetrics(metrics));
      return ExitCode.OK;
    },
  );
}

/** The metrics as plain text: a few lines and tables. */
export function formatMetrics(m: QueueMetrics): string {
  const { tasks, lastHour } = m;
  const finished = lastHour.completed + lastHour.failed + lastHour.aborted;
  const n = String;
  const lines = [
    `queue ${clean(m.queue)} at ${new Date(m.time).toISOString()}`,
    "",
    `tasks: ${tasks.queued} queued, ${tasks.running} running, ${tasks.scheduled} scheduled, ${tasks.waiting} waiting, ${tasks.done}${
      tasks.doneExact ? "" : "+"
    } done (results kept), ${tasks.repeating} repeating, ${tasks.aborting} aborting`,
    table(
      ["priority", "queued", "running", "scheduled"],
      Object.entries(m.byPriority).reverse().map(([p, c]) => [
        clean(p),
        n(c.queued),
        n(c.running),
        c.scheduled === null ? "-" : n(c.scheduled),
      ]),
      PLAIN,
    ),
    "",
    `last hour: ${finished} finished: ${lastHour.completed} succeeded, ${lastHour.failed} failed, ${lastHour.aborted} aborted; ${lastHour.retried} retried`,
    "",
    `workers: ${m.workers.length} live`,
  ];
  if (m.workers.length > 0) {
    lines.push(table(
      ["id", "host", "pid", "running", "completed", "failed", "aborted", "retried", "up"],
      m.workers.map((w) => [
        clean(w.id),
        clean(w.host ?? "-"),
        n(w.pid),
        `${w.running}/${w.concurrency}`,
        n(w.outcomes.completed),
        n(w.outcomes.failed),
        n(w.outcomes.aborted),
        n(w.outcomes.retried),
        duration(m.time - w.startedAt),
      ]),
      PLAIN,
    ));
  }
  const functions = Object.entries(m.functions);
  lines.push("", `functions: ${functions.length} (over the live workers, since each started)`);
  if (functions.length > 0) {
    lines.push(table(
      [
        "function",
        "completed",
        "failed",
        "aborted",
        "retried",
        "run p50/p90/p99 ms",
        "wait p50/p90/p99 ms",
      ],
      functions.map(([name, f]: [string, FunctionMetrics]) => [
        clean(name),
        n(f.outcomes.completed),
        n(f.outcomes.failed),
        n(f.outcomes.aborted),
        n(f.outcomes.retried),
        percentiles(f.runTime),
        percentiles(f.wait),
      ]),
      PLAIN,
    ));
  }
  return lines.join("\n");
}

function percentiles(p: TimingPercentiles | null): string {
  return p === null ? "-" : `${p.p50}/${p.p90}/${p.p99}`;
}
