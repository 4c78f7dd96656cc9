/**
 * The enqueue script (`sendTasks` in `./enqueue.ts` calls it) and the layout of its arguments.
 *
 * @module
 */

import { EVENT_FIELD, GROUP_FUNCTION, KEY, TASK_FIELD } from "../redis/keys.ts";
import type { QueueContext } from "../queue_context.ts";
import { script, type ScriptArg } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { DEDUPE_ANSWER, dedupeTask, SPEC_KIND } from "../redis/lua/dedupe.ts";
import { linkDependencies } from "../redis/lua/graph.ts";
import { argvSlots, type Layout, layout, pushRecord } from "../redis/lua/layout.ts";
import { addStreamEntry, dueTime, enterStream, redisTime } from "../redis/lua/steps.ts";
import { emitEvent, EVENT_TYPE, eventsOf } from "../redis/lua/events.ts";
import { enterGroup } from "../redis/lua/groups.ts";

/**
 * The fixed arguments of {@linkcode ENQUEUE_SCRIPT}; the task records follow, laid out as
 * `slots` says (see {@linkcode taskLayout}).
 */
export const ENQUEUE_ARGS = layout(
  "now",
  "wakeChannel",
  "keyPrefix",
  /** The optional slots of every record of the call: `k` (dedupeKey), `t` (trace), both or ''. */
  "slots",
  /** The enqueuing worker's `events` setting: '' when off, else the events stream's cap. */
  "events",
);

/** The optional slots of the task records of one enqueue call. */
export interface RecordSlots {
  /** Whether a task of the call has a deduplication key: each record has a `dedupeKey` slot. */
  readonly keyed: boolean;
  /** Whether OpenTelemetry is on: each record has a `trace` slot. */
  readonly traced: boolean;
}

/**
 * The arguments of an {@linkcode ENQUEUE_SCRIPT} call up to its first task record: the enqueue
 * time `now` (ms, the client's clock), the queue's channel and prefix, the records' optional
 * slots, and the events setting.
 */
export function enqueueArgs(client: QueueContext, now: number, slots: RecordSlots): ScriptArg[] {
  const args: ScriptArg[] = [];
  pushRecord(args, ENQUEUE_ARGS, {
    now,
    wakeChannel: client.keys.wakeChannel,
    keyPrefix: client.keys.prefix,
    slots: recordKind(slots).slots,
    events: client.eventsSetting,
  });
  return args;
}

/**
 * A task to store: `due` is '0' to run now, else as `dueArg` sends it; `links` is '' for a task
 * that neither repeats nor waits, else the JSON array [crontab ('' = none), time zone,
 * dependency ids separated by spaces, mode ('', 'pipe' or 'else'), source task id, and for a
 * task with a deduplication key or a group its `dedupeSpec` ('' for none), and for a task with a
 * group its group key]; or, for a task whose only link is a deduplication key, its `dedupeSpec`
 * alone (it starts with a letter, the JSON array with `[`).
 */
export const NEW_TASK = layout("id", "fn", "payload", "priority", "due", "links");

/**
 * The slots a record may have after the {@linkcode NEW_TASK} ones, in this order, each only in a
 * call that needs it (`slots` in {@linkcode ENQUEUE_ARGS} lists their letters), so that a plain
 * task sends neither: `dedupeKey`, the task's deduplication key ('' for none), in its own slot so
 * that Redis reads it without making a string of it; `trace`, the trace context of its enqueue
 * span (`src/client/enqueue_spans.ts`), the propagation headers as a JSON object ('' for none).
 * The layouts and the Lua's offsets are both made from this list.
 */
const OPTIONAL_SLOTS = [
  { name: "dedupeKey", letter: "k", flag: "keyed" },
  { name: "trace", letter: "t", flag: "traced" },
] as const satisfies readonly { name: string; letter: string; flag: keyof RecordSlots }[];

/** A value for every slot a task record may have. */
export type TaskRecord = Record<
  (typeof NEW_TASK.fields)[number] | (typeof OPTIONAL_SLOTS)[number]["name"],
  ScriptArg
>;

/** The records of a call with no optional slot, as a plain task sends. */
export const PLAIN_RECORDS: RecordSlots = { keyed: false, traced: false };

