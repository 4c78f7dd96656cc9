/**
 * The Lua of the completion call (`COMPLETE_SCRIPT` in `./complete.ts`) and its layouts: three
 * phases, each a named function, run in order by a short main chunk. Apply the outcomes of
 * finished deliveries; start prefetched deliveries that took a free slot; claim new deliveries
 * for the free slots and the prefetch buffer. The layouts here are the only definition of the
 * call's arguments and reply: `./complete.ts` writes and reads them by name, and the Lua reads
 * them through expressions generated from them.
 *
 * @module
 */

import { EVENT_FIELD, KEY, TASK_FIELD } from "../redis/keys.ts";
import { lua, luaFunction } from "../redis/lua/compose.ts";
import { argvSlots, layout, luaTuple } from "../redis/lua/layout.ts";
import { ENDED, releaseDependents } from "../redis/lua/graph.ts";
import {
  ackAndTrim,
  dueTime,
  enterStream,
  ownsDelivery,
  redisTime,
  storeResult,
} from "../redis/lua/steps.ts";
import { keepNewestResults } from "../redis/lua/results.ts";
import { blockFunction, readFlow, releaseRated, releaseSlot } from "../redis/lua/flow.ts";
import { releaseGroupWaits } from "../redis/lua/groups.ts";
import { claimEntries, START_STATE, startOwned } from "../redis/lua/task_start.ts";
import { emitEvent, EVENT_TYPE, eventsOf } from "../redis/lua/events.ts";

/** The declared keys; the streams to claim from follow. */
export const COMPLETE_KEYS = layout("delayed", "aborting", "schedules");

/** The fixed arguments; {@linkcode COMPLETION} records follow, `completionCount` of them. */
export const COMPLETE_ARGS = layout(
  "group",
  "workerId",
  "now",
  "doneChannelPrefix",
  "wakeChannel",
  "keyPrefix",
  "completionCount",
  /** 1 to publish results only to channels with subscribers (not in a Cluster). */
  "publishOnlyHeard",
  /** The worker's `events` setting: '' when off, else the events stream's cap. */
  "events",
  /** How many {@linkcode COMPLETION_EXTRA} records follow the completions. */
  "extraCount",
);

/**
 * The outcome of one delivery. `kind`: a {@linkcode kindCode}, its kind and whether it is
 * fresh (claimed too recently to be another worker's, `FRESH_CLAIM`); `value`: the result
 * (final) or the reason (retry, back); `ttlOrDue`: the result's ttl in ms ('' forever, '0' not
 * stored), the retry's due time as `dueArg` sends it, or for a hand-back '+ms' when the task met
 * a rate limit (its function is held back that long) and '0' otherwise. What few outcomes have
 * is in a {@linkcode COMPLETION_EXTRA} record: Redis spends about a thousand instructions on
 * each argument of a call (parsing it, then making it a Lua string).
 */
export const COMPLETION = layout("priority", "entryId", "taskId", "kind", "value", "ttlOrDue");

/**
 * The rarely used slots of the `completion`-th {@linkcode COMPLETION} record (0-based), sent
 * only for an outcome that has one of them: `uniqueKey`: the unique lock it holds, or '';
 * `nextOccurrence`: a repeating task's next due time, 'stop' when it repeats no more, '' for a
 * task that does not repeat; `keepResults`: for a final outcome of a function with
 * `keepResults`, that bound, else ''.
 */
export const COMPLETION_EXTRA = layout(
  "completion",
  "uniqueKey",
  "nextOccurrence",
  "keepResults",
);

/** What becomes of a delivery (the `kind` slot of {@linkcode COMPLETION} says it by a letter). */
export const COMPLETION_KIND = {
  /** It finished for good: its result is stored. */
  final: "final",
  /** It is tried again later. */
  retry: "retry",
  /** It is handed back to its stream (shutdown). */
  back: "back",
  /** Its entry goes, with whatever is left under its task's name. */
  drop: "drop",
} as const;

/** The letter of each kind in a {@linkcode kindCode}. */
const KIND_LETTER = { final: "f", retry: "r", back: "b", drop: "d" } as const;

