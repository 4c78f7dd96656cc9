/**
 * streaq against BullMQ, side by side: `deno task bench` starts a private `redis-server` (a
 * free loopback port, never 6379) and runs both libraries through the same cases, alternating
 * them case by case (streaq, BullMQ, streaq, BullMQ, ...), `--runs` times. It prints a markdown
 * table of medians with streaq's advantage per line, and writes `docs/benchmarks.md` and the
 * chart `docs/bench.svg` (`--out=` writes nothing).
 *
 * The cases (`_cases.ts`): enqueue, drain, sleep, latency, lateness, several worker processes,
 * and the features of flow control, lifecycle and observability in use (ids, deduplication
 * keys, events, a rate limit, groups). Every case also gives the Redis CPU time and the Redis
 * commands per task it cost, for both libraries: the second table of the page.
 *
 * For profiling, `--only=drain-32,latency` runs some cases only (the ids are listed when one is unknown) and
 * `--libraries=streaq` one library only. `--events` runs streaq's workers with the `events`
 * option, to measure what writing events costs; `--commands` prints each case's Redis commands
 * per task, by command.
 *
 * @module
 */

import os from "node:os";
import { parseArgs } from "node:util";
import { startRedis } from "../tests/_redis.ts";
import type { RedisServer } from "../tests/_redis.ts";
import { bullmq } from "./bullmq_cases.ts";
import type { Contender } from "./_contender.ts";
import { benchmarkCases, type Case } from "./_cases.ts";
import { collectGarbage, infoFields, Meter } from "./_meter.ts";
import {
  costNote,
  type CostRow,
  costTable,
  format,
  markdownPage,
  markdownTable,
  ratioNote,
  type Row,
  throughputSvg,
} from "./_report.ts";
import { streaq, useEvents } from "./streaq_cases.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "20000" },
    "sleep-tasks": { type: "string", default: "2000" },
    samples: { type: "string", default: "5000" },
    only: { type: "string", default: "" },
    libraries: { type: "string", default: "streaq,bullmq" },
    out: { type: "string", default: "docs" },
    /** streaq's workers write events (the `events` option): to measure what they cost. */
    events: { type: "boolean", default: false },
    /** Print each case's commands per task, by command, as it runs: where Redis time goes. */
    commands: { type: "boolean", default: false },
  },
});
useEvents(flags.values.events);
const RUNS = positive("runs", flags.values.runs);
const TASKS = positive("tasks", flags.values.tasks);
const SLEEP_TASKS = positive("sleep-tasks", flags.values["sleep-tasks"]);
const SAMPLES = positive("samples", flags.values.samples);
const WARMUP_TASKS = 2_000;
const ALL: readonly Contender[] = [streaq, bullmq];
const NAMES = ALL.map((c) => c.name);
const CONTENDERS = ALL.filter((c) =>
  flags.values.libraries.toLowerCase().split(",").includes(c.name.toLowerCase())
);
const { rows: ROWS, cases: CASES, lastDrainCommands, chartValue } = benchmarkCases({
  tasks: TASKS,
  sleepTasks: SLEEP_TASKS,
  samples: SAMPLES,
  names: NAMES,
});

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

function tryOr<T>(read: () => T, fallback: T): T {
  try {
    return read() ?? fallback;
  } catch {
    return fallback;
  }
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
    lines.push(`- ${name}: ${commandList(commands, TASKS)}`);
  }
  return lines.join("\n");
}

/** "set 1.00, del 1.00, ...": calls per task by command, most first, the rare ones left out. */
function commandList(commands: ReadonlyMap<string, number>, tasks: number): string {
  return [...commands.entries()]
    .sort((a, b) => b[1] - a[1])
    .filter(([, calls]) => calls / tasks >= 0.005)
    .map(([command, calls]) => `${command} ${format(calls / tasks, 2)}`)
    .join(", ");
}

/** Runs one case for one library on an emptied Redis, and files its figures. */
async function runOnce(
  c: Case,
  contender: Contender,
  redis: RedisServer,
  cost: CostRow,
  label: string,
): Promise<void> {
  await freshRedis(redis);
  collectGarbage();
  const meter = new Meter(redis);
  const values = await c.run(contender, { redis, meter });
  const usage = await meter.collect();
  const name = contender.name;
  cost.cpu.values.get(name)!.push(usage.redisCpuMicros / c.tasks);
  cost.commands.values.get(name)!.push(usage.totalCommands / c.tasks);
  console.error(
    `${label} ${name.padEnd(6)} ${c.title}: Redis ${
      format(usage.redisCpuMicros / c.tasks, 1)
    } µs ` +
      `and ${format(usage.totalCommands / c.tasks, 2)} commands per task`,
  );
  if (flags.values.commands) console.error(`  ${commandList(usage.commands, c.tasks)}`);
  for (const [key, value] of values) {
    const row = ROWS.get(key)!;
    row.values.get(name)!.push(value);
    row.throughput?.get(name)?.push(chartValue(key, value));
    console.error(
      `${label} ${name.padEnd(6)} ${row.title}: ${format(value, row.digits)} ${row.unit}`,
    );
  }
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
        await runOnce(c, contender, redis, costs.get(c.id)!, `run ${run}/${RUNS}`);
      }
    }
  }

  const rows = [...ROWS.values()].filter((r) => [...r.values.values()].some((v) => v.length));
  const costRows = [...costs.values()].filter((r) =>
    [...r.cpu.values.values()].some((v) => v.length)
  );
  const table = markdownTable(rows, NAMES[0], NAMES[1]);
  const breakdown = commandBreakdown();
  console.log(`\n${ratioNote(NAMES[0], NAMES[1])}\n\n${table}\n`);
  console.log(`${costNote(NAMES[0], NAMES[1])}\n\n${costTable(costRows, NAMES[0], NAMES[1])}\n`);
  if (lastDrainCommands.size) console.log(`${breakdown}\n`);

  if (flags.values.out) await writePage(flags.values.out, rows, costRows, info, breakdown);
}

/** Writes `benchmarks.md` (keeping its hand-written part) and `bench.svg` into `dir`. */
async function writePage(
  dir: string,
  rows: readonly Row[],
  costRows: readonly CostRow[],
  info: { machine: string; versions: string },
  breakdown: string,
): Promise<void> {
  const command = Deno.args.length ? `deno task bench ${Deno.args.join(" ")}` : "deno task bench";
  const page = markdownPage(
    rows,
    NAMES,
    { ...info, runs: RUNS, command, date: new Date().toISOString().slice(0, 10) },
    costRows,
    lastDrainCommands.size ? [breakdown, ""] : [],
  );
  await Deno.mkdir(dir, { recursive: true });
  const pagePath = `${dir}/benchmarks.md`;
  await Deno.writeTextFile(pagePath, page + await handWritten(pagePath));
  await Deno.writeTextFile(
    `${dir}/bench.svg`,
    throughputSvg(rows, NAMES, RUNS, `${format(TASKS, 0)} tasks unless said.`),
  );
  console.log(`wrote ${dir}/benchmarks.md and ${dir}/bench.svg`);
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
