import assert from "node:assert/strict";
import { queueContextOf } from "../src/worker.ts";
import { eventually, runInBackground, sleepUnlessAborted, testWorker } from "./_helpers.ts";
import { taskContext } from "../mod.ts";
import { sharedRedis } from "./_redis.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import { createDashboard } from "../src/ui/mod.ts";
import { describeLimit } from "../src/client/pause.ts";
import { runCli } from "./_cli.ts";
import {
  allStarts,
  flowClient,
  FlowWorker,
  mostAtOnce,
  mostInWindow,
  quietFor,
  startWorkers,
} from "./_flow.ts";

/** The `groups.concurrency` of `grouped` in `fixtures/flow_worker.ts`. */
const GROUP_SLOTS = 2;
/** The rate limit per group of `metered` in `fixtures/flow_worker.ts`: 3 starts per second. */
const RATE_MAX = 3;
const RATE_WINDOW = 1_000;
/** Starts are counted at claim and printed by the function a little later: see rate_limit_test. */
const LATENCY = 100;

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`groups: a flooded group does not hold back another group's task by more than one round, and no group runs more than its slots across processes (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "groups");
    const { grouped } = flowClient(client);
    // Three processes of 2 slots and 2 read ahead each: 12 tasks at once without groups.
    const workers = startWorkers(topology.connection, client.queueName, 3);
    try {
      const floods = await client.enqueueMany([
        ...Array.from({ length: 200 }, (_, i) => grouped.enqueue("A", i)),
        ...Array.from({ length: 200 }, (_, i) => grouped.enqueue("C", i)),
      ]);
      await eventually(() => allStarts(workers).length >= 10, { what: "the floods to start" });
      const soloEnqueued = Date.now();
      const solo = await grouped.enqueue("B", 1);
      assert.equal((await solo.result({ timeout: 30_000 })).success, true);
      const soloStart = allStarts(workers).find((s) => s.taskId === solo.id)!.at;
      for (const group of ["A", "C"]) {
        const before = allStarts(workers).filter((s) =>
          s.fn === `grouped/${group}` && s.at >= soloEnqueued && s.at < soloStart
        ).length;
        // One round: the group's slots, taken by tasks already in line when B came; the same
        // again at most for tasks started by other processes while B's worker had no free slot.
        assert.ok(
          before <= 2 * GROUP_SLOTS,
          `${before} tasks of flooded group ${group} started after B was enqueued and before it`,
        );
      }
      const results = await Promise.all(floods.map((h) => h.result({ timeout: 60_000 })));
      assert.ok(results.every((r) => r.success && r.tries === 1), "a waiting task counted a try");
      for (const group of ["A", "C"]) {
        const most = mostAtOnce(workers, `grouped/${group}`);
        assert.ok(most <= GROUP_SLOTS, `${most} tasks of group ${group} ran at once`);
      }
      const { redis, keys } = queueContextOf(client);
      assert.equal(await redis.zcard(keys.groups("grouped")), 0, "a group is left active");
      for (const group of ["A", "B", "C"]) {
        assert.equal(
          await redis.zcard(keys.groupActive("grouped", group)),
          0,
          "a slot is left taken",
        );
        assert.equal(await redis.llen(keys.groupHeld("grouped", group)), 0, "a task is left aside");
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`groups: { max, duration } starts at most max tasks of each group per window across worker processes, other groups meanwhile, no try counted (${kind})`, async () => {
    await using topology = await startTopology(kind);
    await using client = topologyWorker(topology, "grate");
    const { metered } = flowClient(client);
    const workers = startWorkers(topology.connection, client.queueName, 3, "grated");
    try {
      const handles = await client.enqueueMany([
        ...Array.from({ length: 10 }, (_, i) => metered.enqueue("X", i)),
        ...Array.from({ length: 10 }, (_, i) => metered.enqueue("Y", i)),
      ]);
      const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
      assert.ok(results.every((r) => r.success && r.tries === 1), "a waiting task counted a try");
      for (const group of ["X", "Y"]) {
        const starts = allStarts(workers).filter((s) => s.fn === `metered/${group}`).map((s) =>
          s.at
        );
        assert.equal(starts.length, 10);
        const most = mostInWindow(starts, RATE_WINDOW - LATENCY);
        assert.ok(
          most <= RATE_MAX,
          `${most} starts of group ${group} within ${RATE_WINDOW - LATENCY} ms`,
        );
        // 10 starts at 3 a second span at least three full windows.
        const span = Math.max(...starts) - Math.min(...starts);
        assert.ok(
          span >= 3 * RATE_WINDOW - LATENCY,
          `10 starts of group ${group} within ${span} ms`,
        );
      }
      // The groups run side by side: group Y's first starts do not wait for group X's window.
      const first = (group: string) =>
        Math.min(...allStarts(workers).filter((s) => s.fn === `metered/${group}`).map((s) => s.at));
      assert.ok(Math.abs(first("X") - first("Y")) < RATE_WINDOW, "one group waited for the other");
      const { redis, keys } = queueContextOf(client);
      assert.equal(await redis.zcard(keys.groups("metered")), 0, "a group is left active");
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

Deno.test("groups: slots of a group held by a worker killed with SIGKILL are freed when its tasks are taken over", async () => {
  await using client = await testWorker();
  const { grouped } = flowClient(client);
  const connection = { redisUrl: (await sharedRedis()).url };
  // The first tries of group H never end in this process: it takes both of the group's slots.
  const hanging = new FlowWorker(connection, client.queueName, "hanging", "ghang");
  const handles = await client.enqueueMany(
    Array.from({ length: 6 }, (_, i) => grouped.enqueue("H", i)),
  );
  const { redis, keys } = queueContextOf(client);
  await eventually(() => hanging.starts.length === GROUP_SLOTS, { what: "two hanging starts" });
  const other = new FlowWorker(connection, client.queueName, "other");
  try {
    await eventually(async () => await redis.exists(keys.health("other")) === 1, {
      what: "the other worker to run",
    });
    // Group H does not run meanwhile. (No other group is checked here: the hanging process may
    // have read its task ahead, into a buffer whose slots never free.)
    await quietFor(
      500,
      "no start of group H while its slots are held",
      () => other.starts.every((s) => s.fn !== "grouped/H"),
    );
    const killedAt = await hanging.kill();
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 30_000 })));
    assert.ok(results.every((r) => r.success));
    const most = mostAtOnce([hanging, other], "grouped/H", new Map([[hanging, killedAt]]));
    assert.ok(most <= GROUP_SLOTS, `${most} tasks of group H ran at once`);
    assert.equal(await redis.zcard(keys.groupActive("grouped", "H")), 0, "a slot leaked");
    assert.equal(await redis.llen(keys.groupHeld("grouped", "H")), 0);
    assert.equal(await redis.zcard(keys.groups("grouped")), 0, "a group is left active");
  } finally {
    await other.stop();
  }
});

Deno.test("groups: the group start option alone puts a task in a group; tasks of one group run one at a time by default, in order", async () => {
  await using worker = await testWorker({ concurrency: 8 });
  const order: string[] = [];
  let running = 0;
  let most = 0;
  const step = worker.task(async function step(name: string): Promise<void> {
    most = Math.max(most, ++running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    order.push(name);
    running--;
  });
  const handles = [];
  for (let i = 0; i < 10; i++) {
    handles.push(await step.enqueue(`s${i}`).start({ group: "order-7" }));
  }
  const run = runInBackground(worker);
  try {
    for (const h of handles) assert.equal((await h.result({ timeout: 10_000 })).success, true);
    assert.equal(most, 1, "two tasks of a group with 1 slot ran at once");
    assert.deepEqual(order, Array.from({ length: 10 }, (_, i) => `s${i}`));
  } finally {
    await run.stop();
  }
});

Deno.test("groups: info() says a task waits for a slot of its group and how many are ahead; limits(), streaq status and the dashboard count the active groups and name the busiest", async () => {
  await using worker = await testWorker({ concurrency: 4 });
  const release = Promise.withResolvers<void>();
  const sync = worker.task(async function sync(account: string, n: number): Promise<number> {
    await release.promise;
    return n + account.length;
  }, { group: (account) => account });
  const big = await worker.enqueueMany(Array.from({ length: 5 }, (_, i) => sync.enqueue("big", i)));
  const small = await sync.enqueue("small", 0);
  const run = runInBackground(worker);
  try {
    await eventually(async () => (await big[4].info())?.waitReason !== null, {
      what: "the last task of group big to wait",
    });
    assert.equal(
      (await big[4].info())?.waitReason,
      "waiting for a slot of group big: behind 4 tasks of its group",
    );
    assert.equal((await small.info())?.waitReason ?? null, null);
    const [limits] = await worker.limits();
    assert.equal(limits.name, "sync");
    assert.deepEqual(limits.groups, {
      concurrency: 1,
      max: null,
      duration: null,
      active: 2,
      busiest: [{ group: "big", tasks: 5 }, { group: "small", tasks: 1 }],
    });
    const shown = "2 groups active, 1 at once each (busiest: big 5, small 1)";
    const status = await runCli(worker.queueName, "status", "--once");
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes(`limited: sync (${shown}, 0 waiting)`), status.stdout);
    const dashboard = createDashboard(worker);
    const overview = await (await dashboard(new Request("http://127.0.0.1:8080/"))).text();
    assert.ok(overview.includes(`<td data-label="Limit">${shown}</td>`), "the flow panel's groups");
    const taskPage =
      await (await dashboard(new Request(`http://127.0.0.1:8080/tasks/${big[4].id}`)))
        .text();
    assert.match(
      taskPage,
      /<dt>Not started as<\/dt>\s*<dd>waiting for a slot of group big: behind 4 tasks of its group<\/dd>/,
    );
    release.resolve();
    for (const h of [...big, small]) {
      assert.equal((await h.result({ timeout: 10_000 })).success, true);
    }
    assert.equal((await worker.limits())[0].groups?.active, 0);
  } finally {
    release.resolve();
    await run.stop();
  }
});

