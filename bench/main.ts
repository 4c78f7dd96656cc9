/**
 * streaq against BullMQ, side by side: `deno task bench` starts a private `redis-server` (a
 * free loopback port, never 6379) and runs both libraries through the same cases, alternating
 * them case by case (streaq, BullMQ, streaq, BullMQ, ...), `--runs` times. It prints a markdown
 * table of medians with streaq's advantage per line, and writes `docs/benchmarks.md` and the
 * chart `docs/bench.svg` (`--out=` writes nothing).
 *
 * Cases (DESIGN.md section 5): enqueue `--tasks` no-op tasks one by one, concurrently and in a
 * batch; drain them with one in-process worker at concurrency 1, 32 and 256, results kept;
 * `--sleep-tasks` tasks sleeping 100 ms at concurrency 32 and 256 (efficiency = ideal time /
 * measured time, ideal = tasks × 100 ms / concurrency); enqueue-to-result latency against an
 * idle worker in another process; how late 1,000 delayed tasks due over two seconds start; Redis
 * memory per kept result and round trips per task (see `_meter.ts` for how they are counted);
 * and `--tasks` tasks drained by 1, 2 and 4 worker processes of concurrency 32.
 *
 * With the features of flow control, lifecycle and observability in use (issue 18), against
 * BullMQ where it has the feature: a batch enqueue with an id per task and with a deduplication
 * key per task; the drain at concurrency 32 with streaq's events stream on (BullMQ writes its
 * own in every case); 5,000 tasks drained under a queue-wide limit of 2,000 starts per second
 * (how close to the fastest the limit allows); and 5,000 tasks in 100 groups, one task per group
 * at a time (streaq only: groups are a BullMQ Pro feature).
 *
 * Every case also gives the Redis CPU time and the Redis commands per task it cost, for both
 * libraries: the second table of the page.
 *
 * For profiling, `--only=drain-32,latency` runs some cases only (ids in {@linkcode CASES}) and
 * `--libraries=streaq` one library only. `--events` runs streaq's workers with the `events`
 * option, to measure what writing events costs.
 *
 * @module
 */

import os from "node:os";
import { parseArgs } from "node:util";
import { startRedis } from "../tests/_redis.ts";
import type { RedisServer } from "../tests/_redis.ts";
import { bullmq } from "./bullmq_cases.ts";
import type { CaseContext, Contender, RateLimit } from "./_contender.ts";
import { infoFields, Meter, type Usage } from "./_meter.ts";
import {
  costNote,
  type CostRow,
  costTable,
  format,
  markdownPage,
  markdownTable,
  ratioNote,
  type Row,
  type Target,
  throughputSvg,
} from "./_report.ts";
import { streaq, useEvents } from "./streaq_cases.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "20000" },
    "sleep-tasks": { type: "string", default: "2000" },
    samples: { type: "string", default: "1000" },
    only: { type: "string", default: "" },
    libraries: { type: "string", default: "streaq,bullmq" },
    out: { type: "string", default: "docs" },
    /** streaq's workers write events (the `events` option): to measure what they cost. */
    events: { type: "boolean", default: false },
  },
});
useEvents(flags.values.events);
const RUNS = positive("runs", flags.values.runs);
const TASKS = positive("tasks", flags.values.tasks);
const SLEEP_TASKS = positive("sleep-tasks", flags.values["sleep-tasks"]);
const SAMPLES = positive("samples", flags.values.samples);
const SLEEP_MS = 100;
const PROCESS_CONCURRENCY = 32;
const WARMUP_TASKS = 2_000;
const LATENCY_WARMUP = 50;
const LATENESS_TASKS = 1_000;
const LATENESS_SPREAD_MS = 2_000;
/** The feature cases: fewer tasks, so that a run stays within minutes. */
const FEATURE_CONCURRENCY = 32;
const RATE_TASKS = 5_000;
const RATE_LIMIT: RateLimit = { max: 2_000, duration: 1_000 };
const GROUP_TASKS = 5_000;
const GROUPS = 100;
const ALL: readonly Contender[] = [streaq, bullmq];
const NAMES = ALL.map((c) => c.name);
const CONTENDERS = ALL.filter((c) =>
  flags.values.libraries.toLowerCase().split(",").includes(c.name.toLowerCase())
);

