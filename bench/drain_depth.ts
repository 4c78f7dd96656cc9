/**
 * Whether a draining worker and Redis wait for each other: one worker drains 20,000 no-op tasks
 * at each concurrency of `CONCURRENCY` (default `1,4,32`), and for each drain this prints the
 * tasks per second, the CPU per task of Redis (`INFO cpu`) and of this process, the share of
 * the drain Redis was busy, and how often the worker ran out of work: this process's voluntary
 * context switches per 1,000 tasks (a thread that blocks with nothing to do switches
 * voluntarily; one that is preempted does not). On a shared machine the tasks per second follow
 * the neighbours' load, but the switches and the CPU per task follow the structure of the
 * pipeline: a worker whose read-ahead is too shallow runs dry before its refill comes back, and
 * pays a round trip's overhead for fewer tasks. With `BASELINE` set to another checkout's
 * `mod.ts`, that checkout drains in every round too, interleaved. Medians over `ROUNDS`
 * (default 5). Run with `deno task bench:depth`.
 *
 * @module
 */

import { cpuUsage, resourceUsage } from "node:process";
import { Worker } from "../mod.ts";
import { startRedis } from "../tests/_redis.ts";
import { readyToDrain, runUntil } from "./_noop_drain.ts";

const COUNT = 20_000;
const WARMUP = 2_000;
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? "5");
const CONCURRENCIES = (Deno.env.get("CONCURRENCY") ?? "1,4,32").split(",").map(Number);

interface Library {
  // deno-lint-ignore no-explicit-any
  Worker: new (options: any) => any;
}

interface Drain {
  /** Tasks per second, wall clock. */
  rate: number;
  /** Redis CPU per task, µs. */
  redisCpu: number;
  /** This process's CPU per task, µs. */
  workerCpu: number;
  /** The share of the drain's wall time Redis spent on CPU. */
  redisBusy: number;
  /** Times this process ran out of work (voluntary context switches), per 1,000 tasks. */
  workerIdle: number;
}

await using redis = await startRedis();
let queues = 0;

/** `used_cpu_user` + `used_cpu_sys` of the Redis server, in µs. */
async function redisCpu(): Promise<number> {
  const info = await redis.cli("INFO", "cpu");
  const field = (name: string) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))![1]);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

async function drain(library: Library, concurrency: number): Promise<Drain> {
  const worker = await readyToDrain(
    library.Worker,
    { redisUrl: redis.url, queueName: `depth-${queues++}`, concurrency },
    WARMUP,
    COUNT,
  );
  const redisCpu0 = await redisCpu();
  const switches0 = resourceUsage().voluntaryContextSwitches;
  const cpu0 = cpuUsage();
  const started = performance.now();
  await runUntil(worker, WARMUP + COUNT);
  const ms = performance.now() - started;
  const cpu = cpuUsage(cpu0);
  const switches = resourceUsage().voluntaryContextSwitches - switches0;
  const redisCpu1 = await redisCpu();
  await worker.close();
  return {
    rate: COUNT / (ms / 1000),
    redisCpu: (redisCpu1 - redisCpu0) / COUNT,
    workerCpu: (cpu.user + cpu.system) / COUNT,
    redisBusy: (redisCpu1 - redisCpu0) / 1000 / ms,
    workerIdle: switches / COUNT * 1000,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const baselinePath = Deno.env.get("BASELINE");
const libraries: [string, Library][] = [["this checkout", { Worker }]];
if (baselinePath) libraries.push(["baseline", await import(baselinePath)]);

const results = new Map<string, Drain[]>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const concurrency of CONCURRENCIES) {
    for (const [name, library] of libraries) {
      const key = `${name}, concurrency ${concurrency}`;
      const result = await drain(library, concurrency);
      results.set(key, [...results.get(key) ?? [], result]);
      const shown = JSON.stringify(result, (_, v) => typeof v === "number" ? +v.toFixed(2) : v);
      console.error(`round ${round} ${key}: ${shown}`);
    }
  }
}

console.log(
  "\n| drain of 20,000 | tasks/s | Redis µs/task | worker µs/task | Redis busy | worker idle /1k |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [key, runs] of results) {
  const m = (pick: (d: Drain) => number, digits: number) => median(runs.map(pick)).toFixed(digits);
  console.log(
    `| ${key} | ${m((d) => d.rate, 0)} | ${m((d) => d.redisCpu, 1)} | ${
      m((d) => d.workerCpu, 1)
    } | ${m((d) => d.redisBusy, 2)} | ${m((d) => d.workerIdle, 1)} |`,
  );
}
