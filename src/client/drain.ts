/**
 * Draining a queue: removing every task that waits, queued in a priority stream, delayed
 * (scheduled or backing off), waiting for its dependencies, or set aside by a pause or a limit
 * (a function's held list), and none that a worker holds
 * (running or prefetched). Repeating tasks (cron jobs and crontab schedules) are kept: they are
 * the queue's configuration more than its backlog, and `unscheduleById` stops them.
 *
 * The work is cut into script calls of at most {@linkcode DRAIN_BATCH} tasks each, so that a
 * queue of any size never blocks Redis for more than a few milliseconds at a time; each call is
 * atomic and removes whole tasks with the tasks waiting for them, so a drain that stops half-way
 * leaves a consistent queue.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP, KEY, TASK_FIELD } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua, luaFunction } from "../redis/lua/compose.ts";
import { entryTaskId } from "../redis/lua/steps.ts";
import { forgetGroupTask } from "../redis/lua/groups.ts";
import { scanQueue } from "./scan.ts";

/** At most this many tasks are looked at by one script call. */
export const DRAIN_BATCH = 50;

/** What a drain call works through: the `source` argument of {@linkcode DRAIN_SCRIPT}. */
const SOURCE = {
  waiting: "waiting",
  delayed: "delayed",
  stream: "stream",
  held: "held",
} as const;

const removeTask = luaFunction(
  "removeTask",
  [forgetGroupTask],
  `
-- Removes task id, which no worker holds, and the tasks waiting for it (they could never run
-- now), with every key and set membership of theirs. Returns how many tasks it removed.
local function removeTask(P, id)
  local removed, todo = 0, {id}
  while #todo > 0 do
    local t = table.remove(todo)
    local key = P .. '${KEY.task}' .. t
    removed = removed + redis.call('EXISTS', key)
    forgetGroupTask(P, t, false)
    for _, d in ipairs(redis.call('SMEMBERS', P .. '${KEY.dependents}' .. t)) do
      if redis.call('HEXISTS', P .. '${KEY.task}' .. d, '${TASK_FIELD.waiting}') == 1 then
        table.insert(todo, d)
      end
    end
    redis.call('DEL', key, P .. '${KEY.deps}' .. t, P .. '${KEY.dependents}' .. t,
      P .. '${KEY.logs}' .. t)
    redis.call('SREM', P .. '${KEY.waiting}', t)
    redis.call('ZREM', P .. '${KEY.delayed}', t)
    redis.call('SREM', P .. '${KEY.aborting}', t)
  end
  return removed
end
`,
);

const isRepeating = luaFunction(
  "isRepeating",
  [],
  `
-- Whether task id is a repeating one (its hash has a crontab): a drain keeps those.
local function isRepeating(P, id)
  return redis.call('HEXISTS', P .. '${KEY.task}' .. id, '${TASK_FIELD.crontab}') == 1
end
`,
);

const drainStream = luaFunction(
  "drainStream",
  [removeTask, isRepeating, entryTaskId],
  `
-- Removes up to count entries of stream that no worker has read yet (after the group's last
-- delivered id, and after cursor), with their tasks, but for repeating tasks. Returns how many
-- tasks it removed and the id of the last entry it looked at, or '' when it reached the end.
local function drainStream(P, stream, group, cursor, count)
  local from = cursor
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local fields = {}
      for j = 1, #g, 2 do fields[g[j]] = g[j + 1] end
      if fields['name'] == group then
        local a1, a2 = string.match(fields['last-delivered-id'], '^(%d+)-(%d+)$')
        local b1, b2 = string.match(from, '^(%d+)-(%d+)$')
        if tonumber(a1) > tonumber(b1) or (a1 == b1 and tonumber(a2) > tonumber(b2)) then
          from = fields['last-delivered-id']
        end
      end
    end
  end
  local ms, seq = string.match(from, '^(%d+)-(%d+)$')
  local entries = redis.call('XRANGE', stream, ms .. '-' .. (tonumber(seq) + 1), '+', 'COUNT', count)
  local removed, gone = 0, {}
  for _, entry in ipairs(entries) do
    local id = entryTaskId(entry)
    if id == nil or not isRepeating(P, id) then
      table.insert(gone, entry[1])
      if id ~= nil then removed = removed + removeTask(P, id) end
    end
  end
  if #gone > 0 then redis.call('XDEL', stream, unpack(gone)) end
  if #entries < count then return {removed, ''} end
  return {removed, entries[#entries][1]}
end
`,
);

