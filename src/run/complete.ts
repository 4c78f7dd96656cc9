/**
 * The completion path: the one place where the outcome of a delivery becomes Redis writes.
 * Outcomes of tasks that finish together go to Redis in one script call. The script first
 * checks that this worker still owns the delivery, so a stale delivery (taken over by another
 * worker after this one stalled) never overwrites a result; a delivery claimed too recently for
 * any other worker to take it over (most of them, on a busy queue) needs no check.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { CONSUMER_GROUP } from "../redis/keys.ts";
import {
  type Delivery,
  isFresh,
  type StartAnswer,
  startArg,
  toDeliveries,
  toStartAnswer,
} from "./fetch.ts";
import { Batcher } from "../client/_batch.ts";
import { type Due, dueArg } from "../redis/_redis_time.ts";
import { runScript, script, type ScriptArg } from "../redis/_script.ts";
import { eventError, type OutcomeEvent } from "./outcome_event.ts";
import { EVENT_TYPE } from "../redis/lua/events.ts";
import { pushRecord } from "../redis/lua/layout.ts";
import {
  APPLIED,
  COMPLETE_ARGS,
  COMPLETE_LUA,
  COMPLETE_REPLY,
  COMPLETION,
  COMPLETION_EXTRA,
  type COMPLETION_KIND,
  EVENT_NOTE,
  kindCode,
  QUICK_START,
  START_COUNTS,
  START_RECORD,
} from "./_complete_lua.ts";

/**
 * Applies outcomes, starts prefetched deliveries and claims new ones, in one call: the three
 * phases of `./_complete_lua.ts`, which also lays out its arguments and reply.
 *
 * Outcomes: per delivery, when this worker still owns it, acknowledge and delete the stream
 * entry, then by kind:
 * - 'final': store the result (ttl '' forever, '0' not stored), publish it on the task's
 *   channel, and delete the task hash; a repeating task that is still scheduled (its hash has a
 *   crontab) is put back in the delayed set for its next occurrence instead;
 * - 'retry': put the task in the delayed set at its due time (a delay counts from Redis's
 *   clock, see `src/redis/_redis_time.ts`), keeping the reason;
 * - 'back': put the task back at the end of its stream (shutdown hand-back);
 * - 'drop': delete whatever is left under the task's name (an entry whose task is gone or
 *   unreadable).
 * A unique lock held by the task is released if it still holds it. The tasks waiting for a
 * finished task are settled in the same call (`src/client/graph.ts`).
 *
 * Starts: the start of a prefetched delivery that took the slot of a finished task is written in
 * the same call (see `startOwned` in `src/redis/lua/task_start.ts`), so a busy worker needs no
 * round trip of its own for it; so is the start of a prefetched delivery that took a slot freed
 * otherwise.
 *
 * Claims: deliveries for the slots free now and for the prefetch buffer, so that a busy worker
 * needs no separate fetch.
 *
 * The keys of each delivery (its stream, task hash and result) are built from the key prefix,
 * as `src/redis/keys.ts` builds them, rather than declared, as in FETCH_SCRIPT: they share the
 * queue's hash tag, and a batch of completions sends a fraction of the bytes.
 *
 * KEYS: [1] delayed set, [2] aborting set, [3] schedules set, then the streams to prefetch
 *       from, highest priority first
 * ARGV: {@linkcode COMPLETE_ARGS} (group, worker id, now, done channel prefix, wake channel, key
 *       prefix, number of deliveries, 1 to publish results only to channels with subscribers,
 *       events setting: '' off, else the events stream's cap, number of extra records),
 *       then a {@linkcode COMPLETION} record per delivery (priority, entry id, task id, kind and
 *       freshness as a `kindCode` (fresh: claimed too recently to be another worker's, see
 *       `FRESH_CLAIM` in src/run/fetch.ts), result or reason, ttl or due as `dueArg` sends it),
 *       then a {@linkcode COMPLETION_EXTRA} record per delivery that has any of them (its
 *       number, unique lock key held or '', next occurrence or '' (not repeating) or 'stop'
 *       (repeating no more), the function's `keepResults` or ''), then
 *       {@linkcode START_COUNTS} (deliveries to start, to prefetch, to claim and start at once
 *       for the slots free now), then a {@linkcode START_RECORD} per delivery to start
 *       (priority, entry id, task id, try count if fresh else 0, see `startArg`), then with
 *       events on only, an {@linkcode EVENT_NOTE} per completion (event type or '', error)
 * Returns {@linkcode COMPLETE_REPLY}: {per delivery `APPLIED.applied`, or `APPLIED.stale` if it
 * was stale; per delivery to start a `START_STATE`; the deliveries claimed, as `CLAIM` records,
 * those to start at once first}.
 */
