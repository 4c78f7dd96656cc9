/**
 * Every Redis key and channel of a queue is named here, and only here: built by {@linkcode Keys},
 * or, in the Lua scripts that build keys from the queue's prefix, from {@linkcode KEY}. Each carries the hash
 * tag `{queueName}` so that all keys of one queue live in one Cluster slot (scripts touching
 * several of them stay legal) while different queues spread over the shards.
 *
 * @module
 */

/** The consumer group every worker of a queue reads the priority streams through. */
export const CONSUMER_GROUP = "workers";

/**
 * What follows the queue's prefix in each kind of key: `streaq:{queue}:` + part (+ an id, a
 * priority, a name). {@linkcode Keys} builds keys from these, and so do the Lua scripts that
 * build keys from the prefix, by interpolating them: `P .. '${KEY.task}' .. id`.
 */
export const KEY = {
  /** Hash of a task not yet finished, by task id. */
  task: "task:",
  /** Stream of queued tasks, by priority. */
  stream: "stream:",
  /** Encoded result of a finished task, by task id. */
  result: "result:",
  /** Hash of a task that failed for good, kept beside its result to rerun it, by task id. */
  failed: "failed:",
  /** Set of the dependencies a waiting task still waits for, by task id. */
  deps: "deps:",
  /** Set of the tasks waiting for a task, by task id. */
  dependents: "dependents:",
  /**
   * List of the log lines a task wrote (`taskContext().log()`), by task id: the newest
   * `TASK_LOG_LINES`, each `<ms> <try> <text>`; it expires with the task's result.
   */
  logs: "logs:",
  /** Channel of a task's outcome, by task id. */
  done: "done:",
  /** Lock of the running instance of a unique task, by function name. */
  lock: "lock:",
  /**
   * Deduplication key of a debounce (`dedupe` start option, mode `debounce`), by
   * function name and key separated by a space (neither may contain one): holds the id of the
   * task that stands for later enqueues with that key, and expires with the window.
   */
  dedupe: "dedupe:",
  /**
   * Hash of the deduplication keys in `pending` and `throttle` modes of a function, by function
   * name: key → id of the task that stands for later enqueues with that key (`pending`: while the
   * task's hash exists), or `<until> <id>` (`throttle`: until then, ms on Redis's clock). A field
   * stays after it stopped standing, until its key is used again or a worker's sweep removes it
   * (`src/run/dedupe_sweep.ts`).
   */
  dedupePending: "dedupes:",
  /** Health record of a running worker, by worker id. */
  health: "health:",
  /** Outcome counts of one minute, by minutes since the epoch. */
  metrics: "metrics:",
  /**
   * Sorted set of the stored results of a function with `keepResults`, by function name: task
   * ids scored by finish time (ms), trimmed to the newest `keepResults` by the completion script.
   */
  kept: "kept:",
  /** Sorted set of delayed, scheduled and backing-off task ids, scored by due time (ms). */
  delayed: "delayed",
  /** Set of ids of repeating tasks. */
  schedules: "schedules",
  /**
   * Written (as '1') with the first dependents set of the queue (on this shard) and kept: while
   * it and the waiting set are missing no task has dependents, and a completion looks for none
   * (one EXISTS a call, not one per finished task, nor a key name per task). The waiting set
   * covers tasks linked by a version before this flag.
   */
  linked: "linked",
  /** Set of ids of tasks waiting for their dependencies. */
  waiting: "waiting",
  /** Set of task ids whose abort was requested while they were queued or running. */
  aborting: "aborting",
  /** Channel of abort requests. */
  abort: "abort",
  /** Channel that wakes schedulers for an earlier delayed task. */
  wake: "wake",
  /**
   * Stream of the queue's events (enqueued, started, completed, ...), capped with `MAXLEN ~`;
   * written only by workers with the `events` option (`src/redis/lua/events.ts`), fields in
   * {@linkcode EVENT_FIELD}.
   */
  events: "events",
  /**
   * Hash of the flow control in force: field {@linkcode PAUSED_QUEUE} while the whole queue is
   * paused, {@linkcode PAUSED_FUNCTION} + a function name while that function is (each value:
   * when the pause began, ms; `src/client/pause.ts`), and {@linkcode LIMIT_FUNCTION} + a function
   * name for a function's concurrency limit (`src/run/flow_limits.ts`), and the rate limits,
   * run-time blocks and group slots below. The fetch and completion scripts read it once per call.
   */
  flow: "flow",
  /**
   * List of the ids of a function's tasks that a worker claimed and set aside (oldest first), by
   * function name: while the function is paused, or all its concurrency slots are taken. They go
   * back to their streams when it is resumed, or one per slot freed.
   */
  held: "held:",
  /**
   * Sorted set of the ids of a concurrency-limited function's tasks that hold one of its slots
   * (claimed, running or read ahead, until their outcome is written), scored by claim time, by
   * function name.
   */
  active: "active:",
  /**
   * Sorted set of the recent starts of a rate-limited function (sliding window log), by function
   * name: one member per start, scored by its time (ms, Redis's clock), trimmed to the window.
   */
  starts: "starts:",
  /**
   * Sorted set of the groups of a grouped function that have tasks running, read ahead or waiting,
   * by function name: member the group key, score how many of its tasks hold a slot or wait
   * (`src/redis/lua/groups.ts`). Its size is the number of active groups; its top, the busiest.
   */
  groups: "groups:",
  /**
   * Sorted set of the ids of one group's tasks that hold one of the group's slots (claimed,
   * running or read ahead, or put back in their stream with the slot handed to them), by
   * function name and group key: `gactive:<function> <group>` (neither contains a space).
   */
  groupActive: "gactive:",
  /**
   * Sorted set of the recent starts of one group of a function with a per-group rate limit (sliding
   * window log), by function name and group key: `gstarts:<function> <group>`.
   */
  groupStarts: "gstarts:",
  /**
   * Sorted set of the groups of a function whose rate window is full, by function name: member the
   * group key, score when its window opens (ms, Redis's clock); the claim scripts hand those groups
   * their slots again then.
   */
  groupWake: "gwake:",
  /** Channel that tells workers the flow control changed (they re-read {@linkcode KEY.flow}). */
  flowChanged: "flowchanged",
  /**
   * The number of shards of a sharded queue (`shards` worker option), on shard 0 only: written by
   * the first worker or enqueue of a queue with more than one shard, and checked by every other
   * (`src/shards/shards.ts`). Absent for a queue of one shard.
   */
  shards: "shards",
  /**
   * Stream of the outcomes of this shard's tasks that tasks on other shards wait for, on a sharded
   * queue: fields `x` (the task's id), `s` (the waiting shard) and `r` (its encoded result),
   * written by the completion script, relayed and deleted by workers (`src/shards/remote_deps.ts`).
   */
  outbox: "outbox",
  /**
   * A task of another shard that tasks of this shard wait for, by its id, on a sharded queue:
   * empty while it runs there, then its encoded result (for an hour) once relayed here.
   */
  mirror: "mirror:",
} as const;

