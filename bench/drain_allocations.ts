/**
 * What a draining worker allocates per task: `deno task bench:drain-alloc` starts a private
 * `redis-server` and, per checkout (`--mod=a/mod.ts,b/mod.ts`, alternated round by round over
 * `--rounds`), a child process that drains `--tasks` no-op tasks (default 20,000) at
 * `--concurrency` (32) after a warm-up drain, with V8's sampling heap profiler on during the
 * measured drain (garbage included, see `_alloc_sites.ts`). It prints the sampled heap bytes per
 * drained task (a sample every 256 bytes on average: within a few percent from run to run), and
 * with `--top=N` the N sites that allocate most. Byte counts do not depend on the machine's load,
 * unlike the CPU per task of `deno task bench:depth`; `deno task bench:alloc` measures the
 * latency case's round trip instead, one task at a time.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import { CHILD_RUN_ARGS, denoExecutable, readLines } from "./_child.ts";
import { median } from "./_gc_trace.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    mod: { type: "string", default: new URL("../mod.ts", import.meta.url).pathname },
    rounds: { type: "string", default: "3" },
    tasks: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "32" },
    top: { type: "string", default: "0" },
  },
});
const MODS = flags.values.mod.split(",").map((path) => new URL(path, `file://${Deno.cwd()}/`).href);
const ROUNDS = Number(flags.values.rounds);

/** What a child prints: the sampled bytes per task, and its top sites. */
interface Report {
  readonly bytesPerTask: number;
  readonly sites: string[];
}

await using redis = await startRedis();
const results = new Map<string, number[]>(MODS.map((mod) => [mod, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const mod of MODS) {
    const report = await drainInChild(mod, uniqueQueue("drain-alloc"));
    results.get(mod)!.push(report.bytesPerTask);
    console.log(`round ${round}, ${mod}: ${report.bytesPerTask.toFixed(0)} B/task sampled`);
    for (const site of report.sites) console.log(`  ${site}`);
  }
}
console.log(
  `\ndrain of ${flags.values.tasks} no-op tasks at concurrency ${flags.values.concurrency}, medians:`,
);
for (const [mod, bytes] of results) {
  console.log(`  ${median(bytes).toFixed(0)} B/task sampled  ${mod}`);
}

/** Runs this file as the draining child for checkout `mod`; returns what it reported. */
async function drainInChild(mod: string, queue: string): Promise<Report> {
  const child = new Deno.Command(denoExecutable(), {
    args: [
      ...CHILD_RUN_ARGS,
      // node:inspector's Session asks for "inspector", which --allow-sys=... cannot name.
      "--allow-sys",
      "--v8-flags=--expose-gc",
      new URL("./_drain_alloc_child.ts", import.meta.url).pathname,
      mod,
      redis.url,
      queue,
      flags.values.tasks,
      flags.values.concurrency,
      flags.values.top,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let report: Report | undefined;
  for await (const line of readLines(child.stdout)) {
    if (line.startsWith("{")) report = JSON.parse(line);
  }
  const status = await child.status;
  if (!status.success || !report) throw new Error(`the drain of ${mod} failed (${status.code})`);
  return report;
}
