/**
 * A queue's metrics in the Prometheus text exposition format (version 0.0.4), for the
 * dashboard's `/metrics` path. It renders a {@linkcode QueueMetrics} from the read API and
 * nothing else: names follow Prometheus conventions (`streaq_` prefix, `_total` on counters,
 * base units), every family has `# HELP` and `# TYPE` lines, and label values are escaped.
 *
 * @module
 */

import type { OutcomeCounts, QueueMetrics } from "../client/queue_reads.ts";

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [Labels, number];

interface Family {
  readonly name: string;
  readonly type: "counter" | "gauge";
  readonly help: string;
  readonly samples: readonly Sample[];
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
        help: `${OUTCOME_HELP[outcome]}, by worker, since the worker started`,
        samples: metrics.workers.map((w) => [{ ...queue, worker: w.id }, w.outcomes[outcome]]),
      }),
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

function renderFamily(family: Family): string {
  let text = `# HELP ${family.name} ${escapeHelp(family.help)}.\n# TYPE ${family.name} ${family.type}\n`;
  for (const [labels, value] of family.samples) {
    text += `${family.name}${renderLabels(labels)} ${renderValue(value)}\n`;
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
