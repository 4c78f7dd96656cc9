/**
 * Sharded queues on a 3-master Cluster: the Redis CPU a task costs on the master serving its
 * shard, for `shards` = 1, 3 and 6. Each round enqueues `TASKS` no-op tasks (batches of 1,000)
 * and drains them with one worker (burst) of concurrency 32 (the slots divided among the shards),
 * and, to tell the cost of sharding from the cost of smaller batches per shard, of concurrency
 * 32 per shard (96 and 192). It reads `INFO cpu` and
 * `INFO commandstats` of every master before and after each phase. A master's CPU is divided by
 * the tasks of the shards it serves. The queue names are chosen so that the shards spread evenly
 * (3 shards: one per master; 6 shards: two per master). Rounds alternate the order of the
 * settings. A master's CPU while idle (cluster bus, replication, cron: measured for `IDLE_MS`
 * before each round) is subtracted over the phase's duration, so that a master serving a third
 * of the tasks is not charged its idle time three times as much per task; both the raw and the
 * net figures are printed. Prints every round and the medians. Run with
 * `deno task bench:shards`.
 *
 * @module
 */

import { Worker } from "../mod.ts";
import { uniqueQueue } from "../tests/_redis.ts";
import { type ClusterSetup, startCluster } from "../tests/_topologies.ts";
import { shardOfKey } from "../src/shards/route.ts";
import { shardTag } from "../src/redis/keys.ts";
import { infoFields } from "./_meter.ts";

