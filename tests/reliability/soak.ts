/**
 * The soak: 100,000 mixed tasks (priorities, delays, retries, failures) through 4 worker
 * processes on a private Redis, with a worker process SIGKILLed and replaced every 5 seconds
 * and one Redis restart, then the same audit as the reliability tests: every task has exactly
 * one result, nothing is lost, every duplicate is explained by a fault, and the keyspace holds
 * nothing but results, streams, health and metrics keys. Prints the summary table and appends
 * it to the report file of `_report.ts`.
 *
 * Run it with `deno task soak` (about two minutes on two cores). `STREAQ_SOAK_TASKS`,
 * `STREAQ_SOAK_PROCESSES` and `STREAQ_SEED` change its size and replay a run.
 *
 * @module
 */

import {
  assertAudit,
  assertQueueClean,
  audit,
  countResults,
  scanQueue,
  untilReleased,
  usedMemory,
  waitForResults,
} from "./_audit.ts";
import { between, enqueueLoad, planLoad, type Random, seeded, type Sent } from "./_load.ts";
import { type Exit, startProcesses, type WorkerProcess } from "./_processes.ts";
import { formatTable, latestRows, mb, report, reportFile, type Row } from "./_report.ts";
import { type ReliabilityQueue, reliabilityQueue } from "./_setup.ts";

const TASKS = Number(Deno.env.get("STREAQ_SOAK_TASKS") ?? 100_000);
const PROCESSES = Number(Deno.env.get("STREAQ_SOAK_PROCESSES") ?? 4);
const BATCH = 1_000;
/** Tasks waiting in the streams and the delayed set before the producer pauses. */
const MAX_BACKLOG = 20_000;
const KILL_EVERY = 5_000;
const IDLE_TIMEOUT = 2_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tasks waiting for a worker or a due time. */
async function backlog(q: ReliabilityQueue): Promise<number> {
  const prefix = `streaq:{${q.client.queueName}}:`;
  const pipeline = q.redis.pipeline();
  for (const p of ["low", "normal", "high"]) pipeline.xlen(`${prefix}stream:${p}`);
  pipeline.zcard(`${prefix}delayed`);
  const replies = (await pipeline.exec()) ?? [];
  return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
}

/** The worker processes, with the faults done to them. */
class Fleet {
  readonly all: WorkerProcess[] = [];
  live: WorkerProcess[] = [];
  readonly kills: { id: string; at: number }[] = [];
  /** Per kill, ms until every delivery the dead worker held was taken over. */
  readonly recoveries: Promise<number>[] = [];
  readonly exits: Exit[] = [];
  #next = 0;

  constructor(readonly q: ReliabilityQueue, readonly random: Random) {}

  async start(count: number): Promise<void> {
    const configs = Array.from(
      { length: count },
      () => this.q.process(`soak-${++this.#next}`, { concurrency: 16, idleTimeout: IDLE_TIMEOUT }),
    );
    const started = await startProcesses(this.q.redis, configs);
    this.all.push(...started);
    this.live.push(...started);
  }

  /** SIGKILLs a random live process and starts a replacement. */
  async killOne(): Promise<void> {
    const victim = this.live[between(this.random, 0, this.live.length - 1)];
    const at = Date.now();
    this.kills.push({ id: victim.id, at });
    await victim.kill();
    const { redis, client } = this.q;
    this.recoveries.push(
      untilReleased(redis, client.queueName, victim.id, 120_000).then((t) => t - at),
    );
    this.live = this.live.filter((p) => p !== victim);
    await this.start(1);
  }

  async stop(): Promise<void> {
    this.exits.push(...await Promise.all(this.live.map((p) => p.terminate())));
    this.live = [];
  }
}

