/**
 * Commands sent on a single connection without ioredis's `Command` class. ioredis takes any
 * object with a command's members (`sendCommand`), so the commands of the latency round trip
 * (script calls, the result waiter's SUBSCRIBE and UNSUBSCRIBE, the worker's blocking read) are
 * sent as a {@linkcode DirectCall}.
 *
 * Why: on Deno, in a process that waits between commands (a client waiting for a result, a
 * worker between tasks), ioredis `Command` objects outlive the next scavenge, kept from the old
 * generation until a mark-compact, and with them each command's arguments and reply. A scavenge
 * copies them, several hundred kilobytes, and takes milliseconds: the latency case's p99. This
 * object, sent the same way, does not (`deno task bench:gc-survivors`). What in `Command` does
 * it was not found; see "Latency p99" in `docs/benchmarks.md`. A wrapper around the promise's
 * resolve function, stored on the object, did it too: `resolve` and `reject` are the promise's
 * own, and whatever must happen on the answer happens in a reaction to the promise.
 *
 * Pipelines and Cluster clients keep ioredis's commands: they read more of a command's members
 * (slots, keys, pipeline indexes).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Cluster, Redis } from "./_ioredis.ts";
import { type CommandArg, encodeCommand } from "./_resp.ts";

/** One command, with the members ioredis's `Redis#sendCommand` and its reply handling read. */
export class DirectCall {
  name: string;
  args: CommandArg[];
  readonly inTransaction = false;
  readonly isResolved = false;
  isTraced = false;
  readonly promise: Promise<unknown>;
  resolve!: (reply: unknown) => void;
  reject!: (error: Error) => void;
  /** The socket the call was last written on. */
  socket: object | undefined;
  /** For a blocking command: how long it blocks (ms), as ioredis reads it from the arguments. */
  readonly #blocksFor: number | undefined;
  #deadline: number | undefined;
  #timers: ReturnType<typeof setTimeout>[] | undefined;

  constructor(name: string, args: CommandArg[], blocksFor?: number) {
    this.name = name;
    this.args = args;
    this.#blocksFor = blocksFor;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** The command's bytes; `socket` is the connection's, the one it is written on. */
  toWritable(socket: object): string | Buffer {
    this.socket = socket;
    return encodeCommand(this.name, this.args);
  }

  /** ioredis's `commandTimeout` option (a user's `redisOptions`): the call fails after `ms`. */
  setTimeout(ms: number): void {
    this.#after(ms, () => this.reject(new Error("Command timed out")));
  }

  /**
   * What ioredis reads to arm its `blockingTimeout` for a blocking command: its BLOCK time in
   * ms, or undefined for a command that does not block.
   */
  extractBlockingTimeout(): number | undefined {
    return this.#blocksFor;
  }

  /**
   * ioredis's guard against a blocking command lost on a dead connection: `ms` after it was
   * first sent, the call ends with no reply (null), as Redis answers a BLOCK that timed out.
   */
  setBlockingTimeout(ms: number): void {
    if (ms <= 0) return;
    const now = Date.now();
    this.#deadline ??= now + ms;
    // Written on a socket: its guard watches every blocking call on it with one timer. Queued
    // while offline (no socket yet): a timer of its own.
    if (this.socket) guardOf(this.socket).watch(this, this.#deadline);
    else this.#after(this.#deadline - now, () => this.resolve(null));
  }

  #after(ms: number, then: () => void): void {
    if (!this.#timers) {
      this.#timers = [];
      // Cleared by a reaction, not by a wrapper around resolve (see the module's comment).
      const clear = () => this.#timers!.forEach(clearTimeout);
      this.promise.then(clear, clear);
    }
    this.#timers.push(setTimeout(then, Math.max(0, ms)));
  }
}

/** A socket as the guard needs it: told when it closes. */
interface Closing {
  once(event: "close", listener: () => void): unknown;
}

/**
 * The blocking calls written on one socket and not answered yet, each ended with no reply (null)
 * once its deadline passes, on one timer for them all. A worker between tasks sends a blocking
 * read per task, and a timer per read (a `Timeout` object, a clear, and the reaction that clears
 * it) was more than a kilobyte per task to collect. The timer is armed for the earliest deadline
 * and left to run out when its call is answered first; it then arms itself for the next one, so
 * it fires about once per blocking time. It stops when the socket closes.
 */
class BlockingGuard {
  readonly #calls = new Map<DirectCall, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(socket: Closing) {
    socket.once("close", () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    });
  }

  /** Ends `call` with null at `deadline` (ms since the epoch), unless it is answered before. */
  watch(call: DirectCall, deadline: number): void {
    if (!this.#calls.has(call)) {
      // Forgotten by a reaction, not by a wrapper around resolve (see the module's comment).
      const forget = () => this.#calls.delete(call);
      call.promise.then(forget, forget);
    }
    this.#calls.set(call, deadline);
    if (deadline < this.#timerAt) this.#arm(deadline);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - Date.now()));
    // The socket keeps the process alive while a call waits on it; this timer must not after.
    Deno.unrefTimer(this.#timer);
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [call, deadline] of this.#calls) {
      if (deadline <= now) {
        this.#calls.delete(call);
        call.resolve(null);
      } else if (deadline < next) {
        next = deadline;
      }
    }
    if (next < Infinity) this.#arm(next);
  }
}

const guards = new WeakMap<object, BlockingGuard>();

/** The {@linkcode BlockingGuard} of `socket`, made at its first blocking call. */
function guardOf(socket: object): BlockingGuard {
  let guard = guards.get(socket);
  if (!guard) {
    guard = new BlockingGuard(socket as Closing);
    guards.set(socket, guard);
  }
  return guard;
}

/**
 * Whether `connection` takes a {@linkcode DirectCall}: a single connection, not a Cluster client
 * (which streaq's types often call a `Redis`).
 */
export function takesDirectCalls(connection: Redis | Cluster): boolean {
  return !(connection as { isCluster?: boolean }).isCluster;
}

/**
 * Sends `name args` on `connection` as a {@linkcode DirectCall}; resolves to the reply as
 * ioredis parsed it (bulk strings as Buffers). `blocksFor` marks a blocking command with its
 * BLOCK time (ms), for ioredis's `blockingTimeout`.
 */
export function sendDirect(
  connection: Redis,
  name: string,
  args: CommandArg[],
  blocksFor?: number,
): Promise<unknown> {
  const call = new DirectCall(name, args, blocksFor);
  (connection as unknown as { sendCommand(call: DirectCall): unknown }).sendCommand(call);
  return call.promise;
}
