/**
 * What survives a scavenge when a process talks to Redis one command at a time, as the latency
 * case does. A scavenge's pause grows with the bytes it copies, so a process whose scavenges
 * copy hundreds of kilobytes pauses for milliseconds where one that copies a few pauses for a
 * tenth of one: the round trip's p99 (see "Latency p99" in `docs/benchmarks.md`).
 *
 * Each variant runs in its own process under `--v8-flags=--trace-gc-nvp`, against one private
 * Redis, sending `--rounds` commands, each followed by a `--gap` ms timer (a client that waits
 * between commands, as one waiting for a result does):
 *
 * - `node-net`: GET written on a plain `node:net` socket, the reply taken from its data event;
 * - `ioredis`: `redis.get()` on an ioredis connection;
 * - `streaq`: `task.enqueue()` of a no-op task (no worker runs: only the enqueue);
 * - `streaq-client`: the latency case's round trip, `enqueue()` then `result()`, measured in the
 *   enqueueing process, with a worker in another (untraced) process;
 * - `streaq-worker`: the same round trip, measured in the worker's process.
 *
 * It prints, per variant, the scavenges after the first five (start-up), the mean bytes they
 * copied (`new_space_survived`), how many copied more than 100 KB, and their median pause.
 * Byte counts are V8's, not the machine's: they repeat from run to run; pauses do not.
 *
 * ```sh
 * deno task bench:gc-survivors --rounds=20000 --gap=1
 * ```
 *
 * @module
 */

import net from "node:net";
import { parseArgs } from "node:util";
import { startRedis, uniqueQueue } from "../tests/_redis.ts";
import { denoExecutable } from "./_child.ts";
import { median } from "./_gc_trace.ts";

const VARIANTS = ["node-net", "ioredis", "streaq", "streaq-client", "streaq-worker"] as const;
type Variant = typeof VARIANTS[number];

const flags = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "20000" },
    gap: { type: "string", default: "1" },
    only: { type: "string", default: VARIANTS.join(",") },
    child: { type: "string" },
    url: { type: "string" },
    queue: { type: "string" },
  },
});
const ROUNDS = Number(flags.values.rounds);
const GAP = Number(flags.values.gap);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A worker with the no-op task of the round-trip variants. */
async function noopWorker(url: string, queueName: string) {
  const { Worker } = await import("../mod.ts");
  const worker = new Worker({ redisUrl: url, queueName, logLevel: "warn", handleSignals: false });
  const noop = worker.task(async function noop(): Promise<void> {});
  return { worker, noop };
}

/** One variant's loop, in the child process. */
async function runChild(variant: Variant | "serve", url: string, queue: string): Promise<void> {
  if (variant === "serve") {
    // Serves until its standard input closes (traced for `streaq-worker`).
    const { worker } = await noopWorker(url, queue);
    await worker.connect();
    const running = worker.run();
    console.log("ready");
    for await (const _ of Deno.stdin.readable);
    worker.stop();
    await running;
    return;
  }
  if (variant === "streaq" || variant === "streaq-client") {
    // The enqueue alone, or the round trip (a worker serves in another process).
    const { worker, noop } = await noopWorker(url, queue);
    await worker.connect();
    for (let i = 0; i < ROUNDS; i++) {
      const handle = await noop.enqueue();
      if (variant === "streaq-client") await handle.result();
      await pause(GAP);
    }
    await worker.close();
    return;
  }
  const { hostname, port } = new URL(url);
  if (variant === "node-net") {
    const socket = net.connect(Number(port), hostname);
    await new Promise((resolve) => socket.once("connect", resolve));
    let answer: (() => void) | undefined;
    socket.on("data", () => answer?.());
    for (let i = 0; i < ROUNDS; i++) {
      const reply = new Promise<void>((resolve) => answer = resolve);
      socket.write("GET x\r\n");
      await reply;
      await pause(GAP);
    }
    socket.destroy();
  } else if (variant === "ioredis") {
    const { Redis } = await import("ioredis");
    const redis = new Redis(url);
    for (let i = 0; i < ROUNDS; i++) {
      await redis.get("x");
      await pause(GAP);
    }
    redis.disconnect();
  }
}

/** Starts this script as a child: `--child=<role>`, traced or not. */
function spawn(role: Variant | "serve", url: string, queue: string, traced: boolean) {
  return new Deno.Command(denoExecutable(), {
    args: [
      "run",
      "-P=bench",
      ...(traced ? ["--v8-flags=--trace-gc-nvp"] : []),
      new URL(import.meta.url).pathname,
      `--child=${role}`,
      `--url=${url}`,
      `--queue=${queue}`,
      `--rounds=${ROUNDS}`,
      `--gap=${GAP}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/**
 * Waits for a serving child's `ready` line; returns its whole output, read on to the end (in an
 * object: an async function's promise would wait for the promise it returns).
 */
async function ready(child: Deno.ChildProcess): Promise<{ output: Promise<string> }> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("a worker child exited before it was ready");
    text += value;
  }
  const output = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    return text;
  })();
  return { output };
}

/** Runs one variant (its measured process traced); returns its scavenges' bytes and pauses. */
async function measure(variant: Variant, url: string) {
  const queue = uniqueQueue("gc");
  let trace: string;
  if (variant === "streaq-client" || variant === "streaq-worker") {
    const traced = variant === "streaq-worker";
    const worker = spawn("serve", url, queue, traced);
    const { output: workerOutput } = await ready(worker);
    const client = spawn("streaq-client", url, queue, !traced);
    await client.stdin.close();
    const clientOutput = await client.output();
    if (!clientOutput.success) {
      throw new Error(`the ${variant} client exited with ${clientOutput.code}`);
    }
    await worker.stdin.close();
    const workerTrace = await workerOutput;
    if (!(await worker.status).success) throw new Error(`the ${variant} worker failed`);
    trace = traced ? workerTrace : new TextDecoder().decode(clientOutput.stdout);
  } else {
    const child = spawn(variant, url, queue, true);
    await child.stdin.close();
    const output = await child.output();
    if (!output.success) throw new Error(`the ${variant} child exited with ${output.code}`);
    trace = new TextDecoder().decode(output.stdout);
  }
  const scavenges = trace.split("\n")
    .map((line) => /GC: (\{.*\})\s*$/.exec(line)?.[1])
    .filter((json): json is string => json !== undefined)
    .map((json) => JSON.parse(json) as { gc: string; pause: number; new_space_survived: number })
    .filter((gc) => gc.gc === "s")
    .slice(5);
  return {
    scavenges: scavenges.length,
    survived: scavenges.reduce((sum, gc) => sum + gc.new_space_survived, 0) /
      Math.max(1, scavenges.length),
    over100k: scavenges.filter((gc) => gc.new_space_survived > 100_000).length,
    pause: median(scavenges.map((gc) => gc.pause)),
  };
}

if (flags.values.child) {
  await runChild(flags.values.child as Variant | "serve", flags.values.url!, flags.values.queue!);
} else {
  await using redis = await startRedis();
  console.log(`${ROUNDS} commands per variant, a ${GAP} ms timer after each`);
  for (const variant of flags.values.only.split(",") as Variant[]) {
    if (!VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant}`);
    const r = await measure(variant, redis.url);
    console.log(
      `${variant.padEnd(9)} ${r.scavenges} scavenges: mean ${
        (r.survived / 1024).toFixed(1)
      } KB survived, ${r.over100k} over 100 KB, median pause ${r.pause.toFixed(2)} ms`,
    );
  }
}
