/**
 * What `deno task bench` measures: the rows of its table and the cases that fill them.
 *
 * Cases (DESIGN.md section 5): enqueue `tasks` no-op tasks one by one, concurrently and in a
 * batch; drain them with one in-process worker at concurrency 1, 32 and 256, results kept;
 * `sleepTasks` tasks sleeping 100 ms at concurrency 32 and 256 (efficiency = ideal time /
 * measured time, ideal = tasks × 100 ms / concurrency); enqueue-to-result latency against an
 * idle worker in another process; how late 1,000 delayed tasks due over two seconds start; Redis
 * memory per kept result and round trips per task (see `_meter.ts` for how they are counted);
 * and `tasks` tasks drained by 1, 2 and 4 worker processes of concurrency 32.
 *
 * With the features of flow control, lifecycle and observability in use, against BullMQ where
 * it has the feature: a batch enqueue with an id per task and with a new deduplication key per
 * task; the drain at concurrency 32 with streaq's events stream on (BullMQ writes its own in
 * every case); 5,000 tasks drained under a queue-wide limit of 2,000 starts per second (how
 * close to the fastest the limit allows); and 5,000 tasks in 100 groups, one task per group at a
 * time (streaq only: groups are a BullMQ Pro feature, not in open-source BullMQ).
 *
 * Every case also gives the Redis CPU time and the Redis commands per task it cost (the runner
 * reads them from its meter), for the table of Redis cost.
 *
 * @module
 */

import type { CaseContext, Contender, RateLimit } from "./_contender.ts";
import type { Usage } from "./_meter.ts";
import { format, type Row, type Target } from "./_report.ts";

/** The sizes the command line chose, and the libraries' names (the table's columns). */
export interface CaseSettings {
  /** No-op tasks per enqueue and drain case (`--tasks`). */
  readonly tasks: number;
  /** Sleeping tasks per sleep case (`--sleep-tasks`). */
  readonly sleepTasks: number;
  /** Round trips timed by the latency case (`--samples`). */
  readonly samples: number;
  readonly names: readonly string[];
}

const SLEEP_MS = 100;
const PROCESS_CONCURRENCY = 32;
const LATENCY_WARMUP = 50;
const LATENESS_TASKS = 1_000;
const LATENESS_SPREAD_MS = 2_000;
/** The feature cases: fewer tasks, so that a run stays within minutes. */
const FEATURE_CONCURRENCY = 32;
const RATE_TASKS = 5_000;
const RATE_LIMIT: RateLimit = { max: 2_000, duration: 1_000 };
const GROUP_TASKS = 5_000;
const GROUPS = 100;

const n = (count: number) => format(count, 0);
const perSecond = (count: number, ms: number) => count / (ms / 1000);

/** The table's rows and the cases that fill them. */
export interface BenchmarkCases {
  /** The rows, in table order, by key. */
  readonly rows: ReadonlyMap<string, Row>;
  /** The cases, in the order they run. */
  readonly cases: readonly Case[];
  /** The command counts of the last plain drain at concurrency 32, per library. */
  readonly lastDrainCommands: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** A row's value as tasks per second, for the chart (a sleep row holds an efficiency). */
  chartValue(key: string, value: number): number;
}

/** The rows and cases of a benchmark run of these sizes. */
export function benchmarkCases(s: CaseSettings): BenchmarkCases {
  const lastDrainCommands = new Map<string, ReadonlyMap<string, number>>();
  return {
    rows: defineRows(s),
    cases: defineCases(s, lastDrainCommands),
    lastDrainCommands,
    chartValue: (key, value) => chartValue(s, key, value),
  };
}

/**
 * One case: what it runs and which rows its measurement feeds. Besides its rows, every case
 * gives its Redis CPU and commands per task (of `tasks`) to the table of Redis cost.
 */
export interface Case {
  readonly id: string;
  /** Its line in the table of Redis cost per task. */
  readonly title: string;
  /** The tasks the meter saw go through: what the Redis cost is divided by. */
  readonly tasks: number;
  /** Whether the library has what the case needs (it shows "—" where not). */
  supports?(contender: Contender): boolean;
  run(contender: Contender, ctx: CaseContext): Promise<Map<string, number>>;
}

