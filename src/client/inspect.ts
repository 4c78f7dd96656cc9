/**
 * Questions about tasks and queues: status, info, results, listings and sizes. Nothing here
 * changes the queue.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import {
  BLOCKED_FUNCTION,
  CONSUMER_GROUP,
  GROUP_FUNCTION,
  KEY,
  LIMIT_FUNCTION,
  PAUSED_FUNCTION,
  PAUSED_QUEUE,
  RATE_FUNCTION,
  TASK_FIELD,
} from "../redis/keys.ts";
import { makeTaskResult, type TaskInfo, type TaskResult, TaskStatus } from "../result.ts";
import { StreaqError } from "../errors.ts";
import type { Reading, Subscription } from "./result_waiter.ts";
import type { ResultOptions } from "../options.ts";
import { checkDuration, describe } from "../_validate.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua, luaFunction } from "../redis/lua/compose.ts";
import { argvSlots, layout, luaTuple } from "../redis/lua/layout.ts";
import { scanQueue } from "./scan.ts";

/**
 * `taskStatus(resultKey, taskKey, delayed, id)`: a task's status from its keys, as a
 * `TaskStatus` string; shared by the scripts below.
 */
const taskStatus = luaFunction(
  "taskStatus",
  [],
  `
-- The status of task id from its result key, task hash and the delayed set: 'done', 'missing',
-- 'running', 'scheduled' (delayed, or waiting for its dependencies) or 'queued'.
local function taskStatus(resultKey, taskKey, delayed, id)
  local fields = redis.call('HMGET', taskKey, '${TASK_FIELD.fn}', '${TASK_FIELD.runner}', '${TASK_FIELD.waiting}')
  if not fields[1] then
    return redis.call('EXISTS', resultKey) == 1 and '${TaskStatus.DONE}' or '${TaskStatus.NOT_FOUND}'
  end
  if fields[2] and fields[2] ~= '' then return '${TaskStatus.RUNNING}' end
  if fields[3] then return '${TaskStatus.SCHEDULED}' end
  if redis.call('ZSCORE', delayed, id) then return '${TaskStatus.SCHEDULED}' end
  return '${TaskStatus.QUEUED}'
end
`,
);

/**
 * The status of one task.
 *
 * KEYS: [1] result key, [2] task hash, [3] delayed set
 * ARGV: [1] task id
 */
export const STATUS_SCRIPT = script(
  lua(taskStatus, "return taskStatus(KEYS[1], KEYS[2], KEYS[3], ARGV[1])"),
);

/** The task-hash fields {@linkcode INFO_SCRIPT} returns, in order, after the status. */
const INFO_FIELDS = layout(
  "fn",
  "data",
  "priority",
  "created",
  "tries",
  "due",
  "crontab",
  "after",
  "progress",
);

/**
 * The reply of {@linkcode INFO_SCRIPT}: the status, the {@linkcode INFO_FIELDS} (false when
 * missing), and the ids of the task's dependents.
 */
export const TASK_INFO = layout("status", ...INFO_FIELDS.fields, "dependents", "paused");

/**
 * The `paused` slot of {@linkcode TASK_INFO}: what holds a queued task back: a pause, or a
 * concurrency limit whose slots are all taken.
 */
const PAUSED_BY = {
  queue: "queue",
  function: "function",
  slot: "slot",
  rate: "rate",
  group: "group",
  groupRate: "grate",
} as const;

/**
 * The status and stored fields of one task.
 *
 * KEYS: [1] result key, [2] task hash, [3] delayed set, [4] the task's dependents set, [5] the
 *       queue's paused hash
 * ARGV: [1] task id
 * Returns {@linkcode TASK_INFO}: [status, fn, payload, priority, created, tries, due, crontab,
 * dependency ids, dependent ids, paused] (fields false when missing; paused: for a queued task,
 * whether the queue or its function is paused, else false).
 */