const n = (count: number) => format(count, 0);
const perSecond = (count: number, ms: number) => count / (ms / 1000);

/** The table's rows, in order, by key. */
const ROWS = new Map<string, Row>();
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
  ROWS.set(key, {
    title,
    unit,
    higherIsBetter: options.higherIsBetter ?? true,
    digits: options.digits ?? 0,
    target: options.target,
    throughput: options.chart ? new Map(NAMES.map((name) => [name, []])) : undefined,
    chartLabel: options.chart,
    values: new Map(NAMES.map((name) => [name, []])),
  });
}

row("enqueue-one", `enqueue ${n(TASKS)} one by one`, "tasks/s", {
  chart: "enqueue, one by one",
});
row("enqueue-concurrent", `enqueue ${n(TASKS)} concurrently`, "tasks/s", {
  chart: "enqueue, concurrently",
});
row("enqueue-batch", `enqueue ${n(TASKS)} in a batch`, "tasks/s", {
  chart: "enqueue, batch",
  target: { ratio: 3, text: "≥ 3×" },
});
row("enqueue-ids", `enqueue ${n(TASKS)} in a batch, each with its own id`, "tasks/s", {
  chart: "enqueue, batch, with ids",
});
row(
  "enqueue-dedupe",
  `enqueue ${n(TASKS)} in a batch, each with a new deduplication key`,
  "tasks/s",
  { chart: "enqueue, batch, dedupe keys" },
);
for (const c of [1, 32, 256]) {
  const target: Target | undefined = c === 1
    ? { ratio: 1.5, text: "≥ 1.5×" }
    : c === 32
    ? { ratio: 2, text: "≥ 2×" }
    : undefined;
  row(`drain-${c}`, `drain ${n(TASKS)} no-op, concurrency ${c}`, "tasks/s", {
    chart: `drain, concurrency ${c}`,
    target,
  });
  if (c === 32) {
    row(
      "drain-32-events",
      `drain ${n(TASKS)} no-op, concurrency 32, events on (streaq \`events: true\`; ` +
        "BullMQ writes its events in every case)",
      "tasks/s",
      { chart: "drain, concurrency 32, events on" },
    );
  }
}
row(
  "rate-limit",
  `drain ${n(RATE_TASKS)} no-op limited to ${n(RATE_LIMIT.max)} starts per ${
    n(RATE_LIMIT.duration)
  } ms, concurrency ${FEATURE_CONCURRENCY}`,
  "tasks/s",
);
row(
  "rate-limit-share",
  `rate-limited drain: achieved rate / most the limit allows (all done in ${
    format(leastRateLimitedMs() / 1000, 1)
  } s; above 1 would break the limit)`,
  "share",
  { digits: 3 },
);
row(
  "groups",
  `drain ${n(GROUP_TASKS)} no-op in ${GROUPS} groups stored one after another, one task per ` +
    `group at a time, concurrency ${FEATURE_CONCURRENCY} (groups are BullMQ Pro only)`,
  "tasks/s",
  { chart: `drain, ${GROUPS} groups, c=${FEATURE_CONCURRENCY}` },
);
for (const c of [32, 256]) {
  row(`sleep-${c}`, `${n(SLEEP_TASKS)} × ${SLEEP_MS} ms sleep, concurrency ${c}`, "efficiency", {
    digits: 3,
    chart: `${n(SLEEP_TASKS)} × ${SLEEP_MS} ms sleep, c=${c}`,
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
    `drain ${n(TASKS)} with ${w} worker process${
      w > 1 ? "es" : ""
    } (c=${PROCESS_CONCURRENCY} each)`,
    "tasks/s",
    { chart: `${w} worker process${w > 1 ? "es" : ""}, c=${PROCESS_CONCURRENCY}` },
  );
}

/**
 * One case: what it runs and which rows its measurement feeds. Besides its rows, every case
 * gives its Redis CPU and commands per task (of `tasks`) to the table of Redis cost.
 */
interface Case {
  readonly id: string;
  /** Its line in the table of Redis cost per task. */
  readonly title: string;
  /** The tasks the meter saw go through: what the Redis cost is divided by. */
  readonly tasks: number;
  /** Whether the library has what the case needs (it shows "—" where not). */
  supports?(contender: Contender): boolean;
  run(contender: Contender, ctx: CaseContext): Promise<Map<string, number>>;
}

/** The command counts of the last drain at concurrency 32, per library, for the breakdown. */
const lastDrainCommands = new Map<string, ReadonlyMap<string, number>>();

/** A drain at `concurrency`, plain or with streaq's events stream on. */
function drainCase(concurrency: number, events = false): Case {
  const id = `drain-${concurrency}${events ? "-events" : ""}`;
  return {
    id,
    title: `drain, concurrency ${concurrency}${events ? ", events on" : ""}`,
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.drain(ctx, TASKS, concurrency, { events });
      const usage = await ctx.meter.collect();
      const values = throughput(id, TASKS, usage);
      if (concurrency === 32 && !events) {
        values.set("memory", usage.memoryBytes / TASKS);
        values.set("cpu-drain-32", usage.redisCpuMicros / TASKS);
        values.set("trips-drain", usage.reads / TASKS);
        lastDrainCommands.set(contender.name, usage.commands);
      }
      return values;
    },
  };
}