/**
 * The `kind` slot of a {@linkcode COMPLETION}: the kind's letter, upper case for a fresh
 * delivery (one slot for what were two).
 *
 * @param kind What becomes of the delivery.
 * @param fresh Whether it was claimed too recently to be another worker's.
 * @returns The code.
 */
export function kindCode(kind: keyof typeof KIND_LETTER, fresh: boolean): string {
  return fresh ? KIND_LETTER[kind].toUpperCase() : KIND_LETTER[kind];
}

/** Lua: whether the code in the local `code` is of `kind`, fresh or not. */
function isKind(kind: keyof typeof KIND_LETTER): string {
  return `(code == '${KIND_LETTER[kind]}' or code == '${KIND_LETTER[kind].toUpperCase()}')`;
}

/** Lua: whether the code in the local `code` is of a fresh delivery. */
const IS_FRESH = Object.values(KIND_LETTER).map((l) => `code == '${l.toUpperCase()}'`).join(
  " or ",
);

/** Lua: the kind name (`COMPLETION_KIND`) of the code in the local `code`, or ''. */
const KIND_NAME =
  (Object.keys(KIND_LETTER) as (keyof typeof KIND_LETTER)[]).map((k) =>
    `${isKind(k)} and '${COMPLETION_KIND[k]}'`
  ).join(" or ") + " or ''";

/**
 * With events on only, after the start records: per completion, in the same order, the event its
 * outcome emits (`completed`, `failed`, `aborted`, `retried`, or '' for none), its error
 * message or retry reason (''), and the task's function and try, which the event carries. Sent
 * only with events on, so that a worker without events sends not a byte more per task.
 */
export const EVENT_NOTE = layout("event", "eventError", "fn", "tries");

/**
 * The counts after the completions; `startCount` {@linkcode START_RECORD}s follow, then
 * `quickStartCount` {@linkcode QUICK_START}s.
 */
export const START_COUNTS = layout(
  "startCount",
  "prefetchCount",
  "startNowCount",
  "quickStartCount",
);

/** A prefetched delivery to start: `fresh` is its try count when fresh (`startArg`), else 0. */
export const START_RECORD = layout("priority", "entryId", "taskId", "fresh");

/**
 * A prefetched delivery to start that is fresh (owned without asking), whose outcome is not in
 * the same call, sent by a worker without events: its start is one HSET of `tries`, which
 * needs neither its stream nor its entry id (two arguments less, about a thousand instructions
 * each).
 */
export const QUICK_START = layout("taskId", "tries");

/**
 * The reply: `applied` per completion, a `START_STATE` per start (start records, then quick
 * starts), `CLAIM` records, and in how many ms a window or a block ends for tasks set aside,
 * which the worker must fetch again by (nil when none waits for one).
 */
export const COMPLETE_REPLY = layout("applied", "starts", "claims", "wakeIn");

/** Per completion, whether it was written: the `applied` slot of {@linkcode COMPLETE_REPLY}. */
export const APPLIED = { applied: 1, stale: 0 } as const;

const KEYS = argvSlots(COMPLETE_KEYS, 1, "KEYS");
const ARG = argvSlots(COMPLETE_ARGS, 1);
/** The 1-based index of the first completion record. */
const FIRST_COMPLETION = COMPLETE_ARGS.size + 1;
/** A completion record's slots, from the local `a` holding its first index. */
const D = argvSlots(COMPLETION, "a");
/** A completion's extra slots, from the local `x` holding their first index. */
const X = argvSlots(COMPLETION_EXTRA, "x");
/** A start record's slots, from the local `b` holding its first index. */
const S = argvSlots(START_RECORD, "b");
const COUNTS = argvSlots(START_COUNTS, "s");
/** A quick start's slots, from the local `q` holding its first index. */
const Q = argvSlots(QUICK_START, "q");
/** A completion's event note, from the local `e` holding its first index. */
const NOTE = argvSlots(EVENT_NOTE, "e");
/** The task id of the `i`-th completion (0-based local `i`). */
const D_ID = `ARGV[${FIRST_COMPLETION + COMPLETION.at.taskId} + i * ${COMPLETION.size}]`;
const KIND = COMPLETION_KIND;

