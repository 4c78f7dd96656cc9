/**
 * Fair groups: `GROUPS` groups of `PER_GROUP` no-op tasks, enqueued group after group (the worst
 * order for first-in first-out), drained by two workers of concurrency 32 on one Redis, with the
 * tasks grouped (`group` option, 1 slot per group) and, for comparison, without groups. Prints,
 * per run (two rounds, alternated): the time from the first start to the last completion, the
 * Redis CPU per task, and the spread of times per group: each group's first start and last
 * completion as a fraction of that span (p1, p50, p99).
 * Served in turns, every group starts early and finishes late; first in first out, the first
 * group finishes at once and the last waits for everything.
 *
 * Then the Redis memory a group costs: `MEMORY_GROUPS` groups of 2 tasks, one running and one set
 * aside, with the sum of `MEMORY USAGE` of the keys groups add (each group's slots and held list,
 * and the function's set of active groups) per group. Run with `deno task bench:groups`.
 *
 * @module
 */

import { Redis } from "ioredis";
import { Worker } from "../mod.ts";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import { infoFields } from "./_meter.ts";

const GROUPS = 1_000;
const PER_GROUP = 20;
const CONCURRENCY = 32;
const MEMORY_GROUPS = 10_000;
const ROUNDS = 2;

await using redis = await startRedis();

async function redisCpuMicros(): Promise<number> {
  const cpu = infoFields(await redis.cli("INFO", "cpu"));
  return (Number(cpu.get("used_cpu_user")) + Number(cpu.get("used_cpu_sys"))) * 1e6;
}

interface Drain {
  ms: number;
  cpuPerTask: number;
  /** Per group, its first start and its last completion (ms from the drain's start). */
  first: number[];
  last: number[];
}

async function drain(grouped: boolean): Promise<Drain> {
  const queueName = uniqueQueue("groups");
  const first = new Array<number>(GROUPS).fill(Infinity);
  const last = new Array<number>(GROUPS).fill(0);
  let t0 = 0;
  const workers = [0, 1].map(() =>
    new Worker({
      redisUrl: redis.url,
      queueName,
      concurrency: CONCURRENCY,
      logLevel: "warn",
      handleSignals: false,
    })
  );
  const tasks = workers.map((w) =>
    w.task(async function noop(group: number): Promise<void> {
      first[group] = Math.min(first[group], performance.now() - t0);
      await Promise.resolve();
      last[group] = Math.max(last[group], performance.now() - t0);
    }, { silent: true, ...(grouped ? { group: (group: number) => `g${group}` } : {}) })
  );
  const handles = await workers[0].enqueueMany(
    Array.from(
      { length: GROUPS * PER_GROUP },
      (_, i) => tasks[0].enqueue(Math.floor(i / PER_GROUP)),
    ),
  );
  const cpuBefore = await redisCpuMicros();
  t0 = performance.now();
  const running = workers.map((w) => w.run());
  await Promise.all(handles.map((h) => h.result({ timeout: 300_000 })));
  const ms = Math.max(...last);
  const cpuPerTask = (await redisCpuMicros() - cpuBefore) / (GROUPS * PER_GROUP);
  for (const w of workers) w.stop();
  await Promise.all(running);
  await Promise.all(workers.map((w) => w.close()));
  return { ms, cpuPerTask, first, last };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A run's row; times count from its first start (the workers' start-up is left out). */
function row(label: string, d: Drain): string {
  const start = Math.min(...d.first);
  const span = d.ms - start;
  const f = (values: number[]) =>
    [0.01, 0.5, 0.99].map((q) => ((quantile(values, q) - start) / span).toFixed(2)).join(" / ");
  return `| ${label} | ${span.toFixed(0)} ms | ${d.cpuPerTask.toFixed(1)} µs | ${f(d.first)} | ${
    f(d.last)
  } |`;
}

/** Memory: MEMORY_GROUPS groups of 2 tasks, one running (blocked) and one set aside. */
async function memoryPerGroup(): Promise<{ bytes: number; groups: number; keys: number }> {
  const queueName = uniqueQueue("groupmem");
  const release = Promise.withResolvers<void>();
  const worker = new Worker({
    redisUrl: redis.url,
    queueName,
    concurrency: MEMORY_GROUPS * 2,
    logLevel: "warn",
    handleSignals: false,
  });
  const hold = worker.task(async function hold(group: number): Promise<number> {
    await release.promise;
    return group;
  }, { silent: true, group: (group: number) => `customer-${group}` });
  const handles = await worker.enqueueMany(
    Array.from({ length: MEMORY_GROUPS * 2 }, (_, i) => hold.enqueue(i % MEMORY_GROUPS)),
  );
  const running = worker.run();
  const client = new Redis(redis.url);
  const prefix = `streaq:{${queueName}}:`;
  let keys: string[] = [];
  const expected = 2 * MEMORY_GROUPS + 1;
  for (let tries = 0; keys.length < expected && tries < 600; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    keys = [];
    for (const pattern of ["gactive:*", "held:hold *", "groups:*"]) {
      let cursor = "0";
      do {
        const [next, found] = await client.scan(cursor, "MATCH", prefix + pattern, "COUNT", 10_000);
        keys.push(...found);
        cursor = next;
      } while (cursor !== "0");
    }
  }
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.memory("USAGE", key, "SAMPLES", "0");
  const sizes = (await pipeline.exec() ?? []).map(([, size]) => Number(size));
  const bytes = sizes.reduce((a, b) => a + b, 0);
  const groups = await client.zcard(prefix + "groups:hold");
  release.resolve();
  await Promise.all(handles.map((h) => h.result({ timeout: 300_000 })));
  worker.stop();
  await running;
  await worker.close();
  client.disconnect();
  return { bytes, groups, keys: keys.length };
}

// Two rounds, alternated: the first drain of a process also pays for warming up.
const rounds: [Drain, Drain][] = [];
for (let round = 0; round < ROUNDS; round++) rounds.push([await drain(false), await drain(true)]);
console.log(
  `${GROUPS} groups of ${PER_GROUP} no-op tasks, enqueued group after group; 2 workers of concurrency ${CONCURRENCY}`,
);
console.log("");
console.log(
  "| run | first start to last completion | Redis CPU per task | first start per group (p1 / p50 / p99 of that span) | last completion per group (p1 / p50 / p99) |",
);
console.log("| --- | --- | --- | --- | --- |");
rounds.forEach(([plain, grouped], round) => {
  console.log(row(`without groups (round ${round + 1})`, plain));
  console.log(row(`grouped, 1 slot per group (round ${round + 1})`, grouped));
});
const memory = await memoryPerGroup();
console.log("");
console.log(
  `Memory: ${memory.groups} active groups (one task running, one set aside each): ${memory.keys} keys of groups, ${
    (memory.bytes / memory.groups).toFixed(0)
  } bytes per group (MEMORY USAGE)`,
);
