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
import { CONSUMER_GROUP, KEY } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { argvSlots, layout, luaTuple, pushRecord } from "../redis/lua/layout.ts";
import { readFlow, releaseRated } from "../redis/lua/flow.ts";
import { releaseGroupWaits } from "../redis/lua/groups.ts";
import {
  CLAIM,
  claimEntries,
  READ_STATE,
  START_STATE,
  TASK_READ,
} from "../redis/lua/task_start.ts";
import { eventsOf } from "../redis/lua/events.ts";

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
  /** The trace context of its enqueue span (`src/_otel.ts`), or empty. */
  readonly trace: string;
}

/** The fixed arguments of {@linkcode FETCH_SCRIPT}; per stream reclaim cursors follow. */
export const FETCH_ARGS = layout(
  "group",
  "consumer",
  "startCount",
  "prefetchCount",
  "reclaimIdle",
  "keyPrefix",
  /** The worker's `events` setting: '' when off, else the events stream's cap. */
  "events",
);

/** The reply of {@linkcode FETCH_SCRIPT}. */
export const FETCH_REPLY = layout(
  "claims",
  "lastIds",
  "reclaimCursors",
  "queuePaused",
  "wakeIn",
);

/**
 * At most this many deliveries of paused functions are set aside by one fetch call; a call that
 * reaches it returns no last ids, so that the fetch loop calls again at once.
 */
const HOLD_LIMIT = 1000;

const arg = argvSlots(FETCH_ARGS, 1);

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
 * Flow control (`src/redis/lua/flow.ts`): while the whole queue is paused the call claims and
 * reclaims nothing and says so; a delivery of a paused function, or of a limited one without a
 * free slot, or of a group whose slots are all taken (`src/redis/lua/groups.ts`), is set aside (not
 * a claim), and the stream it came from is read again, so that what is behind it still comes first.
 *
 * KEYS: [1] aborting set, [2..] streams, highest priority first
 * ARGV: {@linkcode FETCH_ARGS}: group, consumer (worker id), start count, prefetch count,
 *       reclaim min idle ms (0 = no reclaim), the queue's key prefix, events setting ('' off,
 *       else the events stream's cap: the starts' events are emitted); then per stream, the entry
 *       id its reclaim scan starts from ('0-0': the beginning)
 * Returns {@linkcode FETCH_REPLY}: {claims, last ids, reclaim cursors, queue paused, wake in}: claims are
 * `CLAIM` records (`src/redis/lua/task_start.ts`); last ids (one per stream, '0-0' when empty)
 * are returned when fewer were found than asked, for a blocking XREAD that wakes on the next
 * entry; reclaim cursors (one per stream) are where the next reclaim scan starts, '0-0' once a
 * scan has reached the end; queue paused is 1 while the whole queue is paused, else 0; wake in
 * is in how many ms a rate-limited function's window has room again for its waiting tasks (the
 * loop fetches again by then), or nil.
 */