/**
 * The cases, in the order they run. The plain drain at concurrency 32 also records its command
 * counts per library in `lastDrainCommands`, for the breakdown below the table.
 */
function defineCases(
  s: CaseSettings,
  lastDrainCommands: Map<string, ReadonlyMap<string, number>>,
): Case[] {
  const { tasks, sleepTasks, samples } = s;
  /** An enqueue of `tasks` tasks by one of the contender's enqueue methods, as a throughput. */
  function enqueueCase(
    id: string,
    title: string,
    method:
      | "enqueueConcurrently"
      | "enqueueBatch"
      | "enqueueBatchWithIds"
      | "enqueueBatchDeduplicated",
  ): Case {
    return {
      id,
      title,
      tasks,
      async run(contender, ctx) {
        await contender[method](ctx, tasks);
        return throughput(id, tasks, await ctx.meter.collect());
      },
    };
  }

  /** A drain at `concurrency`, plain or with streaq's events stream on. */
  function drainCase(concurrency: number, events = false): Case {
    const id = `drain-${concurrency}${events ? "-events" : ""}`;
    return {
      id,
      title: `drain, concurrency ${concurrency}${events ? ", events on" : ""}`,
      tasks,
      async run(contender, ctx) {
        await contender.drain(ctx, tasks, concurrency, { events });
        const usage = await ctx.meter.collect();
        const values = throughput(id, tasks, usage);
        if (concurrency === 32 && !events) {
          values.set("memory", usage.memoryBytes / tasks);
          values.set("cpu-drain-32", usage.redisCpuMicros / tasks);
          values.set("trips-drain", usage.reads / tasks);
          lastDrainCommands.set(contender.name, usage.commands);
        }
        return values;
      },
    };
  }

  return [
    {
      id: "enqueue-one",
      title: "enqueue one by one",
      tasks,
      async run(contender, ctx) {
        await contender.enqueueOneByOne(ctx, tasks);
        const usage = await ctx.meter.collect();
        return new Map([
          ["enqueue-one", perSecond(tasks, usage.ms)],
          ["trips-enqueue", usage.reads / tasks],
        ]);
      },
    },
    enqueueCase("enqueue-concurrent", "enqueue concurrently", "enqueueConcurrently"),
    enqueueCase("enqueue-batch", "enqueue in a batch", "enqueueBatch"),
    enqueueCase("enqueue-ids", "enqueue in a batch, each with its own id", "enqueueBatchWithIds"),
    enqueueCase(
      "enqueue-dedupe",
      "enqueue in a batch, each with a new deduplication key",
      "enqueueBatchDeduplicated",
    ),
    drainCase(1),
    drainCase(32),
    drainCase(32, true),
    drainCase(256),
    {
      id: "rate-limit",
      title: `rate-limited drain (${n(RATE_LIMIT.max)} per ${n(RATE_LIMIT.duration)} ms)`,
      tasks: RATE_TASKS,
      async run(contender, ctx) {
        await contender.rateLimitedDrain(ctx, RATE_TASKS, FEATURE_CONCURRENCY, RATE_LIMIT);
        const usage = await ctx.meter.collect();
        return new Map([
          ["rate-limit", perSecond(RATE_TASKS, usage.ms)],
          ["rate-limit-share", leastRateLimitedMs() / usage.ms],
        ]);
      },
    },
    {
      id: "groups",
      title: `drain in ${GROUPS} groups, one task per group at a time`,
      tasks: GROUP_TASKS,
      supports: (contender) => contender.groupedDrain !== undefined,
      async run(contender, ctx) {
        await contender.groupedDrain!(ctx, GROUP_TASKS, GROUPS, FEATURE_CONCURRENCY);
        return throughput("groups", GROUP_TASKS, await ctx.meter.collect());
      },
    },
    ...[32, 256].map((concurrency): Case => ({
      id: `sleep-${concurrency}`,
      title: `${SLEEP_MS} ms sleep, concurrency ${concurrency}`,
      tasks: sleepTasks,
      async run(contender, ctx) {
        await contender.sleep(ctx, sleepTasks, concurrency, SLEEP_MS);
        const usage = await ctx.meter.collect();
        const ideal = (sleepTasks * SLEEP_MS) / concurrency;
        return new Map([[`sleep-${concurrency}`, ideal / usage.ms]]);
      },
    })),
    {
      id: "latency",
      title: "enqueue-to-result latency (enqueue, run, result)",
      tasks: samples,
      async run(contender, ctx) {
        const sorted = await contender.latency(ctx, samples, LATENCY_WARMUP);
        return new Map([
          ["latency-p50", percentile(sorted, 0.5)],
          ["latency-p99", percentile(sorted, 0.99)],
        ]);
      },
    },
    {
      id: "lateness",
      title: "delay lateness (enqueue delayed, promote, run)",
      tasks: LATENESS_TASKS,
      async run(contender, ctx) {
        const lateness = await contender.lateness(ctx, LATENESS_TASKS, LATENESS_SPREAD_MS);
        return new Map([
          ["lateness-p50", percentile(lateness, 0.5)],
          ["lateness-p99", percentile(lateness, 0.99)],
        ]);
      },
    },
    ...[1, 2, 4].map((workers): Case => ({
      id: `processes-${workers}`,
      title: `drain with ${workers} worker process${workers > 1 ? "es" : ""}`,
      tasks,
      async run(contender, ctx) {
        await contender.processes(ctx, tasks, workers, PROCESS_CONCURRENCY);
        return throughput(`processes-${workers}`, tasks, await ctx.meter.collect());
      },
    })),
  ];
}