/** Enqueues the load while the faults happen; returns what was sent. */
async function produce(
  q: ReliabilityQueue,
  random: Random,
  fleet: Fleet,
  restart: () => Promise<void>,
) {
  const sent: Sent[] = [];
  let nextKill = Date.now() + KILL_EVERY;
  let restarted = false;
  while (sent.length < TASKS) {
    while (await backlog(q) > MAX_BACKLOG) await sleep(100);
    const count = Math.min(BATCH, TASKS - sent.length);
    sent.push(...await enqueueLoad(q.client, q.job, planLoad(random, count, {}, sent.length)));
    if (Date.now() >= nextKill) {
      await fleet.killOne();
      nextKill = Date.now() + KILL_EVERY;
    }
    if (!restarted && sent.length >= TASKS * 0.4) {
      restarted = true;
      await restart();
    }
    if (sent.length % 10_000 === 0) console.log(`soak: ${sent.length} tasks sent`);
  }
  return sent;
}

async function soak(): Promise<Row[]> {
  const random = seeded("soak");
  await using q = await reliabilityQueue("soak", ["--appendonly", "yes"]);
  const fleet = new Fleet(q, random);
  let restartEnd = 0;
  let restartDown = 0;
  let probe: Sent | undefined;
  try {
    await fleet.start(PROCESSES);
    const started = Date.now();
    const sent = await produce(q, random, fleet, async () => {
      console.log("soak: restarting Redis");
      const at = Date.now();
      await q.server.restart();
      restartEnd = Date.now();
      restartDown = restartEnd - at;
      [probe] = await enqueueLoad(q.client, q.job, [{ spec: { n: -1 }, priority: "high" }]);
    });
    // The probe's own finish time: the worker clocks are true here.
    const probeResult = waitForResults(q.redis, q.client.queueName, [probe!.id], 120_000)
      .then(async () => (await q.client.resultById(probe!.id)).finishTime - restartEnd);
    sent.push(probe!);
    const ids = sent.map((t) => t.id);
    while (await countResults(q.redis, q.client.queueName, ids) < ids.length) {
      if (Date.now() >= (fleet.kills.at(-1)?.at ?? started) + KILL_EVERY) await fleet.killOne();
      await sleep(1_000);
    }
    const elapsed = Date.now() - started;
    await fleet.stop();
    const found = await audit(q.client, sent);
    assertAudit(
      found,
      (e) => fleet.kills.some((k) => k.id === e.worker && e.at <= k.at) || e.at <= restartEnd,
    );
    const keyspace = await scanQueue(q.redis, q.client.queueName);
    assertQueueClean(keyspace);
    const rss = Math.max(...fleet.exits.map((e) => e.report?.rss ?? 0));
    const memory = await usedMemory(q.redis);
    const recoveries = await Promise.all(fleet.recoveries);
    const restartRecovery = await probeResult;
    return [{
      fault:
        `soak: ${sent.length} mixed tasks, ${PROCESSES} processes, ${fleet.kills.length} SIGKILLs, 1 Redis restart`,
      sent: found.sent,
      results: found.results,
      lost: found.lost.length,
      duplicated: found.duplicated.length,
      recoverMs: Math.max(...recoveries, restartRecovery),
      notes: `SIGKILL recovery (deliveries of the dead worker taken over, idleTimeout ` +
        `${IDLE_TIMEOUT}) ${
          recoveries.length ? `${Math.min(...recoveries)}–${Math.max(...recoveries)}` : "—"
        } ms; Redis down ` +
        `${restartDown} ms, a task sent after the restart done ${restartRecovery} ms later; ` +
        `${elapsed} ms (${Math.round(sent.length / (elapsed / 1000))} tasks/s); worker ` +
        `rss ≤ ${mb(rss)} at exit; Redis used_memory ${mb(memory)} with ${
          keyspace.kinds.result ?? 0
        } results kept (ttl 5 min), no other keys but streams, health and metrics`,
    }];
  } finally {
    await Promise.all(fleet.all.map((p) => p.kill()));
  }
}

if (import.meta.main) {
  await report(await soak(), "deno task soak");
  const suite = await latestRows("deno task test");
  if (suite.length > 0) {
    console.log(
      `\nThe latest figures of the reliability tests (deno task test), from ${reportFile()}:`,
    );
    console.log(formatTable(suite));
  }
}