export const COMPLETE_SCRIPT = script(COMPLETE_LUA, {
  // allow-oom: at Redis maxmemory (noeviction), a script is refused at its first write that may
  // grow memory (the SET of a result here). A completion frees more than it stores (the entry
  // and the task hash go; a failure's hash is kept, renamed, for a rerun), and refusing it would
  // leave every running task without its result.
  redisFlags: ["allow-oom"],
});

/** What becomes of a delivery, ready to be written. */
export type Completion =
  | {
    readonly kind: typeof COMPLETION_KIND.final;
    readonly result: Buffer;
    readonly ttl: number | null;
    /**
     * For a repeating task, when its next occurrence is due, or `"stop"` when it repeats no
     * more; undefined for a task that does not repeat.
     */
    readonly next?: number | "stop";
    /** The function's `keepResults`: at most this many of its results are kept. */
    readonly keep?: number;
    /** With events on: the event it emits (`outcomeEvent` in `./outcome_event.ts`). */
    readonly event?: OutcomeEvent;
  }
  | { readonly kind: typeof COMPLETION_KIND.retry; readonly due: Due; readonly reason: string }
  | {
    readonly kind: typeof COMPLETION_KIND.back;
    readonly reason: string;
    /** Hold the task's function back on every worker for this many ms (`StreaqRateLimited`). */
    readonly blockFor?: number;
  }
  | { readonly kind: typeof COMPLETION_KIND.drop };

/** A completion of a delivery to write, or (without `completion`) the start of one. */
interface Item {
  readonly delivery: Delivery;
  readonly completion: Completion | undefined;
  readonly lock: string | undefined;
  /** Whether the same call claims more deliveries, as many as the run has room for then. */
  readonly refill: boolean;
  /** A start sent as a QUICK_START (set when the call's arguments are laid out). */
  quick?: boolean;
}

/** What writing a completion did. */
export interface Completed {
  /** False when the delivery was stale and nothing was written. */
  readonly applied: boolean;
}

/** The answers of completions, shared: an object per completion is garbage per task. */
const WRITTEN: Completed = Object.freeze({ applied: true });
const NOT_WRITTEN: Completed = Object.freeze({ applied: false });

/** How many deliveries a call claims: the first `start` are started at once. */
export interface ClaimCounts {
  /** For slots free now and promised to nothing: started by the call. */
  readonly start: number;
  /** Read ahead, started later by the worker. */
  readonly prefetch: number;
}

/** How a run takes in the deliveries that completion calls claim (see `src/run/slots.ts`). */
export interface Refill {
  /**
   * How many deliveries a call sent now claims, counted as held from now on, so that calls in
   * flight together do not each claim the same room.
   */
  reserveClaims(): ClaimCounts;
  /**
   * A call that reserved `asked` claims came back after `ms` with `got` of them (no `ms`: the
   * call failed).
   */
  claimed(asked: number, got: number, ms?: number): void;
  /** Takes in the deliveries a call claimed: started for the slots counted free, the rest read. */
  admit(deliveries: Delivery[]): void;
  /**
   * Tasks are set aside until a rate window or a block ends, in `ms`: fetch again by then (a
   * call's claims may have filled the window while the fetch loop waits for new entries).
   */
  wakeIn(ms: number): void;
}

/** A writer that claims nothing more than the completions ask for: no run takes them in. */
const NO_REFILL: Refill = {
  reserveClaims: () => ({ start: 0, prefetch: 0 }),
  claimed() {},
  admit() {},
  wakeIn() {},
};

const NO_CLAIMS: ClaimCounts = { start: 0, prefetch: 0 };

/**
 * Writes what becomes of one worker's deliveries, their outcomes and the starts of prefetched
 * ones, batching those that happen together into one call of {@linkcode COMPLETE_SCRIPT}, and
 * claims more deliveries in the same calls.
 */
export class DeliveryWriter {
  readonly #client: QueueContext;
  readonly #workerId: string;
  /** Answers a completion with a `Completed`, a start with a `StartAnswer`. */
  readonly #batcher: Batcher<Item, Completed | StartAnswer>;
  readonly #refill: Refill;

