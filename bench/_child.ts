/**
 * Worker processes for the cases that need a worker outside the benchmark's own process
 * (latency, several workers). A child is `deno run` of `_worker_streaq.ts` or
 * `_worker_bullmq.ts`, talking in lines: it prints `ready` once connected, starts on `go`
 * (burst mode), stops when its standard input closes, and prints one JSON {@linkcode ChildReport}
 * line before exiting.
 *
 * @module
 */

import type { Meter } from "./_meter.ts";

/** What a child prints last. */
export interface ChildReport {
  /** Tasks whose outcome this child wrote. */
  readonly completed: number;
  /** When its last task function returned, in ms since the Unix epoch (sub-millisecond). */
  readonly lastEnd: number;
}

/** How a child worker runs. */
export interface ChildOptions {
  /** The worker script, next to this file. */
  readonly script: "_worker_streaq.ts" | "_worker_bullmq.ts";
  readonly url: string;
  readonly queue: string;
  readonly concurrency: number;
  /** `serve`: run at once until stdin closes; `burst`: wait for `go`, drain the queue, exit. */
  readonly mode: "serve" | "burst";
}

/** How long a child may take to start (the first start also compiles the modules). */
const START_TIMEOUT_MS = 120_000;
/** How long a child may take to report after it was told to finish. */
const FINISH_TIMEOUT_MS = 120_000;

const encoder = new TextEncoder();

/** One child worker process. */
export class ChildWorker implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdinClosed = false;
  #status: Promise<Deno.CommandStatus> | undefined;

  private constructor(options: ChildOptions) {
    const script = new URL(options.script, import.meta.url).pathname;
    this.#child = new Deno.Command(denoExecutable(), {
      args: [
        ...CHILD_RUN_ARGS,
        script,
        `--url=${options.url}`,
        `--queue=${options.queue}`,
        `--concurrency=${options.concurrency}`,
        `--mode=${options.mode}`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = readLines(this.#child.stdout)[Symbol.asyncIterator]();
    this.#stdin = this.#child.stdin.getWriter();
  }

  /** Starts a child and resolves once it printed `ready`. */
  static async start(options: ChildOptions): Promise<ChildWorker> {
    const child = new ChildWorker(options);
    try {
      const line = await child.#nextLine(START_TIMEOUT_MS);
      if (line !== "ready") throw new Error(`${options.script} said ${line} instead of ready`);
      return child;
    } catch (error) {
      await child[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** Sends one line. */
  async send(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  /** Closes the child's stdin (a serving child stops), waits for its report and its exit. */
  async finish(): Promise<ChildReport> {
    await this.#closeStdin();
    const line = await this.#nextLine(FINISH_TIMEOUT_MS);
    const status = await this.#exit();
    if (!status.success) throw new Error(`a worker process exited with code ${status.code}`);
    return JSON.parse(line) as ChildReport;
  }

  async #closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {});
  }

  #exit(): Promise<Deno.CommandStatus> {
    this.#status ??= this.#child.status;
    return this.#status;
  }

  async #nextLine(timeoutMs: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`a worker process said nothing for ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done) throw new Error("a worker process ended without a word");
      return next.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the child if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#closeStdin();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has already exited.
    }
    await this.#exit();
    await this.#lines.return?.();
  }
}

/**
 * Drains `tasks` tasks with `workers` child processes in burst mode: starts them, has
 * `enqueue` store the tasks (untimed), starts the clock, tells every child to go, and stops the
 * clock at the last task function's return in any child.
 */
export async function drainWithProcesses(options: {
  readonly meter: Meter;
  readonly child: Omit<ChildOptions, "mode">;
  readonly workers: number;
  readonly tasks: number;
  readonly enqueue: () => Promise<void>;
}): Promise<void> {
  const { meter, workers, tasks } = options;
  const children: ChildWorker[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      children.push(await ChildWorker.start({ ...options.child, mode: "burst" }));
    }
    await options.enqueue();
    await meter.start();
    const startedEpoch = performance.timeOrigin + performance.now();
    await Promise.all(children.map((child) => child.send("go")));
    const reports = await Promise.all(children.map((child) => child.finish()));
    const completed = reports.reduce((sum, r) => sum + r.completed, 0);
    if (completed !== tasks) {
      throw new Error(`${workers} worker processes completed ${completed} of ${tasks} tasks`);
    }
    meter.stopAt(Math.max(...reports.map((r) => r.lastEnd)) - startedEpoch);
  } finally {
    await Promise.all(children.map((child) => child[Symbol.asyncDispose]()));
  }
}

/**
 * Enqueue-to-result latency against an idle worker in another process: `roundTrip` enqueues
 * one task and waits for its result; it runs `warmup` times unmeasured, then `samples` times
 * under the meter.
 *
 * @returns The samples in milliseconds, sorted.
 */
export async function latencyWithProcess(options: {
  /** Started after the warm-up, stopped after the last sample. */
  readonly meter: Meter;
  readonly child: Omit<ChildOptions, "mode">;
  readonly samples: number;
  readonly warmup: number;
  readonly roundTrip: () => Promise<void>;
}): Promise<number[]> {
  await using child = await ChildWorker.start({ ...options.child, mode: "serve" });
  for (let i = 0; i < options.warmup; i++) await options.roundTrip();
  // Let the worker go idle again (blocked in its wait for new tasks).
  await new Promise((resolve) => setTimeout(resolve, 100));
  const samples: number[] = [];
  await options.meter.start();
  for (let i = 0; i < options.samples; i++) {
    const started = performance.now();
    await options.roundTrip();
    samples.push(performance.now() - started);
  }
  options.meter.stop();
  const report = await child.finish();
  if (report.completed !== options.warmup + options.samples) {
    throw new Error(`the worker process completed ${report.completed} tasks`);
  }
  return samples.sort((a, b) => a - b);
}

/**
 * In a bench child process: runs `worker`, prints `ready`, serves until the standard input
 * closes, then stops the worker and waits for its run to end.
 */
export async function serveUntilInputCloses(
  worker: { run(): Promise<void>; stop(): void },
): Promise<void> {
  const running = worker.run();
  console.log("ready");
  const stdin = readLines(Deno.stdin.readable)[Symbol.asyncIterator]();
  while (!(await stdin.next()).done) {
    // Serves until stdin closes.
  }
  worker.stop();
  await running;
}

/** The lines of a byte stream, without their line ends. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
    }
  }
  if (buffer) yield buffer;
}

/**
 * The start of a bench child's command line: `deno run` with no prompt, the network on loopback,
 * the environment and reads.
 */
export const CHILD_RUN_ARGS = [
  "run",
  "--no-prompt",
  "--allow-net=127.0.0.1,localhost",
  "--allow-env",
  "--allow-read",
] as const;

/** The running deno, when the permissions allow running it by path; else `deno` on PATH. */
export function denoExecutable(): string {
  const execPath = Deno.execPath();
  const state = Deno.permissions.querySync({ name: "run", command: execPath }).state;
  return state === "granted" ? execPath : "deno";
}
