/**
 * The task list of the dashboard: tasks of every status, filtered by function, status and
 * priority, and paginated. Unfinished tasks are found in the streams, the delayed set and the
 * waiting set and classified from a few fields of their hash (one pipelined `HMGET` per batch,
 * no payload decoding); finished ones are the stored results, newest first. Each source is
 * examined up to a bound, so a page stays fast on a very large queue. Part of the dashboard's
 * read API (`queue_reads.ts`).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { KEY, STREAM_FIELD, TASK_FIELD } from "../redis/keys.ts";
import { makeTaskResult, type TaskResult } from "../result.ts";
import { scanQueue } from "./scan.ts";
import { openProgress } from "./inspect.ts";

/** Statuses the list can be filtered by: those of `TaskStatus`, plus `failed` (done, failed). */
export const LIST_STATUSES = ["running", "queued", "scheduled", "waiting", "done", "failed"];

/** Up to this many tasks are examined per source (each stream, the delayed set, results). */
export const EXAMINE_LIMIT = 10_000;
/** At most this many stored results are read (and decoded) for one list. */
export const RESULT_LIMIT = 2_000;
const BATCH = 500;

/** What the list can be filtered by; absent fields match everything. */
export interface TaskFilter {
  readonly fn?: string;
  readonly status?: string;
  readonly priority?: string;
}

/** One task of the list. */
export interface TaskRow {
  readonly id: string;
  readonly fnName: string;
  readonly status: string;
  /** Null for finished tasks: results do not keep it. */
  readonly priority: string | null;
  readonly createdTime: number;
  readonly tries: number;
  /** When a scheduled task is due. */
  readonly due: number | null;
  /** The result of a finished task. */
  readonly result: TaskResult<unknown> | null;
  /** The latest progress a running task reported; undefined if none (or not running). */
  readonly progress?: unknown;
}

/** Which part of the matching tasks a page shows. */
export interface PageRange {
  /** How many matching tasks to skip. */
  readonly offset: number;
  /** At most this many rows are returned. */
  readonly limit: number;
}

/** A page of the list. */
export interface TaskPage {
  readonly rows: TaskRow[];
  /** How many tasks match. */
  readonly total: number;
  /** True when a source held more than the bound examined, so `total` is a lower bound. */
  readonly capped: boolean;
}

/**
 * Lists the tasks matching `filter`, skipping `offset` and returning at most `limit`: running
 * tasks first, then queued ones in the order they will run, scheduled ones, waiting ones, and
 * stored results, newest first.
 *
 * @param client The queue's context.
 * @param filter The function, status and priority to match; absent fields match everything.
 * @param range Where the page starts among the matching tasks, and its size.
 * @returns The rows of the page, how many tasks match, and whether that count is a lower bound.
 */
export async function listTaskRows(
  client: QueueContext,
  filter: TaskFilter,
  { offset, limit }: PageRange,
): Promise<TaskPage> {
  const wants = (status: string) => !filter.status || filter.status === status;
  const found: TaskRow[] = [];
  let capped = false;
  const collect = ({ rows, full }: { rows: TaskRow[]; full: boolean }) => {
    found.push(...rows);
    capped ||= full;
  };
  if (wants("running") || wants("queued")) {
    const fromStreams = await streamRows(client, filter.priority);
    collect(fromStreams);
    // Running tasks first, then the queue in the order it will run.
    found.sort((a, b) => Number(b.status === "running") - Number(a.status === "running"));
  }
  if (wants("scheduled")) collect(await delayedRows(client));
  if (wants("waiting")) collect(await waitingRows(client));
  if ((wants("done") || wants("failed")) && !filter.priority) collect(await resultRows(client));
  const matching = found.filter((row) =>
    (!filter.fn || row.fnName === filter.fn) &&
    (!filter.priority || row.priority === filter.priority) &&
    (!filter.status || row.status === filter.status ||
      (filter.status === "failed" && row.result?.success === false))
  );
  return { rows: matching.slice(offset, offset + limit), total: matching.length, capped };
}

const FIELDS = [
  TASK_FIELD.fn,
  TASK_FIELD.priority,
  TASK_FIELD.runner,
  TASK_FIELD.created,
  TASK_FIELD.tries,
  TASK_FIELD.due,
  TASK_FIELD.progress,
] as const;