  /**
   * `refill` says how many deliveries a completion call claims, and takes them in (see the
   * `refill` argument of {@linkcode DeliveryWriter.complete}).
   */
  constructor(client: QueueContext, workerId: string, refill: Refill = NO_REFILL) {
    this.#client = client;
    this.#workerId = workerId;
    this.#refill = refill;
    this.#batcher = new Batcher((items) => this.#write(items), 2);
  }

  /**
   * Writes one completion; `lock` names the unique lock the task holds, if any. With `refill`,
   * the call claims more deliveries too, as many as the run has room for when it is sent.
   */
  complete(
    delivery: Delivery,
    completion: Completion,
    lock?: string,
    refill = false,
  ): Promise<Completed> {
    return this.#batcher.add({ delivery, completion, lock, refill }) as Promise<Completed>;
  }

  /**
   * Writes the start of a prefetched delivery that took a free slot, with the next completions.
   * Going through the same calls as the outcomes orders the two: the start of a task that runs
   * before it is written always reaches Redis no later than the task's outcome.
   */
  start(delivery: Delivery): Promise<StartAnswer> {
    return this.#batcher.add({
      delivery,
      completion: undefined,
      lock: undefined,
      refill: false,
    }) as Promise<StartAnswer>;
  }

  /** Resolves once every completion handed in so far is written. */
  drain(): Promise<void> {
    return this.#batcher.drain();
  }

  async #write(items: Item[]): Promise<(Completed | StartAnswer)[]> {
    const { keys } = this.#client;
    const priorities = this.#client.prioritiesHighFirst;
    // Counted when the call is sent, not when its items came: the freshest room there is.
    const ask = items.some((item) => item.refill) ? this.#refill.reserveClaims() : NO_CLAIMS;
    const asked = ask.start + ask.prefetch;
    const scriptKeys: string[] = [keys.delayed, keys.aborting, keys.schedules];
    if (asked > 0) scriptKeys.push(...priorities.map((p) => keys.stream(p)));
    // Also when the deliveries' freshness is judged: the arguments are built and sent at once.
    const sent = performance.now();
    let reply;
    try {
      reply = await runScript(
        this.#client.redis,
        COMPLETE_SCRIPT,
        scriptKeys,
        this.#arguments(items, ask, sent),
        true,
      ) as unknown[][];
    } catch (error) {
      if (asked > 0) this.#refill.claimed(asked, 0);
      throw error;
    }
    const claims = reply[COMPLETE_REPLY.at.claims];
    const deliveries = claims.length > 0
      ? toDeliveries(claims, priorities.map((p) => keys.stream(p)), priorities, sent)
      : [];
    if (asked > 0) this.#refill.claimed(asked, deliveries.length, performance.now() - sent);
    if (deliveries.length > 0) {
      this.#refill.admit(deliveries);
    }
    const wakeIn = reply[COMPLETE_REPLY.at.wakeIn] as unknown as number | null;
    if (wakeIn !== null && wakeIn !== undefined) this.#refill.wakeIn(wakeIn);
    const applied = reply[COMPLETE_REPLY.at.applied] as number[];
    const started = reply[COMPLETE_REPLY.at.starts] as unknown[];
    let completed = 0;
    // Start records first, then quick starts, as #arguments sent them.
    let startedAt = 0;
    let quickAt = 0;
    for (const item of items) if (!item.completion && !item.quick) quickAt++;
    return items.map((item) =>
      item.completion
        ? (applied[completed++] === APPLIED.applied ? WRITTEN : NOT_WRITTEN)
        : toStartAnswer(started[item.quick ? quickAt++ : startedAt++])
    );
  }

  /**
   * The call's arguments: the fixed ones, the completions, then the starts and claims asked.
   * `now` (`performance.now()`): when the call is sent, for the deliveries' freshness.
   */
  #arguments(items: Item[], ask: ClaimCounts, now: number): ScriptArg[] {
    const { keys } = this.#client;
    const completions = items.filter((item) => item.completion);
    const args: ScriptArg[] = [];
    pushRecord(args, COMPLETE_ARGS, {
      group: CONSUMER_GROUP,
      workerId: this.#workerId,
      now: this.#client.now(),
      doneChannelPrefix: keys.doneChannelPrefix,
      wakeChannel: keys.wakeChannel,
      keyPrefix: keys.prefix,
      completionCount: completions.length,
      publishOnlyHeard: this.#client.isCluster ? 0 : 1,
      events: this.#client.eventsSetting,
      extraCount: 0,
    });
    for (const { delivery, completion } of completions) {
      pushCompletion(args, delivery, completion!, now);
    }
    let extraCount = 0;
    for (let i = 0; i < completions.length; i++) {
      const { completion, lock } = completions[i];
      if (pushExtra(args, i, completion!, lock)) extraCount++;
    }
    args[COMPLETE_ARGS.at.extraCount] = extraCount;
    // A fresh start whose outcome is not in this call, without events, is a QUICK_START.
    const quickAllowed = this.#client.eventsSetting === "";
    const starts: Item[] = [];
    const quick: Item[] = [];
    let ending: Set<string> | undefined; // made only for a call with starts
    for (const item of items) {
      if (item.completion) continue;
      const d = item.delivery;
      ending ??= new Set(completions.map(({ delivery }) => delivery.key));
      item.quick = quickAllowed && !ending.has(d.key) && isFresh(d, now);
      (item.quick ? quick : starts).push(item);
    }
    pushRecord(args, START_COUNTS, {
      startCount: starts.length,
      prefetchCount: ask.prefetch,
      startNowCount: ask.start,
      quickStartCount: quick.length,
    });
    for (const { delivery: d } of starts) {
      pushRecord(args, START_RECORD, {
        priority: d.priority,
        entryId: d.messageId,
        taskId: d.taskId,
        fresh: startArg(d, now),
      });
    }
    for (const { delivery: d } of quick) {
      pushRecord(args, QUICK_START, { taskId: d.taskId, tries: d.tries });
    }
    if (this.#client.eventsSetting !== "") {
      for (const { delivery, completion } of completions) {
        pushEventNote(args, delivery, completion!);
      }
    }
    return args;
  }
}