export const INFO_SCRIPT = script(lua(
  taskStatus,
  `
local status = taskStatus(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local f = redis.call('HMGET', KEYS[2], ${
    INFO_FIELDS.fields.map((name) => `'${TASK_FIELD[name]}'`).join(", ")
  })
local paused = false
if status == '${TaskStatus.QUEUED}' and f[1] then
  local p = redis.call('HMGET', KEYS[5], '${PAUSED_QUEUE}', '${PAUSED_FUNCTION}' .. f[1],
    '${LIMIT_FUNCTION}' .. f[1], '${BLOCKED_FUNCTION}' .. f[1])
  paused = p[1] and '${PAUSED_BY.queue}' or p[2] and '${PAUSED_BY.function}' or false
  local P = string.sub(KEYS[5], 1, -${KEY.flow.length + 1})
  -- Every slot taken by other tasks: this one waits for one (it holds none itself).
  if not paused and p[3] then
    local active = P .. '${KEY.active}' .. f[1]
    if redis.call('ZCARD', active) >= tonumber(p[3]) and not redis.call('ZSCORE', active, ARGV[1]) then
      paused = '${PAUSED_BY.slot}'
    end
  end
  -- Set aside for a slot of its group (src/redis/lua/groups.ts): how many of its group's tasks
  -- come before it, those holding the group's slots and those set aside before it.
  local groupSlots = not paused and redis.call('HGET', KEYS[5], '${GROUP_FUNCTION}' .. f[1])
  local grp = groupSlots and redis.call('HGET', KEYS[2], '${TASK_FIELD.group}')
  if grp then
    local name = f[1] .. ' ' .. grp
    local position = redis.call('LPOS', P .. '${KEY.held}' .. name, ARGV[1])
    -- With a rate limit per group ('<slots> <max> <duration>'), its group's window may be full.
    local max, duration = string.match(groupSlots, '^%d+ (%d+) (%d+)$')
    local opens = position and max and tonumber(redis.call('ZSCORE', P .. '${KEY.groupWake}' .. f[1], grp))
    local t = redis.call('TIME')
    if opens and opens > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then
      paused = '${PAUSED_BY.groupRate} ' .. opens .. ' ' .. max .. ' ' .. duration .. ' ' .. grp
    elseif position then
      paused = '${PAUSED_BY.group} ' .. (position + redis.call('ZCARD', P .. '${KEY.groupActive}' .. name)) .. ' ' .. grp
    end
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- Its function held back by a rate limit a task met at run time (StreaqRateLimited).
  local blockedUntil = not paused and tonumber(p[4])
  if blockedUntil and blockedUntil > now then
    paused = '${PAUSED_BY.rate} ' .. blockedUntil .. ' reported'
  end
  -- Its rate window full: it waits until the oldest start in it leaves the window.
  local rate = not paused and redis.call('HGET', KEYS[5], '${RATE_FUNCTION}' .. f[1])
  if rate then
    local max, duration = string.match(rate, '^(%d+) (%d+)$')
    local recent = redis.call('ZRANGEBYSCORE', P .. '${KEY.starts}' .. f[1], now - tonumber(duration),
      '+inf', 'WITHSCORES')
    if max and #recent / 2 >= tonumber(max) then
      paused = '${PAUSED_BY.rate} ' .. (tonumber(recent[2]) + tonumber(duration)) .. ' ' .. rate
    end
  end
end
return ${
    luaTuple(TASK_INFO, {
      status: "status",
      ...argvSlots(INFO_FIELDS, 1, "f"),
      dependents: "redis.call('SMEMBERS', KEYS[4])",
      paused: "paused",
    })
  }
`,
));

/** The status of the task with this id. */
export async function statusById(client: QueueContext, id: string): Promise<TaskStatus> {
  const { keys } = client;
  return await runScript(
    client.redis,
    STATUS_SCRIPT,
    [keys.result(id), keys.task(id), keys.delayed],
    [id],
  ) as TaskStatus;
}

/** Info of the task with this id; null when it finished or is unknown. */
export async function infoById(client: QueueContext, id: string): Promise<TaskInfo | null> {
  const [info] = await infosByIds(client, [id]);
  return info;
}

