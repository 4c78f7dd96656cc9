/**
 * Where the latency case's round trip goes: `deno task bench:latency-split` runs it (enqueue one
 * no-op task, wait for its result; a worker of concurrency 16 in another process) and splits each
 * round trip at the moment the task starts in the worker, read on the clock both processes share:
 *
 * - `enqueue`: until `await task.enqueue()` resolves in the enqueueing process;
 * - `to start`: from the enqueue's start until the task starts in the worker;
 * - `after start`: from the task's start until `handle.result()` resolves (the completion, and
 *   the result reaching the enqueueing process, or that process's own subscribe and read).
 *
 * It prints the p50, p90 and p99 of each, and the mean split of the slowest 1% of round trips.
 * `--mod=a/mod.ts,b/mod.ts` measures other checkouts (their `mod.ts`, in both processes),
 * alternating them round by round (`--rounds`, default 2; `--samples`, default 3000, after 300
 * round trips of warm-up). With `--one-call`, each round trip is `await task.enqueue().result()`,
 * whose wait subscribes while the task is sent (`enqueue` is then until the send's answer).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import { CHILD_RUN_ARGS, denoExecutable, readLines } from "./_child.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    samples: { type: "string", default: "3000" },
    rounds: { type: "string", default: "2" },
    mod: { type: "string", default: new URL("../mod.ts", import.meta.url).href },
    "one-call": { type: "boolean", default: false },
  },
});
const ONE_CALL = flags.values["one-call"];
const SAMPLES = Number(flags.values.samples);
const ROUNDS = Number(flags.values.rounds);
const WARMUP = 300;
const mods = flags.values.mod.split(",").map((m) => m.includes("://") ? m : `file://${m}`);

/** Each round trip's parts, in ms, by name. */
type Parts = Record<"total" | "enqueue" | "toStart" | "afterStart", number[]>;

const at = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.ceil(p * sorted.length) - 1];
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const now = () => performance.timeOrigin + performance.now();

await using redis = await startRedis();

/** One round of `SAMPLES` round trips against a worker process, both on checkout `mod`. */
async function round(mod: string): Promise<Parts> {
  const queue = uniqueQueue("split");
  const child = new Deno.Command(denoExecutable(), {
    args: [
      ...CHILD_RUN_ARGS,
      new URL("./_latency_split_worker.ts", import.meta.url).pathname,
      redis.url,
      queue,
      mod,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = readLines(child.stdout)[Symbol.asyncIterator]();
  if ((await lines.next()).value !== "ready") throw new Error("the worker process did not start");
  const { Worker } = await import(mod) as typeof import("../mod.ts");
  await using client = new Worker({
    redisUrl: redis.url,
    queueName: queue,
    logLevel: "warn",
    handleSignals: false,
  });
  const noop = client.task(async function noop(): Promise<void> {});
  await client.connect();
  const sent: number[] = [], enqueued: number[] = [], done: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const start = now();
    let result;
    let afterEnqueue;
    if (ONE_CALL) {
      const task = noop.enqueue();
      const waiting = task.result({ timeout: 10_000 });
      await task;
      afterEnqueue = now();
      result = await waiting;
    } else {
      const handle = await noop.enqueue();
      afterEnqueue = now();
      result = await handle.result({ timeout: 10_000 });
    }
    if (!result.success) throw new Error("a no-op task failed");
    if (i < WARMUP) continue;
    sent.push(start);
    enqueued.push(afterEnqueue);
    done.push(now());
  }
  await child.stdin.close();
  let starts: number[] | undefined;
  for (let line = await lines.next(); !line.done; line = await lines.next()) {
    if (line.value.startsWith("[")) starts = (JSON.parse(line.value) as number[]).slice(WARMUP);
  }
  if (!(await child.status).success) throw new Error("the worker process failed");
  if (starts?.length !== SAMPLES) throw new Error("the worker process ran another number of tasks");
  return {
    total: sent.map((s, i) => done[i] - s),
    enqueue: sent.map((s, i) => enqueued[i] - s),
    toStart: sent.map((s, i) => starts[i] - s),
    afterStart: starts.map((s, i) => done[i] - s),
  };
}

const byMod = new Map<string, Parts>(
  mods.map((m) => [m, { total: [], enqueue: [], toStart: [], afterStart: [] }]),
);
console.log(
  `redis: ${redis.url}; ${SAMPLES} round trips after ${WARMUP}, ${ROUNDS} round(s)${
    ONE_CALL ? ", each as one call: enqueue().result()" : ""
  }`,
);
for (let r = 0; r < ROUNDS; r++) {
  for (const mod of mods) {
    const parts = await round(mod);
    const all = byMod.get(mod)!;
    for (const key of Object.keys(parts) as (keyof Parts)[]) all[key].push(...parts[key]);
    console.log(
      `round ${r + 1}, ${mod}: p50 ${at(parts.total, 0.5).toFixed(2)} ms, p99 ${
        at(parts.total, 0.99).toFixed(2)
      } ms`,
    );
  }
}
const fixed = (x: number) => x.toFixed(2).padStart(6);
for (const [mod, parts] of byMod) {
  console.log(`\n${mod}, all rounds (ms):`);
  console.log(`  ${"".padEnd(12)} ${"p50".padStart(6)} ${"p90".padStart(6)} ${"p99".padStart(6)}`);
  const names = {
    total: "round trip",
    enqueue: "enqueue",
    toStart: "to start",
    afterStart: "after start",
  };
  for (const key of Object.keys(names) as (keyof Parts)[]) {
    const xs = parts[key];
    console.log(
      `  ${names[key].padEnd(12)} ${fixed(at(xs, 0.5))} ${fixed(at(xs, 0.9))} ${
        fixed(at(xs, 0.99))
      }`,
    );
  }
  const p99 = at(parts.total, 0.99);
  const slow = parts.total.map((t, i) => t >= p99 ? i : -1).filter((i) => i >= 0);
  const of = (key: keyof Parts) => mean(slow.map((i) => parts[key][i])).toFixed(2);
  console.log(
    `  slowest 1% (${slow.length}): enqueue ${of("enqueue")}, to start ${
      of("toStart")
    }, after start ${of("afterStart")}`,
  );
}