/**
 * Per set of optional slots (bit `i` for `OPTIONAL_SLOTS[i]`): the records' layout and the
 * `slots` argument naming them.
 */
const RECORD_KINDS = Array.from({ length: 1 << OPTIONAL_SLOTS.length }, (_, bits) => {
  const present = OPTIONAL_SLOTS.filter((_, i) => (bits & (1 << i)) !== 0);
  return {
    layout: layout(...NEW_TASK.fields, ...present.map((s) => s.name)) as Layout<keyof TaskRecord>,
    slots: present.map((s) => s.letter).join(""),
  };
});

function recordKind(slots: RecordSlots): (typeof RECORD_KINDS)[number] {
  let bits = 0;
  for (let i = 0; i < OPTIONAL_SLOTS.length; i++) {
    if (slots[OPTIONAL_SLOTS[i].flag]) bits |= 1 << i;
  }
  return RECORD_KINDS[bits];
}

/** The layout of the task records of a call with these optional slots. */
export function taskLayout(slots: RecordSlots): Layout<keyof TaskRecord> {
  return recordKind(slots).layout;
}

const ARG = argvSlots(ENQUEUE_ARGS, 1);
const T = argvSlots(NEW_TASK, "a");

/**
 * Lua: the records' stride, and the offset in a record of each optional slot present in this
 * call (`<name>At`, nil when absent), in {@linkcode OPTIONAL_SLOTS} order.
 */
const OPTIONAL_OFFSETS = [
  `local stride = ${NEW_TASK.size}`,
  ...OPTIONAL_SLOTS.map((s) =>
    `local ${s.name}At\nif string.find(${ARG.slots}, '${s.letter}', 1, true) then ${s.name}At, stride = stride, stride + 1 end`
  ),
].join("\n");

/**
 * Stores new tasks: each goes into the stream of its priority, into the delayed set when it is
 * due later, or waits for its dependencies (see `src/client/graph.ts`). A task whose id is already
 * known (hash or result present) is left alone. A task with a crontab repeats: it keeps its
 * hash between occurrences and is listed in the schedules set.
 *
 * The keys of each task (its hash, result and stream) are built here from the key prefix, as
 * `src/redis/keys.ts` builds them, rather than declared: they share the queue's hash tag, so the
 * script stays on one Cluster slot, and a batch sends a fifth of the bytes it would otherwise.
 *
 * A task due later gets its due time on Redis's clock (see `src/redis/_redis_time.ts`): a delay is
 * sent as '+ms' and counted from Redis's `TIME`, and an instant is compared with it.
 *
 * A task with a group key (its `links`) joins its group's line instead of its stream when it is
 * to run now, and enters its stream only with a free slot of its group (`enterGroup` in
 * `src/redis/lua/groups.ts`); its function is marked grouped in the flow hash.
 *
 * A task with a deduplication key (its `dedupeKey`, in the mode of its `dedupeSpec`) may be
 * stood for by the task that key names (`dedupeTask` in `src/redis/lua/dedupe.ts`); then it is not stored, and the tasks after
 * it in this call that name it as a dependency or source wait for the task standing for it.
 *
 * With events on, each task stored emits `enqueued` (with its due time when it is due later),
 * and each task stood for by another with the same deduplication key emits `deduplicated`.
 *
 * KEYS: [1] delayed set, [2] schedules set
 * ARGV: {@linkcode ENQUEUE_ARGS} (now: ms, the enqueue time stored; wake channel; key prefix;
 *       the records' optional slots; events setting: '' off, else the events stream's cap), then
 *       a record per task: the {@linkcode NEW_TASK} slots (id, fn, payload, priority, due,
 *       links), then its dedupeKey and trace where `slots` has them
 * Returns the tasks not stored, as pairs: the 1-based position of the task's record in this
 * call, and the id of the task that stands for it (its own id when that id was known already:
 * its hash or result present) or a `DEDUPE_ANSWER` for a debounce whose arguments are signed.
 * Empty when every task was stored.
 */
