/**
 * Redis topologies for tests, built from {@linkcode startRedis} servers on free loopback ports:
 * a Sentinel setup (a master, a replica and three sentinels) and a Cluster (three masters with
 * a replica each), each with a way to fail its master over, and {@linkcode startTopology}, which
 * gives the worker options that connect to a standalone server, a Sentinel setup or a Cluster
 * alike, for tests that must hold on all three.
 *
 * Every process is a child of the test (stopped by `stop()`, and killed on "unload" by
 * `_redis.ts` if a test dies first), so a topology must be started and stopped inside one test;
 * use test steps to share it between behaviours.
 *
 * @module
 */

import { Worker, type WorkerOptions } from "../mod.ts";
import { type RedisServer, startRedis, uniqueQueue } from "./_redis.ts";

/** A host and port. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** What a failover did, and how long Redis took to promote the replica. */
export interface Failover {
  /** The master that was killed. */
  readonly killed: RedisServer;
  /** The replica that took its place. */
  readonly promoted: RedisServer;
  /** When the master was killed (ms since the epoch). */
  readonly killedAt: number;
  /** Milliseconds from the kill to the promotion being visible to clients. */
  readonly ms: number;
}

/** A master, its replica and three sentinels watching them (quorum 2). */
export interface SentinelSetup extends AsyncDisposable {
  /** The name the sentinels know the master by. */
  readonly masterName: string;
  /** The three sentinels. */
  readonly sentinels: readonly RedisServer[];
  /** The master and the replica, in the order they were started. */
  readonly servers: readonly RedisServer[];
  /** The data server the sentinels currently name as master. */
  master(): Promise<RedisServer>;
  /** Kills the master (SIGKILL) once the replica has caught up, and waits for the promotion. */
  failover(): Promise<Failover>;
  /** Stops every process and removes their directories. */
  stop(): Promise<void>;
}

/** Three masters with a replica each, sharing the 16384 slots. */
export interface ClusterSetup extends AsyncDisposable {
  /** The six nodes. */
  readonly servers: readonly RedisServer[];
  /** The master serving the slot of `key`. */
  masterOf(key: string): Promise<RedisServer>;
  /**
   * Kills the master serving the slot of `key` (SIGKILL) once its replica has caught up, and
   * waits until the replica is promoted and the cluster is healthy again.
   */
  failover(key: string): Promise<Failover>;
  /** Stops every process and removes their directories. */
  stop(): Promise<void>;
}

/** The topologies {@linkcode startTopology} builds. */
export type TopologyKind = "standalone" | "Sentinel" | "Cluster";

/** A running topology and the worker options that connect to it. */
export interface Topology extends AsyncDisposable {
  readonly kind: TopologyKind;
  /** `redisUrl`, `sentinel` or `cluster`: spread them into the worker options. */
  readonly connection: Pick<WorkerOptions, "redisUrl" | "sentinel" | "cluster">;
  /** The cluster, for a Cluster topology. */
  readonly cluster?: ClusterSetup;
  stop(): Promise<void>;
}

const MASTER_NAME = "streaqmaster";
/** How long a topology may take to settle (replication, sentinel discovery, cluster join). */
const SETTLE_TIMEOUT = 20_000;
const POLL_MS = 50;
/** A master starts a replica's full sync at once rather than waiting 5 s for more replicas. */
const FAST_SYNC = ["--repl-diskless-sync-delay", "0"];

/**
 * Starts a master, a replica and three sentinels (quorum 2) that declare the master down after
 * 1 s without an answer.
 *
 * @returns The setup, once the sentinels know the replica and each other.
 */
