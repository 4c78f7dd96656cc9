/**
 * The fetch path: claiming task deliveries from the priority streams, highest priority first,
 * and starting them. Starting a task (counting the try, marking it running) happens in the
 * same script call as fetching it, so an idle worker goes from wake-up to running in one
 * round trip. A prefetched task is read when it is claimed, so that the worker can run it the
 * moment a slot frees, without waiting for Redis; the start is written meanwhile, by the next
 * completion call (`src/run/complete.ts`), and its answer can still cancel the run: an abort
 * requested meanwhile, or the delivery lost to another worker.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP, TASK_FIELD } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { REDIS_TIME_LUA } from "../redis/_redis_time.ts";

/** One delivery of a task to this worker. */
export interface Delivery {
  /** The stream it was delivered from, and its priority. */
  readonly stream: string;
  readonly priority: string;
  /** The stream entry id; owning it is what entitles this worker to finish the task. */
  readonly messageId: string;
  /** Identifies the delivery within the worker: {@linkcode deliveryKey} of the two above. */
  readonly key: string;
  /** When the call that claimed it was sent (`performance.now()`). */
  readonly claimedAt: number;
  readonly taskId: string;
  /** Empty when the task hash is missing (the entry is dropped). */
  readonly fnName: string;
  readonly payload: Buffer | null;
  /** Tries so far, this one included (for a prefetched delivery: once it starts). */
  readonly tries: number;
  readonly createdTime: number;
  readonly enqueueTime: number;
  /**
   * True once the try is counted and the task marked running; false for a delivery claimed and
   * read ahead of a free slot (prefetched), whose start is not written yet.
   */
  readonly started: boolean;
  /** The worker whose earlier try never finished (it died or lost its delivery), if any. */
  readonly previousRun: string;
  /** Why the previous try did not finish, when it was retried or handed back. */
  readonly lastReason: string;
  /** An abort was requested before the task started. */
  readonly aborting: boolean;
  /** The crontab of a repeating task, else empty. */
  readonly crontab: string;
  /** The time zone its crontab is evaluated in. */
  readonly timeZone: string;
  /** When this occurrence was due, for a delayed or scheduled task; else 0. */
  readonly scheduledTime: number;
  /**
   * For a delayed or scheduled task, how late it was when claimed (ms, on Redis's clock, the
   * one its due time is on); add the time since `claimedAt` for how late it is now.
   */
  readonly lateAtClaim: number;
  /** Why the task must fail instead of running: a dependency that failed (see `src/client/graph.ts`). */
  readonly dependencyFailure: string;
  /** The stored result of its source: a pipeline stage's input, or a fallback's passthrough. */
  readonly input: Buffer | null;
  /** A fallback whose task succeeded: it passes `input` on instead of running. */
  readonly passthrough: boolean;
  /** The task this one is a pipeline stage of, or a fallback for. */
  readonly source: string;
}

/**
 * Reads a task hash, and if `start` counts a try and marks it running; without `start` (a
 * prefetched delivery) it only reads, with the try it will be. Shared by the scripts that
 * fetch. Returns {id, started (1, or 2 for read only), fn, payload, nil (the priority is the
 * stream's), tries, created, entered, previous run, last reason, aborting, crontab, time zone,
 * scheduled time, dependency failure, input, passthrough, source, how late it is}, with nil
 * (false) for an absent field, or {id, 0, false} when the hash is missing or unreadable. How
 * late a scheduled task is (ms past its scheduled time) is read on Redis's clock, the one its
 * due time is on, and only for a scheduled task: a task to run now reads no clock. `startOwned`
 * writes the start of a prefetched delivery later.
 */
