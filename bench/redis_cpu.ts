/**
 * What Redis spends per task: drains `--tasks` no-op tasks (default 20,000) with one worker of
 * concurrency `--concurrency` (32) on a private Redis, and prints Redis CPU per task (`INFO cpu`
 * delta, user + system), commands per task and, per command, calls per task and µs per call
 * (`INFO commandstats`; commands run by a script count one each, besides its `EVALSHA`).
 *
 * `--phases` measures the three phases of a task one after the other, each for all tasks, in
 * calls of `--concurrency` deliveries (as a busy worker makes them): claim (XREADGROUP and the
 * read of each task), start (the try counted, the task marked running) and completion (result
 * stored, hash deleted, entry acknowledged and deleted). Each delivery counts as fresh (claimed
 * just now), as most of a busy worker's are, whatever the time the phases before it took.
 *
 * `--callgrind` runs Redis under `valgrind --tool=callgrind` and adds the instructions Redis
 * executes per task (drain and phases; `--tasks` default 5,000): the same on a busy machine as
 * on a quiet one. `--annotate` also prints the functions that take the most (inclusive).
 *
 * `--baseline=<checkout>` (a directory holding another version's `mod.ts`) runs that version too,
 * alternated with this one in every round (`--rounds`, default 3), so that both see the same
 * machine. Run with `deno task bench:redis-cpu [options]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import type { RedisServer } from "../tests/_redis.ts";
import { infoFields } from "./_meter.ts";
import { inclusiveCounts, type ProfiledRedis, startProfiledRedis } from "./_callgrind.ts";

const options = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string" },
    concurrency: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
    baseline: { type: "string" },
    phases: { type: "boolean", default: false },
    callgrind: { type: "boolean", default: false },
    annotate: { type: "boolean", default: false },
  },
}).values;
const CALLGRIND = options.callgrind;
const TASKS = Number(options.tasks ?? (CALLGRIND ? 5_000 : 20_000));
const CONCURRENCY = Number(options.concurrency);
const ROUNDS = Number(options.rounds);
/** Tasks drained before each measured drain: scripts loaded and code compiled. */
const WARMUP = 500;

// deno-lint-ignore no-explicit-any
type Any = any;

/** One version of streaq: its public entry point and the internals the phases drive. */
interface Library {
  readonly name: string;
  readonly Worker: new (options: Any) => Any;
  readonly queueContextOf: (worker: Any) => Any;
  readonly createConsumerGroups: (ctx: Any) => Promise<void>;
  readonly fetchDeliveries: (...args: Any[]) => Promise<{ deliveries: Any[] }>;
  readonly asStarted: (d: Any) => Any;
  readonly DeliveryWriter: new (ctx: Any, workerId: string) => Any;
}

async function load(name: string, root: URL): Promise<Library> {
  const at = (path: string) => import(new URL(path, root).href);
  const [mod, worker, startup, fetch, complete] = await Promise.all([
    at("mod.ts"),
    at("src/worker.ts"),
    at("src/run/startup.ts"),
    at("src/run/fetch.ts"),
    at("src/run/complete.ts"),
  ]);
  return {
    name,
    Worker: mod.Worker,
    queueContextOf: worker.queueContextOf,
    createConsumerGroups: startup.createConsumerGroups,
    fetchDeliveries: fetch.fetchDeliveries,
    // Checkouts before 03f7480 have it; later ones mark a delivery started where it runs.
    asStarted: fetch.asStarted ?? ((d: Any) => ({ ...d, started: true })),
    DeliveryWriter: complete.DeliveryWriter,
  };
}

/** What Redis did for a piece of work, per task. */
interface PerTask {
  cpu: number;
  commands: number;
  /** Per command: calls per task and µs per call. */
  byCommand: Map<string, { calls: number; usec: number }>;
  /** Instructions per task, under callgrind. */
  instructions?: number;
  file?: string;
}

