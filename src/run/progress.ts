/**
 * Progress reports of a running task (`taskContext().progress(value)`), coalesced: at most one
 * write per task per {@linkcode PROGRESS_WINDOW} ms, none when the value did not change, and the
 * latest value always written (a trailing write at the end of the window). A task that never
 * reports creates no reporter and costs nothing.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { EVENT_FIELD, TASK_FIELD } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { emitEvent, EVENT_TYPE } from "../redis/lua/events.ts";
import { StreaqError } from "../errors.ts";
import type { WorkerLogger } from "../logger.ts";

/** The shortest time between two progress writes of one task (ms). */
export const PROGRESS_WINDOW = 100;

/**
 * Writes a task's progress while this worker still runs it: a write that comes after the try
 * ended (or after another worker took the task over) changes nothing, so it never brings back
 * the hash of a finished task. With events on, a write emits a `progress` event.
 *
 * KEYS: [1] task hash, [2] events stream
 * ARGV: [1] this worker's id, [2] the encoded progress value, [3] the events setting ('' off,
 *       else the events stream's cap), [4] the task id, [5] its function's name
 * Returns 1 if written, 0 if the task is not run by this worker.
 */
export const PROGRESS_SCRIPT = script(lua(
  emitEvent,
  `
if redis.call('HGET', KEYS[1], '${TASK_FIELD.runner}') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], '${TASK_FIELD.progress}', ARGV[2])
if ARGV[3] ~= '' then
  emitEvent({KEYS[2], ARGV[3]}, '${EVENT_TYPE.progress}', ARGV[4], '${EVENT_FIELD.fn}', ARGV[5],
    '${EVENT_FIELD.tries}', redis.call('HGET', KEYS[1], '${TASK_FIELD.tries}') or '0',
    '${EVENT_FIELD.worker}', ARGV[1], '${EVENT_FIELD.progress}', ARGV[2])
end
return 1
`,
));

/** The progress reports of one try of one task. */
export class ProgressReporter {
  readonly #client: QueueContext;
  readonly #taskId: string;
  readonly #fnName: string;
  readonly #workerId: string;
  readonly #logger: WorkerLogger;
  /** The latest encoded value not written yet. */
  #pending: Buffer | undefined;
  /** The last value sent, to skip writes of an unchanged value. */
  #written: Buffer | undefined;
  #lastWrite = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  #stopped = false;

  constructor(
    client: QueueContext,
    taskId: string,
    fnName: string,
    workerId: string,
    logger: WorkerLogger,
  ) {
    this.#client = client;
    this.#taskId = taskId;
    this.#fnName = fnName;
    this.#workerId = workerId;
    this.#logger = logger;
  }

  /** Encodes `value` (throwing a TypeError if the codec refuses it) and schedules its write. */
  async report(value: unknown): Promise<void> {
    if (this.#stopped) throw this.#finishedError();
    const blob = await this.#client.envelope.sealProgress(this.#taskId, this.#fnName, value);
    if (this.#stopped) throw this.#finishedError();
    this.#pending = blob;
    this.#schedule();
  }

  /** Ends the reports: drops a value not written yet, waits for a write under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
    await this.#writing;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const wait = this.#lastWrite + PROGRESS_WINDOW - performance.now();
    if (wait <= 0) this.#flush();
    else this.#timer = setTimeout(() => this.#flush(), wait);
  }

  #flush(): void {
    this.#timer = undefined;
    const blob = this.#pending;
    this.#pending = undefined;
    if (blob === undefined || this.#stopped) return;
    if (this.#written !== undefined && blob.equals(this.#written)) return;
    this.#written = blob;
    this.#lastWrite = performance.now();
    this.#writing = runScript(
      this.#client.redis,
      PROGRESS_SCRIPT,
      [this.#client.keys.task(this.#taskId), this.#client.keys.events],
      [this.#workerId, blob, this.#client.eventsSetting, this.#taskId, this.#fnName],
    ).then(
      () => {},
      (error) => {
        // Progress is advisory: a failed write is logged, the task goes on.
        this.#written = undefined;
        this.#logger.warn(
          `Could not write the progress of task ${this.#fnName} (${this.#taskId}): ${
            (error as Error)?.message ?? String(error)
          }`,
        );
      },
    ).finally(() => {
      this.#writing = undefined;
      if (this.#pending !== undefined && !this.#stopped) this.#schedule();
    });
  }

  #finishedError(): StreaqError {
    return progressAfterEnd(this.#fnName, this.#taskId);
  }
}

/** The error of a report after the try has ended. */
export function progressAfterEnd(fnName: string, taskId: string): StreaqError {
  return new StreaqError(
    `Cannot report progress of task ${fnName} (${taskId}): its try has finished (a function that ignored its signal and went on)`,
  );
}
