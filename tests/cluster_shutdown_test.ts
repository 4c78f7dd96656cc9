/**
 * Stopping a worker on a Redis Cluster closes every connection it opened, whatever state its
 * Cluster clients are in when the stop comes. A client still making its ready check used to be
 * left to reconnect by itself after the close, holding the worker process open.
 *
 * @module
 */

import assert from "node:assert/strict";
import { clusterOf } from "../src/redis/connection.ts";
import { queueContextOf } from "../src/worker.ts";
import { eventually, sleep } from "./_helpers.ts";
import { startTopology, topologyWorker } from "./_topologies.ts";
import type { RedisServer } from "./_redis.ts";

/** The client connections of the cluster's nodes, other than replication links and our own. */
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

Deno.test("a worker on a Cluster stopped while its connections make their ready check closes them all, and none comes back", async () => {
  await using topology = await startTopology("Cluster");
  const servers = topology.cluster!.servers;
  const worker = topologyWorker(topology, "ready-check");
  const main = clusterOf(queueContextOf(worker).redis)!;
  // A Cluster client reports "connect" just after sending its ready check (CLUSTER INFO), whose
  // answer cannot have come yet: the stop comes while it waits.
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
});
