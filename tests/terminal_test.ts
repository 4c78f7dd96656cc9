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
import { denoExecutable, eventually, runInBackground, sleep, testWorker } from "./_helpers.ts";
import { SAME_PRESS } from "../src/signals.ts";
import { type RedisServer, sharedRedis, startRedis } from "./_redis.ts";
import { startTopology, type TopologyKind, topologyWorker } from "./_topologies.ts";
import { CTRL_C, PROMPT, shellCommand, Terminal } from "./_terminal.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const WORKER = new URL("./fixtures/terminal_worker.ts", import.meta.url).pathname;
const CLIENT = new URL("./fixtures/terminal_client.ts", import.meta.url).pathname;
const SHARED_CLIENT = new URL("./fixtures/terminal_shared_client.ts", import.meta.url).pathname;

/** The flags the docs list for an enqueueing client: the Redis host, and the environment. */
function clientFlags(redis: RedisServer): string[] {
  return [`--allow-net=${redis.host}:${redis.port}`, "--allow-env"];
}

/** The flags the docs list for a worker with synchronous tasks, whose module imports streaq by path. */
function workerFlags(redis: RedisServer): string[] {
  return [...clientFlags(redis), "--allow-sys=hostname", `--allow-read=${ROOT}`];
}

/** `deno run ARGS` with this checkout's configuration, in a terminal. */
function denoInTerminal(args: string[], env: Record<string, string>): Terminal {
  const command = [denoExecutable(), "run", "--cached-only", `--config=${ROOT}deno.json`, ...args];
  return new Terminal(command, { cwd: ROOT, env: { ...env, NO_COLOR: "1" } });
}

/** Waits for the program in `terminal` to exit, failing (with its output) if it runs past `ms`. */
async function exitWithin(terminal: Terminal, ms: number, what: string) {
  assert.ok(
    await terminal.endsWithin(ms),
    `${what} still runs after ${ms} ms:\n${terminal.output}`,
  );
  return await terminal.exit();
}

function environment(redis: RedisServer, queue: string, extra: Record<string, string> = {}) {
  return { REDIS_URL: redis.url, STREAQ_QUEUE: queue, ...extra };
}

Deno.test("in a terminal, with the documented permissions, a worker and a client run without a prompt, the client exits by itself, and Ctrl-C ends the worker", async () => {
  const redis = await sharedRedis();
  const queue = `terminal-${crypto.randomUUID()}`;
  const gracePeriod = 10_000;
  await using worker = denoInTerminal(
    [...workerFlags(redis), WORKER],
    environment(redis, queue, { STREAQ_GRACE_PERIOD: String(gracePeriod) }),
  );
  await worker.waitFor("started on queue");

  await using client = denoInTerminal([...clientFlags(redis), CLIENT], environment(redis, queue));
  const { code, output } = await exitWithin(client, 30_000, "the client");
  assert.equal(code, 0, output);
  assert.match(output, /results: 42 144/);
  assert.equal(output.includes(PROMPT), false, output);

  const pressed = Date.now();
  await worker.type(CTRL_C);
  const ended = await exitWithin(worker, gracePeriod, "after Ctrl-C, the worker");
  console.log(`Ctrl-C to exit: ${Date.now() - pressed} ms`);
  assert.equal(ended.code, 0, ended.output);
  assert.match(ended.output, /stopped/);
  assert.equal(ended.output.includes(PROMPT), false, ended.output);
});

for (const kind of ["Sentinel", "Cluster"] satisfies TopologyKind[]) {
  Deno.test(`in a terminal, on ${kind}, a worker and a client run without a prompt, the client exits by itself, and Ctrl-C ends the worker`, async () => {
    // ioredis opens connections of its own here (to the Sentinels; a Cluster's subscriber),
    // which ignore the options streaq gives its connections.
    await using topology = await startTopology(kind);
    const gracePeriod = 10_000;
    const env = {
      STREAQ_CONNECTION: JSON.stringify(topology.connection),
      STREAQ_QUEUE: `terminal-${crypto.randomUUID()}`,
      STREAQ_GRACE_PERIOD: String(gracePeriod),
    };
    // Every Sentinel and node of these topologies listens on 127.0.0.1.
    const net = "--allow-net=127.0.0.1";
    await using worker = denoInTerminal(
      [net, "--allow-env", "--allow-sys=hostname", `--allow-read=${ROOT}`, WORKER],
      env,
    );
    await worker.waitFor("started on queue");

    await using client = denoInTerminal([net, "--allow-env", CLIENT], env);
    const { code, output } = await exitWithin(client, 30_000, "the client");
    assert.equal(output.includes(PROMPT), false, output);
    assert.equal(code, 0, output);
    assert.match(output, /results: 42 144/);

    const pressed = Date.now();
    await worker.type(CTRL_C);
    const ended = await exitWithin(worker, gracePeriod, "after Ctrl-C, the worker");
    console.log(`Ctrl-C to exit on ${kind}: ${Date.now() - pressed} ms`);
    assert.equal(ended.output.includes(PROMPT), false, ended.output);
    assert.equal(ended.code, 0, ended.output);
    assert.match(ended.output, /stopped/);
  });

  Deno.test(`in a terminal, on ${kind}, a client passing its own ioredis client made as the permissions page says runs without a prompt`, async () => {
    await using topology = await startTopology(kind);
    await using worker = topologyWorker(topology, "shared-client");
    worker.task(async function double(n: number): Promise<number> {
      return await Promise.resolve(n * 2);
    });
    const running = runInBackground(worker);
    try {
      await using client = denoInTerminal(["--allow-net=127.0.0.1", "--allow-env", SHARED_CLIENT], {
        STREAQ_CONNECTION: JSON.stringify(topology.connection),
        STREAQ_QUEUE: worker.queueName,
      });
      const { code, output } = await exitWithin(client, 30_000, "the client");
      assert.equal(output.includes(PROMPT), false, output);
      assert.equal(code, 0, output);
      assert.match(output, /result: 42/);
    } finally {
      await running.stop();
    }
  });
}

