import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Logger } from "../../mod.ts";
import { eventually, runInBackground, sleep } from "../_helpers.ts";
import { assertAudit, assertQueueClean, audit, scanQueue, waitForResults } from "./_audit.ts";
import { between, enqueueLoad, PRIORITIES, type Random, seeded, type Sent } from "./_load.ts";
import { report } from "./_report.ts";
import { type ReliabilityQueue, reliabilityQueue } from "./_setup.ts";
import { queueContextOf } from "../../src/worker.ts";

/** Poisons per run; `STREAQ_FUZZ_ROUNDS` asks for more. */
const ROUNDS = Number(Deno.env.get("STREAQ_FUZZ_ROUNDS") ?? 120);
const HUGE = 5 * 1024 * 1024;
/** Fields of a task hash, as the enqueue script writes them, and others it may hold. */
const FIELDS = ["fn", "data", "pri", "ct", "et", "tries"];
const OPTIONAL_FIELDS = ["due", "at", "cron", "tz", "depfail", "input", "pass", "src", "last"];

/** A logger that keeps every line. */
function collectingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const add = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: add("debug"), info: add("info"), warn: add("warn"), error: add("error") };
}

function bytes(random: Random, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function randomText(random: Random, max = 24): string {
  return bytes(random, between(random, 1, max)).toString("latin1");
}

function randomId(random: Random): string {
  return bytes(random, 16).toString("hex");
}

/** What a poison is expected to become. */
type Expect = "failure" | "result" | "dropped";

interface Poison {
  readonly kind: string;
  /** The task id it concerns; absent for stream entries without a usable id. */
  readonly id?: string;
  readonly expect: Expect;
}

/** Writes poisons straight into the queue's keys. */
class Poisoner {
  constructor(readonly q: ReliabilityQueue, readonly random: Random) {}

  #key(kind: string): string {
    return `streaq:{${this.q.client.queueName}}:${kind}`;
  }

  #stream(): string {
    return this.#key(`stream:${PRIORITIES[between(this.random, 0, PRIORITIES.length - 1)]}`);
  }

  /** A payload as a real enqueue would encode it. */
  async validPayload(id: string, n: number): Promise<Buffer> {
    return Buffer.from(await queueContextOf(this.q.client).envelope.sealArgs(id, "job", [{ n }]));
  }

  /** Stores a task hash with `fields` (over the usual ones) and queues its id. */
  async task(fields: Record<string, string | Buffer>, drop: string[] = []): Promise<string> {
    const id = randomId(this.random);
    const now = String(Date.now());
    const hash: Record<string, string | Buffer> = {
      fn: "job",
      data: await this.validPayload(id, between(this.random, 0, 1000)),
      pri: "normal",
      ct: now,
      et: now,
      tries: "0",
      ...fields,
    };
    for (const field of drop) delete hash[field];
    const redis = this.q.redis;
    if (Object.keys(hash).length > 0) await redis.hset(this.#key(`task:${id}`), hash);
    await redis.xadd(this.#stream(), "*", "id", id);
    return id;
  }

  /** One random poison. */
  async next(n: number): Promise<Poison> {
    const r = this.random;
    const choice = between(r, 0, 9);
    switch (choice) {
      case 0: {
        const data = bytes(r, between(r, 0, 200));
        return { kind: "random bytes", id: await this.task({ data }), expect: "failure" };
      }
      case 1: {
        const id = randomId(r);
        const valid = await this.validPayload(id, n);
        const data = valid.subarray(0, between(r, 0, valid.length - 1));
        return { kind: "truncated payload", id: await this.task({ data }), expect: "failure" };
      }
      case 2: {
        const data = Buffer.from(await this.validPayload(randomId(r), n));
        data[between(r, 0, data.length - 1)] ^= 1 << between(r, 0, 7);
        // Without a signature a flipped bit may still decode: any result will do.
        return { kind: "flipped bit", id: await this.task({ data }), expect: "result" };
      }
      case 3: {
        const fn = randomText(r);
        return { kind: "unknown task name", id: await this.task({ fn }), expect: "failure" };
      }
      case 4: {
        // No `id` field: random field names and values.
        const fields: string[] = [];
        for (let i = between(r, 1, 3); i > 0; i--) fields.push(randomText(r, 8), randomText(r));
        if (fields.includes("id")) fields[fields.indexOf("id")] = "di";
        await this.q.redis.xadd(this.#stream(), "*", ...fields);
        return { kind: "stream entry without id", expect: "dropped" };
      }
      case 5: {
        const id = r() < 0.5 ? "" : randomId(r);
        await this.q.redis.xadd(this.#stream(), "*", "id", id);
        return { kind: "entry naming no task", id, expect: "dropped" };
      }
      case 6: {
        const missing = FIELDS.filter(() => r() < 0.4);
        const id = await this.task({}, missing);
        const expect = missing.includes("fn") ? "dropped" : "result";
        return { kind: `task hash without ${missing.join(", ") || "nothing"}`, id, expect };
      }
      case 7: {
        const field = [...FIELDS.slice(1), ...OPTIONAL_FIELDS][between(r, 0, 13)];
        const id = await this.task({ [field]: randomText(r) });
        return { kind: `garbage in ${field}`, id, expect: "result" };
      }
      case 8: {
        const id = randomId(r);
        await this.q.redis.set(this.#key(`task:${id}`), randomText(r));
        await this.q.redis.xadd(this.#stream(), "*", "id", id);
        return { kind: "task key of another type", id, expect: "dropped" };
      }
      default: {
        // Not a task at all in the delayed set: a random member, or a key of another type.
        const id = randomId(r);
        if (r() < 0.5) await this.q.redis.set(this.#key(`task:${id}`), randomText(r));
        await this.q.redis.zadd(this.#key("delayed"), Date.now() - 1, id);
        return { kind: "delayed entry naming no task", expect: "dropped" };
      }
    }
  }
}

Deno.test("fuzzed payloads and Redis entries fail or are dropped with a log line, and the worker keeps serving", async () => {
  const random = seeded("fuzz");
  await using q = await reliabilityQueue("fuzz");
  const logger = collectingLogger();
  const worker = q.worker({ id: "fuzzed", logger, logLevel: "warn", idleTimeout: 1000 });
  const running = runInBackground(worker);
  let ended = false;
  running.done.finally(() => (ended = true));
  const poisons: Poison[] = [];
  try {
    const poisoner = new Poisoner(q, random);
    const good: Sent[] = [];
    // Huge: a valid 5 MB argument is just a big task; 5 MB of random bytes fail to decode.
    const pad = "h".repeat(HUGE);
    good.push(...await enqueueLoad(q.client, q.job, [{ spec: { n: -1, pad }, priority: "low" }]));
    const data = bytes(random, HUGE);
    poisons.push({
      kind: "5 MB of random bytes",
      id: await poisoner.task({ data }),
      expect: "failure",
    });
    await waitForResults(q.redis, q.client.queueName, [good[0].id, poisons[0].id!], 20_000);
    const hugeDone = Date.now();
    for (let n = 0; n < ROUNDS; n++) {
      poisons.push(await poisoner.next(n));
      good.push(...await enqueueLoad(q.client, q.job, [{ spec: { n }, priority: "normal" }]));
      if (n % 20 === 0) {
        // Good tasks keep completing while poison arrives.
        await waitForResults(q.redis, q.client.queueName, good.map((t) => t.id), 20_000);
      }
    }
    await waitForResults(q.redis, q.client.queueName, good.map((t) => t.id), 30_000);
    const withResult = poisons.filter((p) => p.expect !== "dropped");
    await waitForResults(q.redis, q.client.queueName, withResult.map((p) => p.id!), 30_000);
    let keyspace = await scanQueue(q.redis, q.client.queueName);
    await eventually(async () => {
      keyspace = await scanQueue(q.redis, q.client.queueName);
      return keyspace.streamEntries === 0 && keyspace.pending === 0 && !keyspace.kinds.delayed;
    }, { what: "every poisoned entry to leave the streams", timeout: 10_000 })
      .catch((error) => {
        throw new Error(`${error.message}: ${JSON.stringify(keyspace)}`);
      });

    for (const p of poisons.filter((p) => p.expect === "failure")) {
      const result = await q.client.resultById(p.id!);
      assert.equal(result.success, false, `${p.kind} (${p.id}) must fail`);
    }
    const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.message);
    for (const p of poisons.filter((p) => p.expect === "dropped" && p.id)) {
      assert.ok(warnings.some((m) => m.includes(`task ${p.id} `)), `no log line for ${p.kind}`);
    }
    const errors = logger.lines.filter((l) => l.level === "error").map((l) => l.message);
    assert.deepEqual(errors, [], "no poison reaches the worker's machinery");
    assert.equal(ended, false, "the worker still runs");
    assertAudit(await audit(q.client, good));
    assertQueueClean(await scanQueue(q.redis, q.client.queueName));
    // ioredis's reply parser keeps a pool for the 5 MB replies, shrunk by an interval of its own
    // that stops once the pool is small again (about 3 s): the op sanitizer must not see it.
    await sleep(4_000 - (Date.now() - hugeDone));
    await report([{
      fault: `poison: ${poisons.length} fuzzed payloads and entries`,
      sent: good.length,
      results: good.length,
      lost: 0,
      duplicated: 0,
      recoverMs: null,
      notes: `good tasks interleaved all succeeded; ${
        poisons.filter((p) => p.expect === "failure").length
      } poisons failed with a result, ${
        poisons.filter((p) => p.expect === "dropped").length
      } were dropped with a log line, the rest (flipped bits, missing or garbage fields) ran ` +
        `or failed; tried: random bytes, truncated payloads, flipped bits, 5 MB of garbage, a 5 MB ` +
        `argument, unknown task names, entries without an id, entries naming no task, task ` +
        `hashes with fields missing or garbage, keys of another type, stray delayed entries`,
    }]);
  } catch (error) {
    // What it takes to understand a failure: the poisons in order, and the worker's log.
    console.log(poisons.map((p, i) => `${i}: ${p.kind} ${p.id ?? ""}`).join("\n"));
    console.log(logger.lines.map((l) => `${l.level}: ${l.message}`).join("\n"));
    throw error;
  } finally {
    await running.stop();
  }
});
