/**
 * Keys built in Lua or declared in KEYS: what each costs Redis. `deno task bench:keys` starts a
 * private `redis-server` (a free loopback port, never 6379) and runs the two hottest scripts,
 * enqueue and completion, in two variants side by side, alternated round by round:
 *
 * - **built** (streaq's way): the scripts as they are (frozen in `_declared_keys_lua.ts`); a
 *   task's hash, stream and result keys are built in Lua from the queue's hash-tagged prefix;
 * - **declared**: the same scripts rewritten (below, by exact text replacement) to read those
 *   keys from KEYS, which the caller then sends for every task (enqueue: hash, stream, result;
 *   completion: stream, hash, result and dependents set; a start: stream and hash).
 *
 * For batches of 1 and of 100 tasks it reports, per task: Redis CPU inside the scripts (`usec`
 * of `evalsha` in `INFO commandstats`), Redis process CPU (`used_cpu_user + used_cpu_sys` of
 * `INFO cpu`, which also counts reading and parsing the requests), and bytes Redis read
 * (`total_net_input_bytes` of `INFO stats`); then the medians over the rounds and the ratio
 * declared / built. Each phase's tasks are real: enqueued by the variant measured, claimed with
 * one `XREADGROUP`, then completed by the same variant (final outcome, result kept, no lock, no
 * dependents, fresh deliveries: a busy queue's common case). Batches of 1 are sent 64 at a time,
 * as concurrent callers would. The server is emptied between measurements. It also times, in
 * this process, building each call's keys and arguments and encoding it with streaq's encoder
 * (`src/redis/_resp.ts`): the client's share.
 *
 * What the declared variant cannot declare stays built in it too: keys found in Redis (the tasks
 * a completion call claims from the streams, a finished task's dependents) are known to no client.
 *
 * Options: `--rounds=10`, `--tasks1=2000` (tasks per measurement, batches of 1),
 * `--tasks100=20000` (batches of 100), `--queue=default`. To run against another server that
 * speaks the protocol (Valkey), put its binary first on PATH as `redis-server`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startRedis } from "../tests/_redis.ts";
import { encodeCommand } from "../src/redis/_resp.ts";
import { COMPLETE_LUA, ENQUEUE_LUA } from "./_declared_keys_lua.ts";
import {
  type Call,
  chunks,
  COMPLETE_DECLARED_LUA,
  completeCall,
  ENQUEUE_DECLARED_LUA,
  enqueueCall,
  GROUP,
  newIds,
  PRIORITY,
  QueueKeys,
  respBytes,
  type Variant,
  WORKER,
} from "./_declared_keys_calls.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "10" },
    tasks1: { type: "string", default: "2000" },
    tasks100: { type: "string", default: "20000" },
    queue: { type: "string", default: "default" },
  },
});
const ROUNDS = positive("rounds", flags.values.rounds);
const TASKS: Record<number, number> = {
  1: positive("tasks1", flags.values.tasks1),
  100: positive("tasks100", flags.values.tasks100),
};
const BATCHES = [1, 100];
/** Calls in flight at once for batches of 1: concurrent enqueuers, or tasks finishing apart. */
const IN_FLIGHT = 64;
const INFO_ARGS = ["INFO", "cpu", "stats", "commandstats"];

/** The counters one measurement reads, before and after. */
interface Counters {
  readonly evalshaCalls: number;
  readonly evalshaUsec: number;
  readonly cpuSec: number;
  readonly inputBytes: number;
}

async function counters(control: Redis): Promise<Counters> {
  const info = await control.call("INFO", ...INFO_ARGS.slice(1)) as string;
  const field = (name: string): string => {
    const match = info.match(new RegExp(`^${name}:(.*)$`, "m"));
    if (!match) throw new Error(`INFO has no ${name}`);
    return match[1].trim();
  };
  const evalsha = info.match(/^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m);
  return {
    evalshaCalls: evalsha ? Number(evalsha[1]) : 0,
    evalshaUsec: evalsha ? Number(evalsha[2]) : 0,
    cpuSec: Number(field("used_cpu_user")) + Number(field("used_cpu_sys")),
    inputBytes: Number(field("total_net_input_bytes")),
  };
}

/** Per task: µs in scripts, µs of Redis CPU, bytes read; and the bytes the calls carried. */
interface Measure {
  readonly scriptUs: number;
  readonly cpuUs: number;
  readonly bytes: number;
  readonly sentBytes: number;
}

