/**
 * Log lines of the command line itself (the supervisor and the file watcher), on stderr, in
 * the same shape as a worker's lines: time, then `[streaq <who>]`, then the message.
 *
 * @module
 */

/** The least important lines written: `--verbose` is debug, `--quiet` is warn. */
export type CliLogLevel = "debug" | "info" | "warn";

const ORDER: readonly CliLogLevel[] = ["debug", "info", "warn"];

/** Writes the command line's own log lines. */
export class CliLog {
  readonly #min: number;
  readonly #prefix: string;

  constructor(who: string, level: CliLogLevel = "info") {
    this.#min = ORDER.indexOf(level);
    this.#prefix = `[streaq ${who}]`;
  }

  /** Detail: each spawned process and each file change. */
  debug(message: string): void {
    if (this.#min <= 0) this.#write(message);
  }

  /** Starts and stops. */
  info(message: string): void {
    if (this.#min <= 1) this.#write(message);
  }

  /** Something unexpected that the command line handles: a worker process that died. */
  warn(message: string): void {
    this.#write(message);
  }

  #write(message: string): void {
    console.error(`${new Date().toISOString()} ${this.#prefix} ${message}`);
  }
}