const CASES: readonly Case[] = [
  {
    id: "enqueue-one",
    title: "enqueue one by one",
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.enqueueOneByOne(ctx, TASKS);
      const usage = await ctx.meter.collect();
      return new Map([
        ["enqueue-one", perSecond(TASKS, usage.ms)],
        ["trips-enqueue", usage.reads / TASKS],
      ]);
    },
  },
  {
    id: "enqueue-concurrent",
    title: "enqueue concurrently",
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.enqueueConcurrently(ctx, TASKS);
      return throughput("enqueue-concurrent", TASKS, await ctx.meter.collect());
    },
  },
  {
    id: "enqueue-batch",
    title: "enqueue in a batch",
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.enqueueBatch(ctx, TASKS);
      return throughput("enqueue-batch", TASKS, await ctx.meter.collect());
    },
  },
  {
    id: "enqueue-ids",
    title: "enqueue in a batch, each with its own id",
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.enqueueBatchWithIds(ctx, TASKS);
      return throughput("enqueue-ids", TASKS, await ctx.meter.collect());
    },
  },
  {
    id: "enqueue-dedupe",
    title: "enqueue in a batch, each with a new deduplication key",
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.enqueueBatchDeduplicated(ctx, TASKS);
      return throughput("enqueue-dedupe", TASKS, await ctx.meter.collect());
    },
  },
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
    tasks: SLEEP_TASKS,
    async run(contender, ctx) {
      await contender.sleep(ctx, SLEEP_TASKS, concurrency, SLEEP_MS);
      const usage = await ctx.meter.collect();
      const ideal = (SLEEP_TASKS * SLEEP_MS) / concurrency;
      return new Map([[`sleep-${concurrency}`, ideal / usage.ms]]);
    },
  })),
  {
    id: "latency",
    title: "enqueue-to-result latency (enqueue, run, result)",
    tasks: SAMPLES,
    async run(contender, ctx) {
      const samples = await contender.latency(ctx, SAMPLES, LATENCY_WARMUP);
      return new Map([
        ["latency-p50", percentile(samples, 0.5)],
        ["latency-p99", percentile(samples, 0.99)],
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
    tasks: TASKS,
    async run(contender, ctx) {
      await contender.processes(ctx, TASKS, workers, PROCESS_CONCURRENCY);
      return throughput(`processes-${workers}`, TASKS, await ctx.meter.collect());
    },
  })),
];

/**
 * The least time in which a limit of `max` starts per `duration` lets RATE_TASKS tasks start:
 * `max` at once, `max` more a window later, and so on, the last ones at the start of window
 * ⌈tasks / max⌉ (a sliding window and BullMQ's fixed one allow the same).
 */
