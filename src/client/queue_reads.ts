/**
 * The read API of one queue, for the dashboard and `streaq status`: task rows, counts, one
 * task's detail, workers, schedules and per-minute metrics, as plain typed records. Readers go
 * through it and never spell a key, a task-hash field or a Lua script; each read is the same
 * number of round trips as before it moved here.
 *
 * Internal: not exported from `mod.ts` or `src/ui/mod.ts`.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { WorkerLogger } from "../logger.ts";
import type { TaskInfo } from "../result.ts";
import { type MinuteCounts, readMetrics } from "../run/metrics.ts";
import type { HealthRecord } from "../run/heartbeat.ts";
import { infoById } from "./inspect.ts";
import { hasEventsStream, latestEventId, readEvents } from "./events.ts";
import type { EventsOptions, StreaqEvent } from "../events.ts";
import { listSchedules, type ScheduleInfo } from "./schedule.ts";
import type { QueueCounts } from "./task_counts.ts";
import { countAllShards } from "../shards/sum_counts.ts";
import {
  type QueueMetrics,
  type QueueSnapshot,
  readQueueMetrics,
  readQueueSnapshot,
  readWorkerMetrics,
  type WorkerMetrics,
} from "./queue_metrics.ts";
import { loadTask, type TaskDetail } from "./task_detail.ts";
import { listTaskRows, type PageRange, type TaskFilter, type TaskPage } from "./task_rows.ts";
import { listWorkers, type ListWorkersOptions } from "./worker_health.ts";
import { type FunctionLimit, type PauseState, readLimits, readPauseState } from "./pause.ts";
import {
  type FindRunningOptions,
  findRunningTasks,
  type PriorityStatus,
  readStreamSizes,
  type StreamSizes,
} from "./stream_sizes.ts";

export type { MinuteCounts } from "../run/metrics.ts";
export type { HealthRecord } from "../run/heartbeat.ts";
export type { ScheduleInfo } from "./schedule.ts";
export type {
  FunctionMetrics,
  OutcomeCounts,
  QueueMetrics,
  QueueSnapshot,
  TaskCountsMetrics,
  TimingPercentiles,
  WorkerMetrics,
} from "./queue_metrics.ts";
export type { PriorityCounts, QueueCounts } from "./task_counts.ts";
export type { TaskDetail } from "./task_detail.ts";
export { LIST_STATUSES } from "./task_rows.ts";
export type { PageRange, TaskFilter, TaskPage, TaskRow } from "./task_rows.ts";
export type { ListWorkersOptions } from "./worker_health.ts";
export type { FunctionLimit, PausedFunction, PauseState } from "./pause.ts";
export { describeLimit } from "./pause.ts";
export type { FindRunningOptions, PriorityStatus, StreamSizes } from "./stream_sizes.ts";

/**
 * Reads of one queue, over its `QueueContext`. Every method reads; none changes the queue.
 *
 * @example Counting a queue's tasks
 * ```ts ignore
 * const reads = new QueueReads(context);
 * const counts = await reads.counts();
 * console.log(`${counts.queued} queued, ${counts.running} running`);
 * ```
 */
export class QueueReads {
  readonly #context: QueueContext;

  /**
   * Reads through `context`, the queue's context (its connections, keys, priorities and codec).
   *
   * @param context The context of the queue to read.
   */
  constructor(context: QueueContext) {
    this.#context = context;
  }

  /** The queue's name. */
  get queueName(): string {
    return this.#context.keys.queueName;
  }

  /** The queue's priorities, lowest first. */
  get priorities(): readonly string[] {
    return this.#context.priorities;
  }

  /** Where a reader reports its own failures: the worker's logger. */
  get logger(): WorkerLogger {
    return this.#context.logger;
  }

  /**
   * The queue's clock: the worker's `clock` option, `Date.now` by default.
   *
   * @returns Now, in ms since the epoch.
   */
  now(): number {
    return this.#context.now();
  }