// The functions below read the call's fixed inputs (key prefix, group, worker id, now, channels,
// the declared keys) from their named slots of ARGV and KEYS, and take what the call computes
// (whether an abort is pending, who listens, whether any task has dependents) as parameters:
// no table of shared state, which every call would allocate (the Lua heap's garbage collector
// makes each allocated byte cost, and a busy worker makes many calls).

/**
 * `surveyFinals(n)`: for the tasks finishing for good among the `n` completions, who listens for
 * their results (by task id) and whether any has dependents.
 */
const surveyFinals = luaFunction(
  "surveyFinals",
  [],
  `
-- Looks at the tasks finishing for good among the n completions. Returns who listens for their
-- results, as a set of task ids {id = true} (only a channel with a subscriber becomes a key
-- here, so finishTask builds no channel name for a result nobody hears), or nil when every
-- result must be published; and whether
-- any of them has dependents: one EXISTS for the call spares an SMEMBERS per task in the common
-- case of a call without any, and while the queue's linked flag and waiting set are missing (no
-- task ever had dependents, none waits) not even their key names are built. Every result waiter subscribes to the queue's listeners channel
-- (the result channels' prefix alone) before its task's channel: while it has no subscriber,
-- one PUBSUB NUMSUB of it for the call spares any channel name; else one PUBSUB NUMSUB of the
-- results' channels spares a PUBLISH per task that nobody hears (a waiter subscribes before it
-- reads the result, so one that subscribes after this call finds the result stored). Pattern
-- subscribers are not counted per channel, and a Cluster node counts only its own subscribers:
-- with any pattern subscription on the server, or in a Cluster (publishOnlyHeard '0'), every
-- result is published.
local function surveyFinals(n)
  local P, donePrefix = ${ARG.keyPrefix}, ${ARG.doneChannelPrefix}
  local listening = nil
  if ${ARG.publishOnlyHeard} == '1' and redis.call('PUBSUB', 'NUMPAT') == 0 then
    listening = {}
    if redis.call('PUBSUB', 'NUMSUB', donePrefix)[2] > 0 then
      local channels = {}
      for i = 0, n - 1 do
        local a = ${FIRST_COMPLETION} + i * ${COMPLETION.size}
        local code = ${D.kind}
        if ${isKind("final")} then table.insert(channels, donePrefix .. ${D.taskId}) end
      end
      for from = 1, #channels, 1000 do
        local counts = redis.call('PUBSUB', 'NUMSUB',
          unpack(channels, from, math.min(from + 999, #channels)))
        for j = 1, #counts, 2 do
          if counts[j + 1] > 0 then listening[string.sub(counts[j], #donePrefix + 1)] = true end
        end
      end
    end
  end
  local anyDependents = false
  -- No task of the queue ever had dependents, and none waits (one linked by a version before the
  -- flag would wait in the waiting set): no key names to build.
  if redis.call('EXISTS', P .. '${KEY.linked}', P .. '${KEY.waiting}') == 0 then return listening, false end
  local dependents = {}
  for i = 0, n - 1 do
    local a = ${FIRST_COMPLETION} + i * ${COMPLETION.size}
    local code = ${D.kind}
    if ${isKind("final")} then
      table.insert(dependents, P .. '${KEY.dependents}' .. ${D.taskId})
    end
  end
  for from = 1, #dependents, 1000 do
    if redis.call('EXISTS', unpack(dependents, from, math.min(from + 999, #dependents))) > 0 then
      anyDependents = true
    end
  end
  return listening, anyDependents
end
`,
);

/**
 * `keepOrDelete(taskKey, P, id, result, ttl, now)`: the end of a finished task's hash. A failure
 * whose result is stored keeps it, renamed to the key of failed task `id` (prefix `P`) with the
 * result's ttl, so that it can be rerun (`src/client/rerun.ts`); any other outcome deletes it, as before.
 */
