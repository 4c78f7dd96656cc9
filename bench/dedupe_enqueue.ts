/**
 * What task ids and deduplication keys cost a batch enqueue: 20,000 no-op tasks sent with
 * `enqueueMany`, with no id or key, each with its own `id`, each with its own `dedupe` key
 * (pending, throttle), and with both; paired rounds on one private Redis, the variants
 * interleaved, each round starting one variant later, so that the machine's noise falls on all of
 * them alike. With `BASELINE` set to another checkout's `mod.ts`, that checkout runs every
 * variant in every round too (`before:` rows): the plain batch shows the cost of the features
 * when unused, the others what a change to them gained. Prints, for each, the median tasks per
 * second, Redis CPU per task (`INFO cpu`, user + system: the scripts' own cost, less noisy on a
 * shared machine than the wall clock) and client CPU per task, each with the median of its ratios
 * to the plain batch of the same round and the middle half of those ratios. Run with
 * `deno task bench:dedupe` (`ROUNDS`, default 101: a round takes about a second, and a batch's
 * speed moves by a fifth from one round to the next on a shared machine).
 *
 * With `CALLGRIND=1` it counts instead the instructions Redis executes per task (Redis under
 * `valgrind --tool=callgrind`, 5,000 tasks per batch, after a warm-up batch with keys): counts that
 * do not depend on what else the machine runs, within about 2% from run to run (Lua's garbage
 * collector and Redis's hash tables grow at different moments), medians of `ROUNDS` (default 3).
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { type StartOptions, Worker } from "../mod.ts";
import { type RedisServer, startRedis } from "../tests/_redis.ts";
import { type ProfiledRedis, startProfiledRedis } from "./_callgrind.ts";

const CALLGRIND = Deno.env.get("CALLGRIND") === "1";
const COUNT = CALLGRIND ? 5_000 : 20_000;
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? (CALLGRIND ? "3" : "101"));

type Variant = (i: number, round: number) => StartOptions | undefined;

const VARIANTS: [string, Variant][] = [
  ["plain", () => undefined],
  ["id", (i, round) => ({ id: `order-${round}-${i}` })],
  ["dedupe pending", (i) => ({ dedupe: { key: `user-${i}` } })],
  ["dedupe throttle", (i) => ({ dedupe: { key: `user-${i}`, mode: "throttle", window: 60_000 } })],
  [
    "id + dedupe pending",
    (i, round) => ({ id: `order-${round}-${i}`, dedupe: { key: `user-${i}` } }),
  ],
];

await using redis: RedisServer & Partial<Pick<ProfiledRedis, "count">> = CALLGRIND
  ? await startProfiledRedis()
  : await startRedis();
let queues = 0;

interface Library {
  // deno-lint-ignore no-explicit-any
  Worker: new (options: any) => any;
}

/** `used_cpu_user` + `used_cpu_sys` of the Redis server, in µs. */
async function redisCpu(): Promise<number> {
  const info = await redis.cli("INFO", "cpu");
  const field = (name: string) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))![1]);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

interface Run {
  /** Tasks per second, wall clock. */
  rate: number;
  /** Redis CPU per task, µs. */
  cpu: number;
  /** This process's CPU per task (building, encoding, sending), µs. */
  client: number;
  /** With `CALLGRIND`, the instructions Redis executed per task. */
  instructions: number;
}