export const START_LUA = REDIS_TIME_LUA + `
-- Whether any abort is pending at all: one SCARD per call spares a SISMEMBER per task.
local anyAborting = false
local function startTask(prefix, abortingKey, me, id, start)
  local key = prefix .. id
  -- pcall, and no HINCRBY: a key of another type, or a try count that is not a number, makes
  -- that task unusable (it is dropped, or counts from 0), not the whole fetch fail again and again.
  local f = redis.pcall('HMGET', key, '${TASK_FIELD.fn}', '${TASK_FIELD.data}', '${TASK_FIELD.tries}', '${TASK_FIELD.created}', '${TASK_FIELD.entered}', '${TASK_FIELD.runner}', '${TASK_FIELD.lastReason}', '${TASK_FIELD.crontab}',
    '${TASK_FIELD.timeZone}', '${TASK_FIELD.scheduled}', '${TASK_FIELD.dependencyFailure}', '${TASK_FIELD.input}', '${TASK_FIELD.passthrough}', '${TASK_FIELD.source}')
  if f.err or not f[1] then return {id, 0, false} end
  local tries = math.floor(tonumber(f[3]) or 0) + 1
  if start then redis.call('HSET', key, '${TASK_FIELD.tries}', tries, '${TASK_FIELD.runner}', me) end
  local aborting = anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0
  -- Times as numbers and absent fields as nil (false): the client allocates a buffer for every
  -- string in the reply, and most of these fields are usually empty.
  local created = tonumber(f[4]) or 0
  local scheduled, late = tonumber(f[10]), false
  if scheduled then late = redisTime() - scheduled end
  return {id, start and 1 or 2, f[1], f[2], false, tries, created, tonumber(f[5]) or created,
    f[6] or false, f[7] or false, aborting, f[8] or false, f[9] or false, scheduled or 0,
    f[11] or false, f[12] or false, f[13] and 1 or 0, f[14] or false, late}
end

-- The task id of a stream entry, or nil for an entry without one, which can never run.
local function entryTaskId(entry)
  local fields = entry[2]
  if type(fields) ~= 'table' then return nil end
  for j = 1, #fields, 2 do
    if fields[j] == 'id' and fields[j + 1] ~= '' then return fields[j + 1] end
  end
  return nil
end

-- Writes the start of a prefetched delivery (read by startTask, and maybe running already):
-- counts the try and marks it running if this worker still holds it. Returns {id, 1, aborting},
-- {id, -1} when another worker took it over (or it is finished already), or {id, 0} when its
-- hash is gone. A fresh delivery (fresh: its try count, else '0') was claimed too recently for
-- any worker to have taken it over (see FRESH_CLAIM), and its try count was read with it: its
-- start is one write.
local function startOwned(prefix, abortingKey, group, me, stream, msg, id, fresh)
  local key = prefix .. id
  if fresh ~= '0' then
    redis.call('HSET', key, '${TASK_FIELD.tries}', fresh, '${TASK_FIELD.runner}', me)
    return {id, 1, anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0}
  end
  local pending = redis.call('XPENDING', stream, group, msg, msg, 1)
  if not (pending[1] and pending[1][2] == me) then return {id, -1} end
  local tries = redis.pcall('HGET', key, '${TASK_FIELD.tries}')
  if type(tries) ~= 'string' then return {id, 0} end
  redis.call('HSET', key, '${TASK_FIELD.tries}', math.floor(tonumber(tries) or 0) + 1, '${TASK_FIELD.runner}', me)
  return {id, 1, anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0}
end
`;

/**
 * Claims up to start + prefetch deliveries, highest priority first, starting the first `start`
 * of them. With a reclaim idle time, first takes over deliveries idle longer than that (their
 * worker died). Stream entries without a task id (or with an empty one) are acknowledged and
 * dropped. Task hashes are read by ids found in the streams, so their keys cannot be declared;
 * they share the queue's hash tag, which keeps the script on one Cluster slot.
 *
 * XAUTOCLAIM looks at no more than ten pending entries per delivery asked for, so each stream's
 * reclaim scan goes on from where the previous one stopped (its cursor), or stale deliveries
 * behind many live ones would never be reached by a busy worker asking for one at a time.
 *
 * KEYS: [1] aborting set, [2..] streams, highest priority first
 * ARGV: [1] group, [2] consumer (worker id), [3] start count, [4] prefetch count,
 *       [5] reclaim min idle ms (0 = no reclaim), [6] task key prefix,
 *       [7..] per stream, the entry id its reclaim scan starts from ('0-0': the beginning)
 * Returns {deliveries, last ids, reclaim cursors}: each delivery is {stream index, entry id,
 * task fields...}; last ids (one per stream, '0-0' when empty) are returned when fewer were found
 * than asked, for a blocking XREAD that wakes on the next entry; reclaim cursors (one per stream)
 * are where the next reclaim scan starts, '0-0' once a scan has reached the end.
 */
export const FETCH_SCRIPT = script(
  START_LUA + `
anyAborting = redis.call('SCARD', KEYS[1]) > 0
local group, me, prefix = ARGV[1], ARGV[2], ARGV[6]
local toStart, want = tonumber(ARGV[3]), tonumber(ARGV[3]) + tonumber(ARGV[4])
local reclaimIdle = tonumber(ARGV[5])
local out = {}
local function take(index, entries)
  for _, entry in ipairs(entries) do
    local msg, id = entry[1], entryTaskId(entry)
    if id then
      local started = startTask(prefix, KEYS[1], me, id, toStart > 0)
      if toStart > 0 then toStart = toStart - 1 end
      table.insert(out, {index, msg, started})
    else
      redis.call('XACK', KEYS[index + 1], group, msg)
      redis.call('XDEL', KEYS[index + 1], msg)
      table.insert(out, {index, msg, {'', 0, false}})
    end
    want = want - 1
  end
end
local cursors = {}
for i = 2, #KEYS do cursors[i - 1] = ARGV[5 + i] or '0-0' end
if reclaimIdle > 0 then
  for i = 2, #KEYS do
    if want <= 0 then break end
    local claimed = redis.call('XAUTOCLAIM', KEYS[i], group, me, reclaimIdle, cursors[i - 1],
      'COUNT', want)
    cursors[i - 1] = claimed[1]
    take(i - 1, claimed[2])
  end
end
for i = 2, #KEYS do
  if want <= 0 then break end
  local read = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
  if read then take(i - 1, read[1][2]) end
end
local last = {}
if want > 0 then
  for i = 2, #KEYS do
    local tail = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    last[i - 1] = tail[1] and tail[1][1] or '0-0'
  end
end
return {out, last, cursors}
`,
);