const keepOrDelete = luaFunction(
  "keepOrDelete",
  [],
  `
-- Ends the hash taskKey of a task that finished with the encoded result (kept ttl ms, see
-- storeResult): a failure (its first byte, ENDED) whose result is stored is kept as the failed
-- task id's key (prefix P), for as long as the result, with the time it failed (now); anything
-- else is deleted. Only failures pay: a success costs one string.sub and the DEL it always had.
-- Returns nothing.
local function keepOrDelete(taskKey, P, id, result, ttl, now)
  if ttl == '0' or string.sub(result, 1, 1) == '${ENDED.success}' then
    redis.call('DEL', taskKey)
    return
  end
  -- RENAME fails on a missing key, which would end the whole call.
  if redis.call('EXISTS', taskKey) == 0 then return end
  local failedKey = P .. '${KEY.failed}' .. id
  redis.call('RENAME', taskKey, failedKey)
  redis.call('HSET', failedKey, '${TASK_FIELD.failedTime}', now)
  if ttl ~= '' then redis.call('PEXPIRE', failedKey, ttl) end
end
`,
);

/**
 * `finishTask(taskKey, id, result, ttl, nextDue, anyAborting, listening, anyDependents)`: what a
 * final outcome writes: the result, its publication, the dependents, and the task hash's end or
 * its next occurrence. Returns the earliest due time it put in the delayed set, or nil.
 */
const finishTask = luaFunction(
  "finishTask",
  [storeResult, releaseDependents, keepOrDelete],
  `
-- Finishes task id (hash taskKey) for good with its encoded result (kept ttl ms, see
-- storeResult): publishes it (unless listening says nobody listens), settles the tasks waiting
-- for it (when anyDependents), and deletes its hash (a failure keeps it: keepOrDelete); a
-- repeating task still scheduled (its hash has a crontab) goes back to the delayed set for
-- nextDue instead. nextDue: '' for a task that
-- does not repeat, 'stop' for one that repeats no more. Returns the earliest due time it put in
-- the delayed set (a dependent, or the next occurrence), or nil.
local function finishTask(taskKey, id, result, ttl, nextDue, anyAborting, listening, anyDependents)
  local P = ${ARG.keyPrefix}
  storeResult(P .. '${KEY.result}' .. id, result, ttl)
  if anyAborting then redis.call('SREM', ${KEYS.aborting}, id) end
  if listening == nil or listening[id] then
    redis.call('PUBLISH', ${ARG.doneChannelPrefix} .. id, result)
  end
  local earliest = anyDependents and releaseDependents(P, id, result, ${ARG.now}) or nil
  -- A task that does not repeat (most) first: tonumber costs Redis about 1,500 instructions.
  if nextDue == '' then
    keepOrDelete(taskKey, P, id, result, ttl, ${ARG.now})
  elseif tonumber(nextDue) and redis.call('HEXISTS', taskKey, '${TASK_FIELD.crontab}') == 1 then
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}', '${TASK_FIELD.lastReason}')
    redis.call('HSET', taskKey, '${TASK_FIELD.tries}', 0, '${TASK_FIELD.due}', nextDue, '${TASK_FIELD.scheduled}', nextDue)
    redis.call('ZADD', ${KEYS.delayed}, nextDue, id)
    if earliest == nil or tonumber(nextDue) < earliest then earliest = tonumber(nextDue) end
  else
    redis.call('DEL', taskKey)
    redis.call('SREM', ${KEYS.schedules}, id)
  end
  return earliest
end
`,
);

/**
 * `emitOutcome(ev, i, startKey, due)`: the event of the `i`-th completion (0-based), when its
 * {@linkcode EVENT_NOTE} names one (`due`: a retry's due time); first a `started` event when the
 * delivery's start is written later in this call.
 */
