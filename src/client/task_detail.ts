/**
 * Everything the dashboard shows about one task: its info while it waits or runs (with the
 * worker running it and why its last try did not finish), or its stored result. Part of the
 * dashboard's read API (`queue_reads.ts`).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { infoById, storedResult } from "./inspect.ts";
import { TASK_FIELD } from "../redis/keys.ts";
import type { TaskInfo, TaskLogLine, TaskResult } from "../result.ts";
import { logsById, parseLogLines } from "./task_logs.ts";

/** One task, unfinished or finished. */
export interface TaskDetail {
  readonly id: string;
  /** Set while the task waits or runs. */
  readonly info: TaskInfo | null;
  /** Set once it finished, while its result is kept. */
  readonly result: TaskResult<unknown> | null;
  /** Why the stored result could not be read (another secret or codec), if so. */
  readonly unreadable: string | null;
  /** When it last entered its stream (ms since the epoch). */
  readonly enqueueTime: number | null;
  /** The worker running it. */
  readonly workerId: string | null;
  /** Why its previous try did not finish (a retry or a hand-back). */
  readonly lastReason: string | null;
  /** Whether its abort was requested and is not carried out yet. */
  readonly aborting: boolean;
  /** Whether it failed and what it needs to rerun is kept (`Worker.retryById` would queue it). */
  readonly retryable: boolean;
  /** The lines it wrote with `taskContext().log()`, oldest first. */
  readonly logs: TaskLogLine[];
}

/** Task ids longer than this are not looked up. */
const MAX_ID_LENGTH = 512;

/**
 * Reads one task: its info, a few more fields of its hash and its log lines while it waits or
 * runs (two round trips), else its stored result and its log lines (one, sent together; two for
 * a failure, which may be kept to rerun).
 *
 * @param client The queue's context.
 * @param id The task's id; ids longer than 512 characters are not looked up.
 * @returns The task, or null when it is unknown (or finished and its result is gone).
 */
export async function loadTask(client: QueueContext, id: string): Promise<TaskDetail | null> {
  if (id.length === 0 || id.length > MAX_ID_LENGTH) return null;
  const info = await infoById(client, id);
  if (info) {
    const pipeline = client.redis.pipeline();
    pipeline.hmget(
      client.keys.task(id),
      TASK_FIELD.entered,
      TASK_FIELD.runner,
      TASK_FIELD.lastReason,
    );
    pipeline.sismember(client.keys.aborting, id);
    pipeline.lrange(client.keys.logs(id), 0, -1);
    const [[, fields], [, aborting], [, logs]] = await pipeline.exec() ?? [];
    const [entered, run, last] = fields as (string | null)[];
    return {
      id,
      info,
      result: null,
      unreadable: null,
      enqueueTime: entered ? Number(entered) : null,
      workerId: run || null,
      lastReason: last || null,
      aborting: aborting === 1,
      retryable: false,
      logs: parseLogLines(logs as string[]),
    };
  }
  const [logs, { result, unreadable }] = await Promise.all([
    logsById(client, id),
    storedResult(client, id).then(
      (stored) => ({ result: stored, unreadable: null }),
      (error) => ({ result: null, unreadable: (error as Error)?.message ?? String(error) }),
    ) as Promise<{ result: TaskResult<unknown> | null; unreadable: string | null }>,
  ]);
  if (!result && unreadable === null) return null;
  const retryable = result !== null && !result.success &&
    await client.redis.exists(client.keys.failed(id)) === 1;
  return {
    id,
    info: null,
    result,
    unreadable,
    enqueueTime: result?.enqueueTime ?? null,
    workerId: result?.workerId || null,
    lastReason: null,
    aborting: false,
    retryable,
    logs,
  };
}
