/**
 * Starting tasks, in Lua: reading a claimed task's hash (and counting its try), and writing the
 * start of a delivery read earlier (prefetched). The layouts of what they read and return are
 * defined here once; `src/run/fetch.ts` reads the replies by these layouts, and the fetch and
 * completion scripts build them with these pieces.
 *
 * @module
 */

import { EVENT_FIELD, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { layout, luaIndex, luaPartialTuple } from "./layout.ts";
import { ackAndDelete, entryTaskId, ownsDelivery, redisTime } from "./steps.ts";
import { emitEvent, EVENT_TYPE } from "./events.ts";
import { holdIfHeldBack } from "./flow.ts";

/**
 * `emitStart(ev, id, fn, tries, me, previous)`: the events of a start, when events are on:
 * `reclaimed` first when the task's hash still names a runner (`previous`: its try never
 * finished, its worker died or stalled), then `started`.
 */
const emitStart = luaFunction(
  "emitStart",
  [emitEvent],
  `
-- The events of the start of try tries of task id (function fn) by me: reclaimed (from the
-- worker previous, when its try never finished) and started. ev: see eventsOf. Returns nothing.
local function emitStart(ev, id, fn, tries, me, previous)
  if not ev then return end
  if previous then
    emitEvent(ev, '${EVENT_TYPE.reclaimed}', id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries,
      '${EVENT_FIELD.worker}', me, '${EVENT_FIELD.previousWorker}', previous)
  end
  emitEvent(ev, '${EVENT_TYPE.started}', id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries,
    '${EVENT_FIELD.worker}', me)
end
`,
);

/** The task-hash fields that most tasks lack: with none of them, a read task's record is short. */
const RARE_FIELDS = [
  "runner",
  "lastReason",
  "crontab",
  "timeZone",
  "scheduled",
  "dependencyFailure",
  "input",
  "passthrough",
  "source",
  "trace",
] as const;

/** The task-hash fields {@linkcode startTask} reads. */
const READ_FIELDS = layout("fn", "data", "tries", "created", "entered", ...RARE_FIELDS);

/**
 * The fields of a plain task's hash in the order the enqueue writes them (a task to run now,
 * without options: `src/client/_enqueue_script.ts`).
 */
const PLAIN_FIELDS = ["fn", "data", "priority", "created", "tries", "entered"] as const;

/**
 * Lua: the table `f` (field name to value) of the hash read by HGETALL into `all`, and `plain`,
 * whether it is a plain task's. A plain task's hash (its fields in {@linkcode PLAIN_FIELDS}
 * order) makes it with one constructor, at its size; any other is filled field by field, which
 * grows the table by steps, each a new allocation and a rehash.
 */
const TABLE_OF_FIELDS = `local f, plain = nil, false
  if #all == ${2 * PLAIN_FIELDS.length} and ${
  PLAIN_FIELDS.map((name, i) => `all[${2 * i + 1}] == '${TASK_FIELD[name]}'`).join(" and ")
} then
    plain = true
    f = {${PLAIN_FIELDS.map((name, i) => `['${TASK_FIELD[name]}'] = all[${2 * i + 2}]`).join(", ")}}
  else
    f = {}
    for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  end`;

/** How {@linkcode startTask} read a task: `read` slot of {@linkcode TASK_READ}. */
export const READ_STATE = {
  /** Read, its try counted and marked running. */
  started: 1,
  /** Read only (a prefetched delivery, started later by {@linkcode startOwned}). */
  readOnly: 2,
  /** Its hash is missing or unreadable: only `taskId` and `read` are present. */
  missing: 0,
} as const;

/**
 * The reply of {@linkcode startTask}: a task as read for a delivery. Absent fields are `false`
 * (nil in the client); times are numbers, `aborting` and `passthrough` 1 or 0, `late` how late
 * a scheduled task is (ms past `scheduled`, on Redis's clock) or `false`. The slots after
 * `entered` are empty for most tasks (not retried, not scheduled, no pipeline, no abort): then
 * the record ends at `entered`, or at `created` when the two are the same, and the client reads
 * the slots left out as empty (a missing `entered` as `created`). Redis spends
 * about a thousand instructions on each value of a script's reply, and the claims are most of
 * it.
 */
export const TASK_READ = layout(
  "taskId",
  "read",
  "fn",
  "payload",
  "tries",
  "created",
  "entered",
  "previousRun",
  "lastReason",
  "aborting",
  "crontab",
  "timeZone",
  "scheduled",
  "dependencyFailure",
  "input",
  "passthrough",
  "source",
  "late",
  "trace",
);

/** The Lua expression of a field read by {@linkcode startTask}: `f['name']`. */
function field(name: keyof typeof READ_FIELDS.at): string {
  return `f['${TASK_FIELD[name]}']`;
}

/** The values of a {@linkcode TASK_READ} record in {@linkcode startTask}'s Lua. */
const TASK_READ_VALUES = {
  taskId: "id",
  read: `start and ${READ_STATE.started} or ${READ_STATE.readOnly}`,
  fn: field("fn"),
  payload: `${field("data")} or false`,
  tries: "tries",
  created: "created",
  entered: `tonumber(${field("entered")}) or created`,
  previousRun: `${field("runner")} or false`,
  lastReason: `${field("lastReason")} or false`,
  aborting: "aborting",
  crontab: `${field("crontab")} or false`,
  timeZone: `${field("timeZone")} or false`,
  scheduled: "scheduled or 0",
  dependencyFailure: `${field("dependencyFailure")} or false`,
  input: `${field("input")} or false`,
  passthrough: `${field("passthrough")} and 1 or 0`,
  source: `${field("source")} or false`,
  late: "late",
  trace: `${field("trace")} or false`,
} as const;

/**
 * Lua: appends to the flat list `claims` the {@linkcode CLAIM} record of the delivery (`index`,
 * `entryId`) with its task's slots, the Lua expressions `values`, and returns. Written in place
 * of a table that a function would then copy: a table and a call of a Lua function per task cost
 * Redis about 1,000 and 400 instructions.
 */
function appendClaimed(values: readonly string[]): string {
  const slots = ["index", "entryId", String(values.length), ...values];
  return `local n = #claims
    ${slots.map((_, i) => `claims[n + ${i + 1}]`).join(", ")} = ${slots.join(", ")}
    return`;
}

/** The slot values of a {@linkcode TASK_READ} record up to `slot`, for {@linkcode appendClaimed}. */
function taskReadUpTo(slot: keyof typeof TASK_READ.at): string[] {
  return TASK_READ.fields.slice(0, luaIndex(TASK_READ, slot)).map((f) => TASK_READ_VALUES[f]);
}

/** The slots of the record of a task whose hash is missing or unreadable. */
const MISSING_TASK = ["id", `${READ_STATE.missing}`];

/** The Lua condition under which a read task needs the slots after `entered`. */
const NEEDS_FULL_READ = ["aborting ~= 0", ...RARE_FIELDS.map(field)].join(" or ");

/**
 * `startTask(claims, index, entryId, prefix, abortingKey, anyAborting, me, id, start, ev)`: reads
 * the hash of task `id` for the delivery of `entryId` (of the `index`-th stream asked) and, if
 * `start`, counts a try and marks it running by `me`; without `start` (a prefetched delivery) it
 * only reads, with the try it will be. Appends the delivery's {@linkcode CLAIM} record and its
 * {@linkcode TASK_READ} record to the flat list `claims`. `anyAborting` (a boolean: the aborting
 * set is not empty) spares a SISMEMBER per task when no abort is pending. How late a scheduled
 * task is reads Redis's clock, and only for a scheduled task: a task to run now reads no clock.
 * `ev` (see `eventsOf`): its start's events.
 */
export const startTask = luaFunction(
  "startTask",
  [redisTime, emitStart],
  `
-- Reads the hash of task id (prefix .. id) for the delivery of entryId (of the index-th stream
-- asked) and, if start, counts a try and marks it running by me; else only reads it, with the
-- try it will be. anyAborting: whether the aborting set (abortingKey) has members; ev: see
-- eventsOf. Appends the delivery's CLAIM record and TASK_READ record to claims (see
-- task_start.ts). Returns nothing.
local function startTask(claims, index, entryId, prefix, abortingKey, anyAborting, me, id, start, ev)
  local key = prefix .. id
  -- pcall, and no HINCRBY: a key of another type, or a try count that is not a number, makes
  -- that task unusable (it is dropped, or counts from 0), not the whole fetch fail again and again.
  -- HGETALL, not HMGET of the fields read: a task's hash holds a few fields, where HMGET looks
  -- each field asked for up in the whole hash, and Redis turns each of its 15 answers (most of
  -- them nil) into a Lua value.
  local all = redis.pcall('HGETALL', key)
  if all.err then
    ${appendClaimed(MISSING_TASK)}
  end
  ${TABLE_OF_FIELDS}
  if not ${field("fn")} then
    ${appendClaimed(MISSING_TASK)}
  end
  -- t - t % 1 is math.floor(t) without a call of a C function (about 600 instructions each).
  local tries = tonumber(${field("tries")}) or 0
  tries = tries - tries % 1 + 1
  if start then
    redis.call('HSET', key, '${TASK_FIELD.tries}', tries, '${TASK_FIELD.runner}', me)
    if ev then emitStart(ev, id, ${field("fn")}, tries, me, ${field("runner")}) end
  end
  local aborting = anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0
  -- Times as numbers and absent fields as nil (false): the client allocates a buffer for every
  -- string in the reply, and most of these fields are usually empty.
  local created = tonumber(${field("created")}) or 0
  -- A plain task's hash has none of the rare fields: no need to look each up.
  if (plain and aborting == 0) or not (${NEEDS_FULL_READ}) then
    -- A task that entered its stream when it was created (most) ends at created: the client
    -- reads a missing entered as created. Compared as strings, both as written: tonumber costs
    -- Redis about 1,500 instructions.
    if ${field("entered")} == nil or ${field("entered")} == ${field("created")} then
      ${appendClaimed(taskReadUpTo("created"))}
    end
    ${appendClaimed(taskReadUpTo("entered"))}
  end
  local scheduled, late = tonumber(${field("scheduled")}), false
  if scheduled then late = redisTime() - scheduled end
  ${appendClaimed(TASK_READ.fields.map((f) => TASK_READ_VALUES[f]))}
end
`,
);

/**
 * What writing the start of a prefetched delivery found: the one number {@linkcode startOwned}
 * answers per start (the caller knows which task it asked about: a record would only repeat it).
 */
export const START_STATE = {
  /** Started (its try counted, marked running). */
  started: 1,
  /** Started, and an abort of the task is pending. */
  aborting: 2,
  /** Another worker holds the delivery now, or the task is finished already. */
  lost: -1,
  /** Its hash is gone. */
  missing: 0,
} as const;

/**
 * `startOwned(prefix, abortingKey, anyAborting, group, me, stream, entryId, id, fresh, ev)`: writes
 * the start of a prefetched delivery (read by {@linkcode startTask}, and maybe running already):
 * counts the try and marks it running if `me` still holds it. A fresh delivery (`fresh` is its
 * try count, else `'0'`) was claimed too recently for any other worker to have taken it over
 * (`FRESH_CLAIM` in `src/run/fetch.ts`), and its try count was read with it: its start is one
 * write (two with events on: `ev`, see `eventsOf`). Returns a {@linkcode START_STATE}.
 */
export const startOwned = luaFunction(
  "startOwned",
  [ownsDelivery, emitStart],
  `
-- Writes the start of the prefetched delivery entryId of stream (task id): counts the try and
-- marks it running by me, if me still holds it. fresh: its try count when claimed too recently
-- for another worker to hold it, else '0' (stream is read only then, and may be nil
-- otherwise). ev: see eventsOf. Returns a START_STATE (see task_start.ts).
local function startOwned(prefix, abortingKey, anyAborting, group, me, stream, entryId, id, fresh, ev)
  local key = prefix .. id
  if fresh == '0' then
    if not ownsDelivery(stream, group, entryId, me, false) then
      return ${START_STATE.lost}
    end
    local tries = redis.pcall('HGET', key, '${TASK_FIELD.tries}')
    if type(tries) ~= 'string' then return ${START_STATE.missing} end
    fresh = math.floor(tonumber(tries) or 0) + 1
  end
  if ev then
    local f = redis.call('HMGET', key, '${TASK_FIELD.fn}', '${TASK_FIELD.runner}')
    emitStart(ev, id, f[1] or '', fresh, me, f[2])
  end
  redis.call('HSET', key, '${TASK_FIELD.tries}', fresh, '${TASK_FIELD.runner}', me)
  if anyAborting and redis.call('SISMEMBER', abortingKey, id) == 1 then
    return ${START_STATE.aborting}
  end
  return ${START_STATE.started}
end
`,
);

/**
 * A delivery claimed by a script, as the fetch and completion scripts return it: the index of
 * its stream among those asked (1-based), its entry id, and how many slots of its task follow,
 * as {@linkcode TASK_READ} (with an empty task id for an entry without one, which was dropped).
 * The claims of a call are one flat list, record after record: Redis spends a few thousand
 * instructions on each table in a script's reply (it looks up seven special fields in each
 * before reading it as an array), twice a task when each claim and each task were tables.
 */
export const CLAIM = layout("streamIndex", "entryId", "taskSlots");

/**
 * `appendClaim(claims, index, entryId, task)`: appends a {@linkcode CLAIM} record and its task
 * (a {@linkcode TASK_READ} record, without holes) to the flat list `claims`.
 */
const appendClaim = luaFunction(
  "appendClaim",
  [],
  `
-- Appends to the flat list claims a CLAIM record (stream index, entry id, task slots) and the
-- slots of task (a TASK_READ record without holes). Returns nothing.
local function appendClaim(claims, index, entryId, task)
  local n, size = #claims, #task
  claims[n + 1], claims[n + 2], claims[n + 3] = index, entryId, size
  for j = 1, size do claims[n + 3 + j] = task[j] end
end
`,
);

/**
 * `claimEntries(claims, entries, index, stream, group, me, prefix, abortingKey, anyAborting,
 * toStart, flow, ev)`: reads the tasks of stream entries just claimed (by XREADGROUP or
 * XAUTOCLAIM) and starts the first `toStart` of them ({@linkcode startTask}); an entry without a
 * task id is acknowledged and deleted; with `flow` (`readFlow` in `./flow.ts`, nil while nothing
 * is paused or limited), a delivery of a paused function, or of a limited one without a free
 * slot, is set aside ({@linkcode holdIfHeldBack}). `ev` (see `eventsOf`): the starts' events.
 * Appends a {@linkcode CLAIM} record and its task per entry not set aside to the flat list `claims`; returns how many starts
 * are left to make, and how many deliveries were set aside.
 */
export const claimEntries = luaFunction(
  "claimEntries",
  [entryTaskId, ackAndDelete, startTask, holdIfHeldBack, appendClaim],
  `
-- Reads the tasks of the entries just claimed from stream (the index-th stream asked) and
-- starts the first toStart of them; an entry without a task id is acknowledged and deleted; with
-- flow (not nil), a delivery held back by a pause or a limit is set aside (holdIfHeldBack). Appends a CLAIM
-- record per entry not set aside to claims (see task_start.ts). Returns how many starts are left
-- to make, and how many deliveries were set aside. ev: see eventsOf.
local function claimEntries(claims, entries, index, stream, group, me, prefix, abortingKey, anyAborting, toStart, flow, ev)
  local held = 0
  for _, entry in ipairs(entries) do
    local id = entryTaskId(entry)
    if id and flow and holdIfHeldBack(flow, prefix .. id, stream, group, entry[1], id, toStart > 0) then
      held = held + 1
    elseif id then
      startTask(claims, index, entry[1], prefix, abortingKey, anyAborting, me, id, toStart > 0, ev)
      if toStart > 0 then toStart = toStart - 1 end
    else
      -- Dropped, and returned without a task id so that the worker warns about it.
      ackAndDelete(stream, group, {entry[1]})
      appendClaim(claims, index, entry[1],
        ${luaPartialTuple(TASK_READ, { taskId: "''", read: `${READ_STATE.missing}` })})
    end
  end
  return toStart, held
end
`,
);