export const ENQUEUE_SCRIPT = script(lua(
  redisTime,
  dueTime,
  addStreamEntry,
  enterStream,
  linkDependencies,
  dedupeTask,
  enterGroup,
  eventsOf,
  emitEvent,
  `
-- Written as sent: a Lua number written to Redis is formatted with printf's %.14g first, which
-- cost Redis about a tenth of a plain task's enqueue.
local now, P = ${ARG.now}, ${ARG.keyPrefix}
local ev = eventsOf(P, ${ARG.events})
local skipped, earliest, standIns, call = {}, nil, nil, { hashes = {}, windows = {} }
-- The last links read as a deduplication spec: a call's keyed tasks share one or a few specs
-- (Redis's Lua keeps one copy of each string), so most are told by comparing with it.
local lastSpec = nil
-- The optional slots' offsets in a record (nil when absent): see OPTIONAL_SLOTS.
${OPTIONAL_OFFSETS}
for a = ${ENQUEUE_ARGS.size + 1}, #ARGV, stride do
  local id, priority, dueArg = ${T.id}, ${T.priority}, ${T.due}
  local taskKey, stream = P .. '${KEY.task}' .. id, P .. '${KEY.stream}' .. priority
  local crontab, tz, after, mode, source = '', '', '', '', ''
  local standIn, dedupe, grp = nil, nil, nil
  local linked = ${T.links}
  if linked == '' then
    -- A task with no links, the common case: nothing to read.
  elseif linked == '${SPEC_KIND.pending}' or linked == '${SPEC_KIND.pendingNewId}'
    or linked == lastSpec then
    -- A deduplication key alone: a pending one, the commonest, or the spec of the task before,
    -- told without string.byte (a string compared in Redis's Lua costs far less).
    dedupe = linked
  elseif string.byte(linked, 1) ~= ${"[".charCodeAt(0)} then
    dedupe, lastSpec = linked, linked
  else
    local links = cjson.decode(linked)
    crontab, tz, after, mode, source = links[1], links[2], links[3], links[4], links[5]
    if standIns then
      -- A task of this call that was deduplicated is waited for as the task standing for it.
      after = string.gsub(after, '%S+', function(dep) return standIns[dep] end)
      source = standIns[source] or source
    end
    dedupe = links[6]
    if dedupe == '' then dedupe = nil end
    if links[7] and links[7] ~= '' then grp = links[7] end
  end
  local idChecked = false
  if dedupe then
    -- A key in pending or throttle mode seen for the first time, the common case, is claimed
    -- here, once dedupeTask has made its function's hash (and a throttle window's end) for
    -- this call: in Redis's Lua, calling dedupeTask and its string functions cost about as much
    -- as the HSETNX itself (see "Ids and deduplication keys" in docs/benchmarks.md).
    -- A generated id's key stands for the id's own check (see SPEC_KIND in dedupe.ts).
    local hash, value, newId = call.hashes[${T.fn}], nil, dedupe == '${SPEC_KIND.pendingNewId}'
    if newId or dedupe == '${SPEC_KIND.pending}' then
      value = id
    else
      local window = call.windows[dedupe]
      if window then value, newId = window.ends .. id, window.newId end
    end
    local claimed = hash and value and redis.call('HSETNX', hash, ARGV[a + dedupeKeyAt], value)
    if claimed == 1 then
      idChecked = newId
    else
      standIn, idChecked = dedupeTask(P, KEYS[1], call, id, ${T.fn}, ${T.payload}, dueArg, dedupe,
        ARGV[a + dedupeKeyAt], claimed == 0)
    end
  end
  if standIn == nil and not idChecked
    and redis.call('EXISTS', taskKey, P .. '${KEY.result}' .. id) == 1 then
    standIn = id
  end
  if standIn ~= nil then
    table.insert(skipped, (a - ${ENQUEUE_ARGS.size + 1}) / stride + 1)
    table.insert(skipped, standIn)
    -- A task to send again sealed for another (DEDUPE_ANSWER.reseal) is waited for as that one.
    local alias = standIn
    if string.sub(alias, 1, 1) == '${DEDUPE_ANSWER.reseal}' then alias = string.sub(alias, 2) end
    if alias ~= id and alias ~= '${DEDUPE_ANSWER.stale}' then
      standIns = standIns or {}
      standIns[id] = alias
      if ev then
        emitEvent(ev, '${EVENT_TYPE.deduplicated}', id, '${EVENT_FIELD.fn}', ${T.fn}, '${EVENT_FIELD.standIn}', alias)
      end
    end
  else
    if dueArg == '0' and after == '' and crontab == '' and not grp then
      -- The common case, a task to run now: one write for its hash, one for its stream.
      redis.call('HSET', taskKey, '${TASK_FIELD.fn}', ${T.fn}, '${TASK_FIELD.data}', ${T.payload}, '${TASK_FIELD.priority}', priority,
        '${TASK_FIELD.created}', now, '${TASK_FIELD.tries}', '0', '${TASK_FIELD.entered}', now)
      addStreamEntry(stream, id)
      if ev then emitEvent(ev, '${EVENT_TYPE.enqueued}', id, '${EVENT_FIELD.fn}', ${T.fn}) end
    else
      redis.call('HSET', taskKey, '${TASK_FIELD.fn}', ${T.fn}, '${TASK_FIELD.data}', ${T.payload}, '${TASK_FIELD.priority}', priority,
        '${TASK_FIELD.created}', now, '${TASK_FIELD.tries}', '0')
      if grp then
        -- Its function's tasks are now claimed group by group (1 slot per group until a worker
        -- running it states its groups.concurrency): see src/redis/lua/groups.ts.
        redis.call('HSET', taskKey, '${TASK_FIELD.group}', grp)
        redis.call('HSETNX', P .. '${KEY.flow}', '${GROUP_FUNCTION}' .. ${T.fn}, 1)
      end
      local due, later = 0, false
      if dueArg ~= '0' then
        local present = redisTime()
        due = dueTime(dueArg, present)
        later = due > present
      end
      if crontab ~= '' then
        redis.call('HSET', taskKey, '${TASK_FIELD.crontab}', crontab, '${TASK_FIELD.timeZone}', tz)
        redis.call('SADD', KEYS[2], id)
      end
      if later then redis.call('HSET', taskKey, '${TASK_FIELD.due}', due, '${TASK_FIELD.scheduled}', due) end
      local waits, settled = false, false
      if after ~= '' then
        redis.call('HSET', taskKey, '${TASK_FIELD.after}', after)
        if mode ~= '' then redis.call('HSET', taskKey, '${TASK_FIELD.link}', mode, '${TASK_FIELD.source}', source) end
        waits = linkDependencies(P, id, after)
        -- Linking can settle the task at once: a failed dependency, or a fallback passing on.
        settled = redis.call('HEXISTS', taskKey, '${TASK_FIELD.dependencyFailure}') == 1
          or redis.call('HEXISTS', taskKey, '${TASK_FIELD.passthrough}') == 1
      end
      if not waits then
        if later and not settled then
          redis.call('ZADD', KEYS[1], due, id)
          if earliest == nil or due < earliest then earliest = due end
        else
          if later then redis.call('HDEL', taskKey, '${TASK_FIELD.due}') end
          if grp and not settled then
            -- Into its group's line, and its stream only with a free slot of its group.
            redis.call('HSET', taskKey, '${TASK_FIELD.entered}', now)
            enterGroup(P, ${T.fn}, grp, id)
          else
            enterStream(taskKey, stream, id, now)
          end
        end
      end
      if ev then
        if later then
          emitEvent(ev, '${EVENT_TYPE.enqueued}', id, '${EVENT_FIELD.fn}', ${T.fn}, '${EVENT_FIELD.due}', due)
        else
          emitEvent(ev, '${EVENT_TYPE.enqueued}', id, '${EVENT_FIELD.fn}', ${T.fn})
        end
      end
    end
    if traceAt and ARGV[a + traceAt] ~= '' then
      redis.call('HSET', taskKey, '${TASK_FIELD.trace}', ARGV[a + traceAt])
    end
  end
end
if earliest ~= nil then
  -- Wake sleeping schedulers only when this is now the earliest delayed task.
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if tonumber(head[2]) >= earliest then redis.call('PUBLISH', ${ARG.wakeChannel}, earliest) end
end
return skipped
`,
));