/** Runs `calls` (at most `inFlight` at once) and measures them, `tasks` tasks in all. */
async function measure(
  redis: Redis,
  control: Redis,
  sha: string,
  calls: Call[],
  tasks: number,
  inFlight: number,
  check: (reply: unknown, call: Call) => void,
): Promise<Measure> {
  const sent = calls.reduce(
    (sum, c) => sum + respBytes(["EVALSHA", sha, c.keys.length, ...c.keys, ...c.args]),
    0,
  );
  const before = await counters(control);
  for (let from = 0; from < calls.length; from += inFlight) {
    const part = calls.slice(from, from + inFlight);
    const replies = await Promise.all(
      part.map((c) => redis.evalsha(sha, c.keys.length, ...c.keys, ...c.args)),
    );
    replies.forEach((reply, i) => check(reply, part[i]));
  }
  const after = await counters(control);
  if (after.evalshaCalls - before.evalshaCalls !== calls.length) {
    throw new Error("Cannot measure: evalsha calls other than the measured ones ran");
  }
  return {
    scriptUs: (after.evalshaUsec - before.evalshaUsec) / tasks,
    cpuUs: ((after.cpuSec - before.cpuSec) * 1e6) / tasks,
    // The INFO command that read the second snapshot was read before it was answered.
    bytes: (after.inputBytes - before.inputBytes - respBytes(INFO_ARGS)) / tasks,
    sentBytes: sent / tasks,
  };
}

interface Sample {
  readonly round: number;
  readonly script: "enqueue" | "complete";
  readonly batch: number;
  readonly variant: Variant;
  readonly measure: Measure;
}

/** Enqueues, claims and completes `tasks` tasks with one variant, measuring both scripts. */
async function runVariant(
  redis: Redis,
  control: Redis,
  shas: Record<Variant, { enqueue: string; complete: string }>,
  k: QueueKeys,
  variant: Variant,
  batch: number,
  tasks: number,
): Promise<{ enqueue: Measure; complete: Measure }> {
  await control.flushall();
  const stream = k.stream(PRIORITY);
  await control.xgroup("CREATE", stream, GROUP, "0", "MKSTREAM");
  const ids = newIds(tasks);
  const inFlight = batch === 1 ? IN_FLIGHT : 1;
  const enqueue = await measure(
    redis,
    control,
    shas[variant].enqueue,
    chunks(ids, batch).map((part) => enqueueCall(k, variant, part)),
    tasks,
    inFlight,
    (reply, call) => {
      const expected = (call.args.length - 3) / 6;
      if (reply !== expected) throw new Error(`enqueue stored ${reply} of ${expected} tasks`);
    },
  );
  const read = await control.xreadgroup(
    "GROUP",
    GROUP,
    WORKER,
    "COUNT",
    tasks,
    "STREAMS",
    stream,
    ">",
  ) as [string, [string, string[]][]][];
  const deliveries = read[0][1].map(([entry, fields]): [string, string] => [entry, fields[1]]);
  if (deliveries.length !== tasks) throw new Error(`claimed ${deliveries.length} of ${tasks}`);
  const complete = await measure(
    redis,
    control,
    shas[variant].complete,
    chunks(deliveries, batch).map((part) => completeCall(k, variant, part)),
    tasks,
    inFlight,
    (reply) => {
      const [applied] = reply as [number[]];
      if (!applied.every((a) => a === 1)) throw new Error("a completion was not applied");
    },
  );
  const left = await control.xlen(stream);
  const results = await control.exists(k.result(ids[0]), k.result(ids.at(-1)!));
  if (left !== 0 || results !== 2) throw new Error("the completions left entries or no results");
  return { enqueue, complete };
}

/**
 * Client µs per task to build and encode the calls of `tasks` tasks in batches of `batch`, the
 * least of `repeats` alternated timings of each variant.
 */
