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

import { KEY, TASK_FIELD } from "../redis/keys.ts";
import { lua, luaFunction } from "../redis/lua/compose.ts";
import { argvSlots, layout, luaTuple } from "../redis/lua/layout.ts";
import { releaseDependents } from "../redis/lua/graph.ts";
import {
  ackAndDelete,
  dueTime,
  enterStream,
  ownsDelivery,
  redisTime,
  storeResult,
} from "../redis/lua/steps.ts";
import { claimEntries, START_ANSWER, START_STATE, startOwned } from "../redis/lua/task_start.ts";

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
);

/**
 * The outcome of one delivery. `value`: the result (final) or the reason (retry, back);
 * `ttlOrDue`: the result's ttl in ms ('' forever, '0' not stored) or the retry's due time as
 * `dueArg` sends it; `uniqueKey`: the unique lock it holds, or ''; `nextOccurrence`: a repeating
 * task's next due time, 'stop' when it repeats no more, '' for a task that does not repeat;
 * `fresh`: 1 when claimed too recently to be another worker's (`FRESH_CLAIM`), else 0.
 */
export const COMPLETION = layout(
  "priority",
  "entryId",
  "taskId",
  "kind",
  "value",
  "ttlOrDue",
  "uniqueKey",
  "nextOccurrence",
  "fresh",
);

/** What becomes of a delivery: the `kind` slot of {@linkcode COMPLETION}. */
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

/** The counts after the completions; `startCount` {@linkcode START_RECORD}s follow. */
export const START_COUNTS = layout("startCount", "prefetchCount", "startNowCount");

/** A prefetched delivery to start: `fresh` is its try count when fresh (`startArg`), else 0. */
export const START_RECORD = layout("priority", "entryId", "taskId", "fresh");

/** The reply: `applied` per completion, a `START_ANSWER` per start, `CLAIM` records. */
export const COMPLETE_REPLY = layout("applied", "starts", "claims");

/** Per completion, whether it was written: the `applied` slot of {@linkcode COMPLETE_REPLY}. */
export const APPLIED = { applied: 1, stale: 0 } as const;

const KEYS = argvSlots(COMPLETE_KEYS, 1, "KEYS");
const ARG = argvSlots(COMPLETE_ARGS, 1);
/** The 1-based index of the first completion record. */
const FIRST_COMPLETION = COMPLETE_ARGS.size + 1;
/** A completion record's slots, from the local `a` holding its first index. */
const D = argvSlots(COMPLETION, "a");
/** A start record's slots, from the local `b` holding its first index. */
const S = argvSlots(START_RECORD, "b");
const COUNTS = argvSlots(START_COUNTS, "s");
const KIND = COMPLETION_KIND;

/**
 * `whoListens(channels, publishOnlyHeard)`: which of `channels` have subscribers, as a set, or
 * nil when every result must be published.
 */
const whoListens = luaFunction(
  "whoListens",
  [],
  `
-- Which of channels (a list) have subscribers, as a set {channel = true}; nil when every result
-- must be published. One PUBSUB NUMSUB for the call spares a PUBLISH per task that nobody hears
-- (a waiter subscribes before it reads the result, so one that subscribes after this call finds
-- the result stored). Pattern subscribers are not counted per channel, and a Cluster node counts
-- only its own subscribers: with any pattern subscription on the server, or in a Cluster
-- (publishOnlyHeard false), every result is published.
local function whoListens(channels, publishOnlyHeard)
  if not publishOnlyHeard or redis.call('PUBSUB', 'NUMPAT') ~= 0 then return nil end
  local listening = {}
  for from = 1, #channels, 1000 do
    local counts = redis.call('PUBSUB', 'NUMSUB',
      unpack(channels, from, math.min(from + 999, #channels)))
    for j = 1, #counts, 2 do
      if counts[j + 1] > 0 then listening[counts[j]] = true end
    end
  end
  return listening
end
`,
);

