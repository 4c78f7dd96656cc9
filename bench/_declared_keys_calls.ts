/**
 * The calls `declared_keys.ts` measures, in both variants: the keys of a queue, the enqueue and
 * completion calls as streaq sends them (keys built in Lua) or with every task's keys declared,
 * and the declared variants of the scripts, derived from the frozen text by exact replacements.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { COMPLETE_LUA, ENQUEUE_LUA } from "./_declared_keys_lua.ts";

/** The priority of every task: one stream. */
export const PRIORITY = "normal";
/** The consumer group the deliveries are claimed through, as streaq names it. */
export const GROUP = "workers";
/** The consumer that claims and completes the deliveries. */
export const WORKER = "bench-worker";
/** A no-op task's payload as streaq encodes it unsigned (kind letter and `[]`). */
const PAYLOAD = "s[]";
/** A no-op task's kept result: 28 bytes (see docs/design.md, "Results"). */
const RESULT = Buffer.alloc(28, 1);
const TTL = 300_000;

/** Replaces `from` in `text` by `to`, requiring exactly one occurrence. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`Cannot derive the declared variant: expected one occurrence of ${from}`);
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/**
 * The enqueue script reading each task's keys from KEYS: [1] delayed set, [2] schedules set,
 * then per task [hash, stream, result]. ARGV is unchanged (the prefix stays for the task graph,
 * whose keys are found in Redis).
 */
export const ENQUEUE_DECLARED_LUA = replaceOnce(
  ENQUEUE_LUA,
  `  local taskKey, stream, resultKey = P .. 'task:' .. ARGV[a], P .. 'stream:' .. ARGV[a + 3],
    P .. 'result:' .. ARGV[a]`,
  `  local k = 2 + (a - 4) / 6 * 3
  local taskKey, stream, resultKey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]`,
);

/**
 * The completion script reading each delivery's keys from KEYS: [1] delayed set, [2] aborting
 * set, [3] schedules set, then per delivery [stream, hash, result, dependents set], then per
 * start [stream, hash], then the streams to prefetch from. A delivery's priority argument is
 * sent empty: only its stream key needed it.
 */
export const COMPLETE_DECLARED_LUA = [
  [
    `    table.insert(dependents, P .. 'dependents:' .. ARGV[a + 2])`,
    `    table.insert(dependents, KEYS[3 + i * 4 + 4])`,
  ],
  [
    `  local stream, msg, id, kind, blob, num = P .. 'stream:' .. ARGV[a], ARGV[a + 1], ARGV[a + 2],
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local taskKey, resultKey, lockKey = P .. 'task:' .. id, P .. 'result:' .. id, ARGV[a + 6]`,
    `  local stream, msg, id, kind, blob, num = KEYS[3 + i * 4 + 1], ARGV[a + 1], ARGV[a + 2],
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local taskKey, resultKey, lockKey = KEYS[3 + i * 4 + 2], KEYS[3 + i * 4 + 3], ARGV[a + 6]`,
  ],
  [
    `local function startOwned(prefix, abortingKey, group, me, stream, msg, id, fresh)
  local key = prefix .. id`,
    `local function startOwned(key, abortingKey, group, me, stream, msg, id, fresh)`,
  ],
  [
    `  local stream = P .. 'stream:' .. ARGV[b]`,
    `  local stream, key = KEYS[3 + n * 4 + k * 2 + 1], KEYS[3 + n * 4 + k * 2 + 2]`,
  ],
  [
    `redis.call('HINCRBY', prefix .. ARGV[b + 2], 'tries', 1)`,
    `redis.call('HINCRBY', key, 'tries', 1)`,
  ],
  [
    `startOwned(prefix, KEYS[2], group, me, stream,`,
    `startOwned(key, KEYS[2], group, me, stream,`,
  ],
  [`local first = 4\n`, `local first = 4 + n * 4 + m * 2\n`],
].reduce((lua, [from, to]) => replaceOnce(lua, from, to), COMPLETE_LUA);

export type Variant = "built" | "declared";
export type Arg = string | number | Buffer;

/** The keys of one queue, as src/redis/keys.ts names them. */
export class QueueKeys {
  readonly prefix: string;
  constructor(queue: string) {
    this.prefix = `streaq:{${queue}}:`;
  }
  get delayed(): string {
    return this.prefix + "delayed";
  }
  get schedules(): string {
    return this.prefix + "schedules";
  }
  get aborting(): string {
    return this.prefix + "aborting";
  }
  get wake(): string {
    return this.prefix + "wake";
  }
  get donePrefix(): string {
    return this.prefix + "done:";
  }
  stream(priority: string): string {
    return this.prefix + "stream:" + priority;
  }
  task(id: string): string {
    return this.prefix + "task:" + id;
  }
  result(id: string): string {
    return this.prefix + "result:" + id;
  }
  dependents(id: string): string {
    return this.prefix + "dependents:" + id;
  }
}

/** One script call: its keys and arguments. */
export interface Call {
  readonly keys: string[];
  readonly args: Arg[];
}

/** The enqueue call of `ids` (tasks to run now, tied to nothing). */
export function enqueueCall(k: QueueKeys, variant: Variant, ids: string[]): Call {
  const keys = [k.delayed, k.schedules];
  const args: Arg[] = [Date.now(), k.wake, k.prefix];
  for (const id of ids) {
    args.push(id, "noop", PAYLOAD, PRIORITY, 0, "");
    if (variant === "declared") keys.push(k.task(id), k.stream(PRIORITY), k.result(id));
  }
  return { keys, args };
}

/** The completion call of deliveries `[entry id, task id]`: final outcomes, fresh, no refill. */
export function completeCall(k: QueueKeys, variant: Variant, deliveries: [string, string][]): Call {
  const keys = [k.delayed, k.aborting, k.schedules];
  const args: Arg[] = [GROUP, WORKER, Date.now(), k.donePrefix, k.wake, k.prefix];
  args.push(deliveries.length, 1);
  for (const [entry, id] of deliveries) {
    args.push(variant === "declared" ? "" : PRIORITY, entry, id, "final", RESULT, TTL, "", "", 1);
    if (variant === "declared") {
      keys.push(k.stream(PRIORITY), k.task(id), k.result(id), k.dependents(id));
    }
  }
  args.push(0, 0, 0); // no starts, no prefetch, no slots to fill
  return { keys, args };
}

/** Bytes of a command in the protocol (RESP arrays of bulk strings), as the server reads it. */
export function respBytes(args: readonly Arg[]): number {
  let bytes = `*${args.length}\r\n`.length;
  for (const a of args) {
    const length = typeof a === "string"
      ? Buffer.byteLength(a)
      : typeof a === "number"
      ? String(a).length
      : a.length;
    bytes += `$${length}\r\n`.length + length + 2;
  }
  return bytes;
}

/** Task ids as streaq makes them: 32 hex digits. */
export function newIds(count: number): string[] {
  return Array.from({ length: count }, () => crypto.randomUUID().replaceAll("-", ""));
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
