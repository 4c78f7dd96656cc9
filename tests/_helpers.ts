/**
 * Helpers shared by the behavioural tests: a worker on the module's private Redis with its own
 * queue, a worker running in the background, and waiting for a condition.
 *
 * @module
 */

import { type Logger, Worker, type WorkerOptions } from "../mod.ts";
import { sharedRedis, uniqueQueue } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";

/** A worker on this test module's Redis, on a queue no other test uses, quiet and signal-free. */
export async function testWorker<C = undefined>(
  options: WorkerOptions<C> = {},
): Promise<Worker<C>> {
  const redis = await sharedRedis();
  return new Worker<C>({
    redisUrl: redis.url,
    queueName: uniqueQueue(),
    logLevel: "error",
    handleSignals: false,
    ...options,
  });
}

/** A worker with the same queue and Redis as `worker` (a second process, in effect). */
export function sibling<C = undefined>(
  worker: Worker<unknown>,
  options: WorkerOptions<C> = {},
): Promise<Worker<C>> {
  return testWorker<C>({ queueName: worker.queueName, ...options });
}

/** Runs `worker` in the background; `stop()` shuts it down and waits for `run()` to end. */
export function runInBackground(
  worker: Worker<unknown>,
  options: { burst?: boolean } = {},
): { done: Promise<void>; stop: () => Promise<void> } {
  const done = worker.run(options);
  return {
    done,
    stop: async () => {
      worker.stop();
      await done;
    },
  };
}

/** Polls `check` every 20 ms until it returns true; throws after `timeout` ms. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  { timeout = 10_000, what = "condition" } = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as soon as it aborts
 * (clearing its timer): how a well-behaved slow task waits.
 */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Deliveries of `worker`'s queue held by each consumer (worker id), from XPENDING. */
export async function pendingByWorker(
  worker: Worker<unknown>,
  priority = "normal",
): Promise<Record<string, number>> {
  const stream = `streaq:{${worker.queueName}}:stream:${priority}`;
  let summary;
  try {
    summary = await queueContextOf(worker).redis.xpending(stream, "workers");
  } catch (error) {
    if (String(error).includes("NOGROUP")) return {}; // no worker has run on the queue yet
    throw error;
  }
  const [, , , consumers] = summary as [number, unknown, unknown, [string, string][] | null];
  return Object.fromEntries((consumers ?? []).map(([id, count]) => [id, Number(count)]));
}

/**
 * The deno executable for subprocesses: `Deno.execPath()` when the permissions allow running
 * it, else `"deno"` from PATH. The `test` permission set allows `run: ["deno"]`, which Deno
 * resolves through PATH without following symlinks, so it does not cover `Deno.execPath()`
 * when `deno` on PATH is a symlink (an npm install, for example).
 */
export function denoExecutable(): string {
  const execPath = Deno.execPath();
  const state = Deno.permissions.querySync({ name: "run", command: execPath }).state;
  return state === "granted" ? execPath : "deno";
}

/**
 * The connections that the module's shared Redis sees under `name` (set with the ioredis
 * option `connectionName`), one record of `CLIENT LIST` fields per connection.
 */
export async function connectionsNamed(name: string): Promise<Record<string, string>[]> {
  const list = await (await sharedRedis()).cli("CLIENT", "LIST");
  return list.split("\n")
    .map((line) => Object.fromEntries(line.trim().split(" ").map((f) => f.split("=", 2))))
    .filter((fields) => fields.name === name);
}

/**
 * Arguments of `deno run` for a worker subprocess of the tests: this checkout's config, no
 * prompt, cached modules only, and just loopback network and environment access.
 */
export function workerProcessArgs(script: string, ...args: string[]): string[] {
  const config = new URL("../deno.json", import.meta.url).pathname;
  return [
    "run",
    "--no-prompt",
    "--cached-only",
    `--config=${config}`,
    "--allow-net=127.0.0.1",
    "--allow-env",
    script,
    ...args,
  ];
}

/**
 * A worker subprocess running a fixture (`workerProcessArgs`), its standard output kept line by
 * line as it comes, for tests that read what each process did.
 */
export class WorkerProcess {
  readonly #child: Deno.ChildProcess;
  /** The lines printed so far. */
  readonly lines: string[] = [];
  readonly #stdout: Promise<void>;
  /** Everything printed on standard error, once the process ended. */
  readonly stderr: Promise<string>;

  constructor(script: string, ...args: string[]) {
    this.#child = new Deno.Command(denoExecutable(), {
      args: workerProcessArgs(script, ...args),
      cwd: new URL("../", import.meta.url).pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdout = this.#readLines(this.#child.stdout);
    this.stderr = new Response(this.#child.stderr).text();
  }

  async #readLines(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
    }
  }

  /** Sends `signal` and waits until the process ended and its output is read. */
  async end(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    this.#child.kill(signal);
    const status = await this.#child.status;
    await this.#stdout;
    await this.stderr;
    return status;
  }
}

/** A logger that keeps every line it is given, of any level, in `lines`. */
export function collectingLogger(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const collect = (line: string) => void lines.push(line);
  return { lines, logger: { debug: collect, info: collect, warn: collect, error: collect } };
}
