/**
 * Exact counts of a queue's tasks per status and priority, for the overview: the streams, the
 * delayed set and the sets of waiting and repeating tasks are counted in one read-only script
 * call; stored results by a bounded SCAN. Part of the dashboard's read API
 * (`queue_reads.ts`).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP, KEY, STREAM_FIELD, TASK_FIELD } from "../redis/keys.ts";
import { scanQueue } from "./scan.ts";
import { runScript, script } from "../redis/_script.ts";

/** Up to this many delivered entries per stream, or delayed tasks, are examined one by one. */
const EXAMINE_LIMIT = 10_000;
/** At most this many SCAN calls count stored results. */
const RESULT_SCAN_CALLS = 100;

/**
 * Counts per stream and of the delayed set. A delivered entry counts as running when its task
 * hash is marked running; prefetched entries count as queued, as `TaskStatus` has it.
 *
 * KEYS: [1] delayed set, [2] schedules set, [3] waiting set, [4] aborting set,
 *       [5..] streams in priority order
 * ARGV: [1] group, [2] task key prefix, [3] examine limit
 * Returns {{length, running} per stream, delayed count, {priority, count, ...} of delayed
 * tasks (empty when more than the limit), schedules count, waiting count, aborting count}.
 */
const COUNT_SCRIPT = script(
  `
local group, prefix, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local streams = {}
for i = 5, #KEYS do
  local length, running = redis.call('XLEN', KEYS[i]), 0
  local summary = redis.pcall('XPENDING', KEYS[i], group)
  if type(summary) == 'table' and not summary.err and summary[1] > 0 then
    for _, p in ipairs(redis.call('XPENDING', KEYS[i], group, '-', '+', limit)) do
      local entry = redis.call('XRANGE', KEYS[i], p[1], p[1])[1]
      if entry then
        local fields = entry[2]
        for j = 1, #fields, 2 do
          if fields[j] == '${STREAM_FIELD.taskId}' then
            local run = redis.call('HGET', prefix .. fields[j + 1], '${TASK_FIELD.runner}')
            if run and run ~= '' then running = running + 1 end
          end
        end
      end
    end
  end
  table.insert(streams, {length, running})
end
local delayed, byPriority = redis.call('ZCARD', KEYS[1]), {}
if delayed <= limit then
  local counts = {}
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local p = redis.call('HGET', prefix .. id, '${TASK_FIELD.priority}') or ''
    counts[p] = (counts[p] or 0) + 1
  end
  for p, n in pairs(counts) do table.insert(byPriority, p); table.insert(byPriority, n) end
end
return {streams, delayed, byPriority, redis.call('SCARD', KEYS[2]), redis.call('SCARD', KEYS[3]),
  redis.call('SCARD', KEYS[4])}
`,
);

/** Counts of one priority. */
export interface PriorityCounts {
  /** In the stream and not started (prefetched ones included). */
  readonly queued: number;
  /** Started and not finished. */
  readonly running: number;
  /** Waiting for their time; null when too many to attribute to priorities. */
  readonly scheduled: number | null;
}

/** Counts of a queue's tasks by status, as they are when read. */
export interface TaskCountsMetrics {
  /** In a stream and not started (prefetched ones included). */
  readonly queued: number;
  /** Started and not finished. */
  readonly running: number;
  /** Waiting for their time (delayed, scheduled or backing off before a retry). */
  readonly scheduled: number;
  /** Waiting for their dependencies. */
  readonly waiting: number;
  /** Finished tasks whose result is still kept. */
  readonly done: number;
  /** False when `done` is a lower bound (the count stopped early in a very large keyspace). */
  readonly doneExact: boolean;
  /** Repeating tasks (cron jobs and crontab schedules). */
  readonly repeating: number;
  /** Tasks whose abort was requested and not yet carried out. */
  readonly aborting: number;
}

/** Counts of a whole queue, with the counts of each priority. */
export interface QueueCounts extends TaskCountsMetrics {
  /** Counts by priority, lowest priority first. */
  readonly byPriority: Readonly<Record<string, PriorityCounts>>;
}

/**
 * Counts the tasks of a queue in two parallel reads: one script call for the streams, the
 * delayed set and the sets of waiting, repeating and aborting tasks, and a bounded SCAN of the
 * stored results.
 *
 * @param client The queue's context.
 * @returns The counts per status, and per priority for queued, running and scheduled tasks.
 */
export async function countTasks(client: QueueContext): Promise<QueueCounts> {
  const { keys, priorities } = client;
  const [reply, results] = await Promise.all([
    runScript(
      client.redis,
      COUNT_SCRIPT,
      [
        keys.delayed,
        keys.schedules,
        keys.waiting,
        keys.aborting,
        ...priorities.map((p) => keys.stream(p)),
      ],
      [CONSUMER_GROUP, keys.taskPrefix, EXAMINE_LIMIT],
    ) as Promise<[[number, number][], number, (string | number)[], number, number, number]>,
    countResults(client),
  ]);
  const [streams, delayed, delayedByPriority, repeating, waiting, aborting] = reply;
  const scheduledBy = new Map<string, number>();
  for (let i = 0; i < delayedByPriority.length; i += 2) {
    scheduledBy.set(String(delayedByPriority[i]), Number(delayedByPriority[i + 1]));
  }
  const attributed = delayed === 0 || delayedByPriority.length > 0;
  const byPriority: Record<string, PriorityCounts> = {};
  let queued = 0;
  let running = 0;
  priorities.forEach((p, i) => {
    const [length, runningHere] = streams[i];
    queued += length - runningHere;
    running += runningHere;
    byPriority[p] = {
      queued: length - runningHere,
      running: runningHere,
      scheduled: attributed ? scheduledBy.get(p) ?? 0 : null,
    };
  });
  return {
    queued,
    running,
    scheduled: delayed,
    waiting,
    done: results.count,
    doneExact: results.exact,
    repeating,
    aborting,
    byPriority,
  };
}

/** Counts stored results by SCAN, giving up after a bounded number of calls. */
async function countResults(client: QueueContext): Promise<{ count: number; exact: boolean }> {
  let count = 0;
  let calls = 0;
  for await (const keys of scanQueue(client, client.keys.pattern(`${KEY.result}*`))) {
    count += keys.length;
    if (++calls >= RESULT_SCAN_CALLS) return { count, exact: false };
  }
  return { count, exact: true };
}
