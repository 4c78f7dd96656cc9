/**
 * Everything streaq uses of ioredis beyond its public API, in one place: the command a
 * connection writes (`Command#toWritable`, to lay out script calls in one buffer), the hook every
 * command passes through (`sendCommand`, for `redisTimeout`), the socket (`stream`, so that an
 * idle connection does not keep the process alive), a Cluster's subscriber connection, the
 * connections ioredis opens by itself (to Sentinels, a Cluster's subscriber), which must not send
 * CLIENT SETINFO, and the steps of ioredis's own close handler (to end a connection that waits
 * to reconnect).
 *
 * These are internals of the ioredis version the import map pins, {@linkcode IOREDIS_VERSION},
 * the one the tests run on. {@linkcode checkIoredisInternals} runs when this module loads and
 * fails with a message naming that version if one of them is missing, rather than letting a
 * connection misbehave later.
 *
 * @module
 */

import "./_env_access.ts"; // before ioredis: see there
import { Cluster, Command, Redis, type RedisOptions } from "ioredis";
import { StreaqError } from "../errors.ts";

export { Cluster, Command, Redis };

/** The ioredis version streaq is tested with, pinned in its import map. */
export const IOREDIS_VERSION = "5.11.1";

/** The classes whose internals are checked: ioredis's own, or stand-ins in a test. */
export interface IoredisClasses {
  readonly Redis: { readonly prototype: object };
  readonly Cluster: { readonly prototype: object };
  readonly Command: { readonly prototype: object };
}

/** The methods streaq calls or replaces, by class. */
const RELIED_ON: Record<keyof IoredisClasses, readonly string[]> = {
  Command: ["toWritable"],
  Redis: ["sendCommand", "setStatus", "flushQueue", "disconnect"],
  Cluster: ["sendCommand", "nodes", "disconnect"],
};

/**
 * Throws a StreaqError naming the supported ioredis version and what is missing, unless every
 * internal method streaq relies on is there.
 */
export function checkIoredisInternals(classes: IoredisClasses): void {
  const missing = (Object.keys(RELIED_ON) as (keyof IoredisClasses)[]).flatMap((name) =>
    RELIED_ON[name]
      .filter((method) => typeof Reflect.get(classes[name].prototype, method) !== "function")
      .map((method) => `${name}#${method}`)
  );
  if (missing.length > 0) {
    throw new StreaqError(
      `Cannot use this ioredis as streaq relies on internals of ioredis ${IOREDIS_VERSION} that it lacks: ${
        missing.join(", ")
      }; use npm:ioredis@${IOREDIS_VERSION}, as streaq's import map does`,
    );
  }
}

checkIoredisInternals({ Redis, Cluster, Command });

/** A command as `sendCommand` receives it. */
export interface SentCommand {
  readonly name: string;
  readonly promise: Promise<unknown>;
  reject(error: Error): void;
}

/**
 * Runs `intercept` for every command sent on `connection`, before it is sent. A command for
 * which it returns false is not sent: `intercept` has settled it.
 */
export function onEverySend(
  connection: Redis | Cluster,
  intercept: (command: SentCommand) => boolean | void,
): void {
  const target = connection as unknown as {
    sendCommand(command: SentCommand, ...rest: unknown[]): unknown;
  };
  const send = target.sendCommand;
  target.sendCommand = function (command: SentCommand, ...rest: unknown[]) {
    if (intercept(command) === false) return command.promise;
    return send.call(this, command, ...rest);
  };
}

/** The socket of a connection, once it has one. */
export function socketOf(connection: Redis): { ref?(): void; unref?(): void } | undefined {
  return (connection as unknown as { stream?: { ref?(): void; unref?(): void } }).stream;
}

/** The connection a Cluster client subscribes on, if it has one yet. */
export function clusterSubscriber(cluster: Cluster): Redis[] {
  const subscriber = (cluster as unknown as { subscriber?: { getInstance?(): Redis | null } })
    .subscriber?.getInstance?.();
  return subscriber ? [subscriber] : [];
}

/**
 * Keeps the connections that ioredis opens by itself for `connection` from sending CLIENT
 * SETINFO, as streaq's own connections already do through `disableClientInfo`. For that command
 * ioredis reads its own package.json, a file the documented permissions do not cover: in a
 * terminal Deno stops at a prompt and the connection waits for it. Two kinds of connection
 * ignore the option given to the client: those to the Sentinels (asked where the master is), and
 * a Cluster's subscriber, created with options of its own. Each is created lazily, and reads the
 * option only once its socket connects, so the option is set as each is created.
 *
 * Throws a StreaqError naming the ioredis version to use if those internals are missing.
 */
export function withoutClientInfo(connection: Redis | Cluster): void {
  if ((connection as { isCluster?: boolean }).isCluster === true) {
    const subscriber = (connection as unknown as { subscriber?: Record<string, unknown> })
      .subscriber;
    const select = subscriber?.selectSubscriber;
    if (!subscriber || typeof select !== "function") {
      throw missingInternal("ClusterSubscriber#selectSubscriber");
    }
    subscriber.selectSubscriber = function (this: { subscriber?: Redis | null }) {
      const result = select.call(this);
      if (this.subscriber) this.subscriber.options.disableClientInfo = true;
      return result;
    };
    return;
  }
  if (!(connection as Redis).options.sentinels) return;
  const connector = (connection as unknown as { connector?: Record<string, unknown> }).connector;
  const connectToSentinel = connector?.connectToSentinel;
  if (!connector || typeof connectToSentinel !== "function") {
    throw missingInternal("SentinelConnector#connectToSentinel");
  }
  connector.connectToSentinel = function (endpoint: unknown, options?: RedisOptions) {
    return connectToSentinel.call(this, endpoint, { ...options, disableClientInfo: true });
  };
}

/** The error for an internal of ioredis that is missing, in the form of the load-time check. */
function missingInternal(what: string): StreaqError {
  return new StreaqError(
    `Cannot use this ioredis as streaq relies on internals of ioredis ${IOREDIS_VERSION} that it lacks: ${what}; use npm:ioredis@${IOREDIS_VERSION}, as streaq's import map does`,
  );
}

/**
 * Ends a connection that waits to reconnect, as ioredis's own close handler does: forgets the
 * dead socket, then reports "end" and fails the commands queued for it with `error`.
 * `disconnect()` alone would only cancel the next attempt and never report "end".
 */
export function endWhileReconnecting(connection: Redis, error: Error): void {
  const internals = connection as unknown as {
    connector?: { stream?: unknown };
    setStatus(status: "end"): void;
    flushQueue(error: Error): void;
  };
  if (internals.connector) internals.connector.stream = undefined;
  connection.disconnect();
  internals.setStatus("end");
  internals.flushQueue(error);
}