/** Result of one fetch. */
export interface FetchResult {
  readonly deliveries: Delivery[];
  /** Per stream (same order as asked), the id to XREAD after; empty when the fetch was full. */
  readonly lastIds: string[];
  /** Per stream, where the next reclaim scan starts; all '0-0' once a scan reached the end. */
  readonly reclaimCursors: string[];
}

/** Fetches and starts deliveries in one script call. */
export async function fetchDeliveries(
  client: QueueContext,
  workerId: string,
  priorities: readonly string[],
  start: number,
  prefetch: number,
  reclaimIdle: number,
  reclaimFrom: readonly string[] = [],
): Promise<FetchResult> {
  const streams = priorities.map((p) => client.keys.stream(p));
  const sent = performance.now();
  const [entries, lastIds, cursors] = await runScript(
    client.redis,
    FETCH_SCRIPT,
    [client.keys.aborting, ...streams],
    [
      CONSUMER_GROUP,
      workerId,
      start,
      prefetch,
      reclaimIdle,
      client.keys.taskPrefix,
      ...streams.map((_, i) => reclaimFrom[i] ?? "0-0"),
    ],
    true,
  ) as [[number, Buffer, unknown[]][], Buffer[], Buffer[]];
  return {
    deliveries: entries.map(([index, messageId, fields]) =>
      toDelivery(streams[index - 1], priorities[index - 1], messageId.toString(), fields, sent)
    ),
    lastIds: lastIds.map(String),
    reclaimCursors: cursors.map(String),
  };
}

/**
 * What writing the start of a prefetched delivery found: it is started (and maybe aborted
 * meanwhile), another worker holds it now (or it is finished already), or its task is gone.
 */
export type StartAnswer = "started" | "aborting" | "lost" | "missing";

/** Reads what `startOwned` answered. */
export function toStartAnswer(reply: unknown[]): StartAnswer {
  if (reply[1] === -1) return "lost";
  if (reply[1] === 0) return "missing";
  return reply[2] === 1 ? "aborting" : "started";
}

/** A prefetched delivery as it runs: started, with the try its start counts. */
export function asStarted(d: Delivery): Delivery {
  return { ...d, started: true };
}

/**
 * Identifies a delivery within the worker. Entry ids are unique only within their stream: two
 * priorities' streams can hold the same id when tasks are enqueued in the same millisecond.
 */
export function deliveryKey(stream: string, messageId: string): string {
  return `${stream} ${messageId}`;
}

/**
 * How long after its claim a delivery is fresh: no other worker can have taken it over, as a
 * worker reclaims only deliveries idle for its `idleTimeout`, at least 1,000 ms (the option's
 * minimum), and the claim made it idle from 0. Half of that, counted from when the claim was
 * sent to when the call relying on it is sent, leaves the other half for that call to reach
 * Redis. A fresh delivery's start or outcome is written without checking who holds it.
 */
export const FRESH_CLAIM = 500;

/** Whether no other worker can have taken `d` over yet (see {@linkcode FRESH_CLAIM}). */
export function isFresh(d: Delivery): boolean {
  return performance.now() - d.claimedAt < FRESH_CLAIM;
}

/** The start argument of a prefetched delivery: its try count when fresh, else 0. */
export function startArg(d: Delivery): number {
  return isFresh(d) ? d.tries : 0;
}

export function toDelivery(
  stream: string,
  priority: string,
  messageId: string,
  fields: unknown[],
  claimedAt: number,
): Delivery {
  const [
    id,
    started,
    fn,
    payload,
    ,
    tries,
    created,
    entered,
    previous,
    last,
    aborting,
    crontab,
    timeZone,
    scheduled,
    depfail,
    input,
    passthrough,
    source,
    late,
  ] = fields as (Buffer | number | null)[];
  return {
    stream,
    priority,
    messageId,
    key: deliveryKey(stream, messageId),
    claimedAt,
    taskId: String(id ?? ""),
    fnName: fn ? String(fn) : "",
    payload: (payload as Buffer | null) ?? null,
    tries: Number(tries ?? 0),
    createdTime: Number(created ?? 0),
    enqueueTime: Number(entered ?? created ?? 0),
    started: started === 1,
    previousRun: String(previous ?? ""),
    lastReason: String(last ?? ""),
    aborting: aborting === 1,
    crontab: String(crontab ?? ""),
    timeZone: String(timeZone ?? "") || "UTC",
    scheduledTime: Number(scheduled ?? 0),
    lateAtClaim: Number(late ?? 0),
    dependencyFailure: String(depfail ?? ""),
    input: input && (input as Buffer).length > 0 ? input as Buffer : null,
    passthrough: passthrough === 1,
    source: String(source ?? ""),
  };
}