async function redisCpuMicros(redis: RedisServer): Promise<number> {
  const cpu = infoFields(await redis.cli("INFO", "cpu"));
  return (Number(cpu.get("used_cpu_user")) + Number(cpu.get("used_cpu_sys"))) * 1e6;
}

/** Measures `work` (which handles `tasks` tasks) on `redis`. */
async function measure(
  redis: RedisServer,
  label: string,
  tasks: number,
  work: () => Promise<void>,
): Promise<PerTask> {
  await redis.cli("CONFIG", "RESETSTAT");
  const before = await redisCpuMicros(redis);
  let counted: { instructions: number; file: string } | undefined;
  if (CALLGRIND) counted = await (redis as ProfiledRedis).count(label, work);
  else await work();
  const cpu = (await redisCpuMicros(redis) - before) / tasks;
  const byCommand = new Map<string, { calls: number; usec: number }>();
  let commands = 0;
  for (const [field, value] of infoFields(await redis.cli("INFO", "commandstats"))) {
    const name = field.replace(/^cmdstat_/, "");
    if (name === field || name === "info" || name.startsWith("config")) continue;
    const calls = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
    const usec = Number(/usec_per_call=([\d.]+)/.exec(value)?.[1] ?? 0);
    byCommand.set(name, { calls: calls / tasks, usec });
    commands += calls;
  }
  return {
    cpu,
    commands: commands / tasks,
    byCommand,
    instructions: counted && counted.instructions / tasks,
    file: counted?.file,
  };
}

function newWorker(lib: Library, redis: RedisServer): Any {
  return new lib.Worker({
    redisUrl: redis.url,
    queueName: uniqueQueue("rcpu"),
    concurrency: CONCURRENCY,
    logLevel: "warn",
    handleSignals: false,
  });
}

