/**
 * A private `redis-server` run under `valgrind --tool=callgrind`, for counting the instructions
 * Redis executes for a piece of work. Instruction counts do not depend on what else the machine
 * runs, so two versions of a script can be compared to a fraction of a percent on a busy
 * machine where CPU times vary by a fifth. The server starts with instrumentation off (loading,
 * enqueueing and warming up are not counted); {@linkcode ProfiledRedis.count} turns it on around
 * the work measured and dumps the counts (`callgrind_control`).
 *
 * @module
 */

import type { RedisServer } from "../tests/_redis.ts";

/** A redis-server under callgrind. */
export interface ProfiledRedis extends RedisServer {
  /**
   * Counts the instructions Redis executes while `work` runs.
   *
   * @returns The total, and the dump file for `callgrind_annotate`.
   */
  count(label: string, work: () => Promise<void>): Promise<{ instructions: number; file: string }>;
}

/** Starts a redis-server under callgrind on a free loopback port, instrumentation off. */
export async function startProfiledRedis(): Promise<ProfiledRedis> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "streaq-callgrind-" });
  const child = new Deno.Command("valgrind", {
    args: [
      "--tool=callgrind",
      "--instr-atstart=no",
      `--callgrind-out-file=${dir}/callgrind.out`,
      "redis-server",
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      ...["--dir", dir, "--daemonize", "no"],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const cli = async (...args: string[]): Promise<string> => {
    const out = await new Deno.Command("redis-cli", {
      args: ["-h", "127.0.0.1", "-p", String(port), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  for (let i = 0; (await cli("PING")) !== "PONG"; i++) {
    if (i > 300) throw new Error(`redis-server under valgrind did not answer on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const control = async (...args: string[]): Promise<void> => {
    const out = await new Deno.Command("callgrind_control", {
      args: [...args, String(child.pid)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`callgrind_control ${args.join(" ")} failed`);
  };
  let dumps = 0;
  const stop = async (): Promise<void> => {
    try {
      await cli("SHUTDOWN", "NOSAVE");
    } catch { /* gone already */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    host: "127.0.0.1",
    port,
    url: `redis://127.0.0.1:${port}`,
    cli,
    stop,
    restart: () => Promise.reject(new Error("Cannot restart a profiled Redis")),
    kill: async () => {
      child.kill("SIGKILL");
      await child.status;
    },
    [Symbol.asyncDispose]: stop,
    async count(label, work) {
      await control("--zero");
      await control("--instr=on");
      await work();
      await control("--instr=off");
      await control(`--dump=${label}`);
      dumps++;
      const file = `${dir}/callgrind.out.${dumps}`;
      const text = await Deno.readTextFile(file);
      const total = /^totals: (\d+)/m.exec(text);
      return { instructions: Number(total?.[1] ?? NaN), file };
    },
  };
}

/** The inclusive instruction counts of the functions in a dump, largest first. */
export async function inclusiveCounts(file: string): Promise<[string, number][]> {
  const out = await new Deno.Command("callgrind_annotate", {
    args: ["--inclusive=yes", "--threshold=100", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const rows: [string, number][] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(?:\S*:)?(\S+)/.exec(line);
    if (m) rows.push([m[2], Number(m[1].replaceAll(",", ""))]);
  }
  return rows;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
