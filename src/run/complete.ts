/**
 * The completion path: the one place where the outcome of a delivery becomes Redis writes.
 * Outcomes of tasks that finish together go to Redis in one script call. The script first
 * checks that this worker still owns the delivery, so a stale delivery (taken over by another
 * worker after this one stalled) never overwrites a result; a delivery claimed too recently for
 * any other worker to take it over (most of them, on a busy queue) needs no check.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP, KEY, TASK_FIELD } from "../redis/keys.ts";
import { GRAPH_LUA } from "../client/graph.ts";
import {
  type Delivery,
  isFresh,
  START_LUA,
  type StartAnswer,
  startArg,
  toDelivery,
  toStartAnswer,
} from "./fetch.ts";
import { Batcher } from "../client/_batch.ts";
import { type Due, dueArg } from "../redis/_redis_time.ts";
import { runScript, script, type ScriptArg } from "../redis/_script.ts";

/**
 * Applies outcomes. Per delivery, when this worker still owns it: acknowledge and delete the
 * stream entry, then by kind:
 * - 'final': store the result (ttl '' forever, '0' not stored), publish it on the task's
 *   channel, and delete the task hash; a repeating task that is still scheduled (its hash has a
 *   crontab) is put back in the delayed set for its next occurrence instead;
 * - 'retry': put the task in the delayed set at its due time (a delay counts from Redis's
 *   clock, see `src/redis/_redis_time.ts`), keeping the reason;
 * - 'back': put the task back at the end of its stream (shutdown hand-back);
 * - 'drop': delete whatever is left under the task's name (an entry whose task is gone or
 *   unreadable).
 * A unique lock held by the task is released if it still holds it.
 *
 * The start of a prefetched delivery that took the slot of a finished task is written in the
 * same call (see `startOwned` in `src/run/fetch.ts`), so a busy worker needs no round trip of its
 * own for it; so is the start of a prefetched delivery that took a slot freed otherwise.
 *
 * The keys of each delivery (its stream, task hash and result) are built from the key prefix,
 * as `src/redis/keys.ts` builds them, rather than declared, as in FETCH_SCRIPT: they share the
 * queue's hash tag, and a batch of completions sends a fraction of the bytes.
 *
 * KEYS: [1] delayed set, [2] aborting set, [3] schedules set, then the streams to prefetch
 *       from, highest priority first
 * The tasks waiting for a finished task are settled in the same call (`src/client/graph.ts`).
 *
 * ARGV: [1] group, [2] worker id, [3] now, [4] done channel prefix, [5] wake channel,
 *       [6] key prefix, [7] number of deliveries, [8] 1 to publish results only to channels
 *       with subscribers (not in a Cluster: see the script), then per delivery: [priority,
 *       entry id, task id, kind, result or reason, ttl or due (as `dueArg` sends it), unique
 *       lock key held ('' = none), next occurrence ('' = not repeating, 'stop' = repeating no more), 1 if fresh
 *       (claimed too recently to be another worker's, see `FRESH_CLAIM` in src/run/fetch.ts) else
 *       0], then [number of deliveries to start, number of deliveries to prefetch, number of
 *       further deliveries to claim and start at once (slots free now)], then per delivery to
 *       start: [priority, entry id, task id, try count if fresh else 0 (see `startArg`)]
 * Returns {per delivery 1 if applied, 0 if it was stale; per delivery to start, what
 * `startOwned` answered; the deliveries claimed, as {stream index, entry id, task fields as
 * in FETCH_SCRIPT (an empty task id for an entry without one, dropped)}, those to start at
 * once first}.
 */