/**
 * Appends the {@linkcode COMPLETION} record of one delivery's outcome; `now`
 * (`performance.now()`): when the call is sent, for the delivery's freshness.
 */
function pushCompletion(args: ScriptArg[], d: Delivery, c: Completion, now: number): void {
  // Assigned, not destructured from an array: one record per task a worker runs.
  let value: ScriptArg = "";
  let ttlOrDue: ScriptArg = 0;
  if (c.kind === "final") {
    value = c.result;
    ttlOrDue = c.ttl === null ? "" : c.ttl;
  } else if (c.kind === "retry") {
    value = c.reason;
    ttlOrDue = dueArg(c.due);
  } else if (c.kind === "back") {
    value = c.reason;
    ttlOrDue = c.blockFor === undefined ? 0 : `+${c.blockFor}`;
  }
  pushRecord(args, COMPLETION, {
    priority: d.priority,
    entryId: d.messageId,
    taskId: d.taskId,
    kind: kindCode(c.kind, isFresh(d, now)),
    value,
    ttlOrDue,
  });
}

/**
 * Appends the {@linkcode COMPLETION_EXTRA} record of the `index`-th completion, if it has
 * anything to say: a unique lock, a next occurrence or a `keepResults` bound.
 *
 * @returns Whether it appended one.
 */
function pushExtra(
  args: ScriptArg[],
  index: number,
  c: Completion,
  lock: string | undefined,
): boolean {
  const nextOccurrence = c.kind === "final" && c.next !== undefined ? c.next : "";
  const keepResults = c.kind === "final" && c.keep !== undefined ? c.keep : "";
  if (lock === undefined && nextOccurrence === "" && keepResults === "") return false;
  pushRecord(args, COMPLETION_EXTRA, {
    completion: index,
    uniqueKey: lock ?? "",
    nextOccurrence,
    keepResults,
  });
  return true;
}

/** Appends the {@linkcode EVENT_NOTE} of one completion (workers with events on only). */
function pushEventNote(args: ScriptArg[], d: Delivery, c: Completion): void {
  const [event, error] = c.kind === "final" && c.event
    ? [c.event.type, c.event.error]
    : c.kind === "retry"
    ? [EVENT_TYPE.retried, eventError(c.reason)]
    : ["", ""];
  pushRecord(args, EVENT_NOTE, { event, eventError: error, fn: d.fnName, tries: d.tries });
}
