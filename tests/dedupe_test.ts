/**
 * Task ids and deduplication keys (`id` and `dedupe` start options), on a standalone Redis and
 * on a Cluster: one task however many processes enqueue it at once, the throttle and debounce
 * windows in real time, ids in batches, pipelines and dependencies, and the checks of both
 * options.
 */

import assert from "node:assert/strict";
import { type StartOptions, TaskStatus, Worker, type WorkerOptions } from "../mod.ts";
import {
  denoExecutable,
  eventually,
  runInBackground,
  sleep,
  testWorker,
  workerProcessArgs,
} from "./_helpers.ts";
import { sharedRedis, uniqueQueue } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";
import { sweepDedupeKeys } from "../src/run/dedupe_sweep.ts";
import { startTopology, type Topology } from "./_topologies.ts";

const CLIENT = new URL("./fixtures/dedupe_client.ts", import.meta.url).pathname;

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`task ids and deduplication keys on ${kind === "Cluster" ? "a Cluster" : "a standalone Redis"}`, async (t) => {
    await using topology = await startTopology(kind);
    for (const [name, behaviour] of BEHAVIOURS) {
      await t.step(name, () => behaviour(topology));
    }
    // See tests/topology_test.ts: a Cluster client's slot refresh may outlive quit() briefly.
    if (kind === "Cluster") await sleep(1_500);
  });
}

type Behaviour = (topology: Topology) => Promise<void>;

function workerOn(topology: Topology, options: WorkerOptions = {}): Worker {
  return new Worker({
    ...topology.connection,
    queueName: uniqueQueue(topology.kind.toLowerCase()),
    logLevel: "error",
    handleSignals: false,
    ...options,
  });
}

/**
 * Starts `processes` client processes (tests/fixtures/dedupe_client.ts), lets them all connect,
 * then tells them at once to enqueue `count` tasks each with `start`; returns every handle
 * they printed, as [id, deduplicated].
 */
async function enqueueFromProcesses(
  topology: Topology,
  queueName: string,
  start: StartOptions,
  { processes = 4, count = 5 } = {},
): Promise<[string, boolean][]> {
  const children = Array.from({ length: processes }, () =>
    new Deno.Command(denoExecutable(), {
      args: workerProcessArgs(CLIENT),
      env: {
        STREAQ_CONNECTION: JSON.stringify(topology.connection),
        STREAQ_QUEUE: queueName,
        STREAQ_START: JSON.stringify(start),
        STREAQ_COUNT: String(count),
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).spawn());
  const outputs = children.map((child) => linesOf(child.stdout));
  // The barrier: every process is connected before any of them enqueues.
  for (const lines of outputs) assert.equal((await lines.next()).value, "ready");
  const go = new TextEncoder().encode("go\n");
  for (const child of children) {
    const writer = child.stdin.getWriter();
    await writer.write(go);
    await writer.close();
  }
  const handles: [string, boolean][] = [];
  for (const [i, lines] of outputs.entries()) {
    const printed = (await lines.next()).value;
    const status = await children[i].status;
    const stderr = new TextDecoder().decode(
      await new Response(children[i].stderr).arrayBuffer(),
    );
    assert.equal(status.code, 0, stderr);
    handles.push(...JSON.parse(printed!));
    await lines.return(undefined);
  }
  return handles;
}

async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
    }
  }
}

/** Asserts that the handles name one task, and that exactly one of them stored it. */
function assertOneTask(handles: [string, boolean][]): string {
  const ids = new Set(handles.map(([id]) => id));
  assert.equal(ids.size, 1, `one task: ${[...ids].join(", ")}`);
  assert.equal(handles.filter(([, deduplicated]) => !deduplicated).length, 1, "stored once");
  return [...ids][0];
}