const emitOutcome = luaFunction(
  "emitOutcome",
  [emitEvent],
  `
-- Emits the event the i-th completion's EVENT_NOTE names (0-based; none when its type is ''),
-- with due, a retry's due time, or nil. ev: see eventsOf, with ev.notes the index of the first
-- EVENT_NOTE and ev.starting the deliveries whose start this call writes, by 'stream entryId'
-- (startKey): such a delivery, a prefetched task that ran and ended before its start was
-- written, gets its started event first. Returns nothing.
local function emitOutcome(ev, i, startKey, due)
  local e = ev.notes + i * ${EVENT_NOTE.size}
  local type = ${NOTE.event}
  if type == '' then return end
  local id, me = ${D_ID}, ${ARG.workerId}
  local fn, tries, err = ${NOTE.fn}, ${NOTE.tries}, ${NOTE.eventError}
  if ev.starting[startKey] then
    emitEvent(ev, '${EVENT_TYPE.started}', id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries,
      '${EVENT_FIELD.worker}', me)
  end
  if err == '' then
    emitEvent(ev, type, id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries, '${EVENT_FIELD.worker}', me)
  elseif due then
    emitEvent(ev, type, id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries, '${EVENT_FIELD.worker}', me,
      '${EVENT_FIELD.error}', err, '${EVENT_FIELD.due}', due)
  else
    emitEvent(ev, type, id, '${EVENT_FIELD.fn}', fn, '${EVENT_FIELD.tries}', tries, '${EVENT_FIELD.worker}', me,
      '${EVENT_FIELD.error}', err)
  end
end
`,
);

/**
 * `applyOutcome(a, x, finished, handled, anyAborting, listening, anyDependents, flow, ev)`:
 * writes the completion record at ARGV[a] (and its extra slots at ARGV[x], if any) if this worker still owns its delivery, freeing the
 * concurrency slot its task holds (`flow`: `readFlow`), and emits its event. Returns an `APPLIED`
 * code, the earliest due time it put in the delayed set or nil, and whether it held its task's
 * function back (`StreaqRateLimited`).
 */
const applyOutcome = luaFunction(
  "applyOutcome",
  [
    ownsDelivery,
    finishTask,
    keepNewestResults,
    dueTime,
    redisTime,
    enterStream,
    releaseSlot,
    blockFunction,
    emitOutcome,
  ],
  `
-- Writes the outcome of the COMPLETION record at ARGV[a] (its COMPLETION_EXTRA at ARGV[x], or
-- x nil: none), if this worker still owns its
-- delivery: by kind (see complete.ts), then the release of its unique lock if it still holds
-- it. Notes its entry in finished[priority] (to acknowledge and delete) and its kind in
-- handled[priority][entryId] when handled is a table (by priority, not by stream key: no string
-- built per task); emits
-- its event (ev: see eventsOf). With a concurrency limit in flow (readFlow), first frees the
-- slot its task holds (releaseSlot). Returns APPLIED.applied, or APPLIED.stale when it was not
-- owned; the earliest due time it put in the delayed set, or nil; and true when it held its
-- function back (the claims of the call must read the flow again).
local function applyOutcome(a, x, finished, handled, anyAborting, listening, anyDependents, flow, ev)
  local P, group, priority = ${ARG.keyPrefix}, ${ARG.group}, ${D.priority}
  local entryId, id, code = ${D.entryId}, ${D.taskId}, ${D.kind}
  local kind = ${KIND_NAME}
  local lockKey, nextOccurrence, keepResults = '', '', ''
  if x then lockKey, nextOccurrence, keepResults = ${X.uniqueKey}, ${X.nextOccurrence}, ${X.keepResults} end
  -- A fresh delivery is owned without asking (and without a call).
  if not (${IS_FRESH}) and not ownsDelivery(P .. '${KEY.stream}' .. priority, group, entryId,
    ${ARG.workerId}, false) then
    return ${APPLIED.stale}, nil, false
  end
  local ids = finished[priority]
  if not ids then
    ids = {}
    finished[priority] = ids
  end
  ids[#ids + 1] = entryId
  if handled then
    local kinds = handled[priority]
    if not kinds then
      kinds = {}
      handled[priority] = kinds
    end
    kinds[entryId] = kind
  end
  local taskKey, value, due, blocked = P .. '${KEY.task}' .. id, ${D.value}, nil, false
  if flow and (flow.limited or flow.grouped) then releaseSlot(flow, taskKey, id) end
  if kind == '${KIND.final}' then
    due = finishTask(taskKey, id, value, ${D.ttlOrDue}, nextOccurrence, anyAborting, listening,
      anyDependents)
    if keepResults ~= '' and ${D.ttlOrDue} ~= '0' then
      keepNewestResults(P, id, value, tonumber(keepResults))
    end
  elseif kind == '${KIND.retry}' then
    due = dueTime(${D.ttlOrDue}, redisTime())
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}')
    redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', value, '${TASK_FIELD.due}', due)
    redis.call('ZADD', ${KEYS.delayed}, due, id)
  elseif kind == '${KIND.back}' then
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}')
    if value ~= '' then redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', value) end
    -- '+ms': the task met a rate limit at run time (StreaqRateLimited).
    if string.sub(${D.ttlOrDue}, 1, 1) == '+' then
      blockFunction(P, taskKey, id, tonumber(string.sub(${D.ttlOrDue}, 2)))
      blocked = true
    else
      enterStream(taskKey, P .. '${KEY.stream}' .. priority, id, ${ARG.now})
    end
  elseif kind == '${KIND.drop}' then
    -- What is left under the task's name (a hash without a function, a key of another type)
    -- can never run: it goes with its entry rather than stay forever.
    redis.call('DEL', taskKey)
  end
  if lockKey ~= '' and redis.call('GET', lockKey) == id then redis.call('DEL', lockKey) end
  if ev then
    emitOutcome(ev, (a - ${FIRST_COMPLETION}) / ${COMPLETION.size},
      P .. '${KEY.stream}' .. priority .. ' ' .. entryId, kind == '${KIND.retry}' and due or nil)
  end
  return ${APPLIED.applied}, due, blocked
end
`,
);