const TASKS = Number(Deno.env.get("TASKS") ?? 12_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const IDLE_MS = 2_000;
/** Shards and worker concurrency of each setting. */
const SETTINGS = [[1, 32], [3, 32], [6, 32], [3, 96], [6, 192]] as const;

await using cluster = await startCluster();
const roles = await Promise.all(cluster.servers.map((s) => s.cli("ROLE")));
const masters = cluster.servers.filter((_, i) => roles[i].startsWith("master"));
const nodes = [{ host: masters[0].host, port: masters[0].port }];

/** CPU (µs, user + sys) and commands run so far, by master port. */
async function meter(): Promise<Map<number, { cpu: number; calls: number }>> {
  const out = new Map<number, { cpu: number; calls: number }>();
  for (const m of masters) {
    const cpu = infoFields(await m.cli("INFO", "cpu"));
    const stats = await m.cli("INFO", "commandstats");
    let calls = 0;
    for (const match of stats.matchAll(/calls=(\d+)/g)) calls += Number(match[1]);
    out.set(m.port, {
      cpu: (Number(cpu.get("used_cpu_user")) + Number(cpu.get("used_cpu_sys"))) * 1e6,
      calls,
    });
  }
  return out;
}

/** A queue name whose `shards` shard tags fall evenly on the masters, and each shard's master. */
async function evenQueue(c: ClusterSetup, shards: number): Promise<[string, number[]]> {
  for (;;) {
    const name = uniqueQueue("bench-shards");
    const ports = await Promise.all(
      Array.from(
        { length: shards },
        async (_, k) => (await c.masterOf(`streaq:{${shardTag(name, k)}}:`)).port,
      ),
    );
    const per = new Map<number, number>();
    for (const p of ports) per.set(p, (per.get(p) ?? 0) + 1);
    const want = Math.ceil(shards / masters.length);
    if ([...per.values()].every((n) => n === want) || shards === 1) return [name, ports];
  }
}

interface Phase {
  /** Redis CPU µs per task on each master that served tasks (by port), and over all masters. */
  perMaster: Map<number, number>;
  total: number;
  /** The same, less each master's idle CPU over the phase's duration. */
  netPerMaster: Map<number, number>;
  netTotal: number;
  calls: number;
  ms: number;
}

function phaseOf(
  before: Map<number, { cpu: number; calls: number }>,
  after: Map<number, { cpu: number; calls: number }>,
  served: Map<number, number>,
  ms: number,
  idlePerMs: Map<number, number>,
): Phase {
  const perMaster = new Map<number, number>();
  const netPerMaster = new Map<number, number>();
  let cpu = 0;
  let net = 0;
  let calls = 0;
  for (const [port, a] of after) {
    const b = before.get(port)!;
    const used = a.cpu - b.cpu;
    const usedNet = Math.max(0, used - idlePerMs.get(port)! * ms);
    cpu += used;
    net += usedNet;
    calls += a.calls - b.calls;
    const tasks = served.get(port) ?? 0;
    if (tasks > 0) {
      perMaster.set(port, used / tasks);
      netPerMaster.set(port, usedNet / tasks);
    }
  }
  return {
    perMaster,
    total: cpu / TASKS,
    netPerMaster,
    netTotal: net / TASKS,
    calls: calls / TASKS,
    ms,
  };
}

/** Each master's CPU (µs) per ms while nothing runs on the cluster but its own upkeep. */
async function idleRate(): Promise<Map<number, number>> {
  const before = await meter();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const after = await meter();
  const ms = performance.now() - t0;
  return new Map([...after].map(([port, a]) => [port, (a.cpu - before.get(port)!.cpu) / ms]));
}

async function round(
  shards: number,
  concurrency: number,
): Promise<{ enqueue: Phase; drain: Phase }> {
  const [queueName, ports] = await evenQueue(cluster, shards);
  await using worker = new Worker({
    cluster: { nodes },
    queueName,
    shards,
    concurrency,
    handleSignals: false,
    logLevel: "error",
  });
  const noop = worker.task(async function noop(): Promise<void> {});
  await worker.connect();
  await worker.queueSize(); // connections open and scripts warm before the first reading
  const idle = await idleRate();
  const served = new Map<number, number>();
  const t0 = performance.now();
  const m0 = await meter();
  for (let sent = 0; sent < TASKS; sent += 1_000) {
    const handles = await worker.enqueueMany(
      Array.from({ length: Math.min(1_000, TASKS - sent) }, () => noop.enqueue()),
    );
    for (const h of handles) {
      const port = ports[shardOfKey(h.id, shards)];
      served.set(port, (served.get(port) ?? 0) + 1);
    }
  }
  const m1 = await meter();
  const t1 = performance.now();
  await worker.run({ burst: true });
  const t2 = performance.now();
  const m2 = await meter();
  return {
    enqueue: phaseOf(m0, m1, served, t1 - t0, idle),
    drain: phaseOf(m1, m2, served, t2 - t1, idle),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => n.toFixed(1);
const results = new Map<string, { enqueue: Phase; drain: Phase }[]>();
for (let r = 0; r < ROUNDS; r++) {
  const order = SETTINGS.map((_, i) => SETTINGS[(i + r) % SETTINGS.length]);
  for (const [shards, concurrency] of order) {
    const res = await round(shards, concurrency);
    const key = `${shards} ${concurrency}`;
    results.set(key, [...(results.get(key) ?? []), res]);
    const per = (p: Phase) => [...p.perMaster.values()].map(fmt).join("/");
    const net = (p: Phase) => [...p.netPerMaster.values()].map(fmt).join("/");
    console.log(
      `round ${r + 1} shards ${shards} concurrency ${concurrency}: enqueue ${
        fmt(res.enqueue.total)
      } µs/task (per master ${per(res.enqueue)}), drain ${
        fmt(res.drain.total)
      } µs/task (per master ${per(res.drain)}), ${
        fmt(res.drain.calls)
      } commands/task drained, drain ${
        Math.round(TASKS / res.drain.ms * 1000)
      } tasks/s; net of idle: enqueue ${fmt(res.enqueue.netTotal)} (${net(res.enqueue)}), drain ${
        fmt(res.drain.netTotal)
      } (${net(res.drain)})`,
    );
  }
}

console.log(
  "\n| shards | concurrency | masters used | enqueue µs/task | drain µs/task | drain µs/task, busiest master | net drain µs/task, busiest master | net enqueue + drain µs/task, busiest master | commands/task (drain) | drain tasks/s |",
);
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [shards, concurrency] of SETTINGS) {
  const rs = results.get(`${shards} ${concurrency}`)!;
  console.log(
    `| ${shards} | ${concurrency} | ${rs[0].drain.perMaster.size} | ${
      fmt(median(rs.map((r) => r.enqueue.total)))
    } | ${fmt(median(rs.map((r) => r.drain.total)))} | ${
      fmt(median(rs.map((r) => Math.max(...r.drain.perMaster.values()))))
    } | ${fmt(median(rs.map((r) => Math.max(...r.drain.netPerMaster.values()))))} | ${
      fmt(median(rs.map((r) =>
        Math.max(
          ...[...r.drain.netPerMaster].map(([port, v]) => v + r.enqueue.netPerMaster.get(port)!),
        )
      )))
    } | ${fmt(median(rs.map((r) => r.drain.calls)))} | ${
      Math.round(median(rs.map((r) => TASKS / r.drain.ms * 1000)))
    } |`,
  );
}
