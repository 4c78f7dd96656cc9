import assert from "node:assert/strict";
import config from "../deno.json" with { type: "json" };
import { taskContext, type TaskHandle, TaskStatus, type Worker } from "../mod.ts";
import type { Recorded } from "./fixtures/cli_worker_module.ts";
import { denoExecutable, eventually, runInBackground, testWorker } from "./_helpers.ts";
import { CTRL_C, PROMPT, Terminal } from "./_terminal.ts";
import { sharedRedis } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CONFIG = `${ROOT}deno.json`;
const CLI = `${ROOT}src/cli/main.ts`;
const MODULE = `${ROOT}tests/fixtures/cli_worker_module.ts`;
const NO_WORKER = `${ROOT}tests/fixtures/cli_no_worker_module.ts`;
const TWO_WORKERS = `${ROOT}tests/fixtures/cli_two_workers_module.ts`;
const DENIED = /NotCapable|PermissionDenied|Requires \w+ access/;

/**
 * A process of the command line (or any deno program) whose stdout and stderr lines are
 * collected as they come, so a test can wait for a log line.
 */
class Process implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  /** Everything written to stdout, escape codes included. */
  stdout = "";
  readonly #reading: Promise<void>;
  readonly #readers: ReadableStreamDefaultReader<string>[] = [];
  #status: Deno.CommandStatus | undefined;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = new Deno.Command(denoExecutable(), {
      args,
      cwd: ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child.status.then((status) => this.#status = status);
    this.#reading = Promise.all([
      this.#collect(this.child.stdout, (text) => this.stdout += text),
      this.#collect(this.child.stderr),
    ])
      .then(() => {});
  }

  /** The command line itself, under the `cli` permission set of deno.json. */
  static cli(args: string[], env: Record<string, string> = {}): Process {
    return new Process(["run", "--no-prompt", `--config=${CONFIG}`, "-P=cli", CLI, ...args], env);
  }

  get output(): string {
    return this.lines.join("\n");
  }

  /** Waits for the `count`-th line matching `pattern` and returns its match. */
  async waitFor(pattern: RegExp, { count = 1, timeout = 15_000 } = {}): Promise<RegExpMatchArray> {
    let found: RegExpMatchArray[] = [];
    try {
      await eventually(() => {
        found = this.lines.map((line) => line.match(pattern)).filter((m) => m !== null);
        if (found.length < count && this.#status) {
          throw new Error(`the process exited with code ${this.#status.code} first`);
        }
        return found.length >= count;
      }, { timeout, what: `line ${count} matching ${pattern}` });
    } catch (error) {
      throw new Error(`${(error as Error).message}; output so far:\n${this.output}`);
    }
    return found[count - 1];
  }

  /** The lines matching `pattern`. */
  matching(pattern: RegExp): RegExpMatchArray[] {
    return this.lines.map((line) => line.match(pattern)).filter((m) => m !== null);
  }

  /** Waits for the process to exit (SIGKILL after `timeout`) and for its output. */
  async exit(timeout = 15_000): Promise<Deno.CommandStatus> {
    const killer = setTimeout(() => this.#kill("SIGKILL"), timeout);
    try {
      const status = await this.child.status;
      await this.#reading;
      if (status.signal === "SIGKILL") {
        throw new Error(`the process did not exit within ${timeout} ms:\n${this.output}`);
      }
      return status;
    } finally {
      clearTimeout(killer);
    }
  }

  signal(signal: Deno.Signal): void {
    this.#kill(signal);
  }

  /** Waits until the output ends: every process holding the pipes (children too) has exited. */
  async outputEnd(timeout = 15_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the output did not end:\n${this.output}`)),
        timeout,
      );
    });
    try {
      await Promise.race([this.#reading, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops a process that is still running: SIGTERM (which a supervisor forwards), then SIGKILL. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#status) {
      this.#kill("SIGTERM");
      const killer = setTimeout(() => this.#kill("SIGKILL"), 5_000);
      await this.child.status;
      clearTimeout(killer);
    }
    // Orphaned grandchildren could keep the pipes open: stop reading after a moment.
    const giveUp = setTimeout(() => this.#readers.forEach((r) => r.cancel()), 5_000);
    await this.#reading;
    clearTimeout(giveUp);
  }

  #kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // It has exited already.
    }
  }

  async #collect(
    stream: ReadableStream<Uint8Array>,
    keep: (text: string) => void = () => {},
  ): Promise<void> {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    this.#readers.push(reader);
    let partial = "";
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        keep(value);
        const parts = (partial + value).split("\n");
        partial = parts.pop()!;
        // deno-lint-ignore no-control-regex
        this.lines.push(...parts.map((line) => line.replace(/\x1b\[[0-9;]*m/g, "")));
      }
    } catch {
      // Cancelled.
    }
    if (partial) this.lines.push(partial);
  }
}

/** Environment of the fixture module: the test's Redis and queue. */
async function moduleEnv(worker: Worker<unknown>): Promise<Record<string, string>> {
  const redis = await sharedRedis();
  return { STREAQ_TEST_REDIS_URL: redis.url, STREAQ_TEST_QUEUE: worker.queueName };
}

/** Enqueues `record(n, ms)` for each n of `ns` through `client` (which need not register it). */
function enqueueRecords(
  client: Worker<unknown>,
  ns: number[],
  ms: number,
): Promise<TaskHandle<Recorded>[]> {
  return client.enqueueMany(ns.map((n) => client.enqueueUnsafe<Recorded>("record", n, ms)));
}

/** Registers `record` on an in-process worker, returning the same shape as the fixture's. */
function registerRecord(worker: Worker<unknown>): void {
  worker.task(async function record(n: number, ms: number): Promise<Recorded> {
    const { signal, workerId } = taskContext();
    const recorded = { n, workerId, pid: Deno.pid, runningAtStart: worker.running(), version: "" };
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(recorded), ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  }, { thread: false });
}

async function results(handles: TaskHandle<Recorded>[], timeout = 15_000): Promise<Recorded[]> {
  return await Promise.all(handles.map(async (handle) => {
    const result = await handle.result({ timeout });
    assert.ok(result.success, `task ${handle.id} failed: ${!result.success && result.exception}`);
    return result.result;
  }));
}

/** Kills a process by pid with SIGKILL, the way an OOM killer or `kill -9` would. */
async function killHard(pid: number): Promise<void> {
  // `deno eval` may signal any process; this test's own permissions may not.
  const { code } = await new Deno.Command(denoExecutable(), {
    args: ["eval", `Deno.kill(${pid}, "SIGKILL")`],
    stdin: "null",
  }).output();
  assert.equal(code, 0, `could not kill process ${pid}`);
}

const STARTED_PROCESS = /worker process #(\d+) started \(pid (\d+)\)/;
const STARTED_WORKER = /worker (\w+) started on queue/;

Deno.test("--help prints the usage and the exit codes, and --version the version of deno.json", async () => {
  await using help = Process.cli(["--help"]);
  assert.equal((await help.exit()).code, 0);
  assert.match(help.output, /Usage:\n {2}streaq run <module>\[:<export>\]/);
  assert.match(help.output, /--workers N/);
  assert.match(help.output, /Exit codes:\n {2}0 .*\n {2}1 .*\n(.|\n)* {2}2 {2}usage error/);

  await using version = Process.cli(["--version"]);
  assert.equal((await version.exit()).code, 0);
  assert.ok(version.lines.includes(`streaq ${config.version}`), version.output);
});

Deno.test("an unknown option, a bad value or a missing module is a usage error: exit code 2 and a message naming it", async () => {
  const cases: [string[], RegExp][] = [
    [["run", MODULE, "--frobnicate"], /streaq: Unknown option '--frobnicate'/],
    [
      ["run", MODULE, "--workers", "two"],
      /Option '--workers' must be an integer ≥ 1: received "two"/,
    ],
    [["run"], /Missing the module: streaq run <module>\[:<export>\]/],
    [["status", MODULE, "--workers", "2"], /Option '--workers' applies to run, not status/],
    [["launch", MODULE], /Unknown command "launch": expected one of run, status, web/],
  ];
  for (const [args, message] of cases) {
    await using cli = Process.cli(args);
    const { code } = await cli.exit();
    assert.equal(code, 2, `${args.join(" ")}: ${cli.output}`);
    assert.match(cli.output, message);
    assert.match(cli.output, /Run with --help for usage/);
  }
});

Deno.test("a module that cannot be loaded is a usage error showing its path and the cause", async () => {
  const missing = `${ROOT}tests/fixtures/no_such_worker_module.ts`;
  await using cli = Process.cli(["run", "tests/fixtures/no_such_worker_module.ts"]);
  assert.equal((await cli.exit()).code, 2, cli.output);
  assert.ok(
    cli.output.includes(`Cannot load module ${missing}: TypeError: Module not found`),
    cli.output,
  );
});

Deno.test("a module that exports no Worker, several without a choice, or not the chosen export, is a usage error saying so", async () => {
  const cases: [string, RegExp][] = [
    [NO_WORKER, /Module .*cli_no_worker_module\.ts exports no Worker: export one/],
    [
      TWO_WORKERS,
      /exports several Workers \(emails, reports\): choose one with .*cli_two_workers_module\.ts:emails/,
    ],
    [`${TWO_WORKERS}:invoices`, /has no export named invoices \(its Workers: emails, reports\)/],
    [`${NO_WORKER}:queueName`, /Export queueName of module .* is not a Worker: received string/],
  ];
  for (const [target, message] of cases) {
    await using cli = Process.cli(["run", target]);
    assert.equal((await cli.exit()).code, 2, cli.output);
    assert.match(cli.output, message);
  }
});

Deno.test("run --burst drains the queue with the given concurrency and exits 0; --quiet leaves out info lines", async () => {
  await using client = await testWorker();
  const handles = await enqueueRecords(client, [1, 2, 3, 4, 5, 6], 100);
  await using cli = Process.cli(
    ["run", MODULE, "--burst", "--concurrency", "3", "--quiet"],
    await moduleEnv(client),
  );
  const { code } = await cli.exit();
  assert.equal(code, 0, cli.output);
  const done = await results(handles, 1_000);
  assert.deepEqual(done.map((r) => r.n), [1, 2, 3, 4, 5, 6]);
  assert.equal(new Set(done.map((r) => r.workerId)).size, 1);
  // The fixture's Worker has the default concurrency of 16: --concurrency 3 took its place.
  assert.equal(Math.max(...done.map((r) => r.runningAtStart)), 3);
  assert.equal(await client.queueSize({ includeScheduled: true }), 0);
  assert.equal(cli.matching(STARTED_WORKER).length, 0, cli.output);
});

Deno.test("run --workers 2 runs two worker processes, and one killed with SIGKILL is restarted and works", async () => {
  await using client = await testWorker();
  await using cli = Process.cli(
    ["run", MODULE, "--workers", "2", "--concurrency", "2"],
    await moduleEnv(client),
  );
  await cli.waitFor(STARTED_PROCESS, { count: 2 });
  await cli.waitFor(STARTED_WORKER, { count: 2 });
  const first = await results(await enqueueRecords(client, [...Array(12).keys()], 200));
  const workers = new Set(first.map((r) => r.workerId));
  assert.equal(workers.size, 2, `worker ids: ${[...workers]}`);
  assert.equal(new Set(first.map((r) => r.pid)).size, 2);

  const victim = first[0].pid;
  await killHard(victim);
  const restarted = await cli.waitFor(
    new RegExp(
      `worker process #(\\d) \\(pid ${victim}\\) was killed by SIGKILL unexpectedly: restarting it in \\d+ ms`,
    ),
  );
  await cli.waitFor(new RegExp(`worker process #${restarted[1]} started \\(pid (\\d+)\\)`), {
    count: 2,
  });
  const newWorker = (await cli.waitFor(STARTED_WORKER, { count: 3 }))[1];
  assert.ok(!workers.has(newWorker));
  const second = await results(await enqueueRecords(client, [...Array(8).keys()], 200));
  assert.ok(second.every((r) => r.pid !== victim));

  cli.signal("SIGTERM");
  assert.equal((await cli.exit()).code, 0, cli.output);
});

