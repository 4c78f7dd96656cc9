/**
 * Log lines of a worker: a level filter, one time format (ISO 8601 with milliseconds, in the
 * worker's time zone), text or JSON lines, and a pluggable sink with the shape of `console`.
 *
 * Values in log messages come from users and from the network (task names, error messages):
 * a newline in one would forge a log line, and an ANSI escape would reach the terminal. Text
 * lines escape every control character of the message here, in one place, so that no caller
 * has to remember; JSON lines escape by construction.
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

/**
 * How log lines are written: `"text"` for people, `"json"` (one object a line) for collectors.
 *
 * @example Writing JSON lines for a log collector
 * ```ts
 * import { Worker } from "@streaq/streaq";
 *
 * export const worker = new Worker({ logFormat: "json" });
 * ```
 */
export type LogFormat = "text" | "json";

const FORMATS: readonly LogFormat[] = ["text", "json"];

/** Checks a `logFormat` option. */
export function checkLogFormat(value: unknown, where = "create worker"): LogFormat {
  if (value === undefined) return "text";
  if (!FORMATS.includes(value as LogFormat)) {
    throw new RangeError(
      `Cannot ${where} as 'logFormat' must be one of ${FORMATS.join(", ")}: received ${
        JSON.stringify(value)
      } (${typeof value})`,
    );
  }
  return value as LogFormat;
}

/**
 * Structured fields of a log line: written as properties of a JSON line (a text line carries
 * them in its message already).
 */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

/** Who writes the lines: shown as `[streaq <queue>/<worker>]`, or as JSON properties. */
export interface LogSource {
  readonly queue: string;
  readonly workerId: string;
}

/**
 * Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, which some
 * log viewers also break lines at.
 */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Makes control characters visible: `\n` becomes the two characters `\\n`, ESC becomes
 * `\\x1b`, so that a value can neither start a new log line nor drive the terminal.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code > 0xff ? `\\u${code.toString(16)}` : `\\x${hex2(code)}`);
  });
}

/**
 * A JSON line: JSON escapes C0 controls itself; DEL, C1 and the line separators are valid in
 * JSON strings and are escaped as well, for whoever reads the lines in a terminal.
 */
export function jsonLine(value: Record<string, unknown>): string {
  return JSON.stringify(value).replace(
    CONTROL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function hex2(code: number): string {
  return code.toString(16).padStart(2, "0");
}

/**
 * Formats points in time the way every streaq log line shows them: ISO 8601 with
 * milliseconds, in a time zone, with its offset (`Z` for UTC), for example
 * `2026-12-06T09:04:45.816+01:00`.
 */
export class LogClock {
  readonly #utc: boolean;
  readonly #parts: Intl.DateTimeFormat;

  constructor(timeZone = "UTC") {
    this.#utc = timeZone === "UTC";
    this.#parts = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
  }

  /** The time `at` (ms since the epoch) as ISO 8601. */
  format(at: number): string {
    if (this.#utc) return new Date(at).toISOString();
    const part: Record<string, number> = {};
    for (const { type, value } of this.#parts.formatToParts(at)) part[type] = Number(value);
    const millis = ((at % 1000) + 1000) % 1000;
    const local = Date.UTC(
      part.year,
      part.month - 1,
      part.day,
      part.hour,
      part.minute,
      part.second,
      millis,
    );
    // The wall-clock time read as UTC, minus the real instant: the zone's offset then.
    const offset = Math.round((local - at) / 60_000);
    const sign = offset < 0 ? "-" : "+";
    const abs = Math.abs(offset);
    const zone = `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
    return `${new Date(local).toISOString().slice(0, -1)}${zone}`;
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** A logger that drops lines below `level` and prefixes the rest with time and worker id. */
export class WorkerLogger {
  readonly #sink: Logger;
  #min: number;
  #format: LogFormat;
  readonly #clock: LogClock;
  readonly #source: LogSource;
  readonly #prefix: string;

  constructor(
    sink: Logger,
    level: LogLevel,
    timeZone: string,
    source: LogSource,
    format: LogFormat = "text",
  ) {
    this.#sink = sink;
    this.#min = LEVELS.indexOf(level);
    this.#format = format;
    this.#source = source;
    this.#prefix = escapeControl(`[streaq ${source.queue}/${source.workerId}]`);
    this.#clock = new LogClock(timeZone);
  }

  /** The least important level written; a run can change it for its duration. */
  get level(): LogLevel {
    return LEVELS[this.#min];
  }

  set level(level: LogLevel) {
    this.#min = LEVELS.indexOf(level);
  }

  /** How lines are written; a run can change it for its duration. */
  get format(): LogFormat {
    return this.#format;
  }

  set format(format: LogFormat) {
    this.#format = format;
  }

  /** True when lines of this level are written (skip building costly messages otherwise). */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return LEVELS.indexOf(level) >= this.#min;
  }

  debug(message: string, fields?: LogFields): void {
    if (this.enabled("debug")) this.#sink.debug(this.#line("debug", message, fields));
  }

  info(message: string, fields?: LogFields): void {
    if (this.enabled("info")) this.#sink.info(this.#line("info", message, fields));
  }

  warn(message: string, fields?: LogFields): void {
    if (this.enabled("warn")) this.#sink.warn(this.#line("warn", message, fields));
  }

  error(message: string, fields?: LogFields): void {
    if (this.enabled("error")) this.#sink.error(this.#line("error", message, fields));
  }

  #line(level: LogLevel, message: string, fields: LogFields | undefined): string {
    const time = this.#clock.format(Date.now());
    if (this.#format === "text") return `${time} ${this.#prefix} ${escapeControl(message)}`;
    const { queue, workerId } = this.#source;
    const line: Record<string, unknown> = { time, level, queue, workerId, message };
    for (const [name, value] of Object.entries(fields ?? {})) {
      // A field never replaces the line's own properties.
      if (value !== undefined && !(name in line)) line[name] = value;
    }
    return jsonLine(line);
  }
}
