/**
 * Reading a queue's events stream (`worker.events()`): an async iterator on a connection of its
 * own, which resumes from the last event it delivered after a lost connection or a failover, and
 * says so (a `gap` event) when the stream's cap trimmed events it had not read yet.
 *
 * Each batch is read by {@linkcode READ_EVENTS_SCRIPT}, which checks for a gap in the same call:
 * the cap trims the oldest events, so when the stream has lost any and its oldest event kept is
 * after the reader's last id, events after that id may be gone. (It can report a gap where the
 * trim happened to end exactly at the reader's last event; it never misses one.) When nothing is
 * new, an `XREAD BLOCK` waits for the next event without polling.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { QueueContext } from "../queue_context.ts";
import { EVENT_FIELD } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { describe } from "../_validate.ts";
import {
  EVENT_TYPES,
  type EventsOptions,
  type StreaqEvent,
  type StreaqEventType,
} from "../events.ts";
import { openProgress } from "./inspect.ts";

/** Events read per call. */
const BATCH = 200;

/** How long one blocking wait for new events lasts before it is sent again (ms). */
const BLOCK = 10_000;

/** How long the reader waits before it tries again after a failed read (ms). */
const RETRY_PAUSE = 250;

/**
 * Reads the events after an id, and whether events after that id were trimmed unread.
 *
 * KEYS: [1] events stream
 * ARGV: [1] the id read after (exclusive), [2] how many to read at most, [3] '1' to check for a
 *       gap
 * Returns {entries as XRANGE returns them, the highest id trimmed when it is above ARGV[1] (a
 * gap), else false}.
 */
export const READ_EVENTS_SCRIPT = script(
  `
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return tonumber(id) or 0, 0 end
  return tonumber(string.sub(id, 1, dash - 1)) or 0, tonumber(string.sub(id, dash + 1)) or 0
end
local function above(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am > bm or (am == bm and as > bs)
end
local gap = false
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local f = {}
  for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
  -- Trimming removes the oldest entries: when any entry was removed, every id before the
  -- oldest one kept may be gone. (Redis 7.0 does not record trims in max-deleted-entry-id, so
  -- the oldest entry kept is what tells.)
  local removed = f['entries-added'] == nil or f['entries-added'] > f['length']
  local first = f['recorded-first-entry-id']
  if first == nil and type(f['first-entry']) == 'table' then first = f['first-entry'][1] end
  if removed and first and first ~= '0-0' and above(first, ARGV[1]) then
    local m, s = parse(first)
    gap = s > 0 and (m .. '-' .. (s - 1)) or ((m - 1) .. '-18446744073709551615')
  end
  local deleted = f['max-deleted-entry-id']
  if deleted and above(deleted, ARGV[1]) and (not gap or above(deleted, gap)) then gap = deleted end
end
return {redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2]), gap}
`,
  // It only reads: it may run on a replica, and while a master is at its memory limit.
  { redisFlags: ["no-writes"] },
);

/**
 * Whether the queue has an events stream: some worker or client with the `events` option has
 * written to it (and it was not deleted since). One `EXISTS`.
 */
export async function hasEventsStream(client: QueueContext): Promise<boolean> {
  return await client.redis.exists(client.keys.events) === 1;
}

/**
 * The id of the newest event of the queue, or `"0-0"` when it has none: where a reader that
 * starts now resumes from. One `XREVRANGE`.
 */
export async function latestEventId(client: QueueContext): Promise<string> {
  const last = await client.redis.xrevrange(client.keys.events, "+", "-", "COUNT", 1);
  return last[0]?.[0] ?? "0-0";
}