export async function startSentinelSetup(): Promise<SentinelSetup> {
  const started: RedisServer[] = [];
  try {
    const master = await startRedis({ args: FAST_SYNC });
    started.push(master);
    const replica = await startRedis({ args: ["--replicaof", master.host, String(master.port)] });
    started.push(replica);
    const servers = [master, replica];
    const sentinels = await Promise.all([0, 1, 2].map(() =>
      startRedis({
        sentinel: true,
        args: [
          ...["--sentinel", "monitor", MASTER_NAME, master.host, String(master.port), "2"],
          ...["--sentinel", "down-after-milliseconds", MASTER_NAME, "1000"],
          ...["--sentinel", "failover-timeout", MASTER_NAME, "2000"],
        ],
      })
    ));
    started.push(...sentinels);
    // Sentinel's timers, shortened (Redis 7): hellos every 2 s and INFO every 10 s would make
    // discovery take seconds. Pings stay at 400 ms: once the master is down, a replica counts
    // as a candidate only if its last INFO is younger than 5 ping periods, and Sentinel then
    // asks replicas for INFO only once a second whatever info-period says, so a shorter ping
    // period aborts most failovers with -failover-abort-no-good-slave.
    await Promise.all(sentinels.map((s) =>
      s.cli(
        ...["SENTINEL", "DEBUG", "publish-period", "100", "info-period", "250"],
        ...["ping-period", "400", "ask-period", "100"],
      )
    ));
    await until("the replica to sync", async () => await linkUp(replica));
    // A failover needs a majority of sentinels that know one another and the replica.
    await until("the sentinels to discover each other and the replica", async () => {
      for (const sentinel of sentinels) {
        const fields = pairs(await sentinel.cli("SENTINEL", "MASTER", MASTER_NAME));
        if (fields["num-other-sentinels"] !== "2" || fields["num-slaves"] !== "1") return false;
      }
      return true;
    });
    const named = async (sentinel: RedisServer) => {
      const reply = await sentinel.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME);
      const port = Number(reply.split("\n")[1]);
      const found = servers.find((s) => s.port === port);
      if (!found) throw new Error(`Sentinel names an unknown master on port ${port}`);
      return found;
    };
    const current = () => named(sentinels[0]);
    const stop = () => stopAll(started);
    return {
      masterName: MASTER_NAME,
      sentinels,
      servers,
      master: current,
      async failover() {
        const killed = await current();
        const promoted = servers.find((s) => s !== killed)!;
        await caughtUp(killed, promoted);
        const start = Date.now();
        await killed.kill();
        await until("Sentinel to promote the replica", async () => {
          const masters = await Promise.all(sentinels.map((s) => named(s).catch(() => null)));
          return masters.every((m) => m === promoted) && await role(promoted) === "master";
        });
        return { killed, promoted, killedAt: start, ms: Date.now() - start };
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

/**
 * Starts six nodes with `cluster-enabled yes` and joins them with `redis-cli --cluster create
 * --cluster-replicas 1`: three masters with a replica each. A node is failed after 1 s without
 * an answer.
 *
 * @returns The cluster, once every node reports `cluster_state:ok`.
 */
export async function startCluster(): Promise<ClusterSetup> {
  const servers: RedisServer[] = [];
  try {
    servers.push(
      ...await Promise.all([0, 1, 2, 3, 4, 5].map(() =>
        startRedis({
          args: [
            ...FAST_SYNC,
            ...["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
            ...["--cluster-node-timeout", "1000"],
            // Let a replica take over however long it was cut off (tests kill masters).
            ...["--cluster-replica-validity-factor", "0"],
          ],
        })
      )),
    );
    await redisCli(
      "--cluster",
      "create",
      ...servers.map((s) => `${s.host}:${s.port}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    );
    const live = () => servers.filter((s) => !killed.has(s));
    const killed = new Set<RedisServer>();
    const healthy = async () => {
      for (const server of live()) {
        const info = pairs(await server.cli("CLUSTER", "INFO"), ":");
        if (info.cluster_state !== "ok" || info.cluster_known_nodes !== "6") return false;
      }
      return true;
    };
    await until("the cluster to be healthy", healthy);
    await until("every replica to sync", async () => {
      for (const server of servers) {
        if (await role(server) === "slave" && !await linkUp(server)) return false;
      }
      return true;
    });
    const byPort = (port: number) => servers.find((s) => s.port === port)!;
    const masterOf = async (key: string) => {
      const asker = live()[0];
      const slot = Number(await asker.cli("CLUSTER", "KEYSLOT", key));
      for (const node of clusterNodes(await asker.cli("CLUSTER", "NODES"))) {
        if (node.master && !node.failed && node.slots.some(([a, b]) => a <= slot && slot <= b)) {
          return byPort(node.port);
        }
      }
      throw new Error(`No master serves slot ${slot}`);
    };
    const stop = () => stopAll(servers);
    return {
      servers,
      masterOf,
      async failover(key) {
        const master = await masterOf(key);
        const nodes = clusterNodes(await master.cli("CLUSTER", "NODES"));
        const self = nodes.find((n) => n.port === master.port)!;
        const promoted = byPort(nodes.find((n) => n.masterId === self.id)!.port);
        await caughtUp(master, promoted);
        const start = Date.now();
        await master.kill();
        killed.add(master);
        await until("the replica to be promoted", async () => {
          return await role(promoted) === "master" && await masterOf(key) === promoted &&
            await healthy().catch(() => false);
        });
        return { killed: master, promoted, killedAt: start, ms: Date.now() - start };
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stopAll(servers);
    throw error;
  }
}

/**
 * Starts a topology of the given kind.
 *
 * @param kind A standalone server, a Sentinel setup or a Cluster.
 * @returns The topology and the worker options that connect to it.
 */
export async function startTopology(kind: TopologyKind): Promise<Topology> {
  switch (kind) {
    case "standalone": {
      const server = await startRedis();
      return topology(kind, { redisUrl: server.url }, () => server.stop());
    }
    case "Sentinel": {
      const setup = await startSentinelSetup();
      const nodes = setup.sentinels.map(({ host, port }) => ({ host, port }));
      return topology(kind, { sentinel: { masterName: setup.masterName, nodes } }, setup.stop);
    }
    case "Cluster": {
      const cluster = await startCluster();
      // One node is enough for ioredis to discover the others.
      const nodes = cluster.servers.slice(0, 1).map(({ host, port }) => ({ host, port }));
      return { ...topology(kind, { cluster: { nodes } }, cluster.stop), cluster };
    }
  }
}

function topology(
  kind: TopologyKind,
  connection: Topology["connection"],
  stop: () => Promise<void>,
): Topology {
  return { kind, connection, stop, [Symbol.asyncDispose]: stop };
}

async function stopAll(servers: readonly RedisServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}

/** Waits until the replica has received every write the master had when this was called. */
async function caughtUp(master: RedisServer, replica: RedisServer): Promise<void> {
  const target = Number(replication(await master.cli("INFO", "replication")).master_repl_offset);
  await until("the replica to catch up", async () => {
    const info = replication(await replica.cli("INFO", "replication"));
    return Number(info.slave_repl_offset ?? info.master_repl_offset) >= target;
  });
}

async function linkUp(replica: RedisServer): Promise<boolean> {
  return replication(await replica.cli("INFO", "replication")).master_link_status === "up";
}

async function role(server: RedisServer): Promise<string> {
  return replication(await server.cli("INFO", "replication")).role;
}

function replication(info: string): Record<string, string> {
  return pairs(info, ":");
}

/** Fields of `redis-cli` output: alternating lines, or `name<separator>value` lines. */
function pairs(output: string, separator?: string): Record<string, string> {
  const lines = output.split("\n").map((l) => l.trim());
  const fields: Record<string, string> = {};
  if (separator) {
    for (const line of lines) {
      const at = line.indexOf(separator);
      if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
    }
  } else {
    for (let i = 0; i + 1 < lines.length; i += 2) fields[lines[i]] = lines[i + 1];
  }
  return fields;
}

interface ClusterNode {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  masterId: string;
  slots: [number, number][];
}

/** Parses `CLUSTER NODES`. */
function clusterNodes(output: string): ClusterNode[] {
  return output.split("\n").filter((l) => l.trim()).map((line) => {
    const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(" ");
    return {
      id,
      port: Number(address.split("@")[0].split(":").pop()),
      master: flags.split(",").includes("master"),
      failed: /\bfail\b/.test(flags),
      masterId,
      slots: slots.filter((s) => !s.startsWith("[")).map((s) => {
        const [a, b = a] = s.split("-").map(Number);
        return [a, b] as [number, number];
      }),
    };
  });
}

async function redisCli(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("redis-cli", { args, stdin: "null" })
    .output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0 || /\[ERR\]/.test(text)) {
    throw new Error(`Cannot run redis-cli ${args.join(" ")}: exit code ${code}: ${text}`);
  }
  return text;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT;
  while (!await check().catch(() => false)) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${SETTLE_TIMEOUT} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * A worker on `topology`, with a queue of its own named after `name`, logging only errors and
 * leaving the process's signals alone: close it (or `await using` it) at the end of the test.
 */
export function topologyWorker(topology: Topology, name: string): Worker {
  return new Worker({
    ...topology.connection,
    queueName: uniqueQueue(name),
    logLevel: "error",
    handleSignals: false,
  });
}
