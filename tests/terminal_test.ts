/**
 * streaq as a new user meets it: in a real terminal (a pseudo-terminal from `script`), without
 * `--no-prompt`, with exactly the permissions the docs list. There, Deno asks at a prompt for
 * anything not granted, and Ctrl-C is a keystroke that the terminal turns into SIGINT, so these
 * tests see what tests without a terminal cannot: a prompt that stops a process, a client that
 * never exits, a Ctrl-C that does not end a worker.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TaskStatus } from "../mod.ts";
import { denoExecutable, eventually, testWorker } from "./_helpers.ts";
import { type RedisServer, sharedRedis } from "./_redis.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const WORKER = new URL("./fixtures/terminal_worker.ts", import.meta.url).pathname;
const CLIENT = new URL("./fixtures/terminal_client.ts", import.meta.url).pathname;
const PROMPT = "Deno requests";
const CTRL_C = "\x03";

/** The flags the docs list for an enqueueing client: the Redis host, and the environment. */
function clientFlags(redis: RedisServer): string[] {
  return [`--allow-net=${redis.host}:${redis.port}`, "--allow-env"];
}

/** The flags the docs list for a worker with synchronous tasks, whose module imports streaq by path. */
function workerFlags(redis: RedisServer): string[] {
  return [...clientFlags(redis), "--allow-sys=hostname", `--allow-read=${ROOT}`];
}

/** A command running in a pseudo-terminal, with what it has printed so far. */
class Terminal implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  output = "";

  constructor(args: string[], env: Record<string, string>) {
    const command = [denoExecutable(), "run", "--cached-only", `--config=${ROOT}deno.json`, ...args]
      .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
    this.#child = new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: ROOT,
      env: { ...env, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reading = Promise.all([this.#child.stdout, this.#child.stderr].map(async (stream) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) this.output += chunk;
    })).then(() => {});
  }

  /** Types `keys` at the terminal. */
  async type(keys: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(keys));
  }

  /** Waits until the output contains `text`; fails early, with the output, at a prompt. */
  async waitFor(text: string, timeout = 20_000): Promise<void> {
    await eventually(() => {
      if (this.output.includes(PROMPT)) throw new Error(`a permission prompt:\n${this.output}`);
      return this.output.includes(text);
    }, { timeout, what: `"${text}" in the terminal; it shows:\n${this.output}` });
  }

  /** Waits for the process to exit; returns its exit code and everything it printed. */
  async exit(): Promise<{ code: number; output: string }> {
    const { code } = await this.#child.status;
    await this.#reading;
    return { code, output: this.output };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has exited.
    }
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#reading;
  }
}

function environment(redis: RedisServer, queue: string, extra: Record<string, string> = {}) {
  return { REDIS_URL: redis.url, STREAQ_QUEUE: queue, ...extra };
}

Deno.test("in a terminal, with the documented permissions, a worker and a client run without a prompt, the client exits by itself, and Ctrl-C ends the worker", async () => {
  const redis = await sharedRedis();
  const queue = `terminal-${crypto.randomUUID()}`;
  const gracePeriod = 10_000;
  await using worker = new Terminal(
    [...workerFlags(redis), WORKER],
    environment(redis, queue, { STREAQ_GRACE_PERIOD: String(gracePeriod) }),
  );
  await worker.waitFor("started on queue");

  await using client = new Terminal([...clientFlags(redis), CLIENT], environment(redis, queue));
  const { code, output } = await client.exit();
  assert.equal(code, 0, output);
  assert.match(output, /results: 42 144/);
  assert.equal(output.includes(PROMPT), false, output);

  const pressed = Date.now();
  await worker.type(CTRL_C);
  const ended = await worker.exit();
  assert.equal(ended.code, 0, ended.output);
  assert.match(ended.output, /stopped/);
  assert.equal(ended.output.includes(PROMPT), false, ended.output);
  assert.ok(Date.now() - pressed < gracePeriod, "the worker ended within its grace period");
});

Deno.test("in a terminal, a second Ctrl-C ends a worker at once while its shutdown waits for a task", async () => {
  const redis = await sharedRedis();
  await using enqueuer = await testWorker();
  const stubborn = enqueuer.task(async function stubborn(_ms: number): Promise<void> {});
  await using worker = new Terminal(
    [...workerFlags(redis), WORKER],
    environment(redis, enqueuer.queueName, { STREAQ_GRACE_PERIOD: "600000" }),
  );
  await worker.waitFor("started on queue");
  const task = await stubborn.enqueue(600_000);
  await eventually(async () => (await task.status()) === TaskStatus.RUNNING, {
    what: "the stubborn task to run",
  });

  await worker.type(CTRL_C);
  await worker.waitFor("shutting down gracefully");
  await worker.type(CTRL_C);
  const { code, output } = await worker.exit();
  assert.equal(code, 130, output);
  assert.match(output, /again: exiting now/);
  assert.notEqual(await task.status(), TaskStatus.DONE, "the task is not lost: it runs again");
});

Deno.test("in a terminal, a client that forgets to await an enqueue still sends the task and exits", async () => {
  const redis = await sharedRedis();
  const queue = `terminal-${crypto.randomUUID()}`;
  await using worker = new Terminal([...workerFlags(redis), WORKER], environment(redis, queue));
  await worker.waitFor("started on queue");
  await using client = new Terminal(
    [...clientFlags(redis), CLIENT, "forget"],
    environment(redis, queue),
  );
  const { code, output } = await client.exit();
  assert.equal(code, 0, output);
  await worker.waitFor("✓ double", 10_000);
  await eventually(() => worker.output.split("✓ double").length - 1 === 2, {
    what: "both doubles, the forgotten one too, to finish",
  });
  await worker.type(CTRL_C);
  assert.equal((await worker.exit()).code, 0);
});