export const FETCH_SCRIPT = script(lua(
  claimEntries,
  readFlow,
  releaseRated,
  releaseGroupWaits,
  eventsOf,
  `
-- Whether any abort is pending at all: one SCARD per call spares a SISMEMBER per task.
local anyAborting = redis.call('SCARD', KEYS[1]) > 0
local group, me, P = ${arg.group}, ${arg.consumer}, ${arg.keyPrefix}
local prefix = P .. '${KEY.task}'
local ev = eventsOf(P, ${arg.events})
local flow = readFlow(P)
local queuePaused = flow ~= nil and flow.queue
-- Tasks of rate-limited functions whose window has room again go back first, to be claimed now.
local wakeIn = flow and flow.timed and not queuePaused and releaseRated(flow) or false
-- So do the tasks of groups whose rate window has opened (src/redis/lua/groups.ts).
if flow and flow.groupRated and not queuePaused then
  local groupsIn = releaseGroupWaits(flow)
  if groupsIn and (not wakeIn or groupsIn < wakeIn) then wakeIn = groupsIn end
end
local toStart = tonumber(${arg.startCount})
local want = toStart + tonumber(${arg.prefetchCount})
if queuePaused then want = 0 end
local reclaimIdle = tonumber(${arg.reclaimIdle})
local claims, cursors, held = {}, {}, 0
for i = 2, #KEYS do cursors[i - 1] = ARGV[${FETCH_ARGS.size - 1} + i] or '0-0' end
if reclaimIdle > 0 then
  for i = 2, #KEYS do
    if want <= 0 then break end
    -- XAUTOCLAIM seeks every pending entry it looks at in the stream (does it still exist?)
    -- before it looks at its idle time: tens of thousands of instructions per entry, paid by
    -- every fetch of a busy worker. XPENDING IDLE compares idle times only: the scan starts at
    -- the first stale delivery, or ends at once when there is none.
    local stale = redis.call('XPENDING', KEYS[i], group, 'IDLE', reclaimIdle, cursors[i - 1], '+', 1)
    if stale[1] == nil then
      cursors[i - 1] = '0-0'
    else
      local claimed = redis.call('XAUTOCLAIM', KEYS[i], group, me, reclaimIdle, stale[1][1],
        'COUNT', want)
      cursors[i - 1] = claimed[1]
      local h
      toStart, h = claimEntries(claims, claimed[2], i - 1, KEYS[i], group, me, prefix, KEYS[1],
        anyAborting, toStart, flow, ev)
      held = held + h
      want = want - #claimed[2] + h
    end
  end
end
for i = 2, #KEYS do
  -- Read again after deliveries were set aside: the entries behind them come before any of a
  -- lower priority.
  local h = 0
  repeat
    if want <= 0 then break end
    local read = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
    h = 0
    if read then
      toStart, h = claimEntries(claims, read[1][2], i - 1, KEYS[i], group, me, prefix, KEYS[1],
        anyAborting, toStart, flow, ev)
      held = held + h
      want = want - #read[1][2] + h
    end
  until h == 0 or held >= ${HOLD_LIMIT}
end
-- Tasks set aside above until a window or a block ends: fetch again then (noteOpening).
if flow and flow.opensIn and (not wakeIn or flow.opensIn < wakeIn) then wakeIn = flow.opensIn end
local last = {}
if want > 0 and held < ${HOLD_LIMIT} then
  for i = 2, #KEYS do
    local tail = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    last[i - 1] = tail[1] and tail[1][1] or '0-0'
  end
end
return ${
    luaTuple(FETCH_REPLY, {
      claims: "claims",
      lastIds: "last",
      reclaimCursors: "cursors",
      queuePaused: "queuePaused and 1 or 0",
      wakeIn: "wakeIn",
    })
  }
`,
));

/** Result of one fetch. */
export interface FetchResult {
  readonly deliveries: Delivery[];
  /** Per stream (same order as asked), the id to XREAD after; empty when the fetch was full. */
  readonly lastIds: string[];
  /** Per stream, where the next reclaim scan starts; all '0-0' once a scan reached the end. */
  readonly reclaimCursors: string[];
  /** The whole queue is paused: nothing was claimed. */
  readonly queuePaused: boolean;
  /**
   * In how many ms a rate-limited function's window has room again for its waiting tasks, if
   * any wait: the loop fetches again by then.
   */
  readonly wakeIn: number | undefined;
}

/**
 * Fetches and starts deliveries in one script call, sent on `connection` (the queue's own by
 * default). The deliveries count as claimed when the call was sent (`Delivery.claimedAt`): a
 * call queued behind a blocking read (see `fetch_loop.ts`) runs later than that, so they only
 * look older than they are, and no other worker can have taken over one that looks fresh.
 */
export async function fetchDeliveries(
  client: QueueContext,
  workerId: string,
  priorities: readonly string[],
  start: number,
  prefetch: number,
  reclaimIdle: number,
  reclaimFrom: readonly string[] = [],
  connection: QueueContext["redis"] = client.redis,
): Promise<FetchResult> {
  const streams = priorities.map((p) => client.keys.stream(p));
  const sent = performance.now();
  const args: (string | number)[] = [];
  pushRecord(args, FETCH_ARGS, {
    group: CONSUMER_GROUP,
    consumer: workerId,
    startCount: start,
    prefetchCount: prefetch,
    reclaimIdle,
    keyPrefix: client.keys.prefix,
    events: client.eventsSetting,
  });
  for (let i = 0; i < streams.length; i++) args.push(reclaimFrom[i] ?? "0-0");
  const reply = await runScript(
    connection,
    FETCH_SCRIPT,
    [client.keys.aborting, ...streams],
    args,
    true,
  ) as unknown[][];
  return {
    deliveries: toDeliveries(reply[FETCH_REPLY.at.claims], streams, priorities, sent),
    lastIds: reply[FETCH_REPLY.at.lastIds].map(String),
    reclaimCursors: reply[FETCH_REPLY.at.reclaimCursors].map(String),
    queuePaused: reply[FETCH_REPLY.at.queuePaused] as unknown === 1,
    wakeIn: (reply[FETCH_REPLY.at.wakeIn] as unknown as number | null) ?? undefined,
  };
}