/** `anyExists(keys)`: whether any of `keys` exists. */
const anyExists = luaFunction(
  "anyExists",
  [],
  `
-- Whether any of keys (a list) exists, a thousand per EXISTS.
local function anyExists(keys)
  for from = 1, #keys, 1000 do
    if redis.call('EXISTS', unpack(keys, from, math.min(from + 999, #keys))) > 0 then
      return true
    end
  end
  return false
end
`,
);

/**
 * `surveyFinals(c, n)`: for the tasks finishing for good among the `n` completions, who listens
 * for their results and whether any has dependents; sets `c.listening` and `c.anyDependents`.
 */
const surveyFinals = luaFunction(
  "surveyFinals",
  [whoListens, anyExists],
  `
-- Looks at the tasks finishing for good among the n completions: sets c.listening (who listens
-- for their results, see whoListens) and c.anyDependents (whether any has dependents: one
-- EXISTS for the call spares an SMEMBERS per task in the common case of a call without any).
local function surveyFinals(c, n)
  local channels, dependents = {}, {}
  for i = 0, n - 1 do
    local a = ${FIRST_COMPLETION} + i * ${COMPLETION.size}
    if ${D.kind} == '${KIND.final}' then
      table.insert(channels, c.donePrefix .. ${D.taskId})
      table.insert(dependents, c.P .. '${KEY.dependents}' .. ${D.taskId})
    end
  end
  c.listening = whoListens(channels, c.publishOnlyHeard)
  c.anyDependents = anyExists(dependents)
end
`,
);

/** `delayTask(c, id, due)`: puts task `id` in the delayed set; notes the earliest due time. */
const delayTask = luaFunction(
  "delayTask",
  [],
  `
-- Puts task id in the delayed set at due (ms), and keeps in c.earliest the earliest due time
-- this call added, to wake the schedulers with.
local function delayTask(c, id, due)
  redis.call('ZADD', c.delayedKey, due, id)
  due = tonumber(due)
  if c.earliest == nil or due < c.earliest then c.earliest = due end
end
`,
);

/**
 * `finishTask(c, taskKey, id, result, ttl, nextDue)`: what a final outcome writes: the result, its
 * publication, the dependents, and the task hash's end or its next occurrence.
 */
const finishTask = luaFunction(
  "finishTask",
  [storeResult, releaseDependents, delayTask],
  `
-- Finishes task id (hash taskKey) for good with its encoded result (kept ttl ms, see storeResult): publishes
-- it, settles the tasks waiting for it, and deletes its hash; a repeating task still scheduled
-- (its hash has a crontab) goes back to the delayed set for nextDue instead. nextDue: '' for a
-- task that does not repeat, 'stop' for one that repeats no more.
local function finishTask(c, taskKey, id, result, ttl, nextDue)
  storeResult(c.P .. '${KEY.result}' .. id, result, ttl)
  if c.anyAborting then redis.call('SREM', c.abortingKey, id) end
  if c.listening == nil or c.listening[c.donePrefix .. id] then
    redis.call('PUBLISH', c.donePrefix .. id, result)
  end
  local released = c.anyDependents and releaseDependents(c.P, id, result, c.now)
  if released and (c.earliest == nil or released < c.earliest) then c.earliest = released end
  if tonumber(nextDue) and redis.call('HEXISTS', taskKey, '${TASK_FIELD.crontab}') == 1 then
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}', '${TASK_FIELD.lastReason}')
    redis.call('HSET', taskKey, '${TASK_FIELD.tries}', 0, '${TASK_FIELD.due}', nextDue, '${TASK_FIELD.scheduled}', nextDue)
    delayTask(c, id, nextDue)
  else
    redis.call('DEL', taskKey)
    if nextDue ~= '' then redis.call('SREM', c.schedulesKey, id) end
  end
end
`,
);

/**
 * `applyOutcome(c, a, finished, handled)`: writes the completion record at ARGV[a] if this
 * worker still owns its delivery. Returns an `APPLIED` code.
 */
