/**
 * Log lines of a worker: a level filter, timestamps in the worker's time zone, and a
 * pluggable sink with the shape of `console`.
 *
 * @module
 */

/** Where log lines go: `console` fits, and so does any object with these four methods. */
export interface Logger {
  /** Detail useful when investigating (fetch batches, reclaims). */
  debug(message: string): void;
  /** One line per task start and finish, worker start and stop. */
  info(message: string): void;
  /** Something went wrong but nothing was lost (a stale delivery, a task ignoring its signal). */
  warn(message: string): void;
  /** Something failed that needs attention (Redis unreachable, a lifespan that threw). */
  error(message: string): void;
}

/** The levels of {@linkcode Logger}, from the most to the least verbose, plus `"silent"`. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** Checks a `logLevel` option. */
export function checkLogLevel(value: unknown): LogLevel {
  if (value === undefined) return "info";
  if (!LEVELS.includes(value as LogLevel)) {
    throw new RangeError(
      `Cannot create worker as 'logLevel' must be one of ${LEVELS.join(", ")}: received ${
        JSON.stringify(value)
      }`,
    );
  }
  return value as LogLevel;
}

/** Checks a `tz` option: an IANA time zone name that this runtime knows. */
export function checkTimeZone(value: unknown): string {
  if (value === undefined) return "UTC";
  try {
    if (typeof value !== "string") throw new TypeError();
    new Intl.DateTimeFormat("en", { timeZone: value });
    return value;
  } catch {
    throw new RangeError(
      `Cannot create worker as 'tz' must be an IANA time zone name such as "Europe/Paris": received ${
        JSON.stringify(value)
      }`,
    );
  }
}

/** A logger that drops lines below `level` and prefixes the rest with time and worker id. */
export class WorkerLogger {
  readonly #sink: Logger;
  #min: number;
  readonly #format: Intl.DateTimeFormat;
  readonly #prefix: string;

  constructor(sink: Logger, level: LogLevel, timeZone: string, prefix: string) {
    this.#sink = sink;
    this.#min = LEVELS.indexOf(level);
    this.#prefix = prefix;
    this.#format = new Intl.DateTimeFormat("sv-SE", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      fractionalSecondDigits: 3,
      hour12: false,
    });
  }

  /** The least important level written; a run can change it for its duration. */
  get level(): LogLevel {
    return LEVELS[this.#min];
  }

  set level(level: LogLevel) {
    this.#min = LEVELS.indexOf(level);
  }

  /** True when lines of this level are written (skip building costly messages otherwise). */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return LEVELS.indexOf(level) >= this.#min;
  }

  debug(message: string): void {
    if (this.enabled("debug")) this.#sink.debug(this.#line(message));
  }

  info(message: string): void {
    if (this.enabled("info")) this.#sink.info(this.#line(message));
  }

  warn(message: string): void {
    if (this.enabled("warn")) this.#sink.warn(this.#line(message));
  }

  error(message: string): void {
    if (this.enabled("error")) this.#sink.error(this.#line(message));
  }

  #line(message: string): string {
    return `${this.#format.format(Date.now())} ${this.#prefix} ${message}`;
  }
}