export const COMPLETE_SCRIPT = script(
  // allow-oom: at Redis maxmemory (noeviction), a script is refused at its first write that may
  // grow memory (the SET of a result here). A completion frees more than it stores (the entry
  // and the task hash go), and refusing it would leave every running task without its result.
  "#!lua flags=allow-oom\n" + GRAPH_LUA + START_LUA + `
local group, me, now, donePrefix, P = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local n = tonumber(ARGV[7])
-- The tasks finishing for good in this call, and the keys that name who waits for them.
local channels, dependents = {}, {}
for i = 0, n - 1 do
  local a = 9 + i * 9
  if ARGV[a + 3] == 'final' then
    table.insert(channels, donePrefix .. ARGV[a + 2])
    table.insert(dependents, P .. '${KEY.dependents}' .. ARGV[a + 2])
  end
end
-- Who waits for which result: one PUBSUB NUMSUB for the call spares a PUBLISH per task that
-- nobody hears (a waiter subscribes before it reads the result, so one that subscribes after
-- this call finds the result stored). Pattern subscribers are not counted per channel, and a
-- Cluster node counts only its own subscribers: with any pattern subscription on the server, or
-- in a Cluster, every result is published.
local listening = nil
if ARGV[8] == '1' and redis.call('PUBSUB', 'NUMPAT') == 0 then
  listening = {}
  for from = 1, #channels, 1000 do
    local counts = redis.call('PUBSUB', 'NUMSUB',
      unpack(channels, from, math.min(from + 999, #channels)))
    for j = 1, #counts, 2 do
      if counts[j + 1] > 0 then listening[counts[j]] = true end
    end
  end
end
-- Whether any of them has dependents: one EXISTS for the call spares an SMEMBERS per task in
-- the common case of a call without any.
local anyDependents = false
for from = 1, #dependents, 1000 do
  if redis.call('EXISTS', unpack(dependents, from, math.min(from + 999, #dependents))) > 0 then
    anyDependents = true
  end
end
local out, earliest = {}, nil
-- Entries to acknowledge and delete, per stream. One XDEL for all of a call's entries: after
-- deleting a stream's first entry, Redis looks for the next one past every deleted entry left
-- in its node (up to a hundred), once per call rather than once per entry.
local finished = {}
-- The deliveries whose outcome this call wrote, with its kind: a prefetched task can run and
-- finish before the call that writes its start is sent, and then both are in this call, its
-- outcome first. Its start must not write into the hash its outcome just deleted.
local handled = {}
-- One SCARD per call spares an SREM (and a SISMEMBER) per task when no abort is pending.
anyAborting = redis.call('SCARD', KEYS[2]) > 0
local function delay(taskKey, id, due)
  redis.call('ZADD', KEYS[1], due, id)
  if earliest == nil or tonumber(due) < earliest then earliest = tonumber(due) end
end
for i = 0, n - 1 do
  local a = 9 + i * 9
  local stream, msg, id, kind, blob, num = P .. '${KEY.stream}' .. ARGV[a], ARGV[a + 1], ARGV[a + 2],
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local taskKey, resultKey, lockKey = P .. '${KEY.task}' .. id, P .. '${KEY.result}' .. id, ARGV[a + 6]
  local owned = ARGV[a + 8] == '1'
  if not owned then
    local pending = redis.call('XPENDING', stream, group, msg, msg, 1)
    owned = pending[1] and pending[1][2] == me
  end
  if owned then
    local ids = finished[stream]
    if not ids then
      ids = {}
      finished[stream] = ids
    end
    table.insert(ids, msg)
    handled[stream .. ' ' .. msg] = kind
    if kind == 'final' then
      if num == '' then
        redis.call('SET', resultKey, blob)
      elseif num ~= '0' then
        redis.call('SET', resultKey, blob, 'PX', num)
      end
      if anyAborting then redis.call('SREM', KEYS[2], id) end
      if listening == nil or listening[donePrefix .. id] then
        redis.call('PUBLISH', donePrefix .. id, blob)
      end
      local released = anyDependents and releaseDependents(P, id, blob, now)
      if released and (earliest == nil or released < earliest) then earliest = released end
      local nextDue = ARGV[a + 7]
      if tonumber(nextDue) and redis.call('HEXISTS', taskKey, '${TASK_FIELD.crontab}') == 1 then
        redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}', '${TASK_FIELD.lastReason}')
        redis.call('HSET', taskKey, '${TASK_FIELD.tries}', 0, '${TASK_FIELD.due}', nextDue, '${TASK_FIELD.scheduled}', nextDue)
        delay(taskKey, id, nextDue)
      else
        redis.call('DEL', taskKey)
        if nextDue ~= '' then redis.call('SREM', KEYS[3], id) end
      end
    elseif kind == 'retry' then
      local due = dueTime(num, redisTime())
      redis.call('HDEL', taskKey, '${TASK_FIELD.runner}', '${TASK_FIELD.entered}')
      redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', blob, '${TASK_FIELD.due}', due)
      delay(taskKey, id, due)
    elseif kind == 'back' then
      redis.call('HDEL', taskKey, '${TASK_FIELD.runner}')
      if blob ~= '' then redis.call('HSET', taskKey, '${TASK_FIELD.lastReason}', blob) end
      redis.call('HSET', taskKey, '${TASK_FIELD.entered}', now)
      redis.call('XADD', stream, '*', 'id', id)
    elseif kind == 'drop' then
      -- What is left under the task's name (a hash without a function, a key of another type)
      -- can never run: it goes with its entry rather than stay forever.
      redis.call('DEL', taskKey)
    end
    if lockKey ~= '' and redis.call('GET', lockKey) == id then redis.call('DEL', lockKey) end
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
for stream, ids in pairs(finished) do
  for from = 1, #ids, 1000 do
    local to = math.min(from + 999, #ids)
    redis.call('XACK', stream, group, unpack(ids, from, to))
    redis.call('XDEL', stream, unpack(ids, from, to))
  end
end
if earliest ~= nil then redis.call('PUBLISH', ARGV[5], earliest) end
local s = 9 + n * 9
local prefix, m = P .. '${KEY.task}', tonumber(ARGV[s])
local toStart = tonumber(ARGV[s + 2])
local want = tonumber(ARGV[s + 1]) + toStart
local started, prefetched = {}, {}
for k = 0, m - 1 do
  local b = s + 3 + k * 4
  local stream = P .. '${KEY.stream}' .. ARGV[b]
  local outcome = handled[stream .. ' ' .. ARGV[b + 1]]
  if outcome then
    -- A try that ended in a retry or a hand-back still counts: the next one reads the count.
    if outcome == 'retry' or outcome == 'back' then
      redis.call('HINCRBY', prefix .. ARGV[b + 2], '${TASK_FIELD.tries}', 1)
    end
    table.insert(started, {ARGV[b + 2], 1, 0})
  else
    table.insert(started, startOwned(prefix, KEYS[2], group, me, stream, ARGV[b + 1],
      ARGV[b + 2], ARGV[b + 3]))
  end
end
-- Claim deliveries for the slots free now and for the prefetch buffer, highest priority first,
-- so that a busy worker needs no separate fetch. pcall: a stream whose consumer group is gone
-- (a restarted Redis) must not stop the completions above; the fetch loop re-creates the group.
local first = 4
for i = first, #KEYS do
  if want <= 0 then break end
  local read = redis.pcall('XREADGROUP', 'GROUP', group, me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
  if type(read) == 'table' and not read.err then
    for _, entry in ipairs(read[1][2]) do
      local id = entryTaskId(entry)
      if id then
        table.insert(prefetched, {i - first + 1, entry[1],
          startTask(prefix, KEYS[2], me, id, toStart > 0)})
        toStart = toStart - 1
      else
        -- Dropped, and returned without a task id so that the worker warns about it.
        redis.call('XACK', KEYS[i], group, entry[1])
        redis.call('XDEL', KEYS[i], entry[1])
        table.insert(prefetched, {i - first + 1, entry[1], {'', 0, false}})
      end
      want = want - 1
    end
  end
end
return {out, started, prefetched}
`,
);