/**
 * One call of a drain: up to `count` tasks of one source.
 *
 * KEYS: [1] the delayed set (it pins the queue's slot; other keys are built from the prefix)
 * ARGV: [1] key prefix, [2] source ('waiting', 'delayed', 'stream' or 'held'), [3] count, [4]
 *       cursor: for 'waiting' an SSCAN cursor ('0' to start), for 'delayed' how many repeating
 *       tasks at its head are kept, for 'stream' an entry id ('0-0' to start), for 'held' how many
 *       of the list are left to look at ('' to start), [5] the stream, or for 'held' a function's
 *       list of tasks set aside (`src/client/pause.ts`), [6] the consumer group
 * Returns {tasks removed, next cursor, or '' when the source is done}.
 */
export const DRAIN_SCRIPT = script(lua(
  removeTask,
  isRepeating,
  drainStream,
  `
local P, source, count, cursor = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if source == '${SOURCE.stream}' then return drainStream(P, ARGV[5], ARGV[6], cursor, count) end
local removed = 0
if source == '${SOURCE.held}' then
  -- From the head, count at a time; a repeating task goes back at the tail, so the cursor counts
  -- what is left to look at.
  local left = cursor == '' and redis.call('LLEN', ARGV[5]) or tonumber(cursor)
  local n = math.min(count, left)
  for _ = 1, n do
    local id = redis.call('LPOP', ARGV[5])
    if not id then break end
    if isRepeating(P, id) then
      redis.call('RPUSH', ARGV[5], id)
    else
      -- A group's held list is named 'held:<function> <group>' (src/redis/lua/groups.ts).
      if string.find(ARGV[5], ' ', 1, true) then forgetGroupTask(P, id, true) end
      removed = removed + removeTask(P, id)
    end
  end
  return {removed, left - n > 0 and tostring(left - n) or ''}
end
if source == '${SOURCE.delayed}' then
  local kept = tonumber(cursor)
  local ids = redis.call('ZRANGE', KEYS[1], kept, kept + count - 1)
  for _, id in ipairs(ids) do
    if isRepeating(P, id) then kept = kept + 1 else removed = removed + removeTask(P, id) end
  end
  return {removed, #ids < count and '' or tostring(kept)}
end
local scan = redis.call('SSCAN', P .. '${KEY.waiting}', cursor, 'COUNT', count)
for _, id in ipairs(scan[2]) do
  if not isRepeating(P, id) then removed = removed + removeTask(P, id) end
end
return {removed, scan[1] == '0' and '' or scan[1]}
`,
));

/**
 * Removes every task of the queue that waits for a worker: waiting for its dependencies,
 * delayed, or queued; not those a worker holds, nor repeating tasks. Works in calls of at most
 * {@linkcode DRAIN_BATCH} tasks.
 *
 * @param client The queue's context.
 * @returns How many tasks it removed.
 */
export async function drainQueue(client: QueueContext): Promise<number> {
  const { keys } = client;
  let removed = 0;
  const run = async (source: string, start: string, stream = "") => {
    let cursor = start;
    do {
      const [n, next] = await runScript(client.redis, DRAIN_SCRIPT, [keys.delayed], [
        keys.prefix,
        source,
        DRAIN_BATCH,
        cursor,
        stream,
        CONSUMER_GROUP,
      ]) as [number, string];
      removed += n;
      cursor = next;
    } while (cursor !== "");
  };
  await run(SOURCE.waiting, "0");
  await run(SOURCE.delayed, "0");
  for (const priority of client.prioritiesHighFirst) {
    await run(SOURCE.stream, "0-0", keys.stream(priority));
  }
  // Tasks set aside by a pause or a limit wait too (see src/redis/lua/flow.ts).
  const lists = new Set<string>();
  for await (const found of scanQueue(client, keys.pattern(`${KEY.held}*`))) {
    for (const key of found) lists.add(key);
  }
  for (const list of lists) await run(SOURCE.held, "", list);
  return removed;
}