/** Info of several tasks in one round trip, in order; null for finished or unknown ones. */
async function infosByIds(
  client: QueueContext,
  ids: readonly string[],
): Promise<(TaskInfo | null)[]> {
  const { keys } = client;
  const pipeline = client.redis.pipeline();
  for (const id of ids) {
    runScript(
      pipeline,
      INFO_SCRIPT,
      [keys.result(id), keys.task(id), keys.delayed, keys.dependents(id), keys.flow],
      [id],
      true,
    );
  }
  const replies = await pipeline.exec() ?? [];
  return await Promise.all(replies.map(async ([error, reply], i) => {
    if (error) throw error;
    const fields = reply as (Buffer | null)[];
    const at = TASK_INFO.at;
    const [status, fn, data, priority, created, tries, due, crontab, after, progress] = [
      fields[at.status],
      fields[at.fn],
      fields[at.data],
      fields[at.priority],
      fields[at.created],
      fields[at.tries],
      fields[at.due],
      fields[at.crontab],
      fields[at.after],
      fields[at.progress],
    ];
    const dependents = fields[at.dependents] as unknown as Buffer[];
    const paused = fields[at.paused]?.toString();
    const id = ids[i];
    if (!fn || !data) return null;
    const fnName = fn.toString();
    let args: unknown[];
    try {
      args = await client.envelope.openArgs(id, fnName, data);
    } catch (error) {
      args = [`<undecodable payload: ${(error as Error).message}>`];
    }
    return {
      taskId: id,
      fnName,
      createdTime: Number(created),
      args,
      tries: Number(tries ?? 0),
      scheduled: due ? new Date(Number(due)) : null,
      dependencies: after ? after.toString().split(" ") : [],
      dependents: dependents.map(String).sort(),
      status: status!.toString() as TaskStatus,
      priority: priority?.toString() ?? client.priorities[0],
      crontab: crontab ? crontab.toString() : null,
      progress: progress ? await openProgress(client, id, progress) : undefined,
      waitReason: paused === PAUSED_BY.queue
        ? "paused: the queue is paused"
        : paused === PAUSED_BY.function
        ? `paused: function ${fnName} is paused`
        : paused === PAUSED_BY.slot
        ? `waiting for a concurrency slot: every slot of ${fnName} is taken`
        : paused?.startsWith(PAUSED_BY.groupRate)
        ? groupRateReason(paused)
        : paused?.startsWith(PAUSED_BY.group)
        ? groupReason(paused)
        : paused?.startsWith(PAUSED_BY.rate)
        ? rateLimitedReason(fnName, paused)
        : null,
    };
  }));
}

/** The wait reason of a task whose group's rate window is full (`grate <until> <max> <ms> <key>`). */
function groupRateReason(slot: string): string {
  const [, until, max, duration, ...group] = slot.split(" ");
  return `rate-limited until ${new Date(Number(until)).toISOString()}: group ${
    group.join(" ")
  } starts at most ${max} per ${duration} ms`;
}

/** The wait reason of a task set aside for a slot of its group (`group <ahead> <group key>`). */
function groupReason(slot: string): string {
  const [, ahead, ...group] = slot.split(" ");
  return `waiting for a slot of group ${group.join(" ")}: behind ${ahead} tasks of its group`;
}

/**
 * The wait reason of a task whose function's rate window is full (`rate <until> <max> <ms>`), or
 * whose function met a rate limit at run time (`rate <until> reported`).
 */
function rateLimitedReason(fnName: string, slot: string): string {
  const [, until, max, duration] = slot.split(" ");
  const time = new Date(Number(until)).toISOString();
  return max === "reported"
    ? `rate-limited until ${time}: ${fnName} reported a rate limit`
    : `rate-limited until ${time}: ${fnName} starts at most ${max} per ${duration} ms`;
}

/**
 * The latest progress the task with this id reported, or undefined if it reported none or no
 * longer exists (finished or unknown). One `HGET`.
 */
export async function progressById(client: QueueContext, id: string): Promise<unknown> {
  const blob = await client.redis.hgetBuffer(client.keys.task(id), TASK_FIELD.progress);
  return blob ? await openProgress(client, id, blob) : undefined;
}

/** Decodes a stored progress value; one that cannot be decoded reads as a message saying so. */
export async function openProgress(
  client: QueueContext,
  id: string,
  blob: Uint8Array,
): Promise<unknown> {
  try {
    return await client.envelope.openProgress(id, blob);
  } catch (error) {
    return `<undecodable progress: ${(error as Error).message}>`;
  }
}

/**
 * The stored result of a task, or whether the task is still there: in one call, so that a task
 * finishing in between is not taken for gone.
 *
 * KEYS: [1] result key, [2] task hash
 * Returns the encoded result; else 1 if the task exists (queued, scheduled, running, waiting
 * for its dependencies, repeating), 0 if it does not.
 */
export const READ_RESULT_SCRIPT = script(`
local blob = redis.call('GET', KEYS[1])
if blob then return blob end
return redis.call('HEXISTS', KEYS[2], '${TASK_FIELD.fn}')
`);

/** Looks for the result of a task, or for the task. */
async function readResult(client: QueueContext, id: string): Promise<Reading> {
  const { keys } = client;
  const reply = await runScript(
    client.redis,
    READ_RESULT_SCRIPT,
    [keys.result(id), keys.task(id)],
    [],
    true,
  ) as Buffer | number;
  if (typeof reply !== "number") return reply;
  return reply === 1 ? "pending" : "gone";
}

