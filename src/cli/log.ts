/**
 * Log lines of the command line itself (the supervisor and the file watcher), on stderr, in
 * the same shape as a worker's lines: the same time format (ISO 8601 with milliseconds, in the
 * worker's time zone), then `[streaq <who>]`, then the message with its control characters
 * escaped; or, with `--log-format json`, one JSON object a line like the worker's.
 *
 * @module
 */

import { escapeControl, jsonLine, LogClock, type LogFormat } from "../logger.ts";

/** The least important lines written: `--verbose` is debug, `--quiet` is warn. */
export type CliLogLevel = "debug" | "info" | "warn";

const ORDER: readonly CliLogLevel[] = ["debug", "info", "warn"];

/** How the command line writes its lines. */
export interface CliLogOptions {
  /** @default {"info"} */
  readonly level?: CliLogLevel;
  /** @default {"text"} */
  readonly format?: LogFormat;
  /** The worker's `tz`, for the times. @default {"UTC"} */
  readonly timeZone?: string;
}

/** Writes the command line's own log lines. */
export class CliLog {
  readonly #who: string;
  readonly #min: number;
  readonly #format: LogFormat;
  readonly #clock: LogClock;

  constructor(who: string, options: CliLogOptions = {}) {
    this.#who = who;
    this.#min = ORDER.indexOf(options.level ?? "info");
    this.#format = options.format ?? "text";
    this.#clock = new LogClock(options.timeZone);
  }

  /** Detail: each spawned process and each file change. */
  debug(message: string): void {
    if (this.#min <= 0) this.#write("debug", message);
  }

  /** Starts and stops. */
  info(message: string): void {
    if (this.#min <= 1) this.#write("info", message);
  }

  /** Something unexpected that the command line handles: a worker process that died. */
  warn(message: string): void {
    this.#write("warn", message);
  }

  #write(level: CliLogLevel, message: string): void {
    const time = this.#clock.format(Date.now());
    console.error(
      this.#format === "json"
        ? jsonLine({ time, level, source: `streaq ${this.#who}`, message })
        : `${time} [streaq ${this.#who}] ${escapeControl(message)}`,
    );
  }
}
