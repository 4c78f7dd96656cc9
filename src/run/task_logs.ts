/**
 * The log lines a running task writes through `taskContext().log()`, kept with the task: a list
 * per task (`KEY.logs`) holding the newest {@linkcode TASK_LOG_LINES} lines, each cut to
 * {@linkcode TASK_LOG_LINE_BYTES}. Lines are buffered and written together (one pipeline of
 * `RPUSH`, `LTRIM`, `PEXPIRE` per window of {@linkcode TASK_LOG_WINDOW} ms); when the try ends,
 * the last lines are written and the list gets the result's time to live. A task that never
 * logs creates no writer and costs nothing.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { StreaqError } from "../errors.ts";
import type { WorkerLogger } from "../logger.ts";

/** How many lines of a task are kept: the newest; older ones are dropped. */
export const TASK_LOG_LINES = 100;
/** The longest line kept, in UTF-8 bytes; a longer one is cut and marked. */
export const TASK_LOG_LINE_BYTES = 2048;
/** The shortest time between two writes of one task's lines (ms). */
export const TASK_LOG_WINDOW = 100;
/**
 * How long the lines of an unfinished task are kept after its last write (7 days): a task
 * retried or handed back writes more, and its end gives the list its result's time to live.
 */
export const TASK_LOG_PENDING_TTL = 7 * 24 * 3_600_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The text of a line: the values joined by spaces (strings as they are, others as
 * `Deno.inspect` shows them), cut to {@linkcode TASK_LOG_LINE_BYTES} with a marker
 * `… [truncated, N more characters]` saying how much was dropped.
 */
export function formatLogLine(values: readonly unknown[]): string {
  const text = values.map((v) => typeof v === "string" ? v : Deno.inspect(v, { depth: 4 }))
    .join(" ");
  if (text.length * 3 <= TASK_LOG_LINE_BYTES) return text; // fits whatever its characters
  const room = new Uint8Array(TASK_LOG_LINE_BYTES);
  const { read } = encoder.encodeInto(text, room);
  if (read >= text.length) return text;
  // Cut further so that the marker fits too: the marker is ASCII, at most 64 bytes.
  const kept = new Uint8Array(TASK_LOG_LINE_BYTES - 64);
  const cut = encoder.encodeInto(text, kept);
  return `${decoder.decode(kept.subarray(0, cut.written))}… [truncated, ${
    text.length - cut.read
  } more characters]`;
}

/** The log lines of one try of one task. */
export class TaskLogWriter {
  readonly #client: QueueContext;
  readonly #key: string;
  readonly #label: string;
  readonly #tries: number;
  readonly #logger: WorkerLogger;
  #lines: string[] = [];
  #lastWrite = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(
    client: QueueContext,
    taskId: string,
    fnName: string,
    tries: number,
    logger: WorkerLogger,
  ) {
    this.#client = client;
    this.#key = client.keys.logs(taskId);
    this.#label = `${fnName} (${taskId})`;
    this.#tries = tries;
    this.#logger = logger;
  }

  /** Adds a line; written with the others of its window. */
  add(values: readonly unknown[]): void {
    if (this.#closed) throw taskLogAfterEnd(this.#label);
    this.#lines.push(`${Date.now()} ${this.#tries} ${formatLogLine(values)}`);
    // Lines beyond the cap would be trimmed by Redis anyway: do not send them.
    if (this.#lines.length > TASK_LOG_LINES) {
      this.#lines.splice(0, this.#lines.length - TASK_LOG_LINES);
    }
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const wait = this.#lastWrite + TASK_LOG_WINDOW - performance.now();
    if (wait <= 0) this.#flush();
    else this.#timer = setTimeout(() => this.#flush(), wait);
  }

  /**
   * Ends the writes: the lines not written yet go with the list's time to live, the one of the
   * result (`ttl`: ms, null forever, 0 not kept), or {@linkcode TASK_LOG_PENDING_TTL} when the
   * task is not finished (a retry, a hand-back). One round trip.
   */
  async close(ttl: number | null | undefined): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    const pipeline = this.#client.redis.pipeline();
    if (ttl === 0) {
      pipeline.del(this.#key);
    } else {
      this.#append(pipeline);
      if (ttl === null) pipeline.persist(this.#key);
      else pipeline.pexpire(this.#key, ttl ?? TASK_LOG_PENDING_TTL);
    }
    await this.#send(pipeline);
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#lines.length === 0 || this.#closed) return;
    this.#lastWrite = performance.now();
    const pipeline = this.#client.redis.pipeline();
    this.#append(pipeline);
    pipeline.pexpire(this.#key, TASK_LOG_PENDING_TTL);
    this.#writing = this.#send(pipeline).finally(() => {
      this.#writing = undefined;
      if (this.#lines.length > 0 && !this.#closed) {
        this.#timer = setTimeout(() => this.#flush(), TASK_LOG_WINDOW);
      }
    });
  }

  #append(pipeline: ReturnType<QueueContext["redis"]["pipeline"]>): void {
    if (this.#lines.length === 0) return;
    pipeline.rpush(this.#key, ...this.#lines);
    pipeline.ltrim(this.#key, -TASK_LOG_LINES, -1);
    this.#lines = [];
  }

  async #send(pipeline: ReturnType<QueueContext["redis"]["pipeline"]>): Promise<void> {
    try {
      const replies = await pipeline.exec() ?? [];
      const failed = replies.find(([error]) => error);
      if (failed) throw failed[0];
    } catch (error) {
      // Logs are advisory: a failed write is logged, the task goes on.
      this.#logger.warn(
        `Could not write the log lines of task ${this.#label}: ${
          (error as Error)?.message ?? String(error)
        }`,
      );
    }
  }
}

/** The error of a log line written after the try has ended. */
export function taskLogAfterEnd(label: string): StreaqError {
  return new StreaqError(
    `Cannot write a log line of task ${label}: its try has finished (a function that ignored its signal and went on)`,
  );
}
