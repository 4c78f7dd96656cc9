/**
 * Opening and closing the Redis connections of a worker, on any topology: one server by URL, a
 * master found through Sentinel, a Cluster, or a client passed in. Connections open lazily, on
 * the first command, so that creating a `Worker` in a module costs nothing and needs no
 * permission.
 *
 * A Cluster client has the same commands as a single connection (ioredis routes each to the
 * node serving its keys' slot), so the rest of streaq sees both as a `Redis`; the few places
 * that must know the difference (SCAN, in `scan.ts`) ask {@linkcode clusterOf}.
 *
 * @module
 */

import type { RedisOptions } from "ioredis";
import {
  Cluster,
  clusterSubscriber,
  endWhileReconnecting,
  onEverySend,
  Redis,
  type SentCommand,
  socketOf,
  withoutClientInfo,
} from "./_ioredis.ts";
import { DEFAULT_REDIS_TIMEOUT, type RedisClusterOptions } from "./connection_options.ts";
import type { RedisSentinelOptions } from "./connection_options.ts";
import { StreaqError } from "../errors.ts";

/** How to reach Redis, from the worker options (checked by `checkConnectionOptions`). */
export interface ConnectionOptions {
  redisUrl?: string;
  redisOptions?: RedisOptions;
  redis?: Redis | Cluster;
  sentinel?: RedisSentinelOptions;
  cluster?: RedisClusterOptions;
  redisTimeout?: number;
}

/**
 * A command refused because the worker is stopping and Redis is unreachable (see
 * {@linkcode ConnectionFactory.impatientWhileDown}): a consequence of the stop, not a failure of
 * its own.
 */
export class RedisDownAtStop extends StreaqError {}

/** The default Redis URL. */
export const DEFAULT_REDIS_URL = "redis://localhost:6379";

/**
 * What a connection is for. Commands and subscriptions wait at most `redisTimeout` for Redis;
 * the blocking read has no such limit, since it waits on purpose (see {@linkcode BLOCKED_READ}).
 */
export type ConnectionPurpose = "commands" | "subscriber" | "blocking";

/**
 * How long a blocking read that could not even be sent (Redis unreachable) waits before it
 * gives up with no entries, and how much longer than its BLOCK time a sent one may take before
 * it is deemed lost on a dead connection (ioredis `blockingTimeout`). Either way the fetch
 * loop goes round again instead of waiting forever.
 */
export const BLOCKED_READ = 5_000;

/** How long after reporting a connection error the next ones are not reported (ms). */
const QUIET = 10_000;

/** How often a Cluster client retries a command while a slot fails over (ms). */
const FAILOVER_RETRY = 250;

/** Where connection trouble is reported. */
export interface ConnectionLog {
  warn(message: string): void;
  info(message: string): void;
}

/** Opens connections to one Redis with the same options, and knows which ones it owns. */
export class ConnectionFactory {
  readonly #options: ConnectionOptions;
  readonly #log: ConnectionLog;
  readonly #owned = new Set<Redis>();
  #main: Redis | undefined;

  constructor(options: ConnectionOptions, log: ConnectionLog) {
    this.#options = options;
    this.#log = log;
    // The client's own connection keeps its options (see the warning below), but the ones
    // ioredis opens by itself for it would send CLIENT SETINFO whatever they are.
    if (options.redis) withoutClientInfo(options.redis);
    if (options.redis && readsPackageMeta(options.redis)) {
      log.warn(
        "The Redis client passed as 'redis' reads ioredis's package.json when it connects, which needs read access that streaq's documented permissions do not include (in a terminal, Deno prompts for it and the connection waits): create it with { disableClientInfo: true } (for a Cluster, in its redisOptions)",
      );
    }
  }

  /** The connection for ordinary commands: the one passed as `redis`, or one opened here. */
  get main(): Redis {
    if (!this.#main) {
      if (this.#options.redis) {
        this.#main = asRedis(this.#options.redis);
      } else {
        this.#main = this.open("commands");
      }
    }
    return this.#main;
  }

  /**
   * A new connection of this worker's own. Closed by {@linkcode ConnectionFactory.close}, or
   * earlier by {@linkcode closeConnection}.
   */
  open(purpose: ConnectionPurpose = "subscriber"): Redis {
    const connection = this.#create(purpose);
    this.#watch(connection, purpose);
    this.#owned.add(connection);
    connection.once("end", () => {
      endedConnections.add(connection);
      this.#owned.delete(connection);
    });
    return connection;
  }

