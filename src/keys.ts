/**
 * Every Redis key and channel of a queue is built here, and only here. Each carries the hash
 * tag `{queueName}` so that all keys of one queue live in one Cluster slot (scripts touching
 * several of them stay legal) while different queues spread over the shards.
 *
 * @module
 */

/** The consumer group every worker of a queue reads the priority streams through. */
export const CONSUMER_GROUP = "workers";

/** Key and channel names of one queue. */
export class Keys {
  /** `streaq:{queueName}:`, the prefix of everything below. */
  readonly prefix: string;
  /** Sorted set of delayed, scheduled and backing-off task ids, scored by due time (ms). */
  readonly delayed: string;
  /** Set of ids of repeating tasks: cron jobs and tasks enqueued with a crontab schedule. */
  readonly schedules: string;
  /** Set of ids of tasks waiting for their dependencies. */
  readonly waiting: string;
  /** Set of task ids whose abort was requested while they were queued or running. */
  readonly aborting: string;
  /** Channel on which abort requests reach running workers. */
  readonly abortChannel: string;
  /** Channel that tells workers an earlier delayed task exists (payload: due time in ms). */
  readonly wakeChannel: string;
  /** Prefix of the per-task result channels; the message is the encoded result. */
  readonly doneChannelPrefix: string;
  /** Prefix of task hashes, used by scripts that learn task ids from a stream. */
  readonly taskPrefix: string;

  constructor(readonly queueName: string) {
    this.prefix = `streaq:{${queueName}}:`;
    this.delayed = this.prefix + "delayed";
    this.aborting = this.prefix + "aborting";
    this.schedules = this.prefix + "schedules";
    this.waiting = this.prefix + "waiting";
    this.abortChannel = this.prefix + "abort";
    this.wakeChannel = this.prefix + "wake";
    this.doneChannelPrefix = this.prefix + "done:";
    this.taskPrefix = this.prefix + "task:";
  }

  /** The stream holding queued tasks of one priority. */
  stream(priority: string): string {
    return `${this.prefix}stream:${priority}`;
  }

  /** Hash of a task not yet finished: function name, payload, priority, tries, times. */
  task(id: string): string {
    return this.taskPrefix + id;
  }

  /**
   * The dependencies a waiting task still waits for. The task-graph Lua (`src/graph.ts`) builds
   * this key, `dependents`, `task`, `result`, `stream`, `waiting` and `delayed` from the prefix
   * the same way.
   */
  deps(id: string): string {
    return `${this.prefix}deps:${id}`;
  }

  /** The tasks waiting for this one. */
  dependents(id: string): string {
    return `${this.prefix}dependents:${id}`;
  }

  /** The encoded result of a finished task, kept for its `ttl`. */
  result(id: string): string {
    return `${this.prefix}result:${id}`;
  }

  /** Channel on which the result of one task is published when it finishes. */
  doneChannel(id: string): string {
    return this.doneChannelPrefix + id;
  }

  /** Lock held by the running instance of a `unique` task. */
  lock(fnName: string): string {
    return `${this.prefix}lock:${fnName}`;
  }

  /** Health record of a running worker; it expires when the worker stops heart-beating. */
  health(workerId: string): string {
    return `${this.prefix}health:${workerId}`;
  }

  /** Outcome counts of one minute (minutes since the epoch), kept two hours for dashboards. */
  metrics(minute: number): string {
    return `${this.prefix}metrics:${minute}`;
  }

  /** Pattern matching every key of this queue (for SCAN). */
  pattern(kind = "*"): string {
    return `streaq:{${escapeGlob(this.queueName)}}:${kind}`;
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => "\\" + c);
}