/**
 * The member of a task's dependents set (`KEY.dependents`) that stands for the tasks of another
 * shard waiting for it: `shard <k>` (a task id holds no space, so no id is one).
 */
export const REMOTE_DEPENDENTS = "shard ";

/**
 * The hash tag of shard `shard` of queue `queueName`: the queue's name for shard 0 (today's
 * layout), `queueName{shard` for the others. A queue name holds no brace, so no other queue's
 * tag can be the same; Redis's tag ends at the first `}` after the first `{`, so the inner `{`
 * is part of it.
 */
export function shardTag(queueName: string, shard: number): string {
  return shard === 0 ? queueName : `${queueName}{${shard}`;
}

/** The field of {@linkcode KEY.flow} present while the whole queue is paused. */
export const PAUSED_QUEUE = "q";
/** Prefix of the fields of {@linkcode KEY.flow}: one per paused function, by name. */
export const PAUSED_FUNCTION = "f:";
/** Prefix of the fields of {@linkcode KEY.flow}: one per concurrency-limited function, by name. */
export const LIMIT_FUNCTION = "c:";
/**
 * Prefix of the fields of {@linkcode KEY.flow}: one per rate-limited function, by name; the value
 * is `<max> <duration>`.
 */
export const RATE_FUNCTION = "r:";
/**
 * Prefix of the fields of {@linkcode KEY.flow}: one per function held back by a rate limit met at
 * run time (`StreaqRateLimited`), by name; the value is until when (ms, Redis's clock).
 */
export const BLOCKED_FUNCTION = "u:";
/**
 * Prefix of the fields of {@linkcode KEY.flow}: one per function whose tasks carry group keys, by
 * name; the value is how many tasks of each group may hold a slot at once (the `groups.concurrency`
 * task option, 1 by default), followed by `<max> <duration>` with a rate limit per group. Written by the enqueue of a grouped task (if missing) and by the
 * workers that run the function when they start.
 */
export const GROUP_FUNCTION = "g:";