  /**
   * While `stopping`, commands on a connection of this factory whose Redis is unreachable
   * (the connection is not ready: reconnecting, or not yet connected) fail at once instead of
   * waiting `redisTimeout` for it: those waiting now, those sent while it stays down, and those
   * waiting when it goes down. A worker asked to stop does this, so that a Ctrl-C during an
   * outage ends the process in moments rather than after one `redisTimeout` per step of the
   * shutdown (its hand-backs could not be written anyway; tasks it held are delivered again
   * after `idleTimeout`, as after a crash). Called with false once the run is over, so that the
   * worker, used as a client afterwards, waits for Redis again.
   */
  impatientWhileDown(stopping: boolean): void {
    for (const connection of [...this.#owned, this.#main]) {
      if (connection) impatience.get(connection)?.(stopping);
    }
  }

  /** Closes every connection opened here; a connection passed in as `redis` stays open. */
  async close(): Promise<void> {
    await Promise.all([...this.#owned].map(closeConnection));
    this.#owned.clear();
    this.#main = undefined;
  }

  /**
   * Reports connection errors, at most one per {@linkcode QUIET} ms, and the return of the
   * connection. ioredis reconnects by itself; without a listener it would print every failed
   * attempt as an unhandled error. A Cluster reports a failing node as "node error".
   */
  #watch(connection: Redis, purpose: ConnectionPurpose): void {
    let quietUntil = 0;
    const report = (error: Error, node = "") => {
      if (Date.now() < quietUntil) return;
      quietUntil = Date.now() + QUIET;
      this.#log.warn(
        `Redis connection (${purpose}) failed${
          node && ` on node ${node}`
        }: ${error.message}; reconnecting`,
      );
    };
    connection.on("error", (error: Error) => report(error));
    connection.on("node error", (error: Error, node: string) => report(error, node));
    connection.on("ready", () => {
      if (quietUntil === 0) return;
      // "ready" alone proves nothing: a connection without a ready check (the subscriber) is
      // "ready" as soon as its socket opens, before Redis has answered its AUTH, and with a
      // wrong password it fails again at once. Only an answered command shows it is back.
      connection.ping().then(() => {
        if (quietUntil === 0) return;
        quietUntil = 0;
        this.#log.info(`Redis connection (${purpose}) is back`);
      }, () => {
        // Not back after all: the failure has been or will be reported by its "error" event.
      });
    });
  }

  #create(purpose: ConnectionPurpose): Redis {
    const { redis, redisUrl, redisOptions, sentinel, cluster } = this.#options;
    const timeout = this.#options.redisTimeout ?? DEFAULT_REDIS_TIMEOUT;
    const blocking = purpose === "blocking";
    // Our own limit replaces ioredis's count of reconnection attempts per command; a blocking
    // read gives up on a lost connection by itself instead.
    const own: RedisOptions = blocking
      ? { maxRetriesPerRequest: null, blockingTimeout: BLOCKED_READ }
      : { maxRetriesPerRequest: null };
    // ioredis reads its own package.json for CLIENT SETINFO when a connection opens: a file
    // read that the documented permissions do not grant, and in a terminal a prompt that holds
    // the connection (and a shutdown waiting for it) until someone answers.
    own.disableClientInfo = true;
    if (purpose === "subscriber") {
      // No ready check (INFO) on a subscriber: a SUBSCRIBE sent while the connection opens can
      // overtake it (ioredis 5.8.2 and later, issue #2037), and the INFO is then refused with an
      // unhandled rejection that ends the process. A subscriber needs no INFO anyway.
      own.enableReadyCheck = false;
    }
    let connection: Redis | Cluster;
    if (redis) {
      connection = isCluster(redis)
        ? redis.duplicate([], {
          redisOptions: {
            ...redis.options.redisOptions,
            ...(blocking ? own : { disableClientInfo: true }),
          },
        })
        : redis.duplicate(purpose === "commands" ? {} : own);
    } else if (cluster) {
      const { nodes, redisOptions: nodeOptions, ...clusterOptions } = cluster;
      connection = new Cluster([...nodes], {
        lazyConnect: true,
        // While a failed master's replica takes over (seconds), ioredis retries a command every
        // `retryDelayOnFailover` ms, at most `maxRedirections` times (16 × 100 ms by default):
        // retry for as long as `redisTimeout` allows instead.
        retryDelayOnFailover: FAILOVER_RETRY,
        retryDelayOnClusterDown: FAILOVER_RETRY,
        retryDelayOnTryAgain: FAILOVER_RETRY,
        maxRedirections: 16 + Math.ceil(timeout / FAILOVER_RETRY),
        ...clusterOptions,
        redisOptions: { ...own, ...redisOptions, ...nodeOptions as RedisOptions },
      });
    } else if (sentinel) {
      const { masterName, nodes, ...sentinelOptions } = sentinel;
      connection = new Redis({
        lazyConnect: true,
        ...own,
        ...redisOptions,
        ...sentinelOptions as RedisOptions,
        sentinels: [...nodes],
        name: masterName,
      });
    } else {
      connection = new Redis(redisUrl ?? DEFAULT_REDIS_URL, {
        lazyConnect: true,
        ...own,
        ...redisOptions,
      });
    }
    // The connections ioredis opens by itself (to Sentinels, a Cluster's subscriber) ignore
    // disableClientInfo: see withoutClientInfo.
    withoutClientInfo(connection);
    if (!blocking) limitCommandTime(connection, timeout);
    return asRedis(connection);
  }
}

