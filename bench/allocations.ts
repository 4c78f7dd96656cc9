/**
 * What one task allocates in each process of the latency case, and the garbage collections that
 * follow: `deno task bench:alloc` starts a private `redis-server`, a streaq worker process
 * (`_alloc_worker.ts`) and an enqueueing process (`_alloc_client.ts`), both with
 * `--v8-flags=--trace-gc,--expose-gc`, and runs the latency case's round trip (enqueue one no-op
 * task, wait for its result) `--samples` times after `--warmup` round trips. It prints, per
 * process:
 *
 * - heap bytes per enqueue (`await task.enqueue()`), per result wait (`await handle.result()`)
 *   and per delivered task (the worker's cycle from one task's start to the next: completing it,
 *   waiting for and fetching the next, running it): medians of the round trips that no collection
 *   interrupted, read from `Deno.memoryUsage().heapUsed` (exact between two collections);
 * - heap bytes per task over the whole window, from the sizes V8 traces at each collection
 *   (everything: timers, sockets, the Redis client);
 * - scavenges and their pauses (total and longest) per 1,000 tasks, and mark-compacts.
 *
 * Byte counts do not depend on the machine's load; pauses do (V8's scavenger uses helper
 * threads). `--mod=a/mod.ts,b/mod.ts` measures other checkouts (their `mod.ts`), alternating
 * them round by round (`--rounds`); `--v8=--max-semi-space-size=16` adds V8 flags to both
 * processes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import { CHILD_RUN_ARGS, denoExecutable, readLines } from "./_child.ts";
import { type GcWindow, gcWindow, isV8Line, median } from "./_gc_trace.ts";
import type { WorkerReport } from "./_alloc_worker.ts";
import type { ClientReport } from "./_alloc_client.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    samples: { type: "string", default: "2000" },
    warmup: { type: "string", default: "300" },
    rounds: { type: "string", default: "1" },
    mod: { type: "string", default: new URL("../mod.ts", import.meta.url).pathname },
    v8: { type: "string", default: "" },
    sites: { type: "boolean", default: false },
    /** With --sites: only what is still in the heap at the end (outlived scavenges). */
    retained: { type: "boolean", default: false },
    /** A directory to write each process's output (with its raw GC trace) to. */
    "trace-out": { type: "string", default: "" },
  },
});
const SAMPLES = Number(flags.values.samples);
const WARMUP = Number(flags.values.warmup);
const ROUNDS = Number(flags.values.rounds);
const MODS = flags.values.mod.split(",").map((path) => new URL(path, `file://${Deno.cwd()}/`).href);

/** One process's output: its trace lines and its last other line. */
interface Output {
  readonly gc: string[];
  readonly lines: string[];
  /** Every line, in order. */
  readonly all: string[];
}

const END = Symbol("end of output") as unknown as string;