/**
 * Waits for the result of the task with this id.
 *
 * @throws {StreaqError} When the task does not exist (never enqueued, expired or lost).
 * @throws {DOMException} Named `"TimeoutError"` when `timeout` passes first.
 */
export async function resultById<R>(
  client: QueueContext,
  id: string,
  options: ResultOptions = {},
): Promise<TaskResult<R>> {
  checkDuration("wait for a result", "timeout", options.timeout);
  using subscription = await client.waiter.subscribe(
    client.keys.doneChannel(id),
    client.keys.listenersChannel,
  );
  const outcome = await awaitOutcome(client, id, subscription, options);
  if (outcome === "gone") {
    throw new StreaqError(
      `Cannot wait for the result of task ${id} as it does not exist: never enqueued, expired, or lost`,
    );
  }
  return makeTaskResult<R>(await client.envelope.openResult(id, outcome));
}

/**
 * Waits for the encoded outcome of a task, on a subscription to its channel made before
 * anything that may finish it: published, or stored. `"gone"` when the task has been gone for
 * a grace period (see `src/client/result_waiter.ts`).
 *
 * @throws {DOMException} Named `"TimeoutError"` when `timeout` passes first.
 * @throws {unknown} The reason of `signal` when it aborts first.
 */
export async function awaitOutcome(
  client: QueueContext,
  id: string,
  subscription: Subscription,
  options: ResultOptions,
): Promise<Buffer | "gone"> {
  const { timeout, signal: given } = options;
  // A limit of our own, forgotten as soon as the result is here: AbortSignal.timeout() would
  // keep its timer and signal (and AbortSignal.any() its links) alive for the whole timeout, so
  // that a server waiting for many results with a long timeout held every one of them that long.
  // The client's waits share one timer (`_wait_deadlines.ts`), which does not keep the process
  // alive, like AbortSignal.timeout()'s: the wait does.
  const stop = new AbortController();
  const onGiven = () => stop.abort();
  given?.addEventListener("abort", onGiven, { once: true });
  if (given?.aborted) stop.abort();
  const limit = timeout === undefined
    ? undefined
    : client.waiter.deadlines.add(timeout, () => stop.abort());
  let outcome;
  try {
    outcome = await client.waiter.wait(subscription, () => readResult(client, id), stop.signal);
  } finally {
    limit?.end();
    given?.removeEventListener("abort", onGiven);
  }
  if (outcome) return outcome;
  if (given?.aborted) throw given.reason;
  throw new DOMException(
    `Timed out after ${timeout} ms waiting for the result of task ${id}`,
    "TimeoutError",
  );
}

/** Reads the stored result of a task without waiting; null when there is none. */
export async function storedResult<R>(
  client: QueueContext,
  id: string,
): Promise<TaskResult<R> | null> {
  const blob = await client.redis.getBuffer(client.keys.result(id));
  return blob ? makeTaskResult<R>(await client.envelope.openResult(id, blob)) : null;
}

/**
 * Options of `getTasksByStatus`.
 *
 * @typeParam Priority The worker's priorities.
 */
export interface ListOptions<Priority extends string = string> {
  /** Only tasks of this priority. */
  priority?: Priority;
  /**
   * At most this many tasks.
   *
   * @default {100}
   */
  limit?: number;
}

const PAGE = 200;

/** The statuses `getTasksByStatus` lists. */
const LISTABLE: readonly TaskStatus[] = [
  TaskStatus.QUEUED,
  TaskStatus.RUNNING,
  TaskStatus.SCHEDULED,
  TaskStatus.DONE,
];

/** Tasks in one status, oldest first for the queue, soonest first for scheduled tasks. */
export async function listTasks(
  client: QueueContext,
  status: TaskStatus,
  options: ListOptions = {},
): Promise<(TaskInfo | TaskResult<unknown>)[]> {
  const { limit = 100, priority } = options;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(
      `Cannot list tasks as 'limit' must be an integer ≥ 0: received ${String(limit)}`,
    );
  }
  if (priority !== undefined && !client.priorities.includes(priority)) {
    throw new RangeError(
      `Cannot list tasks as 'priority' must be one of ${client.priorities.join(", ")}: received ${
        JSON.stringify(priority)
      }`,
    );
  }
  // "missing" is a status a task can have, but no task is listed under it: nothing is kept of
  // a task that is not there.
  if (!LISTABLE.includes(status)) {
    throw new RangeError(
      `Cannot list tasks as 'status' must be one of ${LISTABLE.join(", ")}: received ${
        describe(status)
      }`,
    );
  }
  if (status === TaskStatus.DONE && priority !== undefined) {
    throw new RangeError(
      `Cannot list done tasks by priority: results do not keep it (received priority ${
        JSON.stringify(priority)
      })`,
    );
  }
  if (limit === 0) return [];
  switch (status) {
    case TaskStatus.QUEUED:
    case TaskStatus.RUNNING:
      return await listFromStreams(client, status, priority, limit);
    case TaskStatus.SCHEDULED:
      return await listScheduled(client, priority, limit);
    case TaskStatus.DONE:
      return await listDone(client, limit);
    default:
      return [];
  }
}