/** Runs the worker until `total` tasks completed, then stops it. */
async function runUntil(worker: Any, total: number): Promise<void> {
  const running = worker.run();
  while (worker.counters.completed < total) {
    if (worker.counters.failed > 0) throw new Error(JSON.stringify(worker.counters));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  worker.stop();
  await running;
}

/** A drain of TASKS no-op tasks, after a warm-up drain by the same worker. */
async function drain(lib: Library, redis: RedisServer): Promise<PerTask> {
  const worker = newWorker(lib, redis);
  try {
    const noop = worker.task(async function noop(): Promise<void> {});
    await worker.enqueueMany(Array.from({ length: WARMUP }, () => noop.enqueue()));
    await runUntil(worker, WARMUP);
    await worker.enqueueMany(Array.from({ length: TASKS }, () => noop.enqueue()));
    return await measure(redis, `${lib.name}-drain`, TASKS, () => runUntil(worker, WARMUP + TASKS));
  } finally {
    await worker.close();
  }
}

/** A delivery as if claimed just now. */
const fresh = (d: Any): Any => ({ ...d, claimedAt: performance.now() });

/** The phases of TASKS tasks: claim all, start all, complete all, CONCURRENCY per call. */
async function phases(lib: Library, redis: RedisServer): Promise<Map<string, PerTask>> {
  const worker = newWorker(lib, redis);
  const out = new Map<string, PerTask>();
  try {
    const noop = worker.task(async function noop(): Promise<void> {});
    await worker.connect();
    const ctx = lib.queueContextOf(worker);
    await lib.createConsumerGroups(ctx);
    const writer = new lib.DeliveryWriter(ctx, "phases");
    const round = async () => {
      await worker.enqueueMany(Array.from({ length: TASKS }, () => noop.enqueue()));
      const deliveries: Any[] = [];
      const chunks = () =>
        Array.from(
          { length: Math.ceil(deliveries.length / CONCURRENCY) },
          (_, i) => deliveries.slice(i * CONCURRENCY, (i + 1) * CONCURRENCY),
        );
      const claim = async () => {
        while (deliveries.length < TASKS) {
          const { deliveries: got } = await lib.fetchDeliveries(
            ctx,
            "phases",
            ctx.prioritiesHighFirst,
            0,
            CONCURRENCY,
            0,
          );
          deliveries.push(...got);
        }
      };
      const start = async () => {
        for (const chunk of chunks()) await Promise.all(chunk.map((d) => writer.start(fresh(d))));
      };
      const complete = async () => {
        for (const chunk of chunks()) {
          await Promise.all(chunk.map(async (d) => {
            const now = Date.now();
            const { blob } = await ctx.envelope.sealResult({
              taskId: d.taskId,
              fnName: d.fnName,
              createdTime: d.createdTime,
              enqueueTime: d.enqueueTime,
              startTime: now,
              finishTime: now,
              tries: 1,
              workerId: "phases",
              success: true,
              value: undefined,
            });
            const completion = { kind: "final", result: blob, ttl: 300_000 };
            await writer.complete(lib.asStarted(fresh(d)), completion);
          }));
        }
      };
      return { claim, start, complete };
    };
    // Warm-up: the scripts loaded on this connection, the code compiled.
    const warm = await round();
    await warm.claim();
    await warm.start();
    await warm.complete();
    const measured = await round();
    for (const phase of ["claim", "start", "complete"] as const) {
      out.set(phase, await measure(redis, `${lib.name}-${phase}`, TASKS, measured[phase]));
    }
    return out;
  } finally {
    await worker.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fixed = (x: number | undefined, digits = 2) => x === undefined ? "-" : x.toFixed(digits);

function line(label: string, r: PerTask): string {
  const ir = r.instructions === undefined ? "" : `  ${Math.round(r.instructions)} instr/task`;
  return `${label.padEnd(26)} ${fixed(r.cpu).padStart(7)} µs/task  ${
    fixed(r.commands).padStart(6)
  } commands/task${ir}`;
}

function commandTable(r: PerTask): string {
  return [...r.byCommand].sort((a, b) => b[1].calls * b[1].usec - a[1].calls * a[1].usec)
    .map(([name, { calls, usec }]) =>
      `    ${name.padEnd(14)} ${calls.toFixed(3).padStart(8)} calls/task ${
        usec.toFixed(2).padStart(8)
      } µs/call`
    ).join("\n");
}

const libraries = [await load("this", new URL("../", import.meta.url))];
if (options.baseline) {
  const root = new URL(options.baseline.replace(/\/?$/, "/"), `file://${Deno.cwd()}/`);
  libraries.unshift(await load("baseline", root));
}

await using redis = CALLGRIND ? await startProfiledRedis() : await startRedis();
console.log(
  `${TASKS} no-op tasks, concurrency ${CONCURRENCY}, ${ROUNDS} round(s)${
    CALLGRIND ? ", Redis under callgrind" : ""
  }`,
);
const results = new Map<string, PerTask[]>();
const record = (label: string, r: PerTask) => {
  results.set(label, [...(results.get(label) ?? []), r]);
  console.log(line(label, r));
};
for (let round = 0; round < ROUNDS; round++) {
  console.log(`round ${round + 1}`);
  for (const lib of libraries) {
    record(`${lib.name} drain`, await drain(lib, redis));
    if (options.phases) {
      for (const [phase, r] of await phases(lib, redis)) record(`${lib.name} ${phase}`, r);
    }
    await redis.cli("FLUSHALL");
  }
}
console.log(`medians of ${ROUNDS}`);
for (const [label, runs] of results) {
  const mid = runs.find((r) => r.cpu === median(runs.map((x) => x.cpu)))!;
  console.log(line(label, {
    ...mid,
    commands: median(runs.map((r) => r.commands)),
    instructions: runs[0].instructions === undefined
      ? undefined
      : median(runs.map((r) => r.instructions!)),
  }));
  console.log(commandTable(mid));
  if (options.annotate && mid.file) {
    for (const [fn, ir] of (await inclusiveCounts(mid.file)).slice(0, 40)) {
      console.log(`    ${(ir / TASKS).toFixed(0).padStart(9)} instr/task  ${fn}`);
    }
  }
}
