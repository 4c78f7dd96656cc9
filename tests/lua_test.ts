import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DeliveryWriter } from "../src/run/complete.ts";
import { FETCH_ARGS, FETCH_REPLY, FETCH_SCRIPT, fetchDeliveries } from "../src/run/fetch.ts";
import {
  COMPLETE_ARGS,
  COMPLETE_KEYS,
  COMPLETE_REPLY,
  COMPLETION,
  COMPLETION_EXTRA,
  EVENT_NOTE,
  QUICK_START,
  START_COUNTS,
  START_RECORD,
} from "../src/run/_complete_lua.ts";
import { COMPLETE_SCRIPT } from "../src/run/complete.ts";
import {
  ENQUEUE_ARGS,
  ENQUEUE_SCRIPT,
  NEW_TASK,
  taskLayout,
} from "../src/client/_enqueue_script.ts";
import { ABORT_SCRIPT } from "../src/client/abort.ts";
import {
  INFO_SCRIPT,
  READ_RESULT_SCRIPT,
  STATUS_SCRIPT,
  TASK_INFO,
} from "../src/client/inspect.ts";
import {
  CRON_JOB,
  REGISTER_CRONS_ARGS,
  REGISTER_CRONS_SCRIPT,
  UNSCHEDULE_SCRIPT,
} from "../src/client/schedule.ts";
import { PROMOTE_REPLY, PROMOTE_SCRIPT } from "../src/run/promote.ts";
import { HEARTBEAT_SCRIPT } from "../src/run/heartbeat.ts";
import { DEPENDENCY_READ, READ_DEPENDENCIES_SCRIPT } from "../src/client/fan_in.ts";
import { CLAIM, TASK_READ } from "../src/redis/lua/task_start.ts";
import {
  argvSlots,
  type Layout,
  layout,
  luaPartialTuple,
  luaTuple,
  pushRecord,
} from "../src/redis/lua/layout.ts";
import { lua, luaFunction } from "../src/redis/lua/compose.ts";
import { ackAndTrim } from "../src/redis/lua/steps.ts";
import { runScript, type Script, script } from "../src/redis/_script.ts";
import { CONSUMER_GROUP, STREAM_FIELD, TASK_FIELD } from "../src/redis/keys.ts";
import { queueContextOf } from "../src/worker.ts";
import { testWorker } from "./_helpers.ts";

/** Every layout a script and its caller share. */
const LAYOUTS: Record<string, Layout<string>> = {
  FETCH_ARGS,
  FETCH_REPLY,
  COMPLETE_KEYS,
  COMPLETE_ARGS,
  COMPLETION,
  COMPLETION_EXTRA,
  EVENT_NOTE,
  START_COUNTS,
  START_RECORD,
  QUICK_START,
  COMPLETE_REPLY,
  ENQUEUE_ARGS,
  NEW_TASK,
  KEYED_TASK: taskLayout({ keyed: true, traced: false }),
  TRACED_TASK: taskLayout({ keyed: false, traced: true }),
  KEYED_TRACED_TASK: taskLayout({ keyed: true, traced: true }),
  TASK_READ,
  CLAIM,
  TASK_INFO,
  REGISTER_CRONS_ARGS,
  CRON_JOB,
  PROMOTE_REPLY,
  DEPENDENCY_READ,
};

/** Every script of streaq. */
const SCRIPTS: Record<string, Script> = {
  FETCH_SCRIPT,
  COMPLETE_SCRIPT,
  ENQUEUE_SCRIPT,
  ABORT_SCRIPT,
  STATUS_SCRIPT,
  INFO_SCRIPT,
  READ_RESULT_SCRIPT,
  REGISTER_CRONS_SCRIPT,
  UNSCHEDULE_SCRIPT,
  PROMOTE_SCRIPT,
  HEARTBEAT_SCRIPT,
  READ_DEPENDENCIES_SCRIPT,
};

Deno.test("every slot of every layout is read by Lua where TypeScript writes it, and comes back where TypeScript reads it", async () => {
  await using worker = await testWorker();
  for (const [name, l] of Object.entries(LAYOUTS)) {
    // A record after one unrelated slot, read at a fixed base and at a base held in a local.
    const echo = script(`
local a = 2
local fixed, moving = ${luaTuple(l, argvSlots(l, 2))}, ${luaTuple(l, argvSlots(l, "a"))}
return {fixed, moving}
`);
    const record = Object.fromEntries(l.fields.map((f) => [f, `${name}.${f}`]));
    const args: string[] = ["before"];
    pushRecord(args, l, record);
    const [fixed, moving] = await runScript(
      queueContextOf(worker).redis,
      echo,
      [],
      args,
    ) as string[][];
    for (const f of l.fields) {
      assert.equal(fixed[l.at[f]], record[f], `${name}.${f} at a fixed base`);
      assert.equal(moving[l.at[f]], record[f], `${name}.${f} at a base in a local`);
    }
  }
});