function clientCost(
  k: QueueKeys,
  batch: number,
  tasks: number,
  repeats: number,
): Record<"enqueue" | "complete", Record<Variant, number>> {
  const ids = newIds(tasks);
  const deliveries = ids.map((id, i): [string, string] => [`1700000000000-${i}`, id]);
  const best = {
    enqueue: { built: Infinity, declared: Infinity },
    complete: { built: Infinity, declared: Infinity },
  };
  const time = (build: () => Call[]): number => {
    const start = performance.now();
    for (const c of build()) {
      encodeCommand("evalsha", ["0".repeat(40), c.keys.length, ...c.keys, ...c.args]);
    }
    return ((performance.now() - start) * 1000) / tasks;
  };
  for (let r = 0; r < repeats; r++) {
    for (const variant of (r % 2 ? ["declared", "built"] : ["built", "declared"]) as Variant[]) {
      const e = time(() => chunks(ids, batch).map((part) => enqueueCall(k, variant, part)));
      const c = time(() => chunks(deliveries, batch).map((part) => completeCall(k, variant, part)));
      best.enqueue[variant] = Math.min(best.enqueue[variant], e);
      best.complete[variant] = Math.min(best.complete[variant], c);
    }
  }
  return best;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function least(values: number[]): number {
  return Math.min(...values);
}

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot run the benchmark as '${name}' must be an integer ≥ 1: ${value}`);
  }
  return n;
}

const fmt = (n: number, digits = 2): string => n.toFixed(digits);

await using server = await startRedis();
const redis = new Redis(server.url, { lazyConnect: true });
const control = new Redis(server.url, { lazyConnect: true });
try {
  await redis.connect();
  await control.connect();
  const serverInfo = await control.info("server");
  const version = serverInfo.match(/^(valkey_version):(.*)$/m) ??
    serverInfo.match(/^(redis_version):(.*)$/m);
  const k = new QueueKeys(flags.values.queue!);
  const load = (lua: string) => control.script("LOAD", lua) as Promise<string>;
  const shas = {
    built: { enqueue: await load(ENQUEUE_LUA), complete: await load(COMPLETE_LUA) },
    declared: {
      enqueue: await load(ENQUEUE_DECLARED_LUA),
      complete: await load(COMPLETE_DECLARED_LUA),
    },
  };
  // Warm-up: both variants once, small, unmeasured.
  for (const variant of ["built", "declared"] as const) {
    for (const batch of BATCHES) await runVariant(redis, control, shas, k, variant, batch, 500);
  }
  const samples: Sample[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Variant[] = round % 2 ? ["built", "declared"] : ["declared", "built"];
    for (const batch of BATCHES) {
      for (const variant of order) {
        const m = await runVariant(redis, control, shas, k, variant, batch, TASKS[batch]);
        samples.push({ round, script: "enqueue", batch, variant, measure: m.enqueue });
        samples.push({ round, script: "complete", batch, variant, measure: m.complete });
      }
    }
  }

  console.log(
    `Server: ${version ? `${version[1]} ${version[2].trim()}` : "unknown"}; queue ${
      JSON.stringify(flags.values.queue)
    }; ${ROUNDS} rounds, alternated; tasks per measurement: ${TASKS[1]} (batch 1), ${
      TASKS[100]
    } (batch 100)\n`,
  );
  console.log("Per round (per task: µs in scripts / µs Redis CPU / bytes read):\n");
  console.log("| round | script | batch | built | declared |");
  console.log("| --- | --- | --- | --- | --- |");
  const cell = (m: Measure) => `${fmt(m.scriptUs)} / ${fmt(m.cpuUs)} / ${fmt(m.bytes, 0)}`;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const script of ["enqueue", "complete"] as const) {
      for (const batch of BATCHES) {
        const pick = (v: Variant) =>
          samples.find((s) =>
            s.round === round && s.script === script && s.batch === batch && s.variant === v
          )!.measure;
        console.log(
          `| ${round} | ${script} | ${batch} | ${cell(pick("built"))} | ${
            cell(pick("declared"))
          } |`,
        );
      }
    }
  }
  // Interference (other processes on the machine) only ever adds time: the least of the rounds
  // is the steadiest estimate of a cost, the median shows the spread left.
  for (const [title, stat] of [["Medians", median], ["Least of the rounds", least]] as const) {
    console.log(`\n${title} per task, and declared / built:\n`);
    console.log(
      "| script | batch | µs in scripts (built → declared) | ratio | Redis CPU µs | ratio | bytes read | ratio |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const script of ["enqueue", "complete"] as const) {
      for (const batch of BATCHES) {
        const of = (v: Variant, pick: (m: Measure) => number) =>
          stat(
            samples.filter((s) => s.script === script && s.batch === batch && s.variant === v)
              .map((s) => pick(s.measure)),
          );
        const column = (pick: (m: Measure) => number, digits: number) => {
          const built = of("built", pick);
          const declared = of("declared", pick);
          return `${fmt(built, digits)} → ${fmt(declared, digits)} | ${fmt(declared / built)}`;
        };
        console.log(
          `| ${script} | ${batch} | ${column((m) => m.scriptUs, 2)} | ${
            column((m) => m.cpuUs, 2)
          } | ${column((m) => m.bytes, 0)} |`,
        );
      }
    }
  }
  console.log(
    "\nClient µs per task to build and encode the calls (least of 20), declared / built:\n",
  );
  console.log("| script | batch | built | declared | ratio |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const batch of BATCHES) {
    const cost = clientCost(k, batch, TASKS[100], 20);
    for (const script of ["enqueue", "complete"] as const) {
      const { built, declared } = cost[script];
      console.log(
        `| ${script} | ${batch} | ${fmt(built)} | ${fmt(declared)} | ${fmt(declared / built)} |`,
      );
    }
  }
  const sentCheck = samples.every((s) => Math.abs(s.measure.bytes - s.measure.sentBytes) < 1);
  console.log(
    `\nBytes read by Redis ${
      sentCheck ? "match" : "differ from"
    } the bytes of the calls counted on the client.`,
  );
} finally {
  redis.disconnect();
  control.disconnect();
}