Deno.test("SIGTERM to the supervisor reaches every worker process, it exits 0, and no task is lost", async () => {
  await using client = await testWorker();
  const handles = await enqueueRecords(client, [...Array(24).keys()], 250);
  await using cli = Process.cli(
    ["run", MODULE, "--workers", "2", "--concurrency", "2"],
    await moduleEnv(client),
  );
  await eventually(async () => (await handles[3].status()) === TaskStatus.DONE, {
    what: "the first tasks to finish",
  });
  cli.signal("SIGTERM");
  const { code } = await cli.exit();
  assert.equal(code, 0, cli.output);
  assert.equal(cli.matching(/worker process #\d \(pid \d+\) exited with code 0/).length, 2);
  assert.equal(cli.matching(/stopped after \d+ ms of shutdown/).length, 2, cli.output);
  const unfinished = [];
  for (const handle of handles) {
    if ((await handle.status()) !== TaskStatus.DONE) unfinished.push(handle);
  }
  assert.ok(unfinished.length > 0, "every task finished before the signal: nothing was tested");
  // Everything not done was handed back to the queue: an in-process worker finishes it.
  registerRecord(client);
  await runInBackground(client, { burst: true }).done;
  const done = await results(handles, 1_000);
  assert.deepEqual(done.map((r) => r.n), [...Array(24).keys()]);
  for (const handle of unfinished) assert.equal(done[handles.indexOf(handle)].workerId, client.id);
});

Deno.test("worker processes shut down gracefully when their supervisor is killed with SIGKILL", async () => {
  await using client = await testWorker();
  await using cli = Process.cli(["run", MODULE, "--workers", "2"], await moduleEnv(client));
  await cli.waitFor(STARTED_WORKER, { count: 2 });
  cli.signal("SIGKILL");
  assert.equal((await cli.child.status).signal, "SIGKILL");
  // The worker processes write to the same pipes, which close once the last of them exits.
  await cli.outputEnd();
  assert.equal(cli.matching(/the supervisor is gone: shutting down/).length, 2, cli.output);
  assert.equal(cli.matching(/stopped after \d+ ms of shutdown/).length, 2, cli.output);
  const redis = await sharedRedis();
  assert.equal(await redis.cli("KEYS", `streaq:{${client.queueName}}:health:*`), "");
});

Deno.test("run --watch restarts the worker when a file of the module's directory changes", async () => {
  await using client = await testWorker();
  const dir = await Deno.makeTempDir({ prefix: "streaq-cli-watch-" });
  try {
    const source = (await Deno.readTextFile(MODULE)).replace("../../mod.ts", `${ROOT}mod.ts`);
    const module = `${dir}/watched_worker.ts`;
    await Deno.writeTextFile(module, source);
    await using cli = new Process([
      "run",
      "--no-prompt",
      `--config=${CONFIG}`,
      "--allow-net=127.0.0.1,localhost",
      "--allow-env",
      "--allow-sys=hostname",
      `--allow-read=${ROOT},${dir}`,
      "--allow-run=deno",
      CLI,
      "run",
      module,
      "--watch",
    ], await moduleEnv(client));
    await cli.waitFor(STARTED_WORKER);
    const [before] = await results(await enqueueRecords(client, [1], 0));
    assert.equal(before.version, "v1");

    await Deno.writeTextFile(module, source.replace('VERSION = "v1"', 'VERSION = "v2"'));
    await cli.waitFor(/watched_worker\.ts changed: restarting/);
    const restarted = (await cli.waitFor(STARTED_WORKER, { count: 2 }))[1];
    const [after] = await results(await enqueueRecords(client, [2], 0));
    assert.equal(after.version, "v2");
    assert.equal(after.workerId, restarted);

    cli.signal("SIGTERM");
    assert.equal((await cli.exit()).code, 0, cli.output);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status --once prints queue sizes per priority, live workers and running tasks", async () => {
  await using worker = await testWorker({ concurrency: 1, prefetch: 0 });
  registerRecord(worker);
  const [running] = await enqueueRecords(worker, [1, 2, 3], 10_000);
  await worker.enqueueUnsafe("record", 4, 0).start({ delay: 60_000 });
  const background = runInBackground(worker);
  try {
    await eventually(async () => (await running.status()) === TaskStatus.RUNNING);
    const healthKey = `streaq:{${worker.queueName}}:health:${worker.id}`;
    await eventually(
      async () => (await queueContextOf(worker).redis.get(healthKey) ?? "").includes('"running":1'),
      {
        what: "a health record with the running task",
      },
    );
    await using cli = Process.cli(["status", MODULE, "--once"], await moduleEnv(worker));
    assert.equal((await cli.exit()).code, 0, cli.output);
    assert.match(cli.output, new RegExp(`^queue ${worker.queueName} at `, "m"));
    assert.match(cli.output, /^priority\s+queued\s+running\s+scheduled\nnormal\s+2\s+1\s+1$/m);
    assert.match(cli.output, /^tasks: 2 queued, 1 running, 1 scheduled, 0 waiting, 0 done /m);
    assert.match(cli.output, /^workers: 1 live$/m);
    assert.match(cli.output, new RegExp(`^${worker.id}\\s+\\S+\\s+${Deno.pid}\\s+1/1\\s`, "m"));
    assert.match(cli.output, /^running tasks: 1\nid\s+function\s+try\s+enqueued\n/m);
    assert.match(cli.output, new RegExp(`^${running.id}\\s+record\\s+1\\s`, "m"));
  } finally {
    await background.stop();
  }
});

Deno.test("examples/worker.ts runs under the documented -P=worker set with no prompt and no permission denied", async () => {
  await using client = await testWorker({ priorities: ["low", "normal", "high"] });
  const redis = await sharedRedis();
  await using example = new Process(
    ["run", "--no-prompt", `--config=${CONFIG}`, "-P=worker", `${ROOT}examples/worker.ts`],
    { REDIS_URL: redis.url, STREAQ_QUEUE: client.queueName },
  );
  await example.waitFor(STARTED_WORKER);
  const fib = await client.enqueueUnsafe<number>("fibonacci", 20).start({ priority: "high" });
  const charge = await client.enqueueUnsafe<string>("chargeOrder", "order-7");
  const reminder = await client.enqueueUnsafe<string>("sendReminder", "ada", "tea").start({
    delay: 100,
  });
  const outcomes = await Promise.all(
    [fib, charge, reminder].map((h) => h.result({ timeout: 10_000 })),
  );
  assert.deepEqual(
    outcomes.map((r) => r.success ? "success" : String(r.exception)),
    ["success", "success", "success"],
  );
  assert.equal(outcomes[0].success && outcomes[0].result, 6765);
  assert.equal(outcomes[1].success && outcomes[1].result, "charged order-7 on try 3");
  // The host name is in the health record only when --allow-sys=hostname is granted.
  const health = JSON.parse(
    await redis.cli("GET", `streaq:{${client.queueName}}:health:${outcomes[0].workerId}`),
  );
  assert.equal(health.host, Deno.hostname());

  example.signal("SIGTERM");
  assert.equal((await example.exit()).code, 0, example.output);
  assert.doesNotMatch(example.output, DENIED);
});

Deno.test("web serves the dashboard of the module's queue on loopback until SIGTERM, and refuses a public address without auth", async () => {
  await using client = await testWorker();
  const env = await moduleEnv(client);
  await using cli = Process.cli(["web", MODULE, "--port", "0"], env);
  const [, url] = await cli.waitFor(/streaq dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
  const response = await fetch(url);
  const page = await response.text();
  assert.equal(response.status, 200, page);
  assert.ok(page.includes(client.queueName), "the page names the queue");
  cli.signal("SIGTERM");
  assert.equal((await cli.exit()).code, 0, cli.output);

  await using open = Process.cli(["web", MODULE, "--hostname", "0.0.0.0", "--port", "0"], env);
  assert.equal((await open.exit()).code, 2, open.output);
  assert.match(open.output, /streaq: cannot serve the dashboard: .*without 'auth'/);
});

Deno.test("web --trust-proxy makes the dashboard's cookies Secure for requests its proxy marks https, and only those", async () => {
  await using client = await testWorker();
  const env = await moduleEnv(client);
  const csrfCookie = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    await response.body?.cancel();
    assert.equal(response.status, 200);
    return response.headers.getSetCookie().find((c) => c.startsWith("streaq_csrf=")) ?? "";
  };
  const proxied = { "x-forwarded-proto": "https" };
  await using trusting = Process.cli(["web", MODULE, "--port", "0", "--trust-proxy"], env);
  const [, url] = await trusting.waitFor(/streaq dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.match(await csrfCookie(url, proxied), /; Secure$/);
  assert.doesNotMatch(await csrfCookie(url), /Secure/);
  trusting.signal("SIGTERM");
  assert.equal((await trusting.exit()).code, 0, trusting.output);

  await using plain = Process.cli(["web", MODULE, "--port", "0"], env);
  const [, plainUrl] = await plain.waitFor(/streaq dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.doesNotMatch(await csrfCookie(plainUrl, proxied), /Secure/, "not trusted by default");
  plain.signal("SIGTERM");
  assert.equal((await plain.exit()).code, 0, plain.output);

  await using misplaced = Process.cli(["status", MODULE, "--trust-proxy"], env);
  assert.equal((await misplaced.exit()).code, 2, misplaced.output);
  assert.match(misplaced.output, /Option '--trust-proxy' applies to web, not status/);
});

const FLAGS_MODULE = `${ROOT}tests/fixtures/cli_flags_module.ts`;
const FLAGS_REPORT = /flags of pid (\d+): openKv=(\w+) heapLimitMb=(\d+) osRelease=(\w+)/;
/** A log line of streaq in text form: an ISO 8601 time with milliseconds, then the source. */
const TEXT_LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) \[streaq /;

/** The fixture's report of each process: the supervisor's own, then its worker processes'. */
function flagReports(cli: Process): { supervisor: string[]; workers: string[][] } {
  const reports = cli.matching(FLAGS_REPORT);
  const supervisor = reports.find((r) => Number(r[1]) === cli.child.pid);
  assert.ok(supervisor, `the supervisor loads the module too:\n${cli.output}`);
  return { supervisor, workers: reports.filter((r) => r !== supervisor) };
}

Deno.test("--log-format, --deno-flags and --permission-set with a bad value, or without worker processes, are usage errors naming it", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["run", MODULE, "--log-format", "xml"],
      /Option '--log-format' must be text or json: received "xml"/,
    ],
    [
      ["run", MODULE, "--workers", "2", "--deno-flags=--unstable-kv worker.ts"],
      /Option '--deno-flags' must hold only flags of deno run, each starting with '-': received "worker\.ts" in "--unstable-kv worker\.ts"/,
    ],
    [
      ["run", MODULE, "--workers", "2", `--deno-flags=--v8-flags="--a`],
      /Option '--deno-flags' has an unmatched ": received/,
    ],
    [
      ["run", MODULE, "--deno-flags=--unstable-kv"],
      /Option '--deno-flags' applies to worker processes: add '--workers N' \(N ≥ 2\) or '--watch'/,
    ],
    [
      ["run", MODULE, "--workers", "2", "--permission-set", "a b"],
      /Option '--permission-set' must be the name of a permission set of deno\.json: received "a b"/,
    ],
    [
      ["status", MODULE, "--log-format", "json"],
      /Option '--log-format' applies to run, not status/,
    ],
  ];
  for (const [args, message] of cases) {
    await using cli = Process.cli(args);
    const { code } = await cli.exit();
    assert.equal(code, 2, `${args.join(" ")}: ${cli.output}`);
    assert.match(cli.output, message);
  }
});

Deno.test("run --workers 2 --deno-flags gives the worker processes --unstable-kv and --v8-flags, and all log lines share one time format", async () => {
  await using client = await testWorker();
  await using cli = Process.cli(
    [
      "run",
      FLAGS_MODULE,
      "--workers",
      "2",
      "--deno-flags=--v8-flags=--max-old-space-size=256 --unstable-kv",
    ],
    await moduleEnv(client),
  );
  await cli.waitFor(STARTED_WORKER, { count: 2 });
  await cli.waitFor(FLAGS_REPORT, { count: 3 });
  const { supervisor, workers } = flagReports(cli);
  // Started without the flags itself, the supervisor cannot pass them on by itself.
  assert.equal(supervisor[2], "undefined");
  assert.ok(Number(supervisor[3]) > 512, supervisor[0]);
  assert.equal(workers.length, 2);
  for (const report of workers) {
    assert.equal(report[2], "function", report[0]);
    assert.ok(Number(report[3]) < 512, `a heap limit near 256 MB: ${report[0]}`);
  }
  cli.signal("SIGTERM");
  assert.equal((await cli.exit()).code, 0, cli.output);
  const logLines = cli.lines.filter((line) => line.includes("[streaq "));
  assert.ok(logLines.some((line) => line.includes("[streaq supervisor]")), cli.output);
  assert.ok(logLines.some((line) => STARTED_WORKER.test(line)), cli.output);
  for (const line of logLines) assert.match(line, TEXT_LOG_LINE);
});

Deno.test("run --workers 2 --permission-set=test runs the worker processes with -P=test instead of the permissions the supervisor sees", async () => {
  await using client = await testWorker();
  await using cli = Process.cli(
    ["run", FLAGS_MODULE, "--workers", "2", "--permission-set=test", "--verbose"],
    await moduleEnv(client),
  );
  await cli.waitFor(STARTED_WORKER, { count: 2 });
  await cli.waitFor(FLAGS_REPORT, { count: 3 });
  const { supervisor, workers } = flagReports(cli);
  // The supervisor runs under -P=cli, which does not grant sys osRelease; the test set does.
  assert.equal(supervisor[4], "prompt", supervisor[0]);
  assert.deepEqual(workers.map((r) => r[4]), ["granted", "granted"]);
  assert.match(
    cli.output,
    /worker processes run: \S+ run --no-prompt --permission-set=test \.\.\./,
  );
  const [handle] = await enqueueRecords(client, [7], 0);
  assert.equal((await results([handle]))[0].n, 7);
  cli.signal("SIGTERM");
  assert.equal((await cli.exit()).code, 0, cli.output);
});

Deno.test("run --workers 2 --burst --log-format json writes the supervisor's and the workers' lines as JSON objects, task lines with task id and function name", async () => {
  await using client = await testWorker();
  const handles = await enqueueRecords(client, [1, 2, 3, 4], 50);
  await using cli = Process.cli(
    ["run", MODULE, "--workers", "2", "--burst", "--log-format", "json"],
    await moduleEnv(client),
  );
  assert.equal((await cli.exit()).code, 0, cli.output);
  await results(handles, 1_000);
  assert.equal(cli.lines.some((line) => TEXT_LOG_LINE.test(line)), false, cli.output);
  const records = cli.lines.filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line) as Record<string, unknown>
  );
  for (const record of records) {
    assert.match(String(record.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(["debug", "info", "warn", "error"].includes(String(record.level)));
    assert.equal(typeof record.message, "string");
  }
  assert.ok(
    records.some((r) =>
      r.source === "streaq supervisor" && /worker process #1 started/.test(String(r.message))
    ),
    cli.output,
  );
  const finished = records.filter((r) => String(r.message).startsWith("✓"));
  assert.deepEqual(
    finished.map((r) => r.taskId).sort(),
    handles.map((h) => h.id).sort(),
  );
  for (const record of finished) {
    assert.equal(record.fnName, "record");
    assert.equal(record.queue, client.queueName);
    assert.match(String(record.workerId), /^\w+$/);
  }
});

/**
 * The command line in a real terminal (a pseudo-terminal from `script`), typed at. NO_COLOR
 * (which CI sets) reaches it only when `env` sets it.
 */
function cliInTerminal(args: string[], env: Record<string, string>): Terminal {
  const command = [denoExecutable(), "run", `--config=${CONFIG}`, "-P=cli", CLI, ...args];
  return new Terminal(command, { cwd: ROOT, env, unset: "NO_COLOR" in env ? [] : ["NO_COLOR"] });
}

const ALTERNATE_SCREEN = "\x1b[?1049h";
const MAIN_SCREEN = "\x1b[?1049l";
const CURSOR_SHOWN = "\x1b[?25h";
// deno-lint-ignore no-control-regex
const COLOUR = /\x1b\[\d+m/;

Deno.test("status in a terminal draws on the alternate screen in colour, and Ctrl-C ends it with the terminal restored", async () => {
  await using client = await testWorker();
  await client.enqueueUnsafe("record", 1, 0);
  await using terminal = cliInTerminal(["status", MODULE], await moduleEnv(client));
  await terminal.waitFor("(Ctrl-C to quit)");
  const view = terminal.output;
  const entered = view.indexOf(ALTERNATE_SCREEN);
  assert.ok(entered >= 0 && entered < view.indexOf("queue "), JSON.stringify(view));
  assert.ok(view.includes(`\x1b[1mqueue ${client.queueName}\x1b[22m`), JSON.stringify(view));
  // deno-lint-ignore no-control-regex
  assert.match(view, /normal +\x1b\[33m1\x1b\[39m/); // one queued task, in yellow

  await terminal.type(CTRL_C);
  assert.equal((await terminal.exit()).code, 0, JSON.stringify(terminal.output));
  const { output } = terminal;
  const restored = output.lastIndexOf(`${CURSOR_SHOWN}${MAIN_SCREEN}`);
  assert.ok(restored > output.lastIndexOf("(Ctrl-C to quit)"), JSON.stringify(output.slice(-200)));
  assert.equal(output.split(ALTERNATE_SCREEN).length, 2, "entered once");
});

Deno.test("web in a terminal serves the dashboard with no prompt, and Ctrl-C ends it", async () => {
  await using client = await testWorker();
  await using terminal = cliInTerminal(["web", MODULE, "--port", "0"], {
    ...await moduleEnv(client),
    NO_COLOR: "1",
  });
  await terminal.waitFor("streaq dashboard: ");
  const url = /streaq dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(terminal.output)?.[1];
  assert.ok(url, terminal.output);
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.ok((await response.text()).includes(client.queueName), "the page names the queue");
  await terminal.type(CTRL_C);
  assert.ok(await terminal.endsWithin(10_000), `Ctrl-C did not end web:\n${terminal.output}`);
  assert.equal((await terminal.exit()).code, 0, terminal.output);
  assert.doesNotMatch(terminal.output, DENIED);
});

Deno.test("run --workers 2 in a terminal starts both processes with no prompt, and one Ctrl-C, which reaches them all, ends them gracefully", async () => {
  await using client = await testWorker();
  await using terminal = cliInTerminal(["run", MODULE, "--workers", "2"], {
    ...await moduleEnv(client),
    NO_COLOR: "1",
  });
  await terminal.waitFor("started on queue"); // fails at once at a prompt
  await eventually(() => terminal.output.split("started on queue").length - 1 === 2, {
    what: `both worker processes to start:\n${terminal.output}`,
  });
  const task = await client.enqueueUnsafe<Recorded>("record", 1, 0);
  assert.equal((await task.result({ timeout: 10_000 })).success, true);
  await terminal.type(CTRL_C);
  assert.ok(await terminal.endsWithin(15_000), `Ctrl-C did not end run:\n${terminal.output}`);
  const { code, output } = await terminal.exit();
  assert.equal(code, 0, output);
  assert.equal(output.split(/stopped after \d+ ms of shutdown/).length - 1, 2, output);
  assert.match(output, /all worker processes have exited/);
  assert.doesNotMatch(
    output,
    /exiting now/,
    "one press, though the terminal and the supervisor both pass it on",
  );
  assert.doesNotMatch(output, DENIED);
  assert.equal(output.includes(PROMPT), false, output);
});

Deno.test("status in a terminal with NO_COLOR set draws no colour", async () => {
  await using client = await testWorker();
  await using terminal = cliInTerminal(["status", MODULE], {
    ...await moduleEnv(client),
    NO_COLOR: "1",
  });
  await terminal.waitFor("(Ctrl-C to quit)");
  await terminal.type(CTRL_C);
  assert.equal((await terminal.exit()).code, 0, JSON.stringify(terminal.output));
  assert.ok(terminal.output.includes(ALTERNATE_SCREEN) && terminal.output.includes(MAIN_SCREEN));
  assert.doesNotMatch(terminal.output, COLOUR);
  assert.match(terminal.output, new RegExp(`queue ${client.queueName} at `));
});

Deno.test("status without a terminal prints plain text once per refresh, with tasks finished per second measured between refreshes", async () => {
  // Heartbeats come every 20 s (the default idleTimeout): the rate comes from the per-minute
  // counts, which a worker writes within a second.
  await using worker = await testWorker({ concurrency: 2 });
  registerRecord(worker);
  await enqueueRecords(worker, [...Array(400).keys()], 50);
  const background = runInBackground(worker);
  try {
    await using cli = Process.cli(["status", MODULE], await moduleEnv(worker));
    const views = new RegExp(`^queue ${worker.queueName} at `);
    const live =
      /^throughput: [\d.]+ added\/s, [\d.]+ started\/s, ([\d.]+) finished\/s \(last second\)$/;
    await eventually(() => cli.matching(live).some((m) => Number(m[1]) > 0), {
      what: `a view with tasks finished in the last second:\n${cli.output}`,
    });
    await cli.waitFor(views, { count: 3 });
    cli.signal("SIGINT");
    assert.equal((await cli.exit()).code, 0, cli.output);
    assert.equal(cli.stdout.includes("\x1b"), false, JSON.stringify(cli.stdout.slice(0, 300)));
    const finished = cli.matching(live).map((m) => Number(m[1]));
    assert.ok(finished.length >= 2, cli.output);
    assert.ok(
      finished.every((rate) => rate < 200),
      `at most 2 tasks of 50 ms at once: ${finished}`,
    );
  } finally {
    await background.stop();
  }
});
