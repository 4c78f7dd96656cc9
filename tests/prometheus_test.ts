/**
 * The dashboard's `/metrics` output read by the parser of the official Prometheus Python client
 * (`prometheus_client.parser`, Debian's `python3-prometheus-client`, which `.ci/run` installs),
 * run as a subprocess, and its numbers checked against what the test did. The parser is a test
 * tool only, so this file runs under `tests/tools.json` (`deno task test:tools`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createDashboard } from "../src/ui/mod.ts";
import { renderPrometheus } from "../src/ui/_prometheus.ts";
import type { QueueMetrics } from "../mod.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";

/** The Python that has Debian's `python3-prometheus-client` (not a pyenv or venv one on PATH). */
const PYTHON = "/usr/bin/python3";

/** Prints the families `text_string_to_metric_families` reads from standard input, as JSON. */
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([
    {"name": f.name, "type": f.type, "help": f.documentation,
     "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]))
`;

interface ParsedMetric {
  value: string;
  labels: Record<string, string>;
}
interface ParsedFamily {
  /** As exposed: a counter's name with its `_total`. */
  name: string;
  help: string;
  /** In capitals: COUNTER, GAUGE, SUMMARY. */
  type: string;
  /** The samples named as the family (for a summary, its quantiles). */
  metrics: ParsedMetric[];
}
interface Parsed {
  /** By family name, as exposed. */
  families: Map<string, ParsedFamily>;
  /** Every sample, by sample name (`x_count`, `x_sum` and the quantiles `x` of a summary). */
  samples: Map<string, ParsedFamily>;
}

/** The text read by the official client's parser; a text it refuses fails the test. */
async function parse(text: string): Promise<Parsed> {
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(PYTHON, {
      args: ["-c", PARSER],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    output = await child.output();
  } catch (error) {
    throw new Error(
      `Cannot run ${PYTHON}, which parses the Prometheus text with the official client: install it (Debian/Ubuntu: apt-get install python3-prometheus-client): ${error}`,
    );
  }
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `the official parser refused the text or is missing:\n${stderr}`);
  const raw = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    name: string;
    type: string;
    help: string;
    samples: { name: string; labels: Record<string, string>; value: number }[];
  }[];
  const families = new Map<string, ParsedFamily>();
  const samples = new Map<string, ParsedFamily>();
  for (const family of raw) {
    // The client names a counter's family without the _total its samples carry.
    const name = family.type === "counter" ? `${family.name}_total` : family.name;
    const type = family.type.toUpperCase();
    const metrics = (sampleName: string) =>
      family.samples.filter((s) => s.name === sampleName).map((s) => ({
        labels: s.labels,
        value: String(s.value),
      }));
    families.set(name, { name, help: family.help, type, metrics: metrics(name) });
    for (const sampleName of new Set(family.samples.map((s) => s.name))) {
      samples.set(sampleName, {
        name: sampleName,
        help: family.help,
        type,
        metrics: metrics(sampleName),
      });
    }
  }
  return { families, samples };
}

/** The value of the one sample of `family` whose labels include `labels`. */
function valueOf(
  families: Map<string, ParsedFamily>,
  family: string,
  labels: Record<string, string>,
): number {
  const found =
    families.get(family)?.metrics.filter((m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
    ) ?? [];
  assert.equal(found.length, 1, `one sample of ${family} with ${JSON.stringify(labels)}`);
  return Number(found[0].value);
}

Deno.test("/metrics parses as Prometheus text and its counters and gauges match what ran", async () => {
  await using worker = await testWorker({ idleTimeout: 1_000, concurrency: 4 });
  const ok = worker.task(async function ok(n: number): Promise<number> {
    await Promise.resolve();
    return n;
  });
  const odd = worker.task(async (): Promise<never> => {
    await Promise.resolve();
    throw new Error("no");
  }, { name: 'odd"name\\', maxTries: 1 });
  const later = worker.task(async function later(): Promise<void> {});
  const handler = createDashboard(worker, { auth: { token: "scrape-token" } });
  const scrape = async () => {
    const response = await handler(
      new Request("http://127.0.0.1/metrics", {
        headers: { authorization: "Bearer scrape-token" },
      }),
    );
    assert.equal(response.status, 200);
    const text = await response.text();
    return await parse(text);
  };

  const N = 6;
  const M = 2;
  for (let i = 0; i < N; i++) await ok.enqueue(i);
  for (let i = 0; i < M; i++) await odd.enqueue();
  await later.enqueue().start({ delay: 3_600_000 });
  const queue = worker.queueName;

  const { families: before } = await scrape();
  assert.equal(before.get("streaq_tasks")?.type, "GAUGE");
  assert.equal(valueOf(before, "streaq_tasks", { queue, status: "queued" }), N + M);
  assert.equal(valueOf(before, "streaq_tasks", { queue, status: "scheduled" }), 1);
  assert.equal(valueOf(before, "streaq_workers", { queue }), 0);

  const run = runInBackground(worker);
  try {
    let families = before;
    const fn = 'odd"name\\';
    let samples = before;
    await eventually(async () => {
      ({ families, samples } = await scrape());
      const completed = families.get("streaq_tasks_completed_total")?.metrics ?? [];
      const failed = families.get("streaq_tasks_failed_total")?.metrics ?? [];
      return completed.some((m) => m.labels?.function === "ok" && m.value === String(N)) &&
        failed.some((m) => m.labels?.function === fn && m.value === String(M));
    }, { what: "the counters of the tasks that ran" });
    const worker_ = worker.id;
    assert.equal(families.get("streaq_tasks_completed_total")?.type, "COUNTER");
    assert.equal(
      valueOf(families, "streaq_tasks_completed_total", { queue, worker: worker_, function: "ok" }),
      N,
    );
    assert.equal(
      valueOf(families, "streaq_tasks_failed_total", { queue, worker: worker_, function: fn }),
      M,
      "a label value with a quote and a backslash comes back as it was",
    );
    assert.equal(
      valueOf(families, "streaq_tasks_failed_total", { queue, worker: worker_, function: "ok" }),
      0,
    );
    assert.equal(valueOf(families, "streaq_tasks", { queue, status: "queued" }), 0);
    assert.equal(valueOf(families, "streaq_tasks", { queue, status: "running" }), 0);
    assert.equal(valueOf(families, "streaq_tasks", { queue, status: "scheduled" }), 1);
    assert.equal(valueOf(families, "streaq_tasks", { queue, status: "done" }), N + M);
    assert.equal(valueOf(families, "streaq_workers", { queue }), 1);
    assert.equal(
      valueOf(families, "streaq_worker_concurrency", { queue, worker: worker_ }),
      4,
    );

    assert.equal(families.get("streaq_task_run_seconds")?.type, "SUMMARY");
    assert.equal(families.get("streaq_task_wait_seconds")?.type, "SUMMARY");
    const labels = { queue, function: "ok" };
    assert.equal(valueOf(samples, "streaq_task_run_seconds_count", labels), N);
    assert.equal(valueOf(samples, "streaq_task_wait_seconds_count", labels), N);
    assert.ok(valueOf(samples, "streaq_task_run_seconds_sum", labels) >= 0);
    const quantiles = ["0.5", "0.9", "0.99"].map((quantile) =>
      valueOf(samples, "streaq_task_run_seconds", { ...labels, quantile })
    );
    assert.ok(quantiles[0] <= quantiles[1] && quantiles[1] <= quantiles[2], `${quantiles}`);
    assert.equal(valueOf(samples, "streaq_task_run_seconds_count", { queue, function: fn }), M);

    await eventually(async () => {
      ({ families } = await scrape());
      return valueOf(families, "streaq_tasks_last_hour", { queue, outcome: "completed" }) === N;
    }, { what: "the per-minute counts written by the worker" });
    assert.equal(valueOf(families, "streaq_tasks_last_hour", { queue, outcome: "failed" }), M);

    for (const family of families.values()) {
      assert.match(family.name, /^streaq_[a-z_]+$/);
      assert.ok(family.help.length > 0, `${family.name} has help`);
      if (family.type === "COUNTER") assert.match(family.name, /_total$/);
    }
  } finally {
    await run.stop();
  }
});

Deno.test("label values with a newline, a quote or a backslash survive a real parser", async () => {
  const name = 'line\nbreak "quoted" back\\slash';
  const metrics: QueueMetrics = {
    queue: "q\\1",
    time: 0,
    tasks: {
      queued: 1,
      running: 0,
      scheduled: 0,
      waiting: 0,
      done: 0,
      doneExact: true,
      repeating: 0,
      aborting: 0,
    },
    byPriority: { normal: { queued: 1, running: 0, scheduled: null } },
    lastHour: { completed: 0, failed: 0, aborted: 0, retried: 0 },
    workers: [{
      id: "w",
      host: null,
      pid: 1,
      concurrency: 1,
      running: 0,
      startedAt: 0,
      heartbeatAt: 1_000,
      outcomes: { completed: 3, failed: 0, aborted: 0, retried: 0, relinquished: 0 },
      functions: { [name]: { completed: 3, failed: 0, aborted: 0, retried: 0, relinquished: 0 } },
    }],
    functions: {
      [name]: {
        outcomes: { completed: 3, failed: 0, aborted: 0, retried: 0, relinquished: 0 },
        runCount: 3,
        runMsSum: 30,
        waitCount: 3,
        waitMsSum: 3,
        runTime: { samples: 3, p50: 10, p90: 10, p99: 10 },
        wait: { samples: 3, p50: 1, p90: 1, p99: 1 },
      },
    },
  };
  const text = renderPrometheus(metrics);
  const { families, samples } = await parse(text);
  assert.equal(
    valueOf(families, "streaq_tasks_completed_total", { queue: "q\\1", function: name }),
    3,
  );
  const labels = { queue: "q\\1", function: name };
  assert.equal(valueOf(samples, "streaq_task_run_seconds", { ...labels, quantile: "0.5" }), 0.01);
  assert.equal(valueOf(samples, "streaq_task_run_seconds_sum", labels), 0.03);
  assert.equal(
    families.get("streaq_priority_tasks")!.metrics.some((m) => m.labels?.status === "scheduled"),
    false,
    "an unknown count is left out, not reported as zero",
  );
});