Deno.test("groups: drain() removes the tasks waiting for a group's slots and their count; the running task keeps its slot", async () => {
  await using worker = await testWorker({ concurrency: 4 });
  const release = Promise.withResolvers<void>();
  const sync = worker.task(async function sync(account: string): Promise<string> {
    await release.promise;
    return account;
  }, { group: (account) => account });
  const handles = await worker.enqueueMany(Array.from({ length: 5 }, () => sync.enqueue("big")));
  const run = runInBackground(worker);
  try {
    await eventually(async () => (await worker.limits())[0]?.groups?.busiest[0]?.tasks === 5, {
      what: "four tasks set aside behind the running one",
    });
    assert.equal(await worker.drain(), 4);
    assert.deepEqual((await worker.limits())[0].groups?.busiest, [{ group: "big", tasks: 1 }]);
    release.resolve();
    assert.equal((await handles[0].result({ timeout: 10_000 })).success, true);
    await eventually(async () => (await worker.limits())[0].groups?.active === 0, {
      what: "no group left active",
    });
    const { redis, keys } = queueContextOf(worker);
    assert.equal(await redis.zcard(keys.groupActive("sync", "big")), 0);
  } finally {
    release.resolve();
    await run.stop();
  }
});

Deno.test("groups: slots raised at the next worker start are used by the tasks that waited", async () => {
  await using before = await testWorker();
  const batch = before.task(async function batch(account: string): Promise<string> {
    await sleepUnlessAborted(60_000, taskContext().signal);
    return account;
  }, { group: (account) => account });
  let running = runInBackground(before);
  const handles = await before.enqueueMany(Array.from({ length: 9 }, () => batch.enqueue("acme")));
  await eventually(async () => (await before.limits())[0]?.groups?.busiest[0]?.tasks === 9, {
    what: "eight tasks set aside behind the running one",
  });
  await running.stop(); // hands the running task back: its slot goes to the next one

  await using after = await testWorker({ queueName: before.queueName });
  let now = 0;
  let most = 0;
  after.task(async function batch(account: string): Promise<string> {
    most = Math.max(most, ++now);
    await new Promise((resolve) => setTimeout(resolve, 20));
    now--;
    return account;
  }, { group: (account) => account, groups: { concurrency: 3 } });
  running = runInBackground(after);
  try {
    const results = await Promise.all(handles.map((h) => h.result({ timeout: 10_000 })));
    assert.ok(results.every((r) => r.success && r.tries <= 2));
    assert.equal(most, 3, `${most} tasks of the group ran at once with 3 slots`);
    assert.equal((await after.limits())[0].groups?.concurrency, 3);
  } finally {
    await running.stop();
  }
});

