/**
 * Worker subprocesses ({@linkcode WorkerProcess}) for the reliability tests and the soak:
 * started from `_worker_process.ts`, waited for through their health key, stopped with SIGTERM
 * or killed with SIGKILL, and always awaited, so the op sanitizer finds nothing running.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { denoExecutable, workerProcessArgs } from "../_helpers.ts";
import type { ExitReport, WorkerProcessConfig } from "./_worker_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCRIPT = new URL("./_worker_process.ts", import.meta.url).pathname;

/** How a worker process ended. */
export interface Exit {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  /** Printed by the process after a graceful shutdown; absent after SIGKILL. */
  readonly report: ExitReport | undefined;
  /** Everything it wrote on stderr (its warnings and errors). */
  readonly stderr: string;
}

/** One worker subprocess. */
export class WorkerProcess {
  readonly config: WorkerProcessConfig;
  readonly #child: Deno.ChildProcess;
  readonly #exit: Promise<Exit>;
  #exited = false;

  constructor(config: WorkerProcessConfig) {
    this.config = config;
    this.#child = new Deno.Command(denoExecutable(), {
      args: workerProcessArgs(SCRIPT, JSON.stringify(config)),
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(this.#child.stdout).text();
    const stderr = new Response(this.#child.stderr).text();
    this.#exit = Promise.all([this.#child.status, stdout, stderr]).then(([status, out, err]) => {
      this.#exited = true;
      const line = out.split("\n").find((l) => l.startsWith("report "));
      return {
        code: status.code,
        signal: status.signal,
        report: line ? JSON.parse(line.slice("report ".length)) as ExitReport : undefined,
        stderr: err,
      };
    });
  }

  /** The worker id. */
  get id(): string {
    return this.config.id;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Resolves once the worker runs (its health key exists); throws if it exits first. */
  async ready(redis: Redis, timeout = 20_000): Promise<void> {
    const key = `streaq:{${this.config.queueName}}:health:${this.id}`;
    const deadline = Date.now() + timeout;
    while ((await redis.exists(key)) === 0) {
      if (this.#exited) {
        const { code, stderr } = await this.#exit;
        throw new Error(`Worker process ${this.id} exited with code ${code}:\n${stderr}`);
      }
      if (Date.now() > deadline) {
        this.signal("SIGKILL");
        const { stderr } = await this.#exit;
        throw new Error(`Worker process ${this.id} did not start in ${timeout} ms:\n${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends a signal, if the process still runs. */
  signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // It has already exited.
    }
  }

  /** Resolves when the process has exited and its output is read. */
  exit(): Promise<Exit> {
    return this.#exit;
  }

  /** SIGKILL, like a crash or an out-of-memory kill: no shutdown code runs. */
  kill(): Promise<Exit> {
    this.signal("SIGKILL");
    return this.#exit;
  }

  /** SIGTERM: a graceful shutdown that honours the worker's `gracePeriod`. */
  terminate(): Promise<Exit> {
    this.signal("SIGTERM");
    return this.#exit;
  }
}

/** Starts processes and waits until each runs. */
export async function startProcesses(
  redis: Redis,
  configs: readonly WorkerProcessConfig[],
): Promise<WorkerProcess[]> {
  const processes = configs.map((c) => new WorkerProcess(c));
  try {
    await Promise.all(processes.map((p) => p.ready(redis)));
  } catch (error) {
    await Promise.all(processes.map((p) => p.kill()));
    throw error;
  }
  return processes;
}

/** Stops every process still running (SIGTERM) and returns how each ended. */
export function stopAll(processes: readonly WorkerProcess[]): Promise<Exit[]> {
  return Promise.all(processes.map((p) => p.terminate()));
}