const applyOutcome = luaFunction(
  "applyOutcome",
  [ownsDelivery, finishTask, dueTime, redisTime, delayTask, enterStream],
  `
-- Writes the outcome of the COMPLETION record at ARGV[a], if this worker (c.me) still owns its
-- delivery: by kind (see complete.ts), then the release of its unique lock if it still holds
-- it. Notes its entry in finished[stream] (to acknowledge and delete) and its kind in
-- handled['stream entryId']. Returns APPLIED.applied, or APPLIED.stale when it was not owned.
local function applyOutcome(c, a, finished, handled)
  local stream, entryId, id, kind = c.P .. '${KEY.stream}' .. ${D.priority}, ${D.entryId}, ${D.taskId}, ${D.kind}
  -- A fresh delivery is owned without asking (and without a call).
  if ${D.fresh} ~= '1' and not ownsDelivery(stream, c.group, entryId, c.me, false) then
    return ${APPLIED.stale}
  end
  local ids = finished[stream]
  if not ids then
    ids = {}
    finished[stream] = ids
  end
  table.insert(ids, entryId)
  handled[stream .. ' ' .. entryId] = kind
  local taskKey, value = c.P .. '${KEY.task}' .. id, ${D.value}
  if kind == '${KIND.final}' then
    finishTask(c, taskKey, id, value, ${D.ttlOrDue}, ${D.nextOccurrence})
  elseif kind == '${KIND.retry}' then
    local due = dueTime(${D.ttlOrDue}, redisTime())
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}')
    redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', value, '${TASK_FIELD.due}', due)
    delayTask(c, id, due)
  elseif kind == '${KIND.back}' then
    redis.call('HDEL', taskKey, '${TASK_FIELD.runner}')
    if value ~= '' then redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', value) end
    enterStream(taskKey, stream, id, c.now)
  elseif kind == '${KIND.drop}' then
    -- What is left under the task's name (a hash without a function, a key of another type)
    -- can never run: it goes with its entry rather than stay forever.
    redis.call('DEL', taskKey)
  end
  local lockKey = ${D.uniqueKey}
  if lockKey ~= '' and redis.call('GET', lockKey) == id then redis.call('DEL', lockKey) end
  return ${APPLIED.applied}
end
`,
);

/**
 * `applyOutcomes(c, n)`: phase 1, the `n` completion records. Returns the `APPLIED` codes and
 * the kinds of the outcomes written, by `'stream entryId'`.
 */
const applyOutcomes = luaFunction(
  "applyOutcomes",
  [surveyFinals, applyOutcome, ackAndDelete],
  `
-- Phase 1: writes the n completion records, acknowledges and deletes their entries (one XDEL
-- per stream for the call), and wakes the schedulers for the earliest task it delayed. Returns
-- the APPLIED codes, and the kinds of the outcomes written by 'stream entryId': a prefetched
-- task can run and finish before the call that writes its start is sent, and then both are in
-- this call, its outcome first; its start must not write into the hash its outcome deleted.
local function applyOutcomes(c, n)
  surveyFinals(c, n)
  local applied, finished, handled = {}, {}, {}
  for i = 0, n - 1 do
    applied[i + 1] = applyOutcome(c, ${FIRST_COMPLETION} + i * ${COMPLETION.size}, finished, handled)
  end
  for stream, ids in pairs(finished) do ackAndDelete(stream, c.group, ids) end
  if c.earliest ~= nil then redis.call('PUBLISH', c.wakeChannel, c.earliest) end
  return applied, handled
end
`,
);

/**
 * `startPrefetched(c, first, count, handled)`: phase 2, the `count` start records from
 * ARGV[first]. Returns a `START_ANSWER` per record.
 */
