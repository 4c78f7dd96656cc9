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
 * - `streaq`: `task.enqueue()` of a no-op task (no worker runs: only the enqueue).
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

const VARIANTS = ["node-net", "ioredis", "streaq"] as const;
type Variant = typeof VARIANTS[number];

const flags = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "20000" },
    gap: { type: "string", default: "1" },
    only: { type: "string", default: VARIANTS.join(",") },
    child: { type: "string" },
    url: { type: "string" },
  },
});
const ROUNDS = Number(flags.values.rounds);
const GAP = Number(flags.values.gap);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One variant's loop, in the child process. */
async function runChild(variant: Variant, url: string): Promise<void> {
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
  } else {
    const { Worker } = await import("../mod.ts");
    await using worker = new Worker({
      redisUrl: url,
      queueName: uniqueQueue("gc"),
      logLevel: "warn",
      handleSignals: false,
    });
    const noop = worker.task(async function noop(): Promise<void> {});
    await worker.connect();
    for (let i = 0; i < ROUNDS; i++) {
      await noop.enqueue();
      await pause(GAP);
    }
  }
}

/** Runs one variant in a child process; returns its scavenges' survivor bytes and pauses. */
async function measure(variant: Variant, url: string) {
  const output = await new Deno.Command(denoExecutable(), {
    args: [
      "run",
      "-P=bench",
      "--v8-flags=--trace-gc-nvp",
      new URL(import.meta.url).pathname,
      `--child=${variant}`,
      `--url=${url}`,
      `--rounds=${ROUNDS}`,
      `--gap=${GAP}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`the ${variant} child exited with ${output.code}`);
  const scavenges = new TextDecoder().decode(output.stdout).split("\n")
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
  await runChild(flags.values.child as Variant, flags.values.url!);
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