const BEHAVIOURS: [string, Behaviour][] = [
  [
    "concurrent enqueues of one id from four processes create exactly one task",
    async (topology) => {
      await using worker = workerOn(topology);
      let calls = 0;
      worker.task(async function ping(n: number): Promise<number> {
        calls++;
        return await Promise.resolve(n);
      });
      const handles = await enqueueFromProcesses(topology, worker.queueName, { id: "webhook-42" });
      assert.equal(handles.length, 20);
      assert.equal(assertOneTask(handles), "webhook-42");
      assert.equal(await worker.queueSize(), 1);
      await worker.run({ burst: true });
      assert.equal(calls, 1);
    },
  ],

  [
    "concurrent enqueues with one pending key from four processes create exactly one task",
    async (topology) => {
      await using worker = workerOn(topology);
      let calls = 0;
      worker.task(async function ping(n: number): Promise<number> {
        calls++;
        return await Promise.resolve(n);
      });
      const handles = await enqueueFromProcesses(topology, worker.queueName, {
        dedupe: { key: "export-7" },
      });
      assert.equal(handles.length, 20);
      const id = assertOneTask(handles);
      assert.equal(await worker.queueSize(), 1);
      await worker.run({ burst: true });
      assert.equal(calls, 1);
      // Once it finished, the key is free: the next enqueue starts a new task.
      const ping = worker.registry.get("ping")!;
      const again = await worker.enqueueUnsafe(ping.name, 1).start({ dedupe: { key: "export-7" } });
      assert.equal(again.deduplicated, false);
      assert.notEqual(again.id, id);
    },
  ],

  [
    "a second enqueue of a queued, delayed, waiting or running id returns the same task",
    async (topology) => {
      await using worker = workerOn(topology);
      const gate = Promise.withResolvers<void>();
      const hold = worker.task(async function hold(): Promise<string> {
        await gate.promise;
        return "held";
      });
      const later = worker.task(async function later(): Promise<void> {});
      const queued = await later.enqueue().start({ id: "q" });
      assert.equal((await later.enqueue().start({ id: "q" })).deduplicated, true);
      const delayed = await later.enqueue().start({ id: "d", delay: 60_000 });
      const delayedAgain = await later.enqueue().start({ id: "d" });
      assert.deepEqual([delayed.deduplicated, delayedAgain.deduplicated], [false, true]);
      assert.equal(await delayedAgain.status(), TaskStatus.SCHEDULED);
      const running = runInBackground(worker);
      const first = await hold.enqueue().start({ id: "r" });
      await eventually(async () => (await first.status()) === TaskStatus.RUNNING);
      const waiting = await later.enqueue().start({ id: "w", after: first.id });
      const runningAgain = await hold.enqueue().start({ id: "r" });
      const waitingAgain = await later.enqueue().start({ id: "w" });
      assert.deepEqual([runningAgain.deduplicated, waitingAgain.deduplicated], [true, true]);
      assert.equal(waiting.deduplicated, false);
      gate.resolve();
      assert.equal((await runningAgain.result({ timeout: 10_000 })).success, true);
      assert.equal((await waitingAgain.result({ timeout: 10_000 })).success, true);
      assert.equal((await queued.result({ timeout: 10_000 })).success, true);
      await running.stop();
    },
  ],

  [
    "a finished id is deduplicated while its result is kept, and starts a new task after",
    async (topology) => {
      await using worker = workerOn(topology);
      let calls = 0;
      const once = worker.task(async function once(): Promise<number> {
        return await Promise.resolve(++calls);
      }, { ttl: 1_000 });
      const running = runInBackground(worker);
      const first = await once.enqueue().start({ id: "once" });
      assert.equal((await first.result({ timeout: 10_000 })).success, true);
      const again = await once.enqueue().start({ id: "once" });
      assert.equal(again.deduplicated, true);
      const result = await again.result({ timeout: 10_000 });
      assert.equal(result.success && result.result, 1, "the stored result of the first run");
      // After the result expired, the same id is a new task.
      await eventually(async () => !(await once.enqueue().start({ id: "once" })).deduplicated);
      await eventually(() => calls === 2);
      await running.stop();
    },
  ],

  [
    "throttle: an enqueue inside the window is deduplicated even after the task finished, one after it is not",
    async (topology) => {
      await using worker = workerOn(topology);
      let calls = 0;
      const notify = worker.task(async function notify(): Promise<void> {
        calls++;
        await Promise.resolve();
      });
      const running = runInBackground(worker);
      const throttle = { dedupe: { key: "user-1", mode: "throttle", window: 3_000 } } as const;
      const first = await notify.enqueue().start(throttle);
      assert.equal(first.deduplicated, false);
      assert.equal((await first.result({ timeout: 10_000 })).success, true);
      const inside = await notify.enqueue().start(throttle);
      assert.equal(inside.deduplicated, true, "inside the window");
      assert.equal(inside.id, first.id);
      let after;
      await eventually(async () => {
        after = await notify.enqueue().start(throttle);
        return !after.deduplicated;
      }, { what: "the window to pass" });
      assert.notEqual(after!.id, first.id);
      await eventually(() => calls === 2);
      await running.stop();
    },
  ],

  ["debounce: a debounced task runs once, with the last arguments", async (topology) => {
    await using worker = workerOn(topology);
    const calls: number[] = [];
    const reindex = worker.task(async function reindex(n: number): Promise<number> {
      calls.push(n);
      return await Promise.resolve(n);
    });
    const debounce = { dedupe: { key: "index", mode: "debounce", window: 1_500 } } as const;
    const running = runInBackground(worker);
    const handles = [];
    for (const n of [1, 2, 3]) handles.push(await reindex.enqueue(n).start(debounce));
    assert.deepEqual(handles.map((h) => h.deduplicated), [false, true, true]);
    assert.equal(new Set(handles.map((h) => h.id)).size, 1);
    assert.equal(await handles[0].status(), TaskStatus.SCHEDULED);
    const result = await handles[0].result({ timeout: 10_000 });
    assert.equal(result.success && result.result, 3);
    assert.deepEqual(calls, [3]);
    await running.stop();
  }],

  [
    "debounce: an enqueue after the task started stores a new task, so the last arguments run",
    async (topology) => {
      await using worker = workerOn(topology);
      const calls: number[] = [];
      const gate = Promise.withResolvers<void>();
      const sync = worker.task(async function sync(n: number): Promise<number> {
        calls.push(n);
        await gate.promise;
        return n;
      });
      const debounce = { dedupe: { key: "s", mode: "debounce", window: 100 } } as const;
      const running = runInBackground(worker);
      const first = await sync.enqueue(1).start(debounce);
      await eventually(async () => (await first.status()) === TaskStatus.RUNNING);
      const second = await sync.enqueue(2).start(debounce);
      assert.equal(second.deduplicated, false);
      assert.notEqual(second.id, first.id);
      gate.resolve();
      const result = await second.result({ timeout: 10_000 });
      assert.equal(result.success && result.result, 2);
      assert.deepEqual(calls, [1, 2]);
      await running.stop();
    },
  ],

  [
    "ids in a batch: a repeated id is stored once, and the batch's handles say which",
    async (topology) => {
      await using worker = workerOn(topology);
      let calls = 0;
      const job = worker.task(async function job(n: number): Promise<number> {
        calls++;
        return await Promise.resolve(n);
      });
      const handles = await worker.enqueueMany([
        job.enqueue(1).start({ id: "x" }),
        job.enqueue(2).start({ id: "y" }),
        job.enqueue(3).start({ id: "x" }),
        job.enqueue(4).start({ dedupe: { key: "k" } }),
        job.enqueue(5).start({ dedupe: { key: "k" } }),
      ]);
      assert.deepEqual(handles.map((h) => h.deduplicated), [false, false, true, false, true]);
      assert.equal(handles[2].id, "x");
      assert.equal(handles[4].id, handles[3].id);
      const duplicate = job.enqueue(7).start({ dedupe: { key: "k" } });
      assert.equal((await duplicate).deduplicated, true);
      // The task's own id now names the task standing for it: a task after it waits for that one.
      const sentAfter = await job.enqueue(8).start({ after: duplicate.id });
      assert.equal(duplicate.id, handles[3].id, "a deduplicated task takes the id standing for it");
      assert.equal(sentAfter.deduplicated, false);
      const again = await worker.enqueueMany([job.enqueue(6).start({ id: "y" })]);
      assert.equal(again[0].deduplicated, true);
      assert.equal(await worker.queueSize(), 3, "x, y and k; the task after k waits");
      await worker.run({ burst: true });
      assert.equal(calls, 4);
      assert.equal((await sentAfter.result({ timeout: 5_000 })).success, true);
      const result = await handles[2].result({ timeout: 5_000 });
      assert.equal(result.success && result.result, 1, "the first task with the id");
    },
  ],

  [
    "a pipeline whose first stage is deduplicated waits for the task standing for it",
    async (topology) => {
      await using worker = workerOn(topology);
      const calls: string[] = [];
      const fetchPage = worker.task(async function fetchPage(url: string): Promise<number> {
        calls.push(`fetch ${url}`);
        return await Promise.resolve(url.length);
      });
      const double = worker.task(async function double(n: number): Promise<number> {
        calls.push(`double ${n}`);
        return await Promise.resolve(n * 2);
      });
      const first = await fetchPage.enqueue("abc").start({ dedupe: { key: "page" } }).pipe(double);
      const second = await fetchPage.enqueue("abcdef").start({ dedupe: { key: "page" } }).pipe(
        double,
      );
      assert.equal(second.deduplicated, false, "the last stage is a new task");
      await worker.run({ burst: true });
      const [a, b] = await Promise.all([first, second].map((h) => h.result({ timeout: 5_000 })));
      assert.equal(a.success && a.result, 6);
      assert.equal(b.success && b.result, 6, "fed by the first pipeline's first stage");
      assert.deepEqual(calls.filter((c) => c.startsWith("fetch")), ["fetch abc"]);
    },
  ],
];