const startPrefetched = luaFunction(
  "startPrefetched",
  [startOwned],
  `
-- Phase 2: writes the starts of the count START_RECORDs from ARGV[first] (see startOwned); a
-- delivery whose outcome this call wrote (handled) only has its try counted when that outcome
-- leaves the task to run again. Returns a START_ANSWER per record.
local function startPrefetched(c, first, count, handled)
  local prefix, started = c.P .. '${KEY.task}', {}
  for k = 0, count - 1 do
    local b = first + k * ${START_RECORD.size}
    local stream = c.P .. '${KEY.stream}' .. ${S.priority}
    local outcome = handled[stream .. ' ' .. ${S.entryId}]
    if outcome then
      -- A try that ended in a retry or a hand-back still counts: the next one reads the count.
      if outcome == '${KIND.retry}' or outcome == '${KIND.back}' then
        redis.call('HINCRBY', prefix .. ${S.taskId}, '${TASK_FIELD.tries}', 1)
      end
      table.insert(started, ${
    luaTuple(START_ANSWER, { taskId: S.taskId, state: `${START_STATE.started}`, aborting: "0" })
  })
    else
      table.insert(started, startOwned(prefix, c.abortingKey, c.anyAborting, c.group, c.me,
        stream, ${S.entryId}, ${S.taskId}, ${S.fresh}))
    end
  end
  return started
end
`,
);

/**
 * `claimNew(c, want, toStart)`: phase 3, claims up to `want` deliveries from the streams
 * declared after the fixed keys, starting the first `toStart`. Returns `CLAIM` records.
 */
const claimNew = luaFunction(
  "claimNew",
  [claimEntries],
  `
-- Phase 3: claims up to want deliveries for the slots free now and for the prefetch buffer,
-- highest priority first, starting the first toStart of them (see claimEntries). pcall: a
-- stream whose consumer group is gone (a restarted Redis) must not stop the completions above;
-- the fetch loop re-creates the group. Returns CLAIM records.
local function claimNew(c, want, toStart)
  local claims, first = {}, ${COMPLETE_KEYS.size + 1}
  for i = first, #KEYS do
    if want <= 0 then break end
    local read = redis.pcall('XREADGROUP', 'GROUP', c.group, c.me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
    if type(read) == 'table' and not read.err then
      local entries = read[1][2]
      toStart = claimEntries(claims, entries, i - first + 1, KEYS[i], c.group, c.me,
        c.P .. '${KEY.task}', c.abortingKey, c.anyAborting, toStart)
      want = want - #entries
    end
  end
  return claims
end
`,
);

/** The completion script's Lua: the three phases and the main chunk that runs them. */
export const COMPLETE_LUA = lua(
  applyOutcomes,
  startPrefetched,
  claimNew,
  `
-- What the phases share: the call's arguments, and what phase 1 finds out.
local c = {
  group = ${ARG.group}, me = ${ARG.workerId}, now = ${ARG.now}, P = ${ARG.keyPrefix},
  donePrefix = ${ARG.doneChannelPrefix}, wakeChannel = ${ARG.wakeChannel},
  publishOnlyHeard = ${ARG.publishOnlyHeard} == '1',
  delayedKey = ${KEYS.delayed}, abortingKey = ${KEYS.aborting}, schedulesKey = ${KEYS.schedules},
  -- One SCARD per call spares an SREM (and a SISMEMBER) per task when no abort is pending.
  anyAborting = redis.call('SCARD', ${KEYS.aborting}) > 0,
}
local n = tonumber(${ARG.completionCount})
local applied, handled = applyOutcomes(c, n)
local s = ${FIRST_COMPLETION} + n * ${COMPLETION.size}
local toStart = tonumber(${COUNTS.startNowCount})
local started = startPrefetched(c, s + ${START_COUNTS.size}, tonumber(${COUNTS.startCount}), handled)
local claims = claimNew(c, tonumber(${COUNTS.prefetchCount}) + toStart, toStart)
return ${luaTuple(COMPLETE_REPLY, { applied: "applied", starts: "started", claims: "claims" })}
`,
);