/** The table's rows, in order, by key: what the cases measure, empty. */
function defineRows(s: CaseSettings): Map<string, Row> {
  const { tasks, sleepTasks, names } = s;
  const rows = new Map<string, Row>();
  function row(
    key: string,
    title: string,
    unit: string,
    options: {
      higherIsBetter?: boolean;
      digits?: number;
      target?: Target;
      /** The row is a throughput: chart it with this label. */
      chart?: string;
    } = {},
  ): void {
    rows.set(key, {
      title,
      unit,
      higherIsBetter: options.higherIsBetter ?? true,
      digits: options.digits ?? 0,
      target: options.target,
      throughput: options.chart ? new Map(names.map((name) => [name, []])) : undefined,
      chartLabel: options.chart,
      values: new Map(names.map((name) => [name, []])),
    });
  }

  row("enqueue-one", `enqueue ${n(tasks)} one by one`, "tasks/s", {
    chart: "enqueue, one by one",
  });
  row("enqueue-concurrent", `enqueue ${n(tasks)} concurrently`, "tasks/s", {
    chart: "enqueue, concurrently",
  });
  row("enqueue-batch", `enqueue ${n(tasks)} in a batch`, "tasks/s", {
    chart: "enqueue, batch",
    target: { ratio: 3, text: "≥ 3×" },
  });
  // What ids and deduplication keys may cost: 15% of the plain batch's throughput.
  const withinBatch: Target = {
    of: rows.get("enqueue-batch")!,
    share: 0.85,
    text: "≥ 0.85 × the batch's",
  };
  row("enqueue-ids", `enqueue ${n(tasks)} in a batch, each with its own id`, "tasks/s", {
    chart: "enqueue, batch, with ids",
    target: withinBatch,
  });
  row(
    "enqueue-dedupe",
    `enqueue ${n(tasks)} in a batch, each with a new deduplication key`,
    "tasks/s",
    { chart: "enqueue, batch, dedupe keys", target: withinBatch },
  );
  for (const c of [1, 32, 256]) {
    const target: Target | undefined = c === 1
      ? { ratio: 1.5, text: "≥ 1.5×" }
      : c === 32
      ? { ratio: 2, text: "≥ 2×" }
      : undefined;
    row(`drain-${c}`, `drain ${n(tasks)} no-op, concurrency ${c}`, "tasks/s", {
      chart: `drain, concurrency ${c}`,
      target,
    });
    if (c === 32) {
      row(
        "drain-32-events",
        `drain ${n(tasks)} no-op, concurrency 32, events on (BullMQ: always on)`,
        "tasks/s",
        { chart: "drain, concurrency 32, events on" },
      );
    }
  }
  row(
    "rate-limit",
    `drain ${n(RATE_TASKS)} no-op, ≤ ${n(RATE_LIMIT.max)} starts per ${
      n(RATE_LIMIT.duration)
    } ms queue-wide, concurrency ${FEATURE_CONCURRENCY}`,
    "tasks/s",
  );
  row(
    "rate-limit-share",
    `rate-limited drain, achieved rate / fastest the limit allows (all in ${
      format(leastRateLimitedMs() / 1000, 1)
    } s)`,
    "share",
    { digits: 3 },
  );
  row(
    "groups",
    `drain ${n(GROUP_TASKS)} no-op in ${GROUPS} groups, one at a time per group, ` +
      `concurrency ${FEATURE_CONCURRENCY} (BullMQ: Pro only)`,
    "tasks/s",
    { chart: `drain, ${GROUPS} groups, c=${FEATURE_CONCURRENCY}` },
  );
  for (const c of [32, 256]) {
    row(`sleep-${c}`, `${n(sleepTasks)} × ${SLEEP_MS} ms sleep, concurrency ${c}`, "efficiency", {
      digits: 3,
      chart: `${n(sleepTasks)} × ${SLEEP_MS} ms sleep, c=${c}`,
      target: c === 256 ? { atLeast: 0.95, text: "streaq ≥ 0.95" } : undefined,
    });
  }
  row("latency-p50", "enqueue-to-result latency p50, worker in another process", "ms", {
    higherIsBetter: false,
    digits: 2,
    target: { ratio: 1, text: "≥ 1× (p50 ≤ BullMQ's)" },
  });
  row("latency-p99", "enqueue-to-result latency p99, worker in another process", "ms", {
    higherIsBetter: false,
    digits: 2,
    target: { ratio: 1 / 0.75, text: "≥ 1.33× (p99 ≤ 0.75 × BullMQ's)" },
  });
  row("lateness-p50", `delay lateness p50, ${n(LATENESS_TASKS)} tasks over 2 s`, "ms", {
    higherIsBetter: false,
    digits: 1,
  });
  row("lateness-p99", `delay lateness p99, ${n(LATENESS_TASKS)} tasks over 2 s`, "ms", {
    higherIsBetter: false,
    digits: 1,
  });
  row("memory", "Redis memory per kept result (drain, c=32)", "bytes", {
    higherIsBetter: false,
    target: { ratio: 2, text: "≥ 2× (≤ 0.5 × BullMQ's)" },
  });
  row("cpu-drain-32", "Redis CPU per drained task, concurrency 32", "µs", {
    higherIsBetter: false,
    digits: 1,
    target: { ratio: 1 / 0.4, text: "≥ 2.5× (≤ 0.4 × BullMQ's: about 15 µs)" },
  });
  row("trips-enqueue", "round trips per task, enqueue one by one", "reads", {
    higherIsBetter: false,
    digits: 2,
  });
  row("trips-drain", "round trips per task, drain c=32", "reads", {
    higherIsBetter: false,
    digits: 2,
  });
  for (const w of [1, 2, 4]) {
    row(
      `processes-${w}`,
      `drain ${n(tasks)} with ${w} worker process${
        w > 1 ? "es" : ""
      } (c=${PROCESS_CONCURRENCY} each)`,
      "tasks/s",
      { chart: `${w} worker process${w > 1 ? "es" : ""}, c=${PROCESS_CONCURRENCY}` },
    );
  }
  return rows;
}

/**
 * The least time in which a limit of `max` starts per `duration` lets RATE_TASKS tasks start:
 * `max` at once, `max` more a window later, and so on, the last ones at the start of window
 * ⌈tasks / max⌉ (a sliding window and BullMQ's fixed one allow the same).
 */
function leastRateLimitedMs(): number {
  return (Math.ceil(RATE_TASKS / RATE_LIMIT.max) - 1) * RATE_LIMIT.duration;
}

function throughput(key: string, tasks: number, usage: Usage): Map<string, number> {
  return new Map([[key, perSecond(tasks, usage.ms)]]);
}

/** The tasks per second a sleep row stands for, for the chart. */
function chartValue(s: CaseSettings, key: string, value: number): number {
  const sleep = /^sleep-(\d+)$/.exec(key);
  if (!sleep) return value;
  const ideal = (s.sleepTasks * SLEEP_MS) / Number(sleep[1]);
  return perSecond(s.sleepTasks, ideal / value);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