Deno.test("an invalid task id is refused at start() with a message naming it", async () => {
  await using worker = await testWorker();
  const job = worker.task(async function job(): Promise<void> {});
  const cases: [unknown, RegExp][] = [
    [
      "",
      /'id' must be 1 to 128 printable ASCII characters, without spaces, other than "\." and "\.\.": received "" \(string\)/,
    ],
    ["has space", /received "has space" \(string\)/],
    ["line\nbreak", /'id' must be/],
    ["tab\there", /'id' must be/],
    ["..", /other than "\." and "\.\.": received "\.\." \(string\)/],
    ["é", /received "é" \(string\)/],
    [42, /received 42 \(number\)/],
    ["x".repeat(129), /received a string of 129 characters starting "x{40}"/],
  ];
  for (const [id, message] of cases) {
    assert.throws(
      () => job.enqueue().start({ id } as StartOptions),
      (error: Error) => error instanceof TypeError && message.test(error.message),
      `id ${JSON.stringify(id)}`,
    );
  }
  for (const id of ["a".repeat(128), "order:7/pay@v2+x=y~z_-.", "https://x.io/?q=1&r={2}#%"]) {
    assert.equal((await job.enqueue().start({ id })).id, id);
  }
});

Deno.test("invalid dedupe options are refused at start() with messages naming them", async () => {
  await using worker = await testWorker();
  const job = worker.task(async function job(): Promise<void> {});
  const next = worker.task(async function next(_: void): Promise<void> {});
  const cases: [() => unknown, RegExp][] = [
    [() => job.enqueue().start({ dedupe: "k" as never }), /'dedupe' must be an object/],
    [() => job.enqueue().start({ dedupe: {} as never }), /'dedupe.key' is required/],
    [() => job.enqueue().start({ dedupe: { key: "a b" } }), /'dedupe.key' must be 1 to 128/],
    [
      () => job.enqueue().start({ dedupe: { key: "k", mode: "simple" as never } }),
      /'dedupe.mode' must be one of pending, throttle, debounce: received "simple"/,
    ],
    [
      () => job.enqueue().start({ dedupe: { key: "k", mode: "throttle" } }),
      /'dedupe.window' is required by mode "throttle"/,
    ],
    [
      () => job.enqueue().start({ dedupe: { key: "k", window: 5 } }),
      /'dedupe.window' applies to the throttle and debounce modes/,
    ],
    [
      () => job.enqueue().start({ dedupe: { key: "k", mode: "debounce", window: 0 } }),
      /'dedupe.window' must be a number of milliseconds ≥ 1: received 0/,
    ],
    [
      () => job.enqueue().start({ dedupe: { key: "k", ttl: 5 } as never }),
      /Cannot enqueue task \w+ with 'dedupe' as 'ttl' is not an option: expected one of key, mode, window/,
    ],
    [
      () => job.enqueue().start({ delay: 5, dedupe: { key: "k", mode: "debounce", window: 9 } }),
      /debounce sets its own start and excludes 'delay'/,
    ],
    [
      () => job.enqueue().start({ dedupe: { key: "k" }, schedule: "* * * * *" }),
      /'dedupe' and a crontab 'schedule' exclude each other/,
    ],
    [
      () => job.enqueue().pipe(next).start({ dedupe: { key: "k", mode: "debounce", window: 9 } }),
      /allowed only on the first stage of a pipeline/,
    ],
  ];
  for (const [start, message] of cases) {
    assert.throws(start, (error: Error) => message.test(error.message), String(message));
  }
});

