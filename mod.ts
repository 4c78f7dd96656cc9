/**
 * streaq: a fast, fully typed, distributed task queue for Deno, backed by Redis streams.
 *
 * Register async functions as tasks on a {@linkcode Worker}, run the worker in one or more
 * processes, and enqueue tasks with typed arguments from anywhere: an API server, a Deno
 * Deploy app, a script. Tasks survive crashed workers (at-least-once execution), can be
 * retried, delayed, scheduled, prioritised, aborted, and leave results with a TTL.
 *
 * @example A worker and a client in one file
 * ```ts
 * import { taskContext, Worker } from "@streaq/streaq";
 *
 * export const worker = new Worker({ redisUrl: "redis://localhost:6379" });
 *
 * export const fetchLen = worker.task(async function fetchLen(url: string): Promise<number> {
 *   const res = await fetch(url, { signal: taskContext().signal });
 *   return (await res.text()).length;
 * }, { timeout: 5_000 });
 *
 * if (import.meta.main) {
 *   // In a worker process: `await worker.run();`
 *   // In a client process:
 *   const task = await fetchLen.enqueue("https://example.com");
 *   const result = await task.result({ timeout: 10_000 });
 *   if (result.success) console.log(result.result);
 *   await worker.close();
 * }
 * ```
 *
 * @module
 */

export { Worker } from "./src/worker.ts";
export type { Handles, RunOptions } from "./src/worker.ts";
export type { Middleware, MiddlewareHandle, Next } from "./src/middleware.ts";
export type { WorkerCounters } from "./src/run/execute.ts";
export type {
  AbortOptions,
  CronOptions,
  DedupeOptions,
  GroupLimit,
  RedisClient,
  RedisClusterOptions,
  RedisConnectionOptions,
  RedisNodeAddress,
  RedisSentinelOptions,
  ResultOptions,
  RetryFailedOptions,
  StartOptions,
  TaskLimit,
  TaskOptions,
  WorkerOptions,
} from "./src/options.ts";
export type {
  BackoffFunction,
  ErrorClass,
  ExponentialBackoff,
  FixedBackoff,
  RetryBackoff,
  RetryJitter,
  RetryPolicy,
} from "./src/retry_options.ts";
export type { ScheduleInfo } from "./src/client/schedule.ts";
export type {
  CompletedEvent,
  DeduplicatedEvent,
  EnqueuedEvent,
  EventBase,
  EventOfType,
  EventsOptions,
  EventsStreamOptions,
  FailedEvent,
  GapEvent,
  ProgressEvent,
  QueueStateEvent,
  RetriedEvent,
  StartedEvent,
  StreaqEvent,
  StreaqEventType,
  TaskEventBase,
} from "./src/events.ts";
export type {
  FunctionMetrics,
  OutcomeCounts,
  QueueMetrics,
  TaskCountsMetrics,
  TimingPercentiles,
  WorkerMetrics,
} from "./src/client/queue_metrics.ts";
export type { PriorityCounts } from "./src/client/task_counts.ts";
export { RegisteredTask } from "./src/registered_task.ts";
export type { ResolvedTaskOptions, TaskFunction } from "./src/registered_task.ts";
export { Task } from "./src/client/enqueue.ts";
export { TaskHandle } from "./src/task_handle.ts";
export { taskContext } from "./src/context.ts";
export type { TaskContext } from "./src/context.ts";
export { DependencyResults } from "./src/dependencies.ts";
export type { DependencyResult } from "./src/dependencies.ts";
export { TaskStatus } from "./src/result.ts";
export type {
  TaskFailure,
  TaskInfo,
  TaskLogLine,
  TaskResult,
  TaskResultBase,
  TaskSuccess,
} from "./src/result.ts";
export type { ListOptions, QueueSizeOptions } from "./src/client/inspect.ts";
export type { CleanOptions } from "./src/client/clean.ts";
export type { ObliterateOptions } from "./src/client/obliterate.ts";
export type {
  FunctionLimit,
  GroupsUse,
  PausedFunction,
  PauseOptions,
  PauseState,
} from "./src/client/pause.ts";
export { StreaqCancelled, StreaqError, StreaqRateLimited, StreaqRetry } from "./src/errors.ts";
export type { StreaqRetryOptions } from "./src/errors.ts";
export type { Deserializer, Encoded, Serializer } from "./src/payload/codec.ts";
export type { LogFormat, Logger, LogLevel } from "./src/logger.ts";