Deno.test("in a terminal, Ctrl-C ends a worker whose Redis is down without waiting redisTimeout for it", async () => {
  await using redis = await startRedis();
  const redisTimeout = 10_000; // the default, which the worker module keeps
  await using worker = denoInTerminal(
    [...workerFlags(redis), WORKER],
    environment(redis, `terminal-${crypto.randomUUID()}`),
  );
  await worker.waitFor("started on queue");
  await redis.stop();
  await worker.waitFor("ECONNREFUSED");

  const pressed = Date.now();
  await worker.type(CTRL_C);
  // Before, each step of the shutdown (the fetch under way, the hand-back, the health record)
  // waited redisTimeout for a Redis that was not coming back.
  const { code, output } = await exitWithin(worker, redisTimeout, "after Ctrl-C, the worker");
  console.log(`Ctrl-C to exit with Redis down: ${Date.now() - pressed} ms`);
  assert.equal(code, 0, output);
  assert.match(output, /stopped after/);
  assert.doesNotMatch(output, /exiting now/, "one Ctrl-C was enough");
});

Deno.test("in a terminal, Ctrl-C ends a worker that cannot reach Redis to start, without a stack trace", async () => {
  const redis = await startRedis();
  await redis.stop(); // nothing listens on its port now
  const redisTimeout = 10_000; // the default, which the worker module keeps
  await using worker = denoInTerminal(
    [...workerFlags(redis), WORKER],
    environment(redis, `terminal-${crypto.randomUUID()}`),
  );
  await worker.waitFor("ECONNREFUSED");

  await worker.type(CTRL_C);
  const { code, output } = await exitWithin(worker, redisTimeout, "after Ctrl-C, the worker");
  assert.equal(code, 0, output);
  assert.match(output, /stopped before it started: .*Redis is unreachable.*ECONNREFUSED/);
  assert.doesNotMatch(output, /Uncaught|\n\s+at /, "no stack trace");
});

Deno.test("in a terminal, a second Ctrl-C ends a worker at once while its shutdown waits for a task", async () => {
  const redis = await sharedRedis();
  await using enqueuer = await testWorker();
  const stubborn = enqueuer.task(async function stubborn(_ms: number): Promise<void> {});
  await using worker = denoInTerminal(
    [...workerFlags(redis), WORKER],
    environment(redis, enqueuer.queueName, { STREAQ_GRACE_PERIOD: "600000" }),
  );
  await worker.waitFor("started on queue");
  const task = await stubborn.enqueue(600_000);
  // Its function has begun: a status of "running" is written when the worker claims the task,
  // a moment before it calls the function, and a shutdown in between hands the task back.
  await worker.waitFor("stubborn is running");

  await worker.type(CTRL_C);
  await worker.waitFor("shutting down gracefully");
  await sleep(SAME_PRESS); // a second press, not the same one passed on twice
  await worker.type(CTRL_C);
  const { code, output } = await exitWithin(worker, 10_000, "after a second Ctrl-C, the worker");
  assert.equal(code, 130, output);
  assert.match(output, /again: exiting now/);
  assert.notEqual(await task.status(), TaskStatus.DONE, "the task is not lost: it runs again");
});

Deno.test("in a terminal, a client that forgets to await an enqueue still sends the task and exits", async () => {
  const redis = await sharedRedis();
  const queue = `terminal-${crypto.randomUUID()}`;
  await using worker = denoInTerminal([...workerFlags(redis), WORKER], environment(redis, queue));
  await worker.waitFor("started on queue");
  await using client = denoInTerminal(
    [...clientFlags(redis), CLIENT, "forget"],
    environment(redis, queue),
  );
  const { code, output } = await exitWithin(client, 30_000, "the client");
  assert.equal(code, 0, output);
  await worker.waitFor("✓ double", 10_000);
  await eventually(() => worker.output.split("✓ double").length - 1 === 2, {
    what: "both doubles, the forgotten one too, to finish",
  });
  await worker.type(CTRL_C);
  assert.equal((await exitWithin(worker, 10_000, "after Ctrl-C, the worker")).code, 0);
});

Deno.test("under deno task, which passes a Ctrl-C on to its command as the terminal sends it too, one Ctrl-C is one press", async () => {
  const redis = await sharedRedis();
  const queue = `terminal-${crypto.randomUUID()}`;
  const dir = await Deno.makeTempDir({ prefix: "streaq-task-" });
  try {
    const command = [
      denoExecutable(),
      "run",
      "--cached-only",
      `--config=${ROOT}deno.json`,
      ...workerFlags(redis),
      WORKER,
    ];
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ tasks: { worker: shellCommand(command) } }),
    );
    await using worker = new Terminal([denoExecutable(), "task", "worker"], {
      cwd: dir,
      env: { ...environment(redis, queue), NO_COLOR: "1" },
    });
    await worker.waitFor("started on queue");
    await worker.type(CTRL_C);
    const { code, output } = await exitWithin(worker, 10_000, "after Ctrl-C, the worker");
    assert.equal(code, 0, output);
    assert.match(output, /stopped/);
    assert.doesNotMatch(output, /exiting now/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