/** What becomes of a delivery, ready to be written. */
export type Completion =
  | {
    readonly kind: "final";
    readonly result: Buffer;
    readonly ttl: number | null;
    /**
     * For a repeating task, when its next occurrence is due, or `"stop"` when it repeats no
     * more; undefined for a task that does not repeat.
     */
    readonly next?: number | "stop";
  }
  | { readonly kind: "retry"; readonly due: Due; readonly reason: string }
  | { readonly kind: "back"; readonly reason: string }
  | { readonly kind: "drop" };

/** A completion of a delivery to write, or (without `completion`) the start of one. */
interface Item {
  readonly delivery: Delivery;
  readonly completion: Completion | undefined;
  readonly lock: string | undefined;
  /** How many more deliveries to prefetch in the same call. */
  readonly refill: number;
}

/** What writing a completion did. */
export interface Completed {
  /** False when the delivery was stale and nothing was written. */
  readonly applied: boolean;
  /** For a start: what writing it found. */
  readonly started?: StartAnswer;
}

/** Writes completions of one worker, batching those that finish together. */
export class Completer {
  readonly #client: QueueContext;
  readonly #workerId: string;
  readonly #batcher: Batcher<Item, Completed>;
  readonly #onPrefetched: (deliveries: Delivery[]) => void;
  readonly #freeSlots: () => number;