/**
 * `applyOutcomes(n, extras, track, anyAborting, flow, ev)`: phase 1, the `n` completion records
 * (`extras`: the index of each one's {@linkcode COMPLETION_EXTRA}, by its 0-based number, or nil
 * when none has any). Returns the
 * `APPLIED` codes, the kinds of the outcomes written (by priority, then entry id), and whether a
 * function was held back.
 */
const applyOutcomes = luaFunction(
  "applyOutcomes",
  [surveyFinals, applyOutcome, ackAndTrim],
  `
-- Phase 1: writes the n completion records, acknowledges and deletes their entries (once per
-- stream for the call: ackAndTrim), and wakes the schedulers for the earliest task it delayed. Returns
-- the APPLIED codes; the kinds of the outcomes written, by priority then entry id: a prefetched
-- task can run and finish before the call that writes its start is sent, and then both are in
-- this call, its outcome first; its start must not write into the hash its outcome deleted (nil
-- unless track); and
-- whether an outcome held its function back.
local function applyOutcomes(n, extras, track, anyAborting, flow, ev)
  local listening, anyDependents = surveyFinals(n)
  -- The kinds are tracked only when start records follow (track): quick starts have no outcome
  -- in the call.
  local applied, finished, earliest, anyBlocked = {}, {}, nil, false
  local handled = track and {} or nil
  for i = 0, n - 1 do
    local code, due, blocked = applyOutcome(${FIRST_COMPLETION} + i * ${COMPLETION.size},
      extras and extras[i], finished,
      handled, anyAborting, listening, anyDependents, flow, ev)
    applied[i + 1] = code
    if due and (earliest == nil or due < earliest) then earliest = due end
    anyBlocked = anyBlocked or blocked
  end
  for priority, ids in pairs(finished) do
    ackAndTrim(${ARG.keyPrefix} .. '${KEY.stream}' .. priority, ${ARG.group}, ids)
  end
  if earliest ~= nil then redis.call('PUBLISH', ${ARG.wakeChannel}, earliest) end
  return applied, handled, anyBlocked
end
`,
);

/**
 * `startPrefetched(first, count, handled, anyAborting, ev)`: phase 2, the `count` start records from
 * ARGV[first]. Returns a `START_STATE` per record.
 */