/** Where reading starts: the id read after, and whether a gap before the first read counts. */
interface Cursor {
  after: string;
  checkGap: boolean;
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * Checks the options of `worker.events()`.
 *
 * @throws {TypeError} For a `since` or `types` of the wrong kind, naming what was received.
 */
export function checkEventsOptions(options: EventsOptions): void {
  const { since, types, signal } = options;
  if (
    since !== undefined && !(since instanceof Date && !isNaN(since.getTime())) &&
    !(typeof since === "string" && (since === "now" || since === "start" || STREAM_ID.test(since)))
  ) {
    throw new TypeError(
      `Cannot read events as 'since' must be "now", "start", an event id such as "1700000000000-0", or a valid Date: received ${
        describe(since)
      }`,
    );
  }
  if (types !== undefined) {
    const bad = Array.isArray(types)
      ? types.find((t) => !EVENT_TYPES.includes(t as StreaqEventType))
      : types;
    if (!Array.isArray(types) || bad !== undefined) {
      throw new TypeError(
        `Cannot read events as 'types' must be an array of event types (${
          EVENT_TYPES.join(", ")
        }): received ${describe(bad)}`,
      );
    }
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot read events as 'signal' must be an AbortSignal: received ${describe(signal)}`,
    );
  }
}

/**
 * The events of a queue, as `worker.events()` yields them. Options are checked before the
 * first event is asked for.
 */
export function readEvents(
  client: QueueContext,
  options: EventsOptions = {},
): AsyncGenerator<StreaqEvent, void, undefined> {
  checkEventsOptions(options);
  return eventsGenerator(client, options);
}

async function* eventsGenerator(
  client: QueueContext,
  options: EventsOptions,
): AsyncGenerator<StreaqEvent, void, undefined> {
  const { signal } = options;
  if (signal?.aborted) return;
  const wanted = options.types ? new Set<string>(options.types) : undefined;
  const key = client.keys.events;
  // Its own connection: a blocking read would hold up every other command on a shared one.
  const connection = client.connections.open("blocking");
  const { promise: stopped, dispose } = abortPromise(signal);
  try {
    const cursor = await untilAborted(startCursor(connection, key, options.since), stopped);
    if (cursor === undefined) return;
    while (!signal?.aborted) {
      let reply: [unknown[][], Buffer | false] | undefined;
      try {
        reply = await untilAborted(
          runScript(
            connection,
            READ_EVENTS_SCRIPT,
            [key],
            [cursor.after, BATCH, cursor.checkGap ? "1" : "0"],
            true,
          ) as Promise<[unknown[][], Buffer | false]>,
          stopped,
        );
      } catch (error) {
        // A lost connection or a failover: ioredis reconnects; read again from the same id.
        if (!isTransient(error)) throw error;
        await pause(RETRY_PAUSE, signal);
        continue;
      }
      if (reply === undefined) return;
      const [entries, trimmed] = reply;
      cursor.checkGap = true;
      if (trimmed) {
        const id = String(trimmed);
        yield { type: "gap", id, time: timeOf(id), missedAfter: cursor.after };
        if (entries.length === 0) cursor.after = id;
      }
      if (entries.length === 0) {
        try {
          const woke = await untilAborted(
            connection.xread("COUNT", 1, "BLOCK", BLOCK, "STREAMS", key, cursor.after),
            stopped,
          );
          if (woke === undefined && signal?.aborted) return;
        } catch (error) {
          if (!isTransient(error)) throw error;
          await pause(RETRY_PAUSE, signal);
        }
        continue;
      }
      for (const entry of entries) {
        const id = String(entry[0]);
        cursor.after = id;
        const event = await toEvent(client, id, entry[1] as Buffer[]);
        if (event && (!wanted || wanted.has(event.type))) yield event;
        if (signal?.aborted) return;
      }
    }
  } finally {
    dispose();
    await endConnection(connection);
  }
}

/** Where reading starts, from the `since` option. */
async function startCursor(
  connection: Redis,
  key: string,
  since: string | Date = "now",
): Promise<Cursor> {
  if (since instanceof Date) {
    const ms = since.getTime();
    // Exclusive of the last id of the millisecond before: every event at or after `since`.
    return { after: ms > 0 ? `${ms - 1}-18446744073709551615` : "0-0", checkGap: true };
  }
  if (since === "start") return { after: "0-0", checkGap: false };
  if (since !== "now") return { after: since, checkGap: true };
  const last = await connection.xrevrange(key, "+", "-", "COUNT", 1);
  return { after: last[0]?.[0] ?? "0-0", checkGap: true };
}

/** An event from a stream entry; undefined for an entry of an unknown type. */
async function toEvent(
  client: QueueContext,
  id: string,
  flat: Buffer[],
): Promise<StreaqEvent | undefined> {
  const f = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(String(flat[i]), flat[i + 1]);
  const text = (name: string) => f.has(name) ? String(f.get(name)) : undefined;
  const type = text(EVENT_FIELD.type) as StreaqEventType | undefined;
  const time = timeOf(id);
  if (type === "paused" || type === "resumed") return { type, id, time };
  if (!type || !EVENT_TYPES.includes(type) || type === "gap") return undefined;
  const task = {
    id,
    time,
    taskId: text(EVENT_FIELD.taskId) ?? "",
    fnName: text(EVENT_FIELD.fn) ?? "",
  };
  const tries = Number(text(EVENT_FIELD.tries) ?? 0);
  const workerId = text(EVENT_FIELD.worker) ?? "";
  const error = text(EVENT_FIELD.error) ?? "";
  const due = text(EVENT_FIELD.due);
  switch (type) {
    case "enqueued":
      return { ...task, type, ...(due ? { due: new Date(Number(due)) } : {}) };
    case "deduplicated":
      return { ...task, type, standIn: text(EVENT_FIELD.standIn) ?? "" };
    case "started":
      return { ...task, type, tries, workerId };
    case "reclaimed":
      return {
        ...task,
        type,
        tries,
        workerId,
        previousWorkerId: text(EVENT_FIELD.previousWorker) ?? "",
      };
    case "progress": {
      const blob = f.get(EVENT_FIELD.progress);
      const progress = blob ? await openProgress(client, task.taskId, blob) : undefined;
      return { ...task, type, tries, workerId, progress };
    }
    case "retried": {
      const at = Number(due ?? time.getTime());
      return {
        ...task,
        type,
        tries,
        workerId,
        error,
        due: new Date(at),
        delay: Math.max(0, at - time.getTime()),
      };
    }
    case "completed":
      return { ...task, type, tries, workerId };
    case "failed":
    case "aborted":
      return workerId ? { ...task, type, tries, workerId, error } : { ...task, type, error };
  }
}

/**
 * Whether a failed read is worth reading again: anything but an error Redis answered (a key of
 * another type, a server too old), except the answers of a server that is starting, failing over
 * or busy.
 */
function isTransient(error: unknown): boolean {
  if ((error as Error)?.name !== "ReplyError") return true;
  return /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/.test(
    (error as Error).message,
  );
}

/** The time of a stream id (its milliseconds). */
function timeOf(id: string): Date {
  return new Date(Number(id.split("-")[0]));
}

/**
 * A promise that resolves when `signal` aborts (never without one), and a function that stops
 * listening: a long-lived signal must not keep a listener per reader it ever ended.
 */
function abortPromise(
  signal: AbortSignal | undefined,
): { promise: Promise<undefined>; dispose: () => void } {
  const { promise, resolve } = Promise.withResolvers<undefined>();
  const listener = () => resolve(undefined);
  signal?.addEventListener("abort", listener, { once: true });
  return { promise, dispose: () => signal?.removeEventListener("abort", listener) };
}

/** `work`'s value, or undefined once `stopped` resolves first. */
function untilAborted<T>(work: Promise<T>, stopped: Promise<undefined>): Promise<T | undefined> {
  // The loser is left to settle on its own: a read cut short by the closing connection rejects.
  work.catch(() => {});
  return Promise.race([work, stopped]);
}

/** Waits `ms`, or less when `signal` aborts meanwhile. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Closes the reader's connection at once: a polite QUIT would wait behind a blocking read for up
 * to its BLOCK time.
 */
async function endConnection(connection: Redis): Promise<void> {
  if (connection.status === "end") return;
  const ended = new Promise<void>((resolve) => connection.once("end", () => resolve()));
  connection.disconnect();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([ended, new Promise<void>((r) => timer = setTimeout(r, 2_000))]);
  clearTimeout(timer);
}