  /**
   * `onPrefetched` receives the deliveries a completion call claimed (see `refill`), started
   * for the slots `freeSlots` counted when the call was sent, the rest only read.
   */
  constructor(
    client: QueueContext,
    workerId: string,
    onPrefetched: (deliveries: Delivery[]) => void = () => {},
    freeSlots: () => number = () => 0,
  ) {
    this.#client = client;
    this.#workerId = workerId;
    this.#onPrefetched = onPrefetched;
    this.#freeSlots = freeSlots;
    this.#batcher = new Batcher((items) => this.#write(items), 2);
  }

  /**
   * Writes one completion; `lock` names the unique lock the task holds, if any. With `refill`,
   * up to that many deliveries are prefetched too (the most asked in a batch).
   */
  complete(
    delivery: Delivery,
    completion: Completion,
    lock?: string,
    refill = 0,
  ): Promise<Completed> {
    return this.#batcher.add({ delivery, completion, lock, refill });
  }

  /**
   * Writes the start of a prefetched delivery that took a free slot, with the next completions.
   * Going through the same calls as the outcomes orders the two: the start of a task that runs
   * before it is written always reaches Redis no later than the task's outcome.
   */
  async start(delivery: Delivery): Promise<StartAnswer> {
    const { started } = await this.#batcher.add({
      delivery,
      completion: undefined,
      lock: undefined,
      refill: 0,
    });
    return started!;
  }

  /** Resolves once every completion handed in so far is written. */
  drain(): Promise<void> {
    return this.#batcher.drain();
  }

  async #write(items: Item[]): Promise<Completed[]> {
    const { keys } = this.#client;
    const scriptKeys: string[] = [keys.delayed, keys.aborting, keys.schedules];
    const completions = items.filter((item) => item.completion);
    const args: ScriptArg[] = [
      CONSUMER_GROUP,
      this.#workerId,
      this.#client.now(),
      keys.doneChannelPrefix,
      keys.wakeChannel,
      keys.prefix,
      completions.length,
      this.#client.isCluster ? 0 : 1,
    ];
    for (const { delivery: d, completion, lock } of completions) {
      const c = completion!;
      const [blob, num] = c.kind === "final"
        ? [c.result, c.ttl === null ? "" : c.ttl]
        : c.kind === "retry"
        ? [c.reason, dueArg(c.due)]
        : c.kind === "back"
        ? [c.reason, 0]
        : ["", 0];
      const next = c.kind === "final" && c.next !== undefined ? c.next : "";
      args.push(d.priority, d.messageId, d.taskId, c.kind, blob, num, lock ?? "", next);
      args.push(isFresh(d) ? 1 : 0);
    }
    const starts = items.filter((item) => !item.completion).map((item) => item.delivery);
    const refill = Math.max(...items.map((item) => item.refill));
    // Slots free now are filled by this call too, but only while the worker is fetching more.
    const startNow = refill > 0 ? Math.max(0, this.#freeSlots()) : 0;
    args.push(starts.length, refill, startNow);
    for (const d of starts) args.push(d.priority, d.messageId, d.taskId, startArg(d));
    const priorities = this.#client.prioritiesHighFirst;
    if (refill > 0) scriptKeys.push(...priorities.map((p) => keys.stream(p)));
    const sent = performance.now();
    const [applied, started, prefetched] = await runScript(
      this.#client.redis,
      COMPLETE_SCRIPT,
      scriptKeys,
      args,
      true,
    ) as [number[], unknown[][], [number, Buffer, unknown[]][]];
    if (prefetched.length > 0) {
      this.#onPrefetched(
        prefetched.map(([index, messageId, fields]) =>
          toDelivery(
            keys.stream(priorities[index - 1]),
            priorities[index - 1],
            String(messageId),
            fields,
            sent,
          )
        ),
      );
    }
    let completed = 0;
    let startedAt = 0;
    return items.map((item) =>
      item.completion
        ? { applied: applied[completed++] === 1 }
        : { applied: true, started: toStartAnswer(started[startedAt++]) }
    );
  }
}
