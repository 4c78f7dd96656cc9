/**
 * Emitting events, in Lua: the scripts that change a task append what happened to the queue's
 * events stream (`KEY.events`) in the same call, so an event is written exactly when its change
 * is, never as a second round trip that a crash could separate from it.
 *
 * A script receives the worker's `events` setting as one argument: `''` when events are off,
 * else the stream's cap. {@linkcode eventsOf} turns it into `false` or a small table once per
 * call; every step that emits takes that value and does nothing more than test it when events
 * are off, so a queue without events pays one comparison per call.
 *
 * @module
 */

import { EVENT_FIELD, KEY } from "../keys.ts";
import { luaFunction } from "./compose.ts";

/**
 * The types of events, as stored in the `type` field ({@linkcode EVENT_FIELD}). `paused` and
 * `resumed` are defined for the flow-control work, which emits them for a whole queue (no task
 * id).
 */
export const EVENT_TYPE = {
  /** A task was stored: queued, delayed (with `due`) or waiting for its dependencies. */
  enqueued: "enqueued",
  /** An enqueue was stood for by another task with the same deduplication key (`standIn`). */
  deduplicated: "deduplicated",
  /** A try started on a worker. */
  started: "started",
  /** A running task reported progress. */
  progress: "progress",
  /** A try ended in a retry, due at `due`, with the reason in `error`. */
  retried: "retried",
  /** A task finished with success. */
  completed: "completed",
  /** A task failed for good, with the error's message. */
  failed: "failed",
  /** A task was aborted (its result is a `StreaqCancelled`). */
  aborted: "aborted",
  /** A delivery whose worker died (or stalled) was taken over; `started` follows. */
  reclaimed: "reclaimed",
  /** The queue was paused (emitted by flow control). */
  paused: "paused",
  /** The queue was resumed (emitted by flow control). */
  resumed: "resumed",
} as const;

/** The type of an event, as stored. */
export type EventTypeName = typeof EVENT_TYPE[keyof typeof EVENT_TYPE];

/**
 * `eventsOf(P, setting)`: what the emitting steps take: `false` when `setting` is `''` (events
 * off), else `{events stream key, cap}`. One table per call, and only with events on.
 */
export const eventsOf = luaFunction(
  "eventsOf",
  [],
  `
-- The events setting of a call: false when setting is '' (events off), else {stream key, cap}
-- for emitEvent. P: the queue's key prefix.
local function eventsOf(P, setting)
  if setting == '' then return false end
  return {P .. '${KEY.events}', setting}
end
`,
);

/**
 * `emitEvent(ev, type, id, ...)`: appends an event of `type` about task `id` to the events
 * stream, with the field-value pairs given after it, trimming the stream to about its cap.
 * `ev` is what {@linkcode eventsOf} returned (not `false`: the caller tests it). A queue-wide
 * event (`paused`, `resumed`) passes `''` as `id`.
 */
export const emitEvent = luaFunction(
  "emitEvent",
  [],
  `
-- Appends an event of type about task id, with the field-value pairs that follow, to the events
-- stream ev[1], trimmed to about ev[2] entries (MAXLEN ~ trims whole nodes: cheap). Returns
-- nothing.
local function emitEvent(ev, type, id, ...)
  redis.call('XADD', ev[1], 'MAXLEN', '~', ev[2], '*', '${EVENT_FIELD.type}', type,
    '${EVENT_FIELD.taskId}', id, ...)
end
`,
);