/**
 * The fields of a task's hash (`KEY.task` + id), the one record of a task from its enqueue until
 * it finishes, when the hash is deleted (a repeating task's hash stays for its next occurrence).
 * TypeScript reads them by these names, and the Lua scripts by these names interpolated:
 * `redis.call('HGET', key, '${TASK_FIELD.fn}')`. The stored names are short: every task
 * carries them.
 */
export const TASK_FIELD = {
  /** The registered name of the function it runs; written at enqueue. */
  fn: "fn",
  /** Its encoded (and, with a secret, signed) arguments; written at enqueue. */
  data: "data",
  /** Its priority; written at enqueue. */
  priority: "pri",
  /** When it was created (ms, the enqueuer's clock); written at enqueue. */
  created: "ct",
  /** When it entered its stream (ms): at enqueue, or when promoted or released by its dependencies; `expire` counts from it. */
  entered: "et",
  /** The due time of its current occurrence (ms), kept after it is promoted, for `maxScheduleDrift` and lateness. */
  scheduled: "at",
  /** Its due time (ms) while it waits in the delayed set; deleted when it is promoted. */
  due: "due",
  /** The tries started so far; each start (claim) writes it. */
  tries: "tries",
  /** The id of the worker running it now; written at its start, deleted when the try ends. */
  runner: "run",
  /** The encoded reason the last try ended in a retry, for the failure after `maxTries`. */
  lastReason: "last",
  /** The crontab of a repeating task; written at enqueue or cron registration. */
  crontab: "cron",
  /** The time zone of its crontab. */
  timeZone: "tz",
  /** The ids it runs after, space-separated; written at enqueue. */
  after: "after",
  /** How it is tied to its source: "pipe" (a pipeline stage) or "else" (a fallback). */
  link: "mode",
  /** The id of its source: the stage before it, or the task it is a fallback for. */
  source: "src",
  /** Present (1) while it waits for its dependencies; deleted when they are all settled. */
  waiting: "wait",
  /** Why it fails instead of running: a failed dependency's id, "cancel:<id>" or "unknown:<id>". */
  dependencyFailure: "depfail",
  /** The stored result of its source: a pipeline stage's input, a fallback's passthrough. */
  input: "input",
  /** Present (1) when a fallback passes its source's success on instead of running. */
  passthrough: "pass",
  /** Its latest reported progress, encoded like a result; written by `progress()` while it runs, at most once per window. */
  progress: "prog",
  /**
   * The trace context of its enqueue span: propagation headers (W3C `traceparent`, ...) as a
   * JSON object; written at enqueue only while OpenTelemetry is on (`src/_otel.ts`).
   */
  trace: "trace",
  /** Its group key (the `group` start option or task option); written at enqueue. */
  group: "grp",
  /** When it failed for good (ms): written in its kept record (`KEY.failed`) only. */
  failedTime: "ft",
} as const;

/**
 * The fields of a stream entry. An entry only points at its task: everything else is in the
 * task's hash, so an entry is written once (`XADD`) and never changed.
 */
export const STREAM_FIELD = {
  /** The id of the task it delivers; an entry without one (or with an empty one) is dropped. */
  taskId: "id",
} as const;

/**
 * The fields of an entry of the events stream (`KEY.events`). The entry's id gives its time (ms,
 * Redis's clock); a field a type does not use is absent. Short names: every event carries them.
 */