Deno.test("a partial record fills the slots left out with nil and stops at the last one given", async () => {
  await using worker = await testWorker();
  const l = layout("a", "b", "c", "d");
  const reply = await runScript(
    queueContextOf(worker).redis,
    script(`return ${luaPartialTuple(l, { a: "'x'", c: "'z'" })}`),
    [],
    [],
  );
  assert.deepEqual(reply, ["x", null, "z"]);
});

Deno.test("a layout refuses a slot named twice", () => {
  assert.throws(() => layout("a", "b", "a"), /slot 'a' appears twice/);
});

Deno.test("lua() writes each piece once, after the pieces it calls, before the script's body", () => {
  const inner = luaFunction("inner", [], "local function inner() return 1 end");
  const left = luaFunction("left", [inner], "local function left() return inner() end");
  const right = luaFunction("right", [inner], "local function right() return inner() end");
  const text = lua(right, left, "return left() + right()");
  assert.equal(text.match(/local function inner\(/g)?.length, 1);
  assert.ok(text.indexOf("function inner(") < text.indexOf("function right("));
  assert.ok(text.indexOf("function right(") < text.indexOf("function left("));
  assert.ok(text.trimEnd().endsWith("return left() + right()"));
  assert.throws(() => luaFunction("named", [], "local function other() end"), /named/);
});

Deno.test("every script compiles in Redis, defines each Lua function once, and has its Redis flags on its first line", async () => {
  await using worker = await testWorker();
  for (const [name, s] of Object.entries(SCRIPTS)) {
    assert.equal(await queueContextOf(worker).redis.script("LOAD", s.lua), s.sha, name);
    const names = [...s.lua.matchAll(/local function (\w+)\(/g)].map((m) => m[1]);
    assert.equal(new Set(names).size, names.length, `${name} defines a function twice`);
    // Redis reads flags only on the first line; no Dragonfly line (see src/redis/_script.ts).
    assert.ok(!s.lua.slice(1).includes("#!lua"), `${name} has a shebang after its first line`);
    assert.ok(!s.lua.includes("--!df"), `${name} carries a Dragonfly flag line`);
  }
  assert.match(COMPLETE_SCRIPT.lua, /^#!lua flags=allow-oom\n/);
});

Deno.test("a task read for a delivery carries each of its fields in the slot named for it", async () => {
  await using worker = await testWorker();
  const client = queueContextOf(worker);
  const { redis, keys } = client;
  const id = "layout-task";
  const scheduled = Date.now() - 60_000;
  await redis.hset(keys.task(id), {
    [TASK_FIELD.fn]: "fnName",
    [TASK_FIELD.data]: "payload",
    [TASK_FIELD.priority]: "normal",
    [TASK_FIELD.tries]: 4,
    [TASK_FIELD.created]: 1_000,
    [TASK_FIELD.entered]: 2_000,
    [TASK_FIELD.runner]: "earlier-worker",
    [TASK_FIELD.lastReason]: "last reason",
    [TASK_FIELD.crontab]: "* * * * *",
    [TASK_FIELD.timeZone]: "Europe/Paris",
    [TASK_FIELD.scheduled]: scheduled,
    [TASK_FIELD.dependencyFailure]: "dep-1",
    [TASK_FIELD.input]: "input bytes",
    [TASK_FIELD.passthrough]: 1,
    [TASK_FIELD.source]: "source-1",
  });
  await redis.sadd(keys.aborting, id);
  await redis.xgroup("CREATE", keys.stream("normal"), CONSUMER_GROUP, "0", "MKSTREAM");
  await redis.xadd(keys.stream("normal"), "*", STREAM_FIELD.taskId, id);
  const { deliveries } = await fetchDeliveries(client, "w1", ["normal"], 1, 0, 0);
  assert.equal(deliveries.length, 1);
  const d = deliveries[0];
  assert.equal(d.taskId, id);
  assert.equal(d.started, true);
  assert.equal(d.fnName, "fnName");
  assert.equal(d.payload?.toString(), "payload");
  assert.equal(d.tries, 5);
  assert.equal(d.createdTime, 1_000);
  assert.equal(d.enqueueTime, 2_000);
  assert.equal(d.previousRun, "earlier-worker");
  assert.equal(d.lastReason, "last reason");
  assert.equal(d.aborting, true);
  assert.equal(d.crontab, "* * * * *");
  assert.equal(d.timeZone, "Europe/Paris");
  assert.equal(d.scheduledTime, scheduled);
  assert.ok(d.lateAtClaim >= 59_000 && d.lateAtClaim < 600_000, `late ${d.lateAtClaim}`);
  assert.equal(d.dependencyFailure, "dep-1");
  assert.equal(d.input?.toString(), "input bytes");
  assert.equal(d.passthrough, true);
  assert.equal(d.source, "source-1");
  assert.deepEqual(await redis.hmget(keys.task(id), TASK_FIELD.tries, TASK_FIELD.runner), [
    "5",
    "w1",
  ]);
});

Deno.test("each slot of a completion reaches the write it names", async () => {
  await using worker = await testWorker();
  const client = queueContextOf(worker);
  const { redis, keys } = client;
  const noop = worker.task(async function noop(): Promise<void> {});
  const repeating = await noop.enqueue();
  const retried = await noop.enqueue();
  await redis.hset(keys.task(repeating.id), TASK_FIELD.crontab, "* * * * *");
  await redis.set(keys.lock("noop"), repeating.id);
  await redis.xgroup("CREATE", keys.stream("normal"), CONSUMER_GROUP, "0");
  const { deliveries } = await fetchDeliveries(client, "w1", ["normal"], 2, 0, 0);
  const [first, second] = deliveries;
  assert.equal(first.taskId, repeating.id);
  const writer = new DeliveryWriter(client, "w1");
  const next = Date.now() + 3_600_000;
  const retryAt = Date.now() + 7_200_000;
  const [finished, retry] = await Promise.all([
    writer.complete(
      first,
      { kind: "final", result: Buffer.from("1result"), ttl: 60_000, next },
      keys.lock("noop"),
    ),
    writer.complete(second, { kind: "retry", due: { at: retryAt }, reason: "the reason" }),
  ]);
  assert.equal(finished.applied, true);
  assert.equal(retry.applied, true);
  // final: the result, with its ttl; the lock released; the next occurrence delayed.
  assert.equal(await redis.get(keys.result(repeating.id)), "1result");
  const ttl = await redis.pttl(keys.result(repeating.id));
  assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl}`);
  assert.equal(await redis.exists(keys.lock("noop")), 0);
  assert.equal(Number(await redis.zscore(keys.delayed, repeating.id)), next);
  assert.deepEqual(await redis.hmget(keys.task(repeating.id), TASK_FIELD.tries, TASK_FIELD.due), [
    "0",
    String(next),
  ]);
  // retry: its due time and its reason.
  assert.equal(Number(await redis.zscore(keys.delayed, retried.id)), retryAt);
  assert.deepEqual(
    await redis.hmget(keys.task(retried.id), TASK_FIELD.lastReason, TASK_FIELD.due),
    ["the reason", String(retryAt)],
  );
  // Both entries acknowledged and deleted.
  assert.equal(await redis.xlen(keys.stream("normal")), 0);
});

Deno.test("acknowledging finished deliveries deletes every entry but the pending ones, whatever the lengths of their ids", async () => {
  await using worker = await testWorker();
  const { redis } = queueContextOf(worker);
  const stream = `streaq:{${worker.queueName}}:ack-test`;
  // Around the oldest pending delivery (1000-5): ids of the same length and of other lengths,
  // in their ms part or in their sequence part, on both sides.
  const ids = ["999-7", "1000-3", "1000-5", "1000-7", "1000-12", "1001-0", "10000-0", "10000-13"];
  for (const id of ids) await redis.xadd(stream, id, STREAM_FIELD.taskId, `task-${id}`);
  await redis.xgroup("CREATE", stream, "g", "0");
  await redis.xreadgroup("GROUP", "g", "me", "COUNT", 100, "STREAMS", stream, ">");
  const finished = ids.filter((id) => id !== "1000-5");
  await runScript(
    redis,
    script(lua(ackAndTrim, "ackAndTrim(KEYS[1], 'g', ARGV)")),
    [stream],
    finished,
  );
  const left = (await redis.xrange(stream, "-", "+")).map(([id]) => id);
  assert.deepEqual(left, ["1000-5"]);
  assert.equal(await redis.xlen(stream), 1);
});