Deno.test("groups: priorities hold across groups, and one worker taking one task at a time still serves groups in turns", async () => {
  await using worker = await testWorker({
    concurrency: 1,
    prefetch: 0,
    priorities: ["low", "high"],
  });
  const order: string[] = [];
  const step = worker.task(async function step(group: string, n: number): Promise<void> {
    order.push(`${group}${n}`);
    await Promise.resolve();
  }, { group: (group) => group });
  const handles = await worker.enqueueMany([
    step.enqueue("A", 1).start({ priority: "low" }),
    step.enqueue("A", 2).start({ priority: "low" }),
    step.enqueue("A", 3).start({ priority: "low" }),
    step.enqueue("C", 1).start({ priority: "low" }),
    step.enqueue("B", 1).start({ priority: "high" }),
    step.enqueue("D", 1).start({ priority: "high" }),
  ]);
  const run = runInBackground(worker);
  try {
    for (const h of handles) assert.equal((await h.result({ timeout: 10_000 })).success, true);
    // The high tasks first; then group C's task after one task of flooded group A, not three.
    assert.deepEqual(order, ["B1", "D1", "A1", "C1", "A2", "A3"]);
  } finally {
    await run.stop();
  }
});

Deno.test("groups: info() of a task whose group's rate window is full says until when, and limits() shows the rate", async () => {
  await using worker = await testWorker();
  const sync = worker.task(async function sync(account: string): Promise<string> {
    return await Promise.resolve(account);
  }, { group: (account) => account, groups: { concurrency: 2, max: 1, duration: 60_000 } });
  const run = runInBackground(worker);
  try {
    const [first, second] = await worker.enqueueMany([sync.enqueue("k"), sync.enqueue("k")]);
    assert.equal((await first.result({ timeout: 5_000 })).success, true);
    await eventually(async () => (await second.info())?.waitReason?.startsWith("rate") ?? false, {
      what: "the second task of group k to wait for its window",
    });
    assert.match(
      (await second.info())!.waitReason!,
      /^rate-limited until \d{4}-\d\d-\d\dT[\d:.]+Z: group k starts at most 1 per 60000 ms$/,
    );
    assert.equal(await second.status(), "queued");
    const [limits] = await worker.limits();
    assert.equal(limits.groups?.max, 1);
    assert.equal(limits.groups?.duration, 60_000);
    assert.ok(
      describeLimit(limits).includes(
        "1 group active, 2 at once and 1 per 60000 ms each (busiest: k 1)",
      ),
    );
    assert.equal((await (await sync.enqueue("other")).result({ timeout: 5_000 })).success, true);
  } finally {
    await run.stop();
  }
});