export const EVENT_FIELD = {
  /** The event's type (`EVENT_TYPE` in `src/redis/lua/events.ts`). */
  type: "e",
  /** The task's id. */
  taskId: "id",
  /** The task's function name. */
  fn: "fn",
  /** The try the event is about (1-based). */
  tries: "try",
  /** The worker that caused it: the one that started, finished, retried or reclaimed the task. */
  worker: "w",
  /** reclaimed: the worker whose try never finished. */
  previousWorker: "from",
  /** failed, aborted, retried: the error's message, or the retry's reason. */
  error: "err",
  /** retried, and enqueued for later: when it is due (ms, Redis's clock). */
  due: "due",
  /** progress: the encoded value, as the task hash's progress field holds it. */
  progress: "p",
  /** deduplicated: the id of the task standing for the one enqueued. */
  standIn: "by",
} as const;

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
  /**
   * Channel every result waiter subscribes to before its task's channel, and on which nothing
   * is published: while it has no subscriber, nobody waits for any result of the queue (on
   * this shard), and completions publish none. The result channels' prefix alone (task ids
   * are never empty).
   */
  readonly listenersChannel: string;
  /** Prefix of task hashes, used by scripts that learn task ids from a stream. */
  readonly taskPrefix: string;
  /** Stream of the queue's events, capped (see `KEY.events`). */
  readonly events: string;
  /** Hash of the flow control in force: pauses of the queue and functions, concurrency limits. */
  readonly flow: string;
  /** Channel on which workers hear that the pauses changed. */
  readonly flowChannel: string;

  /** The queue's hash tag on this shard (see {@linkcode shardTag}). */
  readonly tag: string;

  /**
   * Names the keys of one shard of a queue.
   *
   * @param queueName The queue.
   * @param shard Which shard (0 for an unsharded queue): its keys carry its own hash tag.
   */
  constructor(readonly queueName: string, readonly shard = 0) {
    this.tag = shardTag(queueName, shard);
    this.prefix = `streaq:{${this.tag}}:`;
    this.delayed = this.prefix + KEY.delayed;
    this.aborting = this.prefix + KEY.aborting;
    this.schedules = this.prefix + KEY.schedules;
    this.waiting = this.prefix + KEY.waiting;
    this.abortChannel = this.prefix + KEY.abort;
    this.wakeChannel = this.prefix + KEY.wake;
    this.doneChannelPrefix = this.prefix + KEY.done;
    this.listenersChannel = this.doneChannelPrefix;
    this.taskPrefix = this.prefix + KEY.task;
    this.events = this.prefix + KEY.events;
    this.flow = this.prefix + KEY.flow;
    this.flowChannel = this.prefix + KEY.flowChanged;
  }

  /** The stream holding queued tasks of one priority. */
  stream(priority: string): string {
    return this.prefix + KEY.stream + priority;
  }

  /** Hash of a task not yet finished: function name, payload, priority, tries, times. */
  task(id: string): string {
    return this.taskPrefix + id;
  }

  /** The dependencies a waiting task still waits for. */
  deps(id: string): string {
    return this.prefix + KEY.deps + id;
  }

  /** The tasks waiting for this one. */
  dependents(id: string): string {
    return this.prefix + KEY.dependents + id;
  }

  /** The log lines a task wrote, newest last; kept as long as its result. */
  logs(id: string): string {
    return this.prefix + KEY.logs + id;
  }

  /** The encoded result of a finished task, kept for its `ttl`. */
  result(id: string): string {
    return this.prefix + KEY.result + id;
  }

  /**
   * The hash of a task that failed for good, renamed from its task hash, kept as long as its
   * result: what a rerun puts back.
   */
  failed(id: string): string {
    return this.prefix + KEY.failed + id;
  }

  /** Channel on which the result of one task is published when it finishes. */
  doneChannel(id: string): string {
    return this.doneChannelPrefix + id;
  }

  /** Lock held by the running instance of a `unique` task. */
  lock(fnName: string): string {
    return this.prefix + KEY.lock + fnName;
  }

  /** Health record of a running worker; it expires when the worker stops heart-beating. */
  health(workerId: string): string {
    return this.prefix + KEY.health + workerId;
  }

  /** Outcome counts of one minute (minutes since the epoch), kept two hours for dashboards. */
  metrics(minute: number): string {
    return this.prefix + KEY.metrics + minute;
  }

  /** The stored results of a function with `keepResults`: task ids by finish time (ms). */
  kept(fnName: string): string {
    return this.prefix + KEY.kept + fnName;
  }

  /** The tasks of a paused or limited function that workers set aside, oldest first. */
  held(fnName: string): string {
    return this.prefix + KEY.held + fnName;
  }

  /** The recent starts of a rate-limited function, by time. */
  starts(fnName: string): string {
    return this.prefix + KEY.starts + fnName;
  }

  /** The tasks holding a concurrency slot of a limited function. */
  active(fnName: string): string {
    return this.prefix + KEY.active + fnName;
  }

  /**
   * The tasks of one group that workers set aside while the group's slots were all taken, oldest
   * first: `held:<function> <group>`, beside the function's own held list (so `drain` finds it).
   */
  groupHeld(fnName: string, group: string): string {
    return this.prefix + KEY.held + fnName + " " + group;
  }

  /** The tasks holding a slot of one group of a function. */
  groupActive(fnName: string, group: string): string {
    return this.prefix + KEY.groupActive + fnName + " " + group;
  }

  /** The active groups of a grouped function, scored by their tasks holding a slot or waiting. */
  groups(fnName: string): string {
    return this.prefix + KEY.groups + fnName;
  }

  /** The number of shards of the queue, on shard 0 (see `KEY.shards`). */
  get shardCount(): string {
    return this.prefix + KEY.shards;
  }

  /** Pattern matching every key of this queue (for SCAN). */
  pattern(kind = "*"): string {
    return `streaq:{${escapeGlob(this.tag)}}:${kind}`;
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => "\\" + c);
}
