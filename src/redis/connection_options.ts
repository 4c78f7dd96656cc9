/**
 * How a worker reaches Redis: one server by URL, a Sentinel-managed master, a Cluster, or an
 * ioredis client to share. The types describe ioredis's options structurally, so that this
 * package's public types do not depend on ioredis's.
 *
 * @module
 */

import { checkDuration, describe } from "../_validate.ts";

/**
 * Extra ioredis connection options (ioredis `RedisOptions`), such as `password`, `db`, `tls`,
 * `connectionName` or `maxRetriesPerRequest`.
 */
export type RedisConnectionOptions = Record<string, unknown>;

/**
 * An existing ioredis client to share: a `Redis` or a `Cluster` from `npm:ioredis`. Described by
 * the two members streaq relies on before it casts it, so that this package's types do not
 * depend on ioredis's.
 */
export interface RedisClient {
  /** The ioredis connection status (`"wait"`, `"ready"`, ...). */
  readonly status: string;
  /** Opens another connection (or cluster client) with the same options. */
  duplicate(): unknown;
}

/** Where a Redis server or a Sentinel listens. */
export interface RedisNodeAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/**
 * Connecting through Redis Sentinel: the sentinels tell the worker where the master is, and
 * where it moved after a failover. Every other field is an ioredis option for the connections
 * (`password`, `db`, `tls`, `sentinelPassword`, `sentinelTLS`, `failoverDetector`, ...).
 *
 * @example Three sentinels watching `mymaster`
 * ```ts
 * import type { RedisSentinelOptions } from "@streaq/streaq";
 *
 * export const sentinel: RedisSentinelOptions = {
 *   masterName: "mymaster",
 *   nodes: [
 *     { host: "sentinel-1", port: 26379 },
 *     { host: "sentinel-2", port: 26379 },
 *     { host: "sentinel-3", port: 26379 },
 *   ],
 *   password: "secret",
 * };
 * ```
 */
export interface RedisSentinelOptions {
  /** The name the sentinels monitor the master under (`sentinel monitor <name> ...`). */
  masterName: string;
  /** Some of the sentinels; the first that answers names the master. */
  nodes: readonly RedisNodeAddress[];
  /** Further ioredis options. */
  [option: string]: unknown;
}

/**
 * Connecting to Redis Cluster. Every other field is an ioredis `ClusterOptions` field
 * (`redisOptions` for each node connection, such as `password` and `tls`; `natMap`;
 * `dnsLookup`; ...). Reads must go to masters, so `scaleReads` can only be `"master"`.
 *
 * @example A cluster known by two of its nodes
 * ```ts
 * import type { RedisClusterOptions } from "@streaq/streaq";
 *
 * export const cluster: RedisClusterOptions = {
 *   nodes: [{ host: "redis-1", port: 6379 }, { host: "redis-2", port: 6379 }],
 *   redisOptions: { password: "secret" },
 * };
 * ```
 */
export interface RedisClusterOptions {
  /** Some of the cluster's nodes; the others are discovered from them. */
  nodes: readonly RedisNodeAddress[];
  /** Further ioredis cluster options. */
  [option: string]: unknown;
}

/** How long a command may wait for Redis, reconnection included, unless told otherwise. */
export const DEFAULT_REDIS_TIMEOUT = 10_000;

/** The connection options of a worker, as given. */
export interface ConnectionSettings {
  redisUrl?: string;
  redisOptions?: RedisConnectionOptions;
  redis?: RedisClient;
  sentinel?: RedisSentinelOptions;
  cluster?: RedisClusterOptions;
  redisTimeout?: number;
}

/** The ways to connect, in order of precedence; at most one may be given. */
const WAYS = ["redis", "cluster", "sentinel", "redisUrl"] as const;