/** Rows of tasks with these ids, from their hashes; ids without a hash are left out. */
async function hashRows(
  client: QueueContext,
  ids: string[],
  status: (fields: (string | null)[]) => string,
  due: (i: number) => number | null = () => null,
): Promise<TaskRow[]> {
  const pipeline = client.redis.pipeline();
  // Buffers: a progress value may be binary (signed, or a binary codec).
  for (const id of ids) pipeline.hmgetBuffer(client.keys.task(id), ...FIELDS);
  const replies = await pipeline.exec() ?? [];
  const rows: TaskRow[] = [];
  for (const [i, [error, reply]] of replies.entries()) {
    if (error) throw error;
    const buffers = reply as (Buffer | null)[];
    const fields = buffers.map((b) => b?.toString() ?? null);
    const [fn, priority, , created, tries, dueField] = fields;
    if (!fn) continue;
    const rowStatus = status(fields);
    const progress = buffers[6];
    rows.push({
      id: ids[i],
      fnName: fn,
      status: rowStatus,
      priority: priority ?? client.priorities[0],
      createdTime: Number(created ?? 0),
      tries: Number(tries ?? 0),
      due: due(i) ?? (dueField ? Number(dueField) : null),
      result: null,
      ...(rowStatus === "running" && progress
        ? { progress: await openProgress(client, ids[i], progress) }
        : {}),
    });
  }
  return rows;
}

async function streamRows(client: QueueContext, priority: string | undefined) {
  const rows: TaskRow[] = [];
  let full = false;
  for (const p of priority ? [priority] : client.prioritiesHighFirst) {
    let from = "-";
    let examined = 0;
    while (examined < EXAMINE_LIMIT) {
      const entries = await client.redis.xrange(client.keys.stream(p), from, "+", "COUNT", BATCH);
      examined += entries.length;
      const ids = entries.map(([, fields]) => entryTaskId(fields)).filter(Boolean);
      rows.push(...await hashRows(client, ids, (f) => (f[2] ? "running" : "queued")));
      if (entries.length < BATCH) break;
      from = "(" + entries[entries.length - 1][0];
    }
    if (examined >= EXAMINE_LIMIT) full = true;
  }
  return { rows, full };
}

function entryTaskId(fields: string[]): string {
  const i = fields.indexOf(STREAM_FIELD.taskId);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] ?? "" : "";
}

async function delayedRows(client: QueueContext) {
  const rows: TaskRow[] = [];
  for (let start = 0; start < EXAMINE_LIMIT; start += BATCH) {
    const reply = await client.redis.zrange(
      client.keys.delayed,
      start,
      start + BATCH - 1,
      "WITHSCORES",
    );
    const ids = reply.filter((_, i) => i % 2 === 0);
    const scores = reply.filter((_, i) => i % 2 === 1).map(Number);
    rows.push(...await hashRows(client, ids, () => "scheduled", (i) => scores[i]));
    if (ids.length < BATCH) return { rows, full: false };
  }
  return { rows, full: true };
}

async function waitingRows(client: QueueContext) {
  const ids: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await client.redis.sscan(client.keys.waiting, cursor, "COUNT", BATCH);
    ids.push(...found);
    cursor = next;
  } while (cursor !== "0" && ids.length < EXAMINE_LIMIT);
  const rows = await hashRows(client, [...new Set(ids)], () => "waiting");
  rows.sort((a, b) => a.createdTime - b.createdTime);
  return { rows, full: cursor !== "0" };
}

/** Stored results, newest first. */
async function resultRows(client: QueueContext) {
  const prefix = client.keys.result("");
  const ids = new Set<string>();
  let full = false;
  let calls = 0;
  for await (const keys of scanQueue(client, client.keys.pattern(`${KEY.result}*`))) {
    for (const key of keys) ids.add(key.slice(prefix.length));
    if (ids.size >= RESULT_LIMIT || ++calls >= EXAMINE_LIMIT / 100) {
      full = true;
      break;
    }
  }
  const unique = [...ids].slice(0, RESULT_LIMIT);
  const pipeline = client.redis.pipeline();
  for (const id of unique) pipeline.getBuffer(client.keys.result(id));
  const replies = await pipeline.exec() ?? [];
  const rows: TaskRow[] = [];
  for (let i = 0; i < unique.length; i++) {
    const blob = replies[i][1] as Buffer | null;
    if (!blob) continue;
    let result: TaskResult<unknown>;
    try {
      result = makeTaskResult(await client.envelope.openResult(unique[i], blob));
    } catch {
      continue; // written with another secret or codec: not ours to show
    }
    rows.push({
      id: unique[i],
      fnName: result.fnName,
      status: "done",
      priority: null,
      createdTime: result.createdTime,
      tries: result.tries,
      due: null,
      result,
    });
  }
  rows.sort((a, b) => b.result!.finishTime - a.result!.finishTime);
  return { rows, full };
}
