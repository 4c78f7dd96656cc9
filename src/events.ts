/**
 * The events of a queue as `worker.events()` yields them: one type per kind of change, told
 * apart by `type`, and the options of the reader.
 *
 * @module
 */

/** What every event has. */
export interface EventBase {
  /**
   * The event's id in the queue's events stream (`"1700000000000-0"`): pass it as `since` to
   * resume after this event.
   */
  readonly id: string;
  /** When it happened (Redis's clock, to the millisecond). */
  readonly time: Date;
}

/** What every event about one task has. */
export interface TaskEventBase extends EventBase {
  /** The task's id. */
  readonly taskId: string;
  /** The name of its function. */
  readonly fnName: string;
}

/** A task was stored: queued, delayed or waiting for its dependencies. */
export interface EnqueuedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "enqueued";
  /** When it is due, for a task enqueued to run later. */
  readonly due?: Date;
}

/** An enqueue was stood for by the task already holding its deduplication key. */
export interface DeduplicatedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "deduplicated";
  /** The id of the task that stands for it. */
  readonly standIn: string;
}

/** A try started, or (`reclaimed`) a try whose worker died was taken over by another worker. */
export interface StartedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "started" | "reclaimed";
  /** The try (1-based). */
  readonly tries: number;
  /** The worker running it. */
  readonly workerId: string;
  /** For `reclaimed`: the worker whose try never finished. */
  readonly previousWorkerId?: string;
}

/** A running task reported progress (`taskContext().progress(value)`). */
export interface ProgressEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "progress";
  /** The try (1-based). */
  readonly tries: number;
  /** The worker that ran the try. */
  readonly workerId: string;
  /** The value reported, decoded with the worker's codec. */
  readonly progress: unknown;
}

/** A try ended in a retry. */
export interface RetriedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "retried";
  /** The try that ended. */
  readonly tries: number;
  /** The worker that ran the try. */
  readonly workerId: string;
  /** Why: the error it threw, or the `StreaqRetry`'s message. */
  readonly error: string;
  /** When the next try is due. */
  readonly due: Date;
  /** How long after this event the next try is due (ms). */
  readonly delay: number;
}

/** A task succeeded. */
export interface CompletedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "completed";
  /** The try (1-based). */
  readonly tries: number;
  /** The worker that ran the try. */
  readonly workerId: string;
}

/**
 * A task failed for good (`failed`), or was aborted (`aborted`; a task aborted before it
 * started has no `tries` nor `workerId`).
 */
export interface FailedEvent extends TaskEventBase {
  /** What happened. */
  readonly type: "failed" | "aborted";
  /** The try (1-based). */
  readonly tries?: number;
  /** The worker that ran the try. */
  readonly workerId?: string;
  /** The error, as `name: message`, cut at 1,000 characters. */
  readonly error: string;
}

/** The queue was paused or resumed (emitted by flow control, where it is used). */
export interface QueueStateEvent extends EventBase {
  /** What happened. */
  readonly type: "paused" | "resumed";
}

/**
 * The reader fell behind the stream's cap: events after `missedAfter` up to `id` were trimmed
 * before it read them. Reading goes on with the oldest event kept; a consumer that keeps state
 * (a dashboard) should reload it.
 */
export interface GapEvent extends EventBase {
  /** What happened. */
  readonly type: "gap";
  /** The id of the last event delivered (or the `since` asked for). */
  readonly missedAfter: string;
}

/** An event of a queue, told apart by `type`. */
export type StreaqEvent =
  | EnqueuedEvent
  | DeduplicatedEvent
  | StartedEvent
  | ProgressEvent
  | RetriedEvent
  | CompletedEvent
  | FailedEvent
  | QueueStateEvent
  | GapEvent;

/** The type of an event. */
export type StreaqEventType = StreaqEvent["type"];

/**
 * The events of the types `T`: `EventOfType<"completed" | "failed">` is
 * `CompletedEvent | FailedEvent` (`FailedEvent` also covers `"aborted"`).
 */
export type EventOfType<T extends StreaqEventType> = StreaqEvent extends infer E
  ? E extends { readonly type: infer K } ? [Extract<K, T>] extends [never] ? never : E
  : never
  : never;

/** Every event type, in the order a task meets them. */
export const EVENT_TYPES: readonly StreaqEventType[] = Object.freeze(
  [
    "enqueued",
    "deduplicated",
    "started",
    "reclaimed",
    "progress",
    "retried",
    "completed",
    "failed",
    "aborted",
    "paused",
    "resumed",
    "gap",
  ] as const,
);

/**
 * Options of `worker.events()`.
 *
 * @typeParam T The types asked for in `types`.
 */
export interface EventsOptions<T extends StreaqEventType = StreaqEventType> {
  /**
   * Where to start: `"now"` (only events after the call), `"start"` (the oldest event kept),
   * an event's `id` (the events after it: how a reader resumes), or a `Date` (the events at or
   * after that time).
   *
   * @default {"now"}
   */
  since?: string | Date;
  /** Ends the reading: the loop ends and the reader's connection is closed. */
  signal?: AbortSignal;
  /**
   * Only these types (a `gap` is always delivered).
   *
   * @default {every type}
   */
  types?: readonly T[];
}

/** The `events` worker option as an object. */
export interface EventsStreamOptions {
  /**
   * About how many events the stream keeps (`XADD MAXLEN ~`: Redis trims whole nodes, so it
   * may hold a hundred or so more). An integer ≥ 1.
   *
   * @default {10000}
   */
  maxLen?: number;
}