/**
 * True when a client passed in will read ioredis's package.json as it connects (for CLIENT
 * SETINFO) and the process cannot read it without asking.
 */
function readsPackageMeta(client: Redis | Cluster): boolean {
  const options = isCluster(client) ? client.options.redisOptions : client.options;
  if (options?.disableClientInfo) return false;
  try {
    return Deno.permissions.querySync({ name: "read" }).state !== "granted";
  } catch {
    return true;
  }
}

/** True for an ioredis Cluster client. */
function isCluster(connection: Redis | Cluster): connection is Cluster {
  return (connection as { isCluster?: boolean }).isCluster === true;
}

/** The Cluster client behind a connection, or undefined for a single connection. */
export function clusterOf(connection: Redis): Cluster | undefined {
  return isCluster(connection) ? connection as unknown as Cluster : undefined;
}

/** A Cluster client seen as a Redis connection: they share the command interface. */
function asRedis(connection: Redis | Cluster): Redis {
  return connection as Redis;
}

/** Marks commands whose time limit is already running (a command can be sent more than once). */
const limited = new WeakSet<object>();

/** Per connection with a time limit: whether to fail commands at once while Redis is down. */
const impatience = new WeakMap<Redis | Cluster, (impatient: boolean) => void>();

/**
 * Makes every command sent on `connection` fail after `ms` with a StreaqError, whether Redis is
 * slow, down, reconnecting or failing over. ioredis's own `commandTimeout` does the same for a
 * single connection with a vaguer message, but not for a Cluster, which queues commands while
 * it has no healthy node and waits for as long as that lasts.
 *
 * One timer per connection, not one per command: commands are kept in sending order, which is
 * also the order of their deadlines, and the timer wakes for the oldest one still unanswered.
 */