/** Checks the connection options of a worker. */
export function checkConnectionOptions(options: ConnectionSettings): void {
  const where = "create worker";
  const given = WAYS.filter((way) => options[way] !== undefined);
  if (given.length > 1) {
    throw new TypeError(
      `Cannot create worker as ${
        WAYS.map((w) => `'${w}'`).join(", ")
      } are ways to connect and exclude each other: received ${given.join(" and ")}`,
    );
  }
  if (options.redis !== undefined && options.redisOptions !== undefined) {
    throw new TypeError(
      "Cannot create worker as 'redisOptions' has no effect on a client passed as 'redis' (configure that client instead): received both",
    );
  }
  checkDuration(where, "redisTimeout", options.redisTimeout, { min: 1 });
  const { redis, sentinel, cluster, redisUrl } = options;
  if (redisUrl !== undefined && typeof redisUrl !== "string") {
    throw new TypeError(
      `Cannot create worker as 'redisUrl' must be a string: received ${describe(redisUrl)}`,
    );
  }
  if (
    redis !== undefined &&
    (typeof redis !== "object" || redis === null || typeof redis.duplicate !== "function")
  ) {
    throw new TypeError(
      `Cannot create worker as 'redis' must be an ioredis Redis or Cluster: received ${
        describe(redis)
      }`,
    );
  }
  if (sentinel !== undefined) {
    checkObject("sentinel", sentinel);
    if (typeof sentinel.masterName !== "string" || sentinel.masterName === "") {
      throw new TypeError(
        `Cannot create worker as 'sentinel.masterName' must be a non-empty string: received ${
          describe(sentinel.masterName)
        }`,
      );
    }
    checkNodes("sentinel.nodes", sentinel.nodes);
  }
  if (cluster !== undefined) {
    checkObject("cluster", cluster);
    checkNodes("cluster.nodes", cluster.nodes);
    if (cluster.scaleReads !== undefined && cluster.scaleReads !== "master") {
      throw new TypeError(
        `Cannot create worker as 'cluster.scaleReads' must be "master" (a replica may not have a result or a task yet): received ${
          describe(cluster.scaleReads)
        }`,
      );
    }
  }
  checkNoKeyPrefix(options);
}

/**
 * Refuses ioredis's `keyPrefix`, wherever the options set it. ioredis adds it to the keys of the
 * commands it knows, but streaq's scripts build their keys from the queue's name: a prefix would
 * reach a few keys (live numbers) and not the queue's, so tools that look under it would find a
 * queue split in two. The queue's name already separates applications.
 */
function checkNoKeyPrefix(options: ConnectionSettings): void {
  const client = options.redis as
    | { options?: { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } } }
    | undefined;
  const places: [string, unknown][] = [
    ["redisOptions.keyPrefix", options.redisOptions?.keyPrefix],
    ["sentinel.keyPrefix", options.sentinel?.keyPrefix],
    ["cluster.keyPrefix", options.cluster?.keyPrefix],
    [
      "cluster.redisOptions.keyPrefix",
      (options.cluster?.redisOptions as { keyPrefix?: unknown } | undefined)?.keyPrefix,
    ],
    ["the keyPrefix of the client passed as 'redis'", client?.options?.keyPrefix],
    [
      "the redisOptions.keyPrefix of the client passed as 'redis'",
      client?.options?.redisOptions?.keyPrefix,
    ],
  ];
  const found = places.find(([, value]) => value !== undefined && value !== "");
  if (found) {
    throw new TypeError(
      `Cannot create worker with ioredis's keyPrefix (${
        found[0]
      }): streaq's scripts name the queue's keys themselves, so a prefix would reach only some of them; give each application its own queueName instead: received ${
        describe(found[1])
      }`,
    );
  }
}

function checkObject(option: string, value: unknown): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `Cannot create worker as '${option}' must be an object: received ${describe(value)}`,
    );
  }
}

function checkNodes(option: string, nodes: unknown): void {
  const valid = Array.isArray(nodes) && nodes.length > 0 &&
    nodes.every((node) =>
      typeof node === "object" && node !== null && typeof node.host === "string" &&
      node.host !== "" && Number.isInteger(node.port) && node.port > 0 && node.port < 65536
    );
  if (!valid) {
    throw new TypeError(
      `Cannot create worker as '${option}' must be a non-empty array of { host, port }: received ${
        describe(nodes)
      }`,
    );
  }
}
