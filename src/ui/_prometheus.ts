/**
 * A queue's metrics in the Prometheus text exposition format (version 0.0.4), for the
 * dashboard's `/metrics` path. It renders a {@linkcode QueueMetrics} from the read API and
 * nothing else: names follow Prometheus conventions (`streaq_` prefix, `_total` on counters,
 * base units), every family has `# HELP` and `# TYPE` lines, and label values are escaped.
 *
 * @module
 */

import type {
  FunctionMetrics,
  OutcomeCounts,
  QueueMetrics,
  TimingPercentiles,
} from "../client/queue_reads.ts";

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [Labels, number];
/** A sample of a summary: the suffix of its name (`""`, `"_sum"` or `"_count"`) first. */
type SummarySample = readonly [string, Labels, number];

interface Family {
  readonly name: string;
  readonly type: "counter" | "gauge" | "summary";
  readonly help: string;
  readonly samples: readonly (Sample | SummarySample)[];
}

const STATUSES = [
  "queued",
  "running",
  "scheduled",
  "waiting",
  "done",
  "repeating",
  "aborting",
] as const;

const OUTCOMES: readonly (keyof OutcomeCounts)[] = ["completed", "failed", "aborted", "retried"];

const OUTCOME_HELP: Record<keyof OutcomeCounts | "relinquished", string> = {
  completed: "Tasks that succeeded",
  failed: "Tasks that failed, aborted ones aside",
  aborted: "Tasks that failed because they were aborted",
  retried: "Tries that ended in a retry",
  relinquished: "Running tasks handed back to the queue at shutdown",
};

/**
 * Renders a queue's metrics as Prometheus text.
 *
 * @param metrics The metrics, as the read API returns them.
 * @returns The exposition, ending with a newline.
 */
export function renderPrometheus(metrics: QueueMetrics): string {
  const queue = { queue: metrics.queue };
  const families: Family[] = [
    {
      name: "streaq_tasks",
      type: "gauge",
      help: "Tasks of the queue by status, when scraped",
      samples: STATUSES.map((status) => [{ ...queue, status }, metrics.tasks[status]]),
    },
    {
      name: "streaq_priority_tasks",
      type: "gauge",
      help: "Queued, running and scheduled tasks of the queue by priority",
      samples: Object.entries(metrics.byPriority).flatMap(([priority, counts]) =>
        (["queued", "running", "scheduled"] as const)
          .filter((status) => counts[status] !== null)
          .map((status): Sample => [{ ...queue, priority, status }, counts[status] ?? 0])
      ),
    },
    {
      name: "streaq_workers",
      type: "gauge",
      help: "Live workers of the queue (those whose health key has not expired)",
      samples: [[queue, metrics.workers.length]],
    },
    {
      name: "streaq_worker_running_tasks",
      type: "gauge",
      help: "Tasks a worker was running at its last heartbeat",
      samples: metrics.workers.map((w) => [{ ...queue, worker: w.id }, w.running]),
    },
    {
      name: "streaq_worker_concurrency",
      type: "gauge",
      help: "Tasks a worker runs at once at most",
      samples: metrics.workers.map((w) => [{ ...queue, worker: w.id }, w.concurrency]),
    },
    {
      name: "streaq_worker_heartbeat_timestamp_seconds",
      type: "gauge",
      help: "When a worker last reported, in seconds since the epoch",
      samples: metrics.workers.map((w) => [{ ...queue, worker: w.id }, w.heartbeatAt / 1000]),
    },
    ...(["completed", "failed", "aborted", "retried", "relinquished"] as const).map(
      (outcome): Family => ({
        name: `streaq_tasks_${outcome}_total`,
        type: "counter",
        help: `${OUTCOME_HELP[outcome]}, by worker and function, since the worker started`,
        samples: metrics.workers.flatMap((w) =>
          Object.entries(w.functions).map(([fn, counts]): Sample => [
            { ...queue, worker: w.id, function: fn },
            counts[outcome],
          ])
        ),
      }),
    ),
    timingFamily(
      "streaq_task_run_seconds",
      "Run time of tries that ran: quantiles over recent tries, sum and count over the live workers",
      metrics,
      (f) => [f.runTime, f.runMsSum, f.runCount],
    ),
    timingFamily(
      "streaq_task_wait_seconds",
      "Wait from when a task was due to when it started: quantiles over recent tries, sum and count over the live workers",
      metrics,
      (f) => [f.wait, f.waitMsSum, f.waitCount],
    ),
    {
      name: "streaq_tasks_last_hour",
      type: "gauge",
      help: "Outcomes of the queue's tasks in the last 60 minutes, over every worker",
      samples: OUTCOMES.map((outcome) => [{ ...queue, outcome }, metrics.lastHour[outcome]]),
    },
  ];
  return families.map(renderFamily).join("");
}

/** A summary per function: quantiles in seconds, then `_sum` (seconds) and `_count`. */
function timingFamily(
  name: string,
  help: string,
  metrics: QueueMetrics,
  pick: (f: FunctionMetrics) => [TimingPercentiles | null, number, number],
): Family {
  const samples: SummarySample[] = [];
  for (const [fn, f] of Object.entries(metrics.functions)) {
    const [timing, msSum, count] = pick(f);
    const labels = { queue: metrics.queue, function: fn };
    if (timing) {
      const quantiles = [["0.5", timing.p50], ["0.9", timing.p90], ["0.99", timing.p99]] as const;
      for (const [quantile, ms] of quantiles) {
        samples.push(["", { ...labels, quantile }, ms / 1000]);
      }
    }
    samples.push(["_sum", labels, msSum / 1000], ["_count", labels, count]);
  }
  return { name, type: "summary", help, samples };
}

function renderFamily(family: Family): string {
  const help = escapeHelp(family.help);
  let text = `# HELP ${family.name} ${help}.\n# TYPE ${family.name} ${family.type}\n`;
  for (const sample of family.samples) {
    const [suffix, labels, value] = sample.length === 3 ? sample : ["", ...sample] as const;
    text += `${family.name}${suffix}${renderLabels(labels)} ${renderValue(value)}\n`;
  }
  return text;
}

function renderLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A label value: backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}