function limitCommandTime(connection: Redis | Cluster, ms: number): void {
  const deadlines = new Map<SentCommand, number>();
  const hold = holdProcessWhileBusy(connection);
  // Why the connection is not answering, for the message of a command that times out: the
  // last connection error since Redis last answered a command (ECONNREFUSED, WRONGPASS, ...).
  let lastError: Error | undefined;
  const remember = (error: Error) => lastError = error;
  connection.on("error", remember);
  connection.on("node error", remember);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = () => hold(false);
  const arm = () => {
    if (timer !== undefined || deadlines.size === 0) return;
    const [, oldest] = deadlines.entries().next().value!;
    timer = setTimeout(expire, Math.max(0, oldest - Date.now()));
    // While a command waits, its socket (or ioredis's timer to reconnect) keeps the process
    // alive; this timer must not, once nothing waits. Left to run out rather than cleared at
    // every idle moment: a client sending one command at a time would set a timer per command.
    Deno.unrefTimer(timer);
  };
  const expire = () => {
    timer = undefined;
    const now = Date.now();
    for (const [command, deadline] of deadlines) {
      if (deadline > now) break;
      deadlines.delete(command);
      if (deadlines.size === 0) idle();
      command.reject(
        new StreaqError(
          `Cannot run Redis command ${command.name.toUpperCase()} as Redis did not answer within ${ms} ms (option 'redisTimeout'); the connection is ${connection.status}${
            lastError ? `; last connection error: ${describeConnectionError(lastError)}` : ""
          }`,
        ),
      );
    }
    arm();
  };
  // A closed connection answers nothing more: its timer must not outlive it.
  connection.on("end", () => {
    clearTimeout(timer);
    timer = undefined;
  });
  // See ConnectionFactory.impatientWhileDown.
  let impatient = false;
  // ioredis's own ready check (INFO, or CLUSTER INFO on a Cluster), sent once the socket is
  // open: Redis is reachable then, so impatience does not apply. Failing it would not end the
  // connection either: ioredis takes a failed ready check for a fault and reconnects.
  const readyChecks = new WeakSet<SentCommand>();
  const unreachable = (command: SentCommand) =>
    command.reject(
      new RedisDownAtStop(
        `Cannot run Redis command ${command.name.toUpperCase()} as the worker is stopping and Redis is unreachable: the connection is ${connection.status}${
          lastError ? `; last connection error: ${describeConnectionError(lastError)}` : ""
        }`,
      ),
    );
  const failWaiting = () => {
    if (!impatient || connection.status === "ready" || deadlines.size === 0) return;
    const waiting = [...deadlines.keys()].filter((command) => !readyChecks.has(command));
    for (const command of waiting) deadlines.delete(command);
    if (deadlines.size === 0) idle();
    for (const command of waiting) unreachable(command);
  };
  impatience.set(connection, (now) => {
    impatient = now;
    failWaiting();
  });
  connection.on("close", failWaiting);
  onEverySend(connection, (command) => {
    if (
      connection.status === "connect" && (command.name === "info" || command.name === "cluster")
    ) {
      readyChecks.add(command);
    }
    if (
      impatient && connection.status !== "ready" && !limited.has(command) &&
      !readyChecks.has(command)
    ) {
      unreachable(command);
      return false;
    }
    if (!limited.has(command)) {
      limited.add(command);
      if (deadlines.size === 0) hold(true);
      deadlines.set(command, Date.now() + ms);
      const answered = () => {
        if (deadlines.delete(command) && deadlines.size === 0) idle();
      };
      command.promise.then(() => {
        answered();
        lastError = undefined;
      }, answered);
      arm();
    }
    return true;
  });
}

/** An error's message, with its code (`ECONNREFUSED`, ...) when the message leaves it out. */
function describeConnectionError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code)
    ? `${code}: ${error.message}`
    : error.message;
}

/**
 * Lets the sockets of `connection` keep the process alive only while it has commands in
 * flight: a script that has enqueued its tasks and read its results exits by itself, like a
 * script whose `fetch` calls are done, instead of being held by connections it forgot to close.
 * Whatever still waits holds the process by other means: a result wait by its recheck timer,
 * a running worker by its blocking read (a connection without this hold).
 *
 * @returns A function to call with true when the first command is sent, false when the last
 * one is answered.
 */
function holdProcessWhileBusy(connection: Redis | Cluster): (busy: boolean) => void {
  let busy = false;
  const holdSocket = (node: Redis) => {
    const socket = socketOf(node);
    if (busy) socket?.ref?.();
    else socket?.unref?.();
  };
  // Called twice per command on a connection that sends one at a time: no array for one node.
  const apply = () => {
    if (!isCluster(connection)) return holdSocket(connection);
    for (const node of [...connection.nodes(), ...clusterSubscriber(connection)]) holdSocket(node);
  };
  // A new socket (connect, reconnect, a Cluster's new node) starts out holding the process.
  connection.on("connect", apply);
  connection.on("ready", apply);
  if (isCluster(connection)) {
    connection.on("+node", (node: Redis) => node.on("connect", apply));
  }
  return (now) => {
    busy = now;
    apply();
  };
}

/**
 * Connections that have ended. A Cluster client can leave "end" for "close" afterwards (its
 * node pool reports "drain" once per node that goes), so its status alone does not tell.
 */
const endedConnections = new WeakSet<Redis>();