Deno.test("debounce with a signing secret: the replaced arguments are signed for the task that runs them", async () => {
  await using worker = await testWorker({ signingSecret: "s3cret" });
  const calls: number[] = [];
  const reindex = worker.task(async function reindex(n: number): Promise<number> {
    calls.push(n);
    return await Promise.resolve(n);
  });
  const debounce = { dedupe: { key: "index", mode: "debounce", window: 1_500 } } as const;
  const handles = [];
  for (const n of [1, 2, 3]) handles.push(await reindex.enqueue(n).start(debounce));
  assert.deepEqual(handles.map((h) => h.deduplicated), [false, true, true]);
  assert.equal(new Set(handles.map((h) => h.id)).size, 1);
  const running = runInBackground(worker);
  const result = await handles[2].result({ timeout: 10_000 });
  assert.equal(result.success && result.result, 3, result.success ? "" : String(result.exception));
  assert.deepEqual(calls, [3]);
  await running.stop();
});

Deno.test("in a batch of more than one script call's worth, a task after a deduplicated one waits for the task standing for it", async () => {
  await using worker = await testWorker({ concurrency: 64 });
  let fetches = 0;
  const fetchPage = worker.task(async function fetchPage(n: number): Promise<number> {
    fetches++;
    return await Promise.resolve(n);
  });
  const noop = worker.task(async function noop(): Promise<void> {});
  const report = worker.task(async function report(): Promise<string> {
    return await Promise.resolve("reported");
  });
  const first = fetchPage.enqueue(1).start({ dedupe: { key: "page" } });
  const second = fetchPage.enqueue(2).start({ dedupe: { key: "page" } });
  // More tasks than one script call takes (500) between the duplicate and the task after it.
  const fillers = Array.from({ length: 600 }, () => noop.enqueue());
  const after = report.enqueue().start({ after: second.id });
  const handles = await worker.enqueueMany([first, second, ...fillers, after]);
  assert.equal(handles[1].deduplicated, true);
  await worker.run({ burst: true });
  const result = await handles.at(-1)!.result({ timeout: 10_000 });
  assert.equal(
    result.success && result.result,
    "reported",
    String(!result.success && result.exception),
  );
  assert.equal(fetches, 1);
});