/**
 * What writing the start of a prefetched delivery found: it is started (and maybe aborted
 * meanwhile), another worker holds it now (or it is finished already), or its task is gone.
 */
export type StartAnswer = "started" | "aborting" | "lost" | "missing";

/** Reads what `startOwned` answered (a `START_STATE`). */
export function toStartAnswer(state: unknown): StartAnswer {
  if (state === START_STATE.lost) return "lost";
  if (state === START_STATE.missing) return "missing";
  return state === START_STATE.aborting ? "aborting" : "started";
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

/**
 * Whether no other worker can have taken `d` over yet (see {@linkcode FRESH_CLAIM}), `now`
 * (`performance.now()`) being when the call relying on it is sent: read once per call.
 */
export function isFresh(d: Delivery, now: number): boolean {
  return now - d.claimedAt < FRESH_CLAIM;
}

/** The start argument of a prefetched delivery: its try count when fresh, else 0. */
export function startArg(d: Delivery, now: number): number {
  return isFresh(d, now) ? d.tries : 0;
}

/**
 * The deliveries of the flat list of `CLAIM` records (each followed by its task's slots) that the
 * fetch and completion scripts return.
 *
 * @param claims The records.
 * @param streams The streams the script claimed from, in the order it was given them.
 * @param priorities Their priorities, in the same order.
 * @param claimedAt When the call was sent (`performance.now()`).
 * @returns The deliveries, in the order claimed.
 */
export function toDeliveries(
  claims: unknown[],
  streams: readonly string[],
  priorities: readonly string[],
  claimedAt: number,
): Delivery[] {
  const deliveries: Delivery[] = [];
  for (let at = 0; at < claims.length;) {
    const index = (claims[at + CLAIM.at.streamIndex] as number) - 1;
    const task = at + CLAIM.size;
    const end = task + (claims[at + CLAIM.at.taskSlots] as number);
    deliveries.push(toDelivery(
      streams[index],
      priorities[index],
      String(claims[at + CLAIM.at.entryId]),
      claims.slice(task, end),
      claimedAt,
    ));
    at = end;
  }
  return deliveries;
}

/**
 * A delivery from a task read by the fetch or completion script (a `TASK_READ` record).
 *
 * @param stream The stream it was claimed from.
 * @param priority That stream's priority.
 * @param messageId Its entry id.
 * @param task The task as read.
 * @param claimedAt When the call that claimed it was sent (`performance.now()`).
 * @returns The delivery.
 */
export function toDelivery(
  stream: string,
  priority: string,
  messageId: string,
  task: unknown[],
  claimedAt: number,
): Delivery {
  const at = TASK_READ.at;
  const read = task as (Buffer | number | null | undefined)[];
  const created = read[at.created];
  const input = read[at.input] as Buffer | null | undefined;
  return {
    stream,
    priority,
    messageId,
    key: deliveryKey(stream, messageId),
    claimedAt,
    taskId: String(read[at.taskId] ?? ""),
    fnName: read[at.fn] ? String(read[at.fn]) : "",
    payload: (read[at.payload] as Buffer | null | undefined) ?? null,
    tries: Number(read[at.tries] ?? 0),
    createdTime: Number(created ?? 0),
    enqueueTime: Number(read[at.entered] ?? created ?? 0),
    started: read[at.read] === READ_STATE.started,
    previousRun: String(read[at.previousRun] ?? ""),
    lastReason: String(read[at.lastReason] ?? ""),
    aborting: read[at.aborting] === 1,
    crontab: String(read[at.crontab] ?? ""),
    timeZone: String(read[at.timeZone] ?? "") || "UTC",
    scheduledTime: Number(read[at.scheduled] ?? 0),
    lateAtClaim: Number(read[at.late] ?? 0),
    dependencyFailure: String(read[at.dependencyFailure] ?? ""),
    input: input && input.length > 0 ? input : null,
    passthrough: read[at.passthrough] === 1,
    source: String(read[at.source] ?? ""),
    trace: String(read[at.trace] ?? ""),
  };
}