/** Enqueues COUNT tasks in one `enqueueMany` on a fresh queue. */
async function batch(library: Library, variant: Variant, round: number): Promise<Run> {
  const worker = new library.Worker({
    redisUrl: redis.url,
    queueName: `dedupe-bench-${queues++}`,
    logLevel: "warn",
    handleSignals: false,
  });
  try {
    const noop = worker.task(async function noop(_n: number): Promise<void> {});
    await worker.connect();
    const build = () =>
      Array.from({ length: COUNT }, (_, i) => {
        const options = variant(i, round);
        return options ? noop.enqueue(i).start(options) : noop.enqueue(i);
      });
    if (redis.count) {
      // Scripts loaded, the function's hashes made: what is counted is the batch's own work.
      await worker.enqueueMany(
        Array.from({ length: 200 }, (_, i) => noop.enqueue(i).start({ dedupe: { key: `w${i}` } })),
      );
      const tasks = build();
      const { instructions } = await redis.count(
        `batch-${queues}`,
        () => worker.enqueueMany(tasks),
      );
      return { rate: NaN, cpu: NaN, client: NaN, instructions: instructions / COUNT };
    }
    const cpuBefore = await redisCpu();
    const clientBefore = cpuUsage();
    const started = performance.now();
    await worker.enqueueMany(build());
    const rate = COUNT / ((performance.now() - started) / 1_000);
    const { user, system } = cpuUsage(clientBefore);
    return {
      rate,
      cpu: (await redisCpu() - cpuBefore) / COUNT,
      client: (user + system) / COUNT,
      instructions: NaN,
    };
  } finally {
    await worker.close();
    await redis.cli("FLUSHALL");
  }
}

const baselinePath = Deno.env.get("BASELINE");
const baseline: Library | undefined = baselinePath ? await import(baselinePath) : undefined;
const runs: [string, Library, Variant][] = VARIANTS.map(([name, v]) => [name, { Worker }, v]);
if (baseline) {
  runs.unshift(
    ...VARIANTS.map(([name, v]): [string, Library, Variant] => [`before: ${name}`, baseline, v]),
  );
}

const results = new Map<string, Run[]>(runs.map(([name]) => [name, []]));
if (!CALLGRIND) {
  await batch({ Worker }, VARIANTS[0][1], -1); // warm-up: scripts loaded, code compiled
  if (baseline) await batch(baseline, () => undefined, -1);
}
for (let round = 0; round < ROUNDS; round++) {
  // Each round starts one variant later, so that a drift of the machine's speed within a round
  // falls on every variant alike over the rounds.
  for (let k = 0; k < runs.length; k++) {
    const [name, library, variant] = runs[(round + k) % runs.length];
    results.get(name)!.push(await batch(library, variant, round));
  }
}

/** Wide enough for the longest row name, "before: id + dedupe pending". */
const NAME_WIDTH = Math.max(...runs.map(([name]) => name.length));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const plain = results.get("plain")!;
const medianOf = (runs: Run[], of: keyof Run) => median(runs.map((r) => r[of]));
const signed = (ratio: number) => `${ratio >= 1 ? "+" : ""}${((ratio - 1) * 100).toFixed(1)}%`;
/**
 * The median, over the rounds, of a measure against the plain batch of the same round, with the
 * middle half of those ratios: the machine's speed changes from round to round, so each variant
 * is compared with the plain batch run beside it, not with a median from other moments.
 */
const paired = (runs: Run[], of: keyof Run) => {
  const ratios = runs.map((r, round) => r[of] / plain[round][of]).sort((a, b) => a - b);
  const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))];
  return runs === plain
    ? "".padStart(22)
    : `${signed(at(0.5)).padStart(7)} (${signed(at(0.25))}…${signed(at(0.75))})`.padStart(22);
};
const cell = (runs: Run[], of: keyof Run, digits: number) =>
  `${medianOf(runs, of).toFixed(digits).padStart(9)} ${paired(runs, of)}`;
console.log(
  `enqueueMany of ${COUNT} tasks, ${ROUNDS} rounds: medians, and against the plain batch of the ` +
    "same round the median change with its middle half",
);
if (CALLGRIND) {
  console.log(`${"".padEnd(NAME_WIDTH)} ${"Redis instructions/task".padStart(32)}`);
  for (const [name, runs] of results) {
    console.log(`${name.padEnd(NAME_WIDTH)} ${cell(runs, "instructions", 0)}`);
  }
} else {
  console.log(
    `${"".padEnd(NAME_WIDTH)} ${"tasks/s".padStart(32)}  ${"Redis µs/task".padStart(32)}  ${
      "client µs/task".padStart(32)
    }`,
  );
  for (const [name, runs] of results) {
    console.log(
      `${name.padEnd(NAME_WIDTH)} ${cell(runs, "rate", 0)}  ${cell(runs, "cpu", 2)}  ${
        cell(runs, "client", 2)
      }`,
    );
  }
}