Deno.test("a batch of pending keys: a repeat is stood for, a live task's key stands, a finished task's key is taken over, and a new key on a generated id costs no more calls than a plain task", async () => {
  await using worker = await testWorker();
  const sync = worker.task(async function sync(user: string): Promise<string> {
    return await Promise.resolve(user);
  });
  await worker.connect();
  // "done" names a task that finished, "live" one still queued.
  const done = await sync.enqueue("done-1").start({ dedupe: { key: "done" } });
  await worker.run({ burst: true });
  assert.equal((await done.result({ timeout: 10_000 })).success, true);
  const live = await sync.enqueue("live-1").start({ dedupe: { key: "live" } });

  const redis = await sharedRedis();
  await redis.cli("CONFIG", "RESETSTAT");
  const keys = ["done", "live", "new", "new", ...Array.from({ length: 96 }, (_, i) => `k${i}`)];
  const handles = await worker.enqueueMany(
    keys.map((key, i) => sync.enqueue(`${key}-${i}`).start({ dedupe: { key } })),
  );
  const stats = await redis.cli("INFO", "commandstats");
  const calls = (command: string) =>
    Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);

  assert.deepEqual(handles.map((h) => h.deduplicated), [
    false,
    true,
    false,
    true,
    ...keys.slice(4).map(() => false),
  ]);
  assert.equal(handles[1].id, live.id, "the live task stands for the repeat of its key");
  assert.equal(
    handles[3].id,
    handles[2].id,
    "a key repeated in the batch names the batch's first task",
  );
  assert.equal(await worker.queueSize(), 1 + 98);
  // Each key's HSETNX stands for the id's EXISTS (the ids are generated): EXISTS runs only for
  // the tasks that the three keys already taken ("done", "live", the second "new") name. One
  // more HSETNX per script call keeps the keys' hash a hash table (O(1) per key, not a listpack).
  assert.deepEqual(
    { hsetnx: calls("hsetnx"), hget: calls("hget"), exists: calls("exists") },
    { hsetnx: 100 + 1, hget: 3, exists: 3 },
  );
  const hashKey = `streaq:{${worker.queueName}}:dedupes:sync`;
  assert.equal(await redis.cli("OBJECT", "ENCODING", hashKey), "hashtable");

  // The keys now name the batch's tasks: a later enqueue of each is stood for while they wait.
  const again = await worker.enqueueMany(
    ["done", "new", "k95"].map((key) => sync.enqueue(key).start({ dedupe: { key } })),
  );
  assert.deepEqual(again.map((h) => h.id), [handles[0].id, handles[2].id, handles.at(-1)!.id]);
  await worker.run({ burst: true });
  const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
  assert.deepEqual(
    results.map((r) => r.success && r.result),
    handles.map((h, i) => h.deduplicated ? (i === 1 ? "live-1" : "new-2") : `${keys[i]}-${i}`),
  );
});