/** A child `deno run` with GC tracing, its stdout read into an {@linkcode Output}. */
function spawn(script: string, args: string[]) {
  const v8 = ["--trace-gc", "--expose-gc", ...flags.values.v8.split(",").filter(Boolean)];
  const child = new Deno.Command(denoExecutable(), {
    args: [
      ...CHILD_RUN_ARGS,
      // node:inspector's Session asks for "inspector", which --allow-sys=... cannot name.
      ...(flags.values.sites ? ["--allow-sys"] : []),
      `--v8-flags=${v8.join(",")}`,
      new URL(script, import.meta.url).pathname,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output: Output = { gc: [], lines: [], all: [] };
  let onLine = (_line: string) => {};
  const read = (async () => {
    // V8 writes its trace through a buffer of its own, which may be flushed around the report
    // at exit: a trace line can stop where the report starts and go on in the next line.
    let carried = "";
    for await (const piece of readLines(child.stdout)) {
      let line = carried + piece;
      carried = "";
      const report = line.indexOf('{"role"');
      if (report > 0 && isV8Line(line)) {
        carried = line.slice(0, report);
        line = line.slice(report);
      }
      output.all.push(line);
      if (isV8Line(line)) output.gc.push(line);
      else {
        output.lines.push(line);
        onLine(line);
      }
    }
    onLine(END);
  })();
  return {
    child,
    output,
    /** Resolves once the child printed `ready` (true), or ended without (false). */
    ready: () =>
      new Promise<boolean>((resolve) => {
        if (output.lines.includes("ready")) resolve(true);
        else onLine = (line) => line === "ready" ? resolve(true) : line === END && resolve(false);
      }),
    async done(): Promise<Output> {
      await child.stdin.close().catch(() => {});
      const status = await child.status;
      await read;
      if (!status.success) throw new Error(`${script} exited with code ${status.code}`);
      return output;
    },
  };
}

/** A child's report, the JSON line it prints last (`spawn` took it out of any trace line). */
function reportOf<T>(out: Output): T {
  const line = out.all.findLast((l) => l.startsWith('{"role"'));
  if (line === undefined) throw new Error("a child process printed no report");
  return JSON.parse(line) as T;
}

/** What one round measured for one checkout. */
interface Round {
  readonly client: ClientReport;
  readonly worker: WorkerReport;
  readonly clientGc: GcWindow;
  readonly workerGc: GcWindow;
}

async function round(url: string, mod: string): Promise<Round> {
  const args = [
    `--url=${url}`,
    `--queue=${uniqueQueue("alloc")}`,
    `--mod=${mod}`,
    `--warmup=${WARMUP}`,
    `--samples=${SAMPLES}`,
    ...(flags.values.sites ? ["--sites"] : []),
    ...(flags.values.retained ? ["--retained"] : []),
  ];
  const worker = spawn("_alloc_worker.ts", args);
  if (!await worker.ready()) throw new Error("the worker process ended before it was ready");
  const client = spawn("_alloc_client.ts", args);
  const clientOut = await client.done();
  const workerOut = await worker.done();
  for (const [name, out] of [["enqueueing", clientOut], ["worker", workerOut]] as const) {
    if (flags.values["trace-out"]) {
      await Deno.writeTextFile(
        `${flags.values["trace-out"]}/${name}.log`,
        out.all.join("\n") + "\n",
      );
    }
    const sites = out.lines.filter((line) => line.startsWith("site: "));
    if (sites.length) console.log(`allocation sites, ${name} process:\n${sites.join("\n")}`);
  }
  return {
    client: reportOf<ClientReport>(clientOut),
    worker: reportOf<WorkerReport>(workerOut),
    clientGc: gcWindow(clientOut.gc),
    workerGc: gcWindow(workerOut.gc),
  };
}

const perThousand = (n: number) => (n / SAMPLES) * 1000;
const fixed = (n: number, digits = 0) => n.toFixed(digits);

function describe(r: Round): string[] {
  const gc = (w: GcWindow) =>
    `${fixed(w.allocatedBytes / SAMPLES)} B/task traced, ${
      fixed(perThousand(w.scavenges), 1)
    } scavenges/1000 tasks (${fixed(perThousand(w.scavengeMs), 1)} ms/1000 tasks, longest ${
      fixed(w.longestMs, 2)
    } ms), ${w.markCompacts} mark-compacts (${fixed(w.markCompactMs, 1)} ms)`;
  return [
    `  enqueueing process: enqueue ${fixed(r.client.enqueue.median)} B (mean ${
      fixed(r.client.enqueue.mean)
    }), result wait ${fixed(r.client.result.median)} B (mean ${fixed(r.client.result.mean)}); ${
      gc(r.clientGc)
    }; round trip p50 ${fixed(r.client.p50, 2)} ms, p99 ${fixed(r.client.p99, 2)} ms`,
    `  worker process: delivered task ${fixed(r.worker.medianBytes)} B (mean ${
      fixed(r.worker.meanBytes)
    }); ${gc(r.workerGc)}`,
  ];
}

await using redis = await startRedis();
console.error(`redis: ${redis.url}; ${SAMPLES} round trips after ${WARMUP}, ${ROUNDS} round(s)`);
const results = new Map<string, Round[]>(MODS.map((mod) => [mod, []]));
for (let i = 1; i <= ROUNDS; i++) {
  for (const mod of MODS) {
    const r = await round(redis.url, mod);
    results.get(mod)!.push(r);
    console.log(`round ${i}, ${mod}:\n${describe(r).join("\n")}`);
  }
}
if (ROUNDS > 1) {
  console.log("\nmedians of the rounds:");
  for (const [mod, rounds] of results) {
    const m = (pick: (r: Round) => number) => median(rounds.map(pick));
    console.log(`${mod}:`);
    console.log(
      `  bytes: enqueue ${fixed(m((r) => r.client.enqueue.median))}, result wait ${
        fixed(m((r) => r.client.result.median))
      }, delivered task ${fixed(m((r) => r.worker.medianBytes))}; traced per task: enqueueing ${
        fixed(m((r) => r.clientGc.allocatedBytes / SAMPLES))
      }, worker ${fixed(m((r) => r.workerGc.allocatedBytes / SAMPLES))}`,
    );
    console.log(
      `  scavenges/1000 tasks: enqueueing ${
        fixed(m((r) => perThousand(r.clientGc.scavenges)), 1)
      }, worker ${fixed(m((r) => perThousand(r.workerGc.scavenges)), 1)}; pause ms/1000 tasks: ${
        fixed(m((r) => perThousand(r.clientGc.scavengeMs)), 1)
      }, ${fixed(m((r) => perThousand(r.workerGc.scavengeMs)), 1)}; round trip p50 ${
        fixed(m((r) => r.client.p50), 2)
      } ms, p99 ${fixed(m((r) => r.client.p99), 2)} ms`,
    );
  }
}