const startPrefetched = luaFunction(
  "startPrefetched",
  [startOwned],
  `
-- Phase 2: writes the starts of the count START_RECORDs from ARGV[first] (see startOwned); a
-- delivery whose outcome this call wrote (handled) only has its try counted when that outcome
-- leaves the task to run again. Returns a START_STATE per record.
local function startPrefetched(first, count, handled, anyAborting, ev)
  local P, started = ${ARG.keyPrefix}, {}
  local prefix = P .. '${KEY.task}'
  for k = 0, count - 1 do
    local b = first + k * ${START_RECORD.size}
    local kinds = handled and handled[${S.priority}]
    local outcome = kinds and kinds[${S.entryId}]
    if outcome then
      -- A try that ended in a retry or a hand-back still counts: the next one reads the count.
      if outcome == '${KIND.retry}' or outcome == '${KIND.back}' then
        redis.call('HINCRBY', prefix .. ${S.taskId}, '${TASK_FIELD.tries}', 1)
      end
      started[#started + 1] = ${START_STATE.started}
    else
      -- The stream key only where startOwned reads it: to check who holds a delivery not fresh.
      local stream = ${S.fresh} == '0' and P .. '${KEY.stream}' .. ${S.priority} or nil
      started[#started + 1] = startOwned(prefix, ${KEYS.aborting}, anyAborting, ${ARG.group},
        ${ARG.workerId}, stream, ${S.entryId}, ${S.taskId}, ${S.fresh}, ev)
    end
  end
  return started
end
`,
);

/**
 * `startQuick(first, count, anyAborting, started)`: phase 2 still, the `count`
 * {@linkcode QUICK_START}s from ARGV[first]; appends a `START_STATE` per record to `started`.
 */
const startQuick = luaFunction(
  "startQuick",
  [],
  `
-- Writes the starts of the count QUICK_STARTs from ARGV[first] (fresh deliveries without an
-- outcome in this call, of a worker without events: as startOwned writes a fresh one). Appends
-- a START_STATE per record to started. Returns nothing.
local function startQuick(first, count, anyAborting, started)
  local prefix, me = ${ARG.keyPrefix} .. '${KEY.task}', ${ARG.workerId}
  for q = first, first + (count - 1) * ${QUICK_START.size}, ${QUICK_START.size} do
    local id = ${Q.taskId}
    redis.call('HSET', prefix .. id, '${TASK_FIELD.tries}', ${Q.tries}, '${TASK_FIELD.runner}', me)
    if anyAborting and redis.call('SISMEMBER', ${KEYS.aborting}, id) == 1 then
      started[#started + 1] = ${START_STATE.aborting}
    else
      started[#started + 1] = ${START_STATE.started}
    end
  end
end
`,
);

/**
 * `claimNew(want, toStart, anyAborting, flow, ev)`: phase 3, claims up to `want` deliveries from the
 * streams declared after the fixed keys, starting the first `toStart`; nothing while the queue
 * is paused, and deliveries held back by a pause or a limit are set aside (`flow`: `readFlow`
 * in `src/redis/lua/flow.ts`); `ev`: the starts' events.
 * Returns `CLAIM` records.
 */
const claimNew = luaFunction(
  "claimNew",
  [claimEntries],
  `
-- Phase 3: claims up to want deliveries for the slots free now and for the prefetch buffer,
-- highest priority first, starting the first toStart of them (see claimEntries): none while the
-- queue is paused, and those held back by a pause or a limit are set aside (fewer claims: the fetch loop
-- asks again for the slots left free). pcall: a stream whose consumer group is gone (a restarted
-- Redis) must not stop the completions above; the fetch loop re-creates the group. Returns CLAIM
-- records.
local function claimNew(want, toStart, anyAborting, flow, ev)
  local claims, first = {}, ${COMPLETE_KEYS.size + 1}
  local group, me = ${ARG.group}, ${ARG.workerId}
  if flow and flow.queue then return claims end
  for i = first, #KEYS do
    if want <= 0 then break end
    local read = redis.pcall('XREADGROUP', 'GROUP', group, me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
    if type(read) == 'table' and not read.err then
      local entries = read[1][2]
      local held
      toStart, held = claimEntries(claims, entries, i - first + 1, KEYS[i], group, me,
        ${ARG.keyPrefix} .. '${KEY.task}', ${KEYS.aborting}, anyAborting, toStart, flow, ev)
      want = want - #entries + held
      -- What is behind the deliveries set aside is left to the fetch loop, which reads on.
      if held > 0 then break end
    end
  end
  return claims
end
`,
);