Deno.test("a throttle key on a generated id costs one HSETNX in place of the id's EXISTS, and stands until its window ends", async () => {
  await using worker = await testWorker();
  const sync = worker.task(async function sync(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  await worker.connect();
  // A first send reads the queue's settings (its shard count, pinned functions) once.
  await sync.enqueue(-1);
  const redis = await sharedRedis();
  await redis.cli("CONFIG", "RESETSTAT");
  const throttled = (n: number) =>
    sync.enqueue(n).start({ dedupe: { key: `user-${n % 50}`, mode: "throttle", window: 60_000 } });
  const handles = await worker.enqueueMany(Array.from({ length: 100 }, (_, n) => throttled(n)));
  const stats = await redis.cli("INFO", "commandstats");
  const calls = (command: string) =>
    Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);
  // 50 new keys stored, 50 repeats stood for by their key's first task; one more HSETNX keeps
  // the hash a hash table, and one TIME reads Redis's clock for the call.
  assert.deepEqual(
    { hsetnx: calls("hsetnx"), hget: calls("hget"), exists: calls("exists"), set: calls("set") },
    { hsetnx: 100 + 1, hget: 50, exists: 0, set: 0 },
  );
  assert.deepEqual(
    handles.map((h) => h.deduplicated),
    Array.from({ length: 100 }, (_, n) => n >= 50),
  );
  assert.deepEqual(handles.slice(50).map((h) => h.id), handles.slice(0, 50).map((h) => h.id));
  // After its task finished, the key still stands for it: the window has not ended.
  await worker.run({ burst: true });
  const again = await throttled(7);
  assert.equal(again.deduplicated, true);
  assert.equal(again.id, handles[7].id);
});

Deno.test("keys on tasks with ids of their own, in one batch: each new key still checks its task's id, and a repeat is stood for by the key's task", async () => {
  for (const mode of ["pending", "throttle"] as const) {
    await using worker = await testWorker();
    const sync = worker.task(async function sync(n: number): Promise<number> {
      return await Promise.resolve(n);
    });
    const dedupe = (key: string) => mode === "pending" ? { key } : { key, mode, window: 60_000 };
    const known = await sync.enqueue(0).start({ id: "known" });
    const redis = await sharedRedis();
    await redis.cli("CONFIG", "RESETSTAT");
    // The first key of the call makes the function's hash; the enqueue script claims the next
    // ones itself (its fast path), which must still check each task's own id.
    const handles = await worker.enqueueMany([
      sync.enqueue(1).start({ id: "a", dedupe: dedupe("k1") }),
      sync.enqueue(2).start({ id: "known", dedupe: dedupe("k2") }),
      sync.enqueue(3).start({ id: "b", dedupe: dedupe("k1") }),
      sync.enqueue(4).start({ id: "c", dedupe: dedupe("k3") }),
    ]);
    const stats = await redis.cli("INFO", "commandstats");
    const calls = (command: string) =>
      Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);
    assert.deepEqual(
      handles.map((h) => [h.id, h.deduplicated]),
      [["a", false], [known.id, true], ["a", true], ["c", false]],
      mode,
    );
    // One HSETNX per key and one for the hash's mark; an EXISTS per new key's task id, and in
    // pending mode one for the task that the repeated key names.
    assert.deepEqual(
      { hsetnx: calls("hsetnx"), hget: calls("hget"), exists: calls("exists") },
      { hsetnx: 1 + 4, hget: 1, exists: mode === "pending" ? 4 : 3 },
      mode,
    );
    // The key given with the known id names that task from now on.
    const again = await sync.enqueue(5).start({ dedupe: dedupe("k2") });
    assert.equal(again.id, known.id, mode);
    await worker.run({ burst: true });
    const results = await Promise.all(
      [known, ...handles].map(async (h) => (await h.result({ timeout: 10_000 })).result),
    );
    assert.deepEqual(results, [0, 1, 0, 1, 4], mode);
  }
});

