/**
 * Timing and Redis accounting for one benchmark case: a clock, the growth of Redis memory, the
 * commands Redis ran and the requests it read, taken from `INFO` on the private server.
 *
 * - Commands: the sum of `calls` in `INFO commandstats`. Commands that a Lua script runs count
 *   one each, besides the `EVALSHA` that ran the script.
 * - Round trips: `total_reads_processed` of `INFO stats`, the read events on client sockets.
 *   A client that sends one command and waits causes one read; a pipeline of many commands
 *   arriving together causes one (or a few, when it is large). It slightly over-counts: a
 *   client closing its connection causes a read too, and so does each `redis-cli` call of this
 *   file (two, at most four per case, against thousands of tasks).
 * - Redis CPU: `used_cpu_user` + `used_cpu_sys` of `INFO cpu`, the whole server process.
 *
 * All three run from `start()` to `collect()`, not to `stop()`: they include what the case's
 * workers do while they shut down (a few dozen commands, against thousands of tasks).
 *
 * @module
 */

import type { RedisServer } from "../tests/_redis.ts";

/** What Redis did between {@linkcode Meter.start} and {@linkcode Meter.collect}. */
export interface Usage {
  /** Wall time from `start()` to `stop()`, in milliseconds. */
  readonly ms: number;
  /**
   * Growth of `used_memory` from `baseline()` to `collect()`, in bytes. Redis frees and grows
   * client buffers meanwhile, so it means something per task only for thousands of tasks.
   */
  readonly memoryBytes: number;
  /** Calls per command name, script calls and commands inside scripts alike. */
  readonly commands: ReadonlyMap<string, number>;
  /** Sum of `commands`. */
  readonly totalCommands: number;
  /** Read events on client sockets: the round trips. */
  readonly reads: number;
  /**
   * CPU time the Redis process used (user and system) from `start()` to `collect()`, in
   * microseconds: steadier than rates on a shared machine, since it does not count the time
   * Redis waits for its clients.
   */
  readonly redisCpuMicros: number;
}

/**
 * The clock and Redis counters of one case. A case calls `baseline()` before creating its
 * tasks (optional), `start()` right before the timed part and `stop()` right after it; the
 * runner then calls `collect()`.
 */
export class Meter {
  readonly #redis: RedisServer;
  #memoryBefore: number | undefined;
  #started: number | undefined;
  #ms: number | undefined;
  #cpuBefore = 0;
  #usage: Promise<Usage> | undefined;

  constructor(redis: RedisServer) {
    this.#redis = redis;
  }

  /** Remembers Redis memory now, before the case stores anything. */
  async baseline(): Promise<void> {
    this.#memoryBefore = await usedMemory(this.#redis);
  }

  /** Resets the Redis statistics and starts the clock. */
  async start(): Promise<void> {
    await this.#redis.cli("CONFIG", "RESETSTAT");
    this.#cpuBefore = await redisCpuMicros(this.#redis);
    this.#started = performance.now();
  }

  /** Stops the clock; returns the elapsed milliseconds. */
  stop(): number {
    if (this.#started === undefined) throw new Error("Cannot stop the clock: it never started");
    this.#ms ??= performance.now() - this.#started;
    return this.#ms;
  }

  /** Stops the clock at a time measured elsewhere: `ms` after `start()`. */
  stopAt(ms: number): void {
    if (this.#started === undefined) throw new Error("Cannot stop the clock: it never started");
    this.#ms = ms;
  }

  /** Elapsed milliseconds so far (or until `stop()`). */
  elapsed(): number {
    if (this.#started === undefined) return 0;
    return this.#ms ?? performance.now() - this.#started;
  }

  /**
   * Reads the Redis statistics since `start()`: the first call reads them, later calls return
   * the same figures (a case reads them for its own rows, the runner for the cost per task).
   */
  collect(): Promise<Usage> {
    this.#usage ??= this.#read();
    return this.#usage;
  }

  async #read(): Promise<Usage> {
    const ms = this.stop();
    const cpuAfter = await redisCpuMicros(this.#redis);
    const stats = infoFields(await this.#redis.cli("INFO", "stats"));
    const commands = await commandStats(this.#redis);
    const memoryAfter = this.#memoryBefore === undefined ? 0 : await usedMemory(this.#redis);
    return {
      ms,
      memoryBytes: memoryAfter - (this.#memoryBefore ?? 0),
      commands,
      totalCommands: [...commands.values()].reduce((a, b) => a + b, 0),
      reads: Number(stats.get("total_reads_processed") ?? 0),
      redisCpuMicros: cpuAfter - this.#cpuBefore,
    };
  }
}

/** `used_memory` of `INFO memory`, in bytes. */
export async function usedMemory(redis: RedisServer): Promise<number> {
  return Number(infoFields(await redis.cli("INFO", "memory")).get("used_memory"));
}

/** `used_cpu_user` + `used_cpu_sys` of `INFO cpu` (seconds, to the microsecond), in µs. */
async function redisCpuMicros(redis: RedisServer): Promise<number> {
  const cpu = infoFields(await redis.cli("INFO", "cpu"));
  return (Number(cpu.get("used_cpu_user")) + Number(cpu.get("used_cpu_sys"))) * 1e6;
}

/** Calls per command since the last CONFIG RESETSTAT, without this file's INFO and CONFIG. */
async function commandStats(redis: RedisServer): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const [field, value] of infoFields(await redis.cli("INFO", "commandstats"))) {
    const name = field.replace(/^cmdstat_/, "");
    if (name === field || name === "info" || name.startsWith("config")) continue;
    stats.set(name, Number(/calls=(\d+)/.exec(value)?.[1] ?? 0));
  }
  return stats;
}

/** The `field:value` lines of an INFO reply. */
export function infoFields(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

/**
 * A full garbage collection of this process, before a timed case: the cases allocate hundreds of
 * megabytes between them, and a collection that their garbage called for fell inside whichever
 * case was running when the heap filled up (both libraries run in this process, so one's garbage
 * fell on the other's cases too); in a case of a fifth of a second that is a large part of its
 * time (see "A full collection before each case" in docs/benchmarks.md). Needs `--expose-gc`,
 * which the bench task passes; without it, nothing.
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