function leastRateLimitedMs(): number {
  return (Math.ceil(RATE_TASKS / RATE_LIMIT.max) - 1) * RATE_LIMIT.duration;
}

/** The Redis cost rows of one case, filled run by run. */
function costRow(title: string): CostRow {
  const lower = (unit: string, digits: number): Row => ({
    title,
    unit,
    higherIsBetter: false,
    digits,
    values: new Map(NAMES.map((name) => [name, []])),
  });
  return { title, cpu: lower("µs", 1), commands: lower("commands", 2) };
}

function throughput(key: string, tasks: number, usage: Usage): Map<string, number> {
  return new Map([[key, perSecond(tasks, usage.ms)]]);
}

/** The tasks per second a sleep row stands for, for the chart. */
function chartValue(key: string, value: number): number {
  const sleep = /^sleep-(\d+)$/.exec(key);
  if (!sleep) return value;
  const ideal = (SLEEP_TASKS * SLEEP_MS) / Number(sleep[1]);
  return perSecond(SLEEP_TASKS, ideal / value);
}

function tryOr<T>(read: () => T, fallback: T): T {
  try {
    return read() ?? fallback;
  } catch {
    return fallback;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function positive(name: string, value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `Cannot run the benchmark as '--${name}' must be a positive integer: received ${value}`,
    );
  }
  return count;
}

async function freshRedis(redis: RedisServer): Promise<void> {
  await redis.cli("FLUSHALL");
}

/** Runs each library once through small drains so that the timed runs start warm. */
async function warmUp(redis: RedisServer): Promise<void> {
  for (const contender of CONTENDERS) {
    await freshRedis(redis);
    const meter = new Meter(redis);
    await contender.enqueueBatch({ redis, meter }, WARMUP_TASKS);
    await freshRedis(redis);
    await contender.drain({ redis, meter: new Meter(redis) }, WARMUP_TASKS, 32);
  }
}

async function runInfo(redis: RedisServer): Promise<{ machine: string; versions: string }> {
  // node:os needs --allow-sys=cpus,systemMemoryInfo; without them the line says less.
  const cpu = tryOr(() => os.cpus()[0]?.model, undefined);
  const memory = tryOr(() => os.totalmem() / 2 ** 30, NaN);
  // The benchmarks have their own lockfile, the one that holds BullMQ.
  const lock = await Deno.readTextFile(new URL("./deno.lock", import.meta.url))
    .then((text) => JSON.parse(text) as { specifiers?: Record<string, string> })
    .catch(() => ({ specifiers: undefined }));
  const locked = (name: string) =>
    (Object.entries(lock.specifiers ?? {}).find(([spec]) => spec.startsWith(`npm:${name}@`))?.[1] ??
      "?").replace(/_.*/, ""); // "6.7.0_ioredis@5.11.1": the version, then its peers
  const server = infoFields(await redis.cli("INFO", "server"));
  const machine = [
    cpu ?? "unknown CPU",
    `${navigator.hardwareConcurrency} cores`,
    Number.isFinite(memory) ? `${memory.toFixed(0)} GiB` : undefined,
    `${Deno.build.os} ${Deno.build.arch}`,
  ].filter(Boolean).join(", ");
  const versions = `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), redis-server ${
    server.get("redis_version")
  }, BullMQ ${locked("bullmq")}, ioredis ${locked("ioredis")}`;
  return { machine, versions };
}