/** The completion script's Lua: the three phases and the main chunk that runs them. */
export const COMPLETE_LUA = lua(
  eventsOf,
  readFlow,
  releaseRated,
  releaseGroupWaits,
  applyOutcomes,
  startPrefetched,
  startQuick,
  claimNew,
  `
-- One SCARD per call spares an SREM (and a SISMEMBER) per task when no abort is pending.
local anyAborting = redis.call('SCARD', ${KEYS.aborting}) > 0
local ev = eventsOf(${ARG.keyPrefix}, ${ARG.events})
-- One HGETALL per call: pauses and limits (nil while there are none).
local flow = readFlow(${ARG.keyPrefix})
local n = tonumber(${ARG.completionCount})
-- The extra slots of the few completions that have any, by completion (0-based), else nil.
local firstExtra, extraCount = ${FIRST_COMPLETION} + n * ${COMPLETION.size}, tonumber(${ARG.extraCount})
local extras = nil
if extraCount > 0 then
  extras = {}
  for x = firstExtra, firstExtra + (extraCount - 1) * ${COMPLETION_EXTRA.size}, ${COMPLETION_EXTRA.size} do
    extras[tonumber(${X.completion})] = x
  end
end
local s = firstExtra + extraCount * ${COMPLETION_EXTRA.size}
if ev then
  -- With events on: the deliveries whose start this call writes, by 'stream entryId', and
  -- where the completions' EVENT_NOTEs start (after the start records).
  local first, count = s + ${START_COUNTS.size}, tonumber(${COUNTS.startCount})
  ev.starting = {}
  for b = first, first + (count - 1) * ${START_RECORD.size}, ${START_RECORD.size} do
    ev.starting[${ARG.keyPrefix} .. '${KEY.stream}' .. ${S.priority} .. ' ' .. ${S.entryId}] = true
  end
  ev.notes = first + count * ${START_RECORD.size} + tonumber(${COUNTS.quickStartCount}) * ${QUICK_START.size}
end
local startCount = tonumber(${COUNTS.startCount})
local applied, handled, blocked = applyOutcomes(n, extras, startCount > 0, anyAborting, flow, ev)
-- A task that met a rate limit at run time held its function back: the claims below must know.
if blocked then flow = readFlow(${ARG.keyPrefix}) end
local toStart = tonumber(${COUNTS.startNowCount})
local started = startPrefetched(s + ${START_COUNTS.size}, startCount, handled, anyAborting, ev)
startQuick(s + ${START_COUNTS.size} + startCount * ${START_RECORD.size}, tonumber(${COUNTS.quickStartCount}),
  anyAborting, started)
-- Tasks of rate-limited functions whose window has room again go back, to be claimed below; the
-- earliest window or block still holding tasks back is when the worker must fetch again.
local wakeIn = nil
if flow and flow.timed and not flow.queue then wakeIn = releaseRated(flow) end
if flow and flow.groupRated and not flow.queue then
  local groupsIn = releaseGroupWaits(flow)
  if groupsIn and (not wakeIn or groupsIn < wakeIn) then wakeIn = groupsIn end
end
local claims = claimNew(tonumber(${COUNTS.prefetchCount}) + toStart, toStart, anyAborting, flow, ev)
if flow and flow.opensIn and (not wakeIn or flow.opensIn < wakeIn) then wakeIn = flow.opensIn end
return ${
    luaTuple(COMPLETE_REPLY, {
      applied: "applied",
      starts: "started",
      claims: "claims",
      wakeIn: "wakeIn or false",
    })
  }
`,
);