async function listFromStreams(
  client: QueueContext,
  status: TaskStatus,
  priority: string | undefined,
  limit: number,
): Promise<TaskInfo[]> {
  const found: TaskInfo[] = [];
  for (const p of priority ? [priority] : client.prioritiesHighFirst) {
    let from = "-";
    while (found.length < limit) {
      const entries = await client.redis.xrange(client.keys.stream(p), from, "+", "COUNT", PAGE);
      const ids = entries.map(([, fields]) => fields[1]).filter((id) => id);
      for (const info of await infosByIds(client, ids)) {
        if (info?.status === status && found.length < limit) found.push(info);
      }
      if (entries.length < PAGE) break;
      from = "(" + entries[entries.length - 1][0];
    }
  }
  return found;
}

async function listScheduled(
  client: QueueContext,
  priority: string | undefined,
  limit: number,
): Promise<TaskInfo[]> {
  const found: TaskInfo[] = [];
  const add = (infos: (TaskInfo | null)[]) => {
    for (const info of infos) {
      if (info && (!priority || info.priority === priority) && found.length < limit) {
        found.push(info);
      }
    }
  };
  for (let start = 0; found.length < limit; start += PAGE) {
    const ids = await client.redis.zrange(client.keys.delayed, start, start + PAGE - 1);
    add(await infosByIds(client, ids));
    if (ids.length < PAGE) break;
  }
  // Then the tasks waiting for their dependencies, which have no due time.
  let cursor = "0";
  while (found.length < limit) {
    const [next, ids] = await client.redis.sscan(client.keys.waiting, cursor, "COUNT", PAGE);
    add(await infosByIds(client, ids));
    cursor = next;
    if (cursor === "0") break;
  }
  return found;
}

async function listDone(client: QueueContext, limit: number): Promise<TaskResult<unknown>[]> {
  const found: TaskResult<unknown>[] = [];
  const prefix = client.keys.result("");
  // scanQueue finds the node holding the queue's keys, which matters on Redis Cluster.
  for await (const keys of scanQueue(client, client.keys.pattern(`${KEY.result}*`))) {
    const ids = keys.slice(0, limit - found.length).map((key) => key.slice(prefix.length));
    const pipeline = client.redis.pipeline();
    for (const id of ids) pipeline.getBuffer(client.keys.result(id));
    const replies = await pipeline.exec() ?? [];
    for (let i = 0; i < ids.length; i++) {
      const blob = replies[i][1] as Buffer | null;
      if (blob) found.push(makeTaskResult(await client.envelope.openResult(ids[i], blob)));
    }
    if (found.length >= limit) break;
  }
  return found;
}

/** Options of `queueSize`. */
export interface QueueSizeOptions {
  /**
   * Count delayed, scheduled and backing-off tasks too.
   *
   * @default {false}
   */
  includeScheduled?: boolean;
}

/** How many tasks wait for a worker (not yet delivered), plus scheduled ones if asked. */
export async function queueSize(
  client: QueueContext,
  options: QueueSizeOptions = {},
): Promise<number> {
  const pipeline = client.redis.pipeline();
  for (const p of client.priorities) {
    pipeline.xlen(client.keys.stream(p));
    pipeline.xpending(client.keys.stream(p), CONSUMER_GROUP);
  }
  if (options.includeScheduled) pipeline.zcard(client.keys.delayed);
  const replies = await pipeline.exec() ?? [];
  let size = 0;
  for (let i = 0; i < client.priorities.length; i++) {
    const [, length] = replies[i * 2];
    const [pendingError, pending] = replies[i * 2 + 1];
    // A stream without a consumer group yet has nothing delivered.
    const delivered = pendingError ? 0 : Number((pending as [number])[0] ?? 0);
    size += Number(length ?? 0) - delivered;
  }
  if (options.includeScheduled) size += Number(replies[replies.length - 1][1] ?? 0);
  return size;
}