/** Closes a connection: politely with QUIT when it is up, at once otherwise. */
export async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === "end" || endedConnections.has(connection)) return;
  const ended = new Promise<void>((resolve) => connection.once("end", () => resolve()));
  // A Cluster client reports "end" once the last of its node connections has closed. One that
  // has none left (every node down, or still resolving its startup nodes) has nothing to close,
  // and never reports it.
  const cluster = clusterOf(connection);
  const willEnd = !cluster || cluster.status === "wait" || cluster.nodes().length > 0;
  if (cluster) await handshakesOver(cluster);
  if (cluster) await slotRefreshOver(cluster);
  if ((connection.status as string) === "disconnecting") {
    // A Cluster being disconnected, by `disconnectSafely` or by ioredis itself: a Cluster whose
    // ready check failed disconnects in order to reconnect (`disconnect(true)`), and would come
    // back after this close, holding the process. Disconnecting it again closes no node (none is
    // left), but marks it closed for good: it ends instead of reconnecting.
    connection.disconnect();
  } else if (connection.status === "ready") {
    try {
      await connection.quit();
    } catch {
      disconnectNow(connection);
    }
  } else {
    disconnectSafely(connection);
  }
  if (!willEnd) return;
  // Every path above ends the connection; the limit only keeps a shutdown from hanging on an
  // ioredis state we have not met.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<void>((resolve) => timer = setTimeout(resolve, END_LIMIT));
  await Promise.race([ended, limit]).finally(() => clearTimeout(timer));
}

/**
 * Waits for a slot-table refresh the Cluster client has under way (after a failover or a MOVED
 * reply): it asks a node through a connection of its own, under a timer of
 * `slotsRefreshTimeout`, which `quit()` does not wait for; closed during a refresh, the client
 * left that timer running after its close returned. Bounded by that timeout. Once the answer is
 * in, ioredis closes that connection by itself, with a timer of `disconnectTimeout` that its
 * socket's close clears: that one this cannot wait for, as the connection is not reachable.
 * `isRefreshing` is internal to ioredis and read defensively.
 */
function slotRefreshOver(cluster: Cluster): Promise<void> {
  const refreshing = (cluster as unknown as { isRefreshing?: boolean }).isRefreshing;
  if (refreshing !== true) return Promise.resolve();
  // With a refresh under way, this only adds a callback to it; it starts none.
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

/** How long {@linkcode closeConnection} waits for a closed connection to report its end (ms). */
const END_LIMIT = 5_000;

/**
 * Waits until none of a Cluster client's node connections is halfway through connecting: the
 * cluster closes them all at once, and one dropped during its handshake fails its ready check
 * afterwards and arms a two-second timer (see {@linkcode disconnectSafely}). The cluster's
 * subscriber connection is internal to ioredis; it is looked up defensively.
 */
async function handshakesOver(cluster: Cluster): Promise<void> {
  const nodes = [...cluster.nodes(), ...clusterSubscriber(cluster)];
  await Promise.all(
    nodes.filter((n) => n.status === "connecting" || n.status === "connect").map((node) =>
      new Promise<void>((resolve) => {
        const settled = () => {
          node.off("ready", settled);
          node.off("close", settled);
          resolve();
        };
        node.once("ready", settled);
        node.once("close", settled);
      })
    ),
  );
}

/**
 * Drops a connection at once, or, when it is halfway through connecting, as soon as the
 * handshake ends: ioredis would otherwise finish the handshake on the dropped socket, fail its
 * ready check and arm a two-second timer (a leak, and a late error event).
 */
export function disconnectSafely(connection: Redis): void {
  if (connection.status !== "connecting" && connection.status !== "connect") {
    disconnectNow(connection);
    return;
  }
  const settled = () => {
    connection.off("ready", settled);
    connection.off("close", settled);
    disconnectNow(connection);
  };
  connection.once("ready", settled);
  connection.once("close", settled);
}

/**
 * Drops a connection now. ioredis ends a connection when its socket closes; one waiting to
 * reconnect (Redis down, or a Sentinel master being replaced) has no socket left to close, so
 * `disconnect()` would only cancel the next attempt, arm a timer to destroy the dead socket,
 * and never report "end", leaving commands queued for it waiting for their time limit. End it
 * the way ioredis's own close handler does.
 */
function disconnectNow(connection: Redis): void {
  if (connection.status === "reconnecting" && !clusterOf(connection)) {
    endWhileReconnecting(
      connection,
      new StreaqError("The Redis connection was closed while reconnecting"),
    );
  } else {
    connection.disconnect();
  }
}