Deno.test("groups: a rate limit per group removed at the next worker start lets the groups that waited for their window go on", async () => {
  await using before = await testWorker();
  const sync = before.task(async function sync(account: string): Promise<string> {
    return await Promise.resolve(account);
  }, { group: (account) => account, groups: { max: 1, duration: 60_000 } });
  let running = runInBackground(before);
  const handles = await before.enqueueMany([
    sync.enqueue("k"),
    sync.enqueue("k"),
    sync.enqueue("k"),
  ]);
  assert.equal((await handles[0].result({ timeout: 5_000 })).success, true);
  await eventually(async () => (await handles[1].info())?.waitReason?.startsWith("rate") ?? false, {
    what: "the next task to wait for its group's window",
  });
  await running.stop();

  await using after = await testWorker({ queueName: before.queueName });
  after.task(async function sync(account: string): Promise<string> {
    return await Promise.resolve(account);
  }, { group: (account) => account });
  running = runInBackground(after);
  try {
    for (const h of handles) assert.equal((await h.result({ timeout: 5_000 })).success, true);
  } finally {
    await running.stop();
  }
});

Deno.test("groups: ungrouped tasks leave the flow hash untouched (today's claim path, no extra cost)", async () => {
  await using worker = await testWorker();
  const plain = worker.task(async function plain(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  await plain.enqueue(1);
  const { redis, keys } = queueContextOf(worker);
  assert.equal(await redis.exists(keys.flow), 0);
});

Deno.test("groups: a group function that throws or returns a bad key fails that enqueue only, naming the task and what it received", async () => {
  await using worker = await testWorker();
  const byAccount = worker.task(async function byAccount(account: unknown): Promise<void> {
    await Promise.resolve(account);
  }, {
    group: (account) => {
      if (account === "boom") throw new Error("no account");
      return account as string;
    },
  });
  assert.throws(
    () => byAccount.enqueue("boom"),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot enqueue task byAccount as its 'group' function threw: received Error: no account",
  );
  assert.throws(
    () => byAccount.enqueue(42),
    /^TypeError: Cannot enqueue task byAccount as 'group \(what its group function returned\)' must be 1 to 128 printable ASCII characters, without spaces, other than "." and "..": received 42 \(number\)$/,
  );
  assert.throws(() => byAccount.enqueue("a b"), /received "a b"/);
  // The next enqueue works.
  const handle = await byAccount.enqueue("acme");
  assert.equal(await handle.status(), "queued");
  const plain = worker.task(async function plain(): Promise<void> {});
  assert.throws(
    () => plain.enqueue().start({ group: "" }),
    /Cannot enqueue task plain as 'group' must be 1 to 128 printable ASCII characters/,
  );
  const fn = async () => await Promise.resolve();
  assert.throws(
    // @ts-expect-error: not a function
    () => worker.task(fn, { name: "a", group: "acme" }),
    /^TypeError: Cannot register task a as 'group' must be a function of the task's arguments returning its group key: received "acme" \(string\)$/,
  );
  assert.throws(
    () => worker.task(fn, { name: "b", groups: { concurrency: 0 } }),
    /^RangeError: Cannot register task b as 'groups.concurrency' must be an integer ≥ 1: received 0 \(number\)$/,
  );
  assert.throws(
    // @ts-expect-error: not a group limit
    () => worker.task(fn, { name: "c", groups: { rate: 3 } }),
    /Cannot register task c with 'groups' as 'rate' is not an option: expected one of concurrency, max, duration/,
  );
  assert.throws(
    () => worker.task(fn, { name: "d", groups: { max: 3 } }),
    /^TypeError: Cannot register task d as 'groups.max' and 'groups.duration' go together \(at most max starts per duration ms for each group\): received max 3 \(number\) and duration undefined \(undefined\)$/,
  );
  assert.throws(
    () => worker.task(fn, { name: "e", groups: { max: 3, duration: 0 } }),
    /Cannot register task e as 'groups.duration'/,
  );
});