  /**
   * Counts the queue's tasks per status, and per priority (two reads in parallel).
   *
   * @returns The counts; see {@linkcode QueueCounts}.
   */
  counts(): Promise<QueueCounts> {
    return countAllShards(this.#context);
  }

  /**
   * Lists the tasks matching `filter`, one page of them.
   *
   * @param filter The function, status and priority to match; absent fields match everything.
   * @param range Where the page starts among the matching tasks, and its size.
   * @returns The page's rows, how many tasks match, and whether that count is a lower bound.
   */
  taskRows(filter: TaskFilter, range: PageRange): Promise<TaskPage> {
    return listTaskRows(this.#context, filter, range);
  }

  /**
   * Reads the info of an unfinished task (its arguments decoded).
   *
   * @param id The task's id.
   * @returns Its info, or null when it finished or is unknown.
   */
  async taskInfo(id: string): Promise<TaskInfo | null> {
    return await infoById(await this.#shardOf(id), id);
  }

  /**
   * Reads everything shown about one task, unfinished or finished.
   *
   * @param id The task's id.
   * @returns The task, or null when it is unknown (or finished and its result is gone).
   */
  async task(id: string): Promise<TaskDetail | null> {
    return await loadTask(await this.#shardOf(id), id);
  }

  /** The context of the shard holding task `id` (the queue's own when it is not sharded). */
  #shardOf(id: string): Promise<QueueContext> {
    return this.#context.shards?.forId(id) ?? Promise.resolve(this.#context);
  }

  /**
   * Reads the health records of the queue's live workers.
   *
   * @param options How far to scan for health keys.
   * @returns The records, sorted by worker id.
   */
  workers(options?: ListWorkersOptions): Promise<HealthRecord[]> {
    return listWorkers(this.#context, options);
  }

  /**
   * Lists the queue's repeating tasks (cron jobs and crontab schedules).
   *
   * @returns The schedules, soonest first.
   */
  schedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this.#context);
  }

  /**
   * Reads the outcome counts of the last `count` minutes, in one round trip.
   *
   * @param count How many minutes, the current one last.
   * @param now The time the current minute is taken from (ms since the epoch).
   * @returns The minutes, oldest first; minutes without data count zero.
   */
  minutes(count: number, now: number): Promise<MinuteCounts[]> {
    return readMetrics(this.#context, count, now);
  }

  /**
   * Reads the queue's metrics: counts, live workers and the last hour's outcomes.
   *
   * @returns The metrics, as `worker.metrics()` returns them.
   */
  metrics(): Promise<QueueMetrics> {
    return readQueueMetrics(this.#context);
  }

  /**
   * Reads the queue's metrics and the minutes of the last hour they add up: what the overview
   * and `streaq status` show, so that their numbers agree.
   *
   * @param options How far to scan for the workers' health keys.
   * @returns The metrics, and the last hour by minute.
   */
  snapshot(options?: ListWorkersOptions): Promise<QueueSnapshot> {
    return readQueueSnapshot(this.#context, options);
  }

  /**
   * Reads the live workers as the metrics describe them: what the workers page shows.
   *
   * @param options How far to scan for the workers' health keys.
   * @returns The workers, sorted by id.
   */
  workerMetrics(options?: ListWorkersOptions): Promise<WorkerMetrics[]> {
    return readWorkerMetrics(this.#context, options);
  }

  /**
   * Whether the queue has an events stream (a worker with the `events` option wrote to it).
   *
   * @returns True when it exists.
   */
  hasEvents(): Promise<boolean> {
    return hasEventsStream(this.#context);
  }

  /**
   * The id of the queue's newest event, `"0-0"` when it has none: a reader given it as `since`
   * reads what happens from now on, however late it starts.
   *
   * @returns The id.
   */
  latestEventId(): Promise<string> {
    return latestEventId(this.#context);
  }

  /**
   * The queue's events, as `worker.events()` yields them, on a connection of their own.
   *
   * @param options Where to start, which types, and the signal that ends the reading.
   * @returns The events.
   */
  events(options: EventsOptions): AsyncGenerator<StreaqEvent, void, undefined> {
    return readEvents(this.#context, options);
  }

  /**
   * Reads the size of each priority's stream and of the delayed set, in one round trip.
   *
   * @returns The streams from the highest priority to the lowest, and the delayed count.
   */
  streamSizes(): Promise<StreamSizes> {
    return readStreamSizes(this.#context);
  }

  /**
   * Reads the pauses in force: the whole queue's, and the paused functions with how many of
   * their tasks workers have set aside.
   *
   * @returns The pauses, as `worker.paused()` returns them.
   */
  pauses(): Promise<PauseState> {
    return readPauseState(this.#context);
  }

  /**
   * Reads the concurrency limits in force, with the slots taken and the tasks waiting.
   *
   * @returns The limited functions, as `worker.limits()` returns them.
   */
  limits(): Promise<FunctionLimit[]> {
    return readLimits(this.#context);
  }

  /**
   * Finds the first running tasks, highest priority first, among the oldest deliveries.
   *
   * @param sizes The streams as {@linkcode QueueReads.streamSizes} read them.
   * @param options How many tasks to return, and how many deliveries to look at.
   * @returns The info of the running tasks found.
   */
  runningTasks(
    sizes: readonly PriorityStatus[],
    options: FindRunningOptions,
  ): Promise<TaskInfo[]> {
    return findRunningTasks(this.#context, sizes, options);
  }
}