Deno.test("the sweep removes the deduplication keys that stand for nothing, and only those", async () => {
  await using worker = await testWorker();
  const kept = worker.task(async function kept(key: string): Promise<string> {
    return await Promise.resolve(key);
  });
  const forgotten = worker.task(async function forgotten(): Promise<void> {}, { ttl: 0 });
  const parked = worker.task(async function parked(): Promise<void> {});
  await worker.connect();
  // A pending key whose task finished and whose result is kept; one whose task kept no result.
  const done = await kept.enqueue("done").start({ dedupe: { key: "done" } });
  await forgotten.enqueue().start({ dedupe: { key: "gone" } });
  await worker.run({ burst: true });
  assert.equal((await done.result({ timeout: 10_000 })).success, true);
  // A pending key whose task still waits; a throttle key whose window ended, one whose has not.
  await kept.enqueue("queued").start({ dedupe: { key: "queued" } });
  await kept.enqueue("ended").start({ dedupe: { key: "ended", mode: "throttle", window: 1 } });
  await kept.enqueue("open").start({ dedupe: { key: "open", mode: "throttle", window: 60_000 } });
  await parked.enqueue().start({ dedupe: { key: "never-run", mode: "throttle", window: 1 } });

  const client = queueContextOf(worker);
  const fields = async (fn: string) =>
    (await client.redis.hkeys(`${client.keys.prefix}dedupes:${fn}`)).sort();
  assert.deepEqual(await fields("kept"), [" table", "done", "ended", "open", "queued"]);
  // The one-millisecond windows have ended once Redis's clock has moved on.
  const time = async () => Number((await client.redis.time())[0]) * 1_000;
  const start = await time();
  while (await time() < start + 1_000) await new Promise((r) => setTimeout(r, 50));

  assert.equal(await sweepDedupeKeys(client, "kept", () => false, 60_000), 0, "grace not over");
  assert.equal(await sweepDedupeKeys(client, "kept", () => false, 0), 1);
  assert.deepEqual(await fields("kept"), [" table", "done", "open", "queued"]);
  assert.equal(await sweepDedupeKeys(client, "forgotten", () => false, 0), 1);
  assert.deepEqual(await fields("forgotten"), [" table"]);
  // A throttle key's window is what counts, not its task: "never-run" waits, its key has ended.
  assert.equal(await sweepDedupeKeys(client, "parked", () => false, 0), 1);
  // Keys go, never tasks: the four enqueued after the run all still wait.
  assert.equal(await worker.queueSize(), 4);
});

Deno.test("without ids and keys, a batch makes the Redis calls it always made: an EXISTS, an HSET and an XADD per task", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(_n: number): Promise<void> {});
  await worker.connect();
  const redis = await sharedRedis();
  await redis.cli("CONFIG", "RESETSTAT");
  await worker.enqueueMany(Array.from({ length: 100 }, (_, i) => noop.enqueue(i)));
  const stats = await redis.cli("INFO", "commandstats");
  const calls = (command: string) =>
    Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);
  assert.deepEqual(
    { exists: calls("exists"), hset: calls("hset"), xadd: calls("xadd") },
    { exists: 100, hset: 100, xadd: 100 },
  );
  assert.deepEqual([calls("set"), calls("get")], [0, 0], "no deduplication key read or written");
});