function commandBreakdown(): string {
  const lines = [
    "Commands per task in the last drain at concurrency 32 (INFO commandstats; commands run by " +
    "Lua scripts count besides the EVALSHA that ran them):",
    "",
  ];
  for (const name of NAMES) {
    const commands = lastDrainCommands.get(name);
    if (!commands) continue;
    const list = [...commands.entries()]
      .sort((a, b) => b[1] - a[1])
      .filter(([, calls]) => calls / TASKS >= 0.005)
      .map(([command, calls]) => `${command} ${format(calls / TASKS, 2)}`)
      .join(", ");
    lines.push(`- ${name}: ${list}`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const only = new Set(flags.values.only.split(",").map((s) => s.trim()).filter(Boolean));
  const cases = only.size ? CASES.filter((c) => only.has(c.id)) : CASES;
  if (only.size && cases.length !== only.size) {
    throw new RangeError(
      `Cannot run the benchmark as '--only' names unknown cases: received ${flags.values.only}; ` +
        `known: ${CASES.map((c) => c.id).join(", ")}`,
    );
  }
  if (CONTENDERS.length === 0) {
    throw new RangeError(
      `Cannot run the benchmark as '--libraries' names none of ${
        NAMES.join(", ")
      }: received ${flags.values.libraries}`,
    );
  }
  await using redis = await startRedis();
  const info = await runInfo(redis);
  console.error(`machine: ${info.machine}\nversions: ${info.versions}\nredis: ${redis.url}`);
  console.error(`warming up (${WARMUP_TASKS} tasks per library)...`);
  await warmUp(redis);

  const costs = new Map(cases.map((c) => [c.id, costRow(c.title)]));
  for (let run = 1; run <= RUNS; run++) {
    for (const c of cases) {
      for (const contender of CONTENDERS) {
        if (c.supports && !c.supports(contender)) continue;
        await freshRedis(redis);
        const meter = new Meter(redis);
        const values = await c.run(contender, { redis, meter });
        const usage = await meter.collect();
        const cost = costs.get(c.id)!;
        cost.cpu.values.get(contender.name)!.push(usage.redisCpuMicros / c.tasks);
        cost.commands.values.get(contender.name)!.push(usage.totalCommands / c.tasks);
        console.error(
          `run ${run}/${RUNS} ${contender.name.padEnd(6)} ${c.title}: Redis ${
            format(usage.redisCpuMicros / c.tasks, 1)
          } µs and ${format(usage.totalCommands / c.tasks, 2)} commands per task`,
        );
        for (const [key, value] of values) {
          const target = ROWS.get(key)!;
          target.values.get(contender.name)!.push(value);
          target.throughput?.get(contender.name)?.push(chartValue(key, value));
          console.error(
            `run ${run}/${RUNS} ${contender.name.padEnd(6)} ${target.title}: ${
              format(value, target.digits)
            } ${target.unit}`,
          );
        }
      }
    }
  }

  const rows = [...ROWS.values()].filter((r) => [...r.values.values()].some((v) => v.length));
  const costRows = [...costs.values()];
  const table = markdownTable(rows, NAMES[0], NAMES[1]);
  const breakdown = commandBreakdown();
  console.log(`\n${ratioNote(NAMES[0], NAMES[1])}\n\n${table}\n`);
  console.log(`${costNote(NAMES[0], NAMES[1])}\n\n${costTable(costRows, NAMES[0], NAMES[1])}\n`);
  if (lastDrainCommands.size) console.log(`${breakdown}\n`);

  if (flags.values.out) {
    const command = Deno.args.length ? `deno task bench ${Deno.args.join(" ")}` : "deno task bench";
    const page = markdownPage(
      rows,
      NAMES,
      { ...info, runs: RUNS, command, date: new Date().toISOString().slice(0, 10) },
      costRows,
      lastDrainCommands.size ? [breakdown, ""] : [],
    );
    await Deno.mkdir(flags.values.out, { recursive: true });
    const pagePath = `${flags.values.out}/benchmarks.md`;
    await Deno.writeTextFile(pagePath, page + await handWritten(pagePath));
    await Deno.writeTextFile(
      `${flags.values.out}/bench.svg`,
      throughputSvg(rows, NAMES, RUNS, `${n(TASKS)} tasks unless said.`),
    );
    console.log(`wrote ${flags.values.out}/benchmarks.md and ${flags.values.out}/bench.svg`);
  }
}

/**
 * The hand-written part of the benchmarks page (how to run them, how to read them), from the
 * marker comment on: kept when the page is written again, so that only the figures change.
 */
async function handWritten(path: string): Promise<string> {
  let previous;
  try {
    previous = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
  const start = previous.indexOf("<!-- Everything above this line is written by `deno task bench`");
  return start < 0 ? "" : "\n" + previous.slice(start);
}

if (import.meta.main) await main();
