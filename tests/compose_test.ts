/**
 * compose.yaml, parsed with the yaml package: what `docker compose up` starts and which ports it
 * publishes. It runs under `tests/tools.json`, which holds yaml outside the library's
 * configuration: `deno task test:tools` runs it (and `deno task test`, after the rest).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parse } from "yaml";

interface Service {
  image: string;
  profiles?: string[];
  ports?: string[];
  command?: string | string[];
  healthcheck?: { test: string[] };
}

async function services(): Promise<Record<string, Service>> {
  const text = await Deno.readTextFile(new URL("../compose.yaml", import.meta.url));
  return (parse(text) as { services: Record<string, Service> }).services;
}

/** Host ports a service publishes, expanding ranges such as `7000-7005`. */
function publishedPorts(service: Service): number[] {
  return (service.ports ?? []).flatMap((mapping) => {
    const [, host] = mapping.split(":");
    const [from, to = from] = host.split("-").map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

function script(service: Service): string {
  return [service.command ?? []].flat().join("\n");
}

Deno.test("compose.yaml parses and offers a standalone Redis, a Sentinel setup and a Cluster", async () => {
  const all = await services();
  assert.deepEqual(Object.keys(all).sort(), ["cluster", "redis", "sentinel"]);
  for (const [name, service] of Object.entries(all)) {
    assert.match(service.image, /^redis:7/, `${name} runs Redis 7`);
    assert.ok(service.healthcheck?.test.length, `${name} has a health check`);
  }
  // `docker compose up` alone starts only the standalone Redis.
  assert.equal(all.redis.profiles, undefined);
  assert.deepEqual(all.sentinel.profiles, ["sentinel"]);
  assert.deepEqual(all.cluster.profiles, ["cluster"]);
});

Deno.test("compose.yaml publishes ports on the loopback interface only", async () => {
  for (const [name, service] of Object.entries(await services())) {
    for (const mapping of service.ports ?? []) {
      assert.match(mapping, /^127\.0\.0\.1:/, `${name} publishes ${mapping} beyond loopback`);
    }
  }
});

Deno.test("compose.yaml's Sentinel and Cluster hand out addresses the host can reach", async () => {
  const { sentinel, cluster } = await services();
  const monitored = script(sentinel).match(/sentinel monitor mymaster 127\.0\.0\.1 (\d+) 2/);
  assert.ok(monitored, "the sentinels monitor a master on the container's loopback");
  const sentinelPorts = publishedPorts(sentinel);
  assert.ok(sentinelPorts.includes(Number(monitored[1])), "the master's port is published");
  for (const port of [26379, 26380, 26381]) assert.ok(sentinelPorts.includes(port));

  const created = script(cluster).match(/--cluster create((?:\s+\\?\s*127\.0\.0\.1:\d+)+)/);
  assert.ok(created, "the cluster is created from nodes on the container's loopback");
  const nodes = [...created[1].matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(nodes.length, 6);
  for (const port of nodes) assert.ok(publishedPorts(cluster).includes(port), `${port} published`);
  assert.match(script(cluster), /--cluster-replicas 1/);
});
