/**
 * Stopping a worker closes every connection it opened, whatever state they are in when the stop
 * comes. A Cluster client still making its ready check used to be left to reconnect by itself
 * after the close, holding the worker process open.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { Worker } from "../mod.ts";
import { queueContextOf } from "../src/worker.ts";
import { eventually, sleep } from "./_helpers.ts";
import { type RedisServer, startRedis, uniqueQueue } from "./_redis.ts";
import { startTopology } from "./_topologies.ts";

/** The client connections of `servers`, other than replication links and our own. */
async function clientConnections(servers: readonly RedisServer[]): Promise<number> {
  let count = 0;
  for (const server of servers) {
    for (const line of (await server.cli("CLIENT", "LIST")).split("\n")) {
      const fields = Object.fromEntries(line.trim().split(" ").map((f) => f.split("=", 2)));
      if (fields.flags === "N" && fields.cmd !== "client|list") count++;
    }
  }
  return count;
}

/** Servers to look at and the worker options that reach them, for each kind of Redis. */
const SETUPS = {
  async standalone() {
    const server = await startRedis();
    return { servers: [server], connection: { redisUrl: server.url }, stop: () => server.stop() };
  },
  async Cluster() {
    const topology = await startTopology("Cluster");
    const servers = topology.cluster!.servers;
    return { servers, connection: topology.connection, stop: () => topology.cluster!.stop() };
  },
};

for (const kind of ["standalone", "Cluster"] as const) {
  Deno.test(`a worker stopped while its connections make their ready check closes them all, and none comes back (${kind})`, async () => {
    const { servers, connection, stop } = await SETUPS[kind]();
    try {
      const worker = new Worker({
        ...connection,
        queueName: uniqueQueue("ready-check"),
        logLevel: "error",
        handleSignals: false,
      });
      const main: Redis = queueContextOf(worker).redis;
      // A connection reports "connect" just after sending its ready check (INFO, or CLUSTER INFO
      // on a Cluster), whose answer cannot have come yet: the stop comes while it waits.
      main.once("connect", () => worker.stop());
      await worker.run();
      await worker.close();
      await eventually(async () => await clientConnections(servers) === 0, {
        what: "the worker's connections to close",
      });
      // A client left to reconnect comes back within ioredis's retry delay (about 100 ms).
      const deadline = Date.now() + 1_000;
      while (Date.now() < deadline) {
        assert.equal(await clientConnections(servers), 0, "a connection of the worker came back");
        await sleep(50);
      }
    } finally {
      await stop();
    }
  });
}
