/**
 * The command line's grammar: `node:util` `parseArgs` for the options, then checks of the
 * subcommand, the module target and each value, so that every mistake becomes a
 * {@linkcode UsageError} (exit code 2) naming what was wrong.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { LogFormat } from "../logger.ts";

/** The exit codes of the command line. */
export const ExitCode = {
  /** Done: a burst run drained the queue, or a shutdown on SIGINT/SIGTERM was graceful. */
  OK: 0,
  /** Something failed at run time: Redis unreachable, a worker that failed, a permission. */
  FAILURE: 1,
  /** The command line is wrong: an unknown option, a bad value, a module with no Worker. */
  USAGE: 2,
} as const;

/** A mistake on the command line; the message says which, and the exit code is 2. */
export class UsageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** `<module>[:<export>]`: where the Worker is. */
export interface Target {
  /** The module as given: a path (relative to the working directory) or a URL. */
  readonly module: string;
  /** The export holding the Worker; undefined to look for it. */
  readonly exportName?: string;
}

/** Options of `run`. */
export interface RunCommand {
  readonly command: "run";
  readonly target: Target;
  /** Worker processes; 1 runs the worker in this process (unless `watch`). */
  readonly workers: number;
  readonly burst: boolean;
  readonly watch: boolean;
  readonly concurrency?: number;
  readonly logLevel?: "debug" | "warn";
  /** How log lines are written (`--log-format`); undefined for the Worker's own `logFormat`. */
  readonly logFormat?: LogFormat;
  /**
   * Flags of `deno run` for the worker processes of `--workers` and `--watch`
   * (`--deno-flags`): Deno does not tell a program the flags it was started with, so the
   * supervisor cannot pass its own on.
   */
  readonly denoFlags: readonly string[];
  /**
   * The permission set (`-P=<name>`) worker processes run with (`--permission-set`), instead of
   * the permissions the supervisor probes in itself.
   */
  readonly permissionSet?: string;
  /**
   * Set by the supervisor on the processes it starts (`--supervised`, not in `--help`): the
   * process shuts down when its standard input closes, which happens when the supervisor dies.
   */
  readonly supervised: boolean;
}

/** Options of `status`. */
export interface StatusCommand {
  readonly command: "status";
  readonly target: Target;
  readonly once: boolean;
}

/** Options of `web`. */
export interface WebCommand {
  readonly command: "web";
  readonly target: Target;
  /** The address to listen on; undefined for the dashboard's default (loopback). */
  readonly hostname?: string;
  /** The TCP port; undefined for the dashboard's default. */
  readonly port?: number;
  /** Trust `X-Forwarded-Proto: https` from a TLS-terminating proxy (secure cookies). */
  readonly trustProxy?: boolean;
}

/** Options of `clean`: which results to remove. */
export interface CleanCommand {
  readonly command: "clean";
  readonly target: Target;
  /** Only tasks that finished at least this many ms ago (`--older-than`). */
  readonly olderThan?: number;
  /** Only successes (`--succeeded`) or only failures (`--failed`). */
  readonly status?: "succeeded" | "failed";
  /** Only tasks of this function (`--function`). */
  readonly fnName?: string;
}

/** `drain`: removes every task that waits for a worker. */
export interface DrainCommand {
  readonly command: "drain";
  readonly target: Target;
}

/** `pause` and `resume`: the whole queue, or the functions named (`--function`, repeatable). */
export interface PauseCommand {
  readonly command: "pause" | "resume";
  readonly target: Target;
  /** Only these functions (`--function`, once per function). */
  readonly functions?: readonly string[];
}

/** `obliterate`: removes every key of the queue. */
export interface ObliterateCommand {
  readonly command: "obliterate";
  readonly target: Target;
  /** Go ahead while workers are alive (`--force`). */
  readonly force: boolean;
}

/** Options of `retry`: one task by id, or the failed tasks of a function or since a time. */
export interface RetryCommand {
  readonly command: "retry";
  readonly target: Target;
  /** The id of the one failed task to rerun. */
  readonly taskId?: string;
  /** Rerun the failed tasks of this function (`--function`). */
  readonly fnName?: string;
  /** Rerun the tasks that failed at or after this time (`--since`). */
  readonly since?: Date;
}

/** `logs <module> <task-id>`: prints the log lines of one task. */
export interface LogsCommand {
  readonly command: "logs";
  readonly target: Target;
  /** The id of the task whose lines to print. */
  readonly taskId: string;
}

/** `metrics <module>`: prints the queue's metrics once, as text or JSON. */
export interface MetricsCommand {
  readonly command: "metrics";
  readonly target: Target;
  /** Print JSON (`--json`) instead of text. */
  readonly json: boolean;
}

/** `events <module>`: prints the queue's events as they happen. */
export interface EventsCommand {
  readonly command: "events";
  readonly target: Target;
  /** Where to start: "now", "start", an event id, or a time (`--since`). */
  readonly since: string | Date;
  /** Print the events kept (from `since`, by default the oldest kept) and exit (`--once`). */
  readonly once: boolean;
}

/** What the command line asks for. */
export type Command =
  | RunCommand
  | StatusCommand
  | WebCommand
  | CleanCommand
  | DrainCommand
  | ObliterateCommand
  | PauseCommand
  | RetryCommand
  | LogsCommand
  | MetricsCommand
  | EventsCommand
  | { readonly command: "help" }
  | { readonly command: "version" };

const OPTIONS = {
  workers: { type: "string" },
  burst: { type: "boolean" },
  watch: { type: "boolean" },
  concurrency: { type: "string" },
  verbose: { type: "boolean" },
  quiet: { type: "boolean" },
  "log-format": { type: "string" },
  "deno-flags": { type: "string", multiple: true },
  "permission-set": { type: "string" },
  supervised: { type: "boolean" },
  once: { type: "boolean" },
  json: { type: "boolean" },
  port: { type: "string" },
  hostname: { type: "string" },
  "trust-proxy": { type: "boolean" },
  "older-than": { type: "string" },
  succeeded: { type: "boolean" },
  failed: { type: "boolean" },
  function: { type: "string", multiple: true },
  force: { type: "boolean" },
  since: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/** Which subcommand each option belongs to. */
const OPTION_COMMANDS: Record<string, readonly string[]> = {
  workers: ["run"],
  burst: ["run"],
  watch: ["run"],
  concurrency: ["run"],
  verbose: ["run"],
  quiet: ["run"],
  "log-format": ["run"],
  "deno-flags": ["run"],
  "permission-set": ["run"],
  supervised: ["run"],
  once: ["status", "events"],
  json: ["metrics"],
  port: ["web"],
  hostname: ["web"],
  "trust-proxy": ["web"],
  "older-than": ["clean"],
  succeeded: ["clean"],
  failed: ["clean"],
  function: ["clean", "retry", "pause", "resume"],
  since: ["retry", "events"],
  force: ["obliterate"],
};

const COMMANDS = [
  "run",
  "status",
  "web",
  "clean",
  "drain",
  "obliterate",
  "pause",
  "resume",
  "retry",
  "logs",
  "metrics",
  "events",
] as const;

/**
 * Parses the arguments after `deno run ... main.ts`.
 *
 * @throws {UsageError} For anything that is not a valid command line.
 */
export function parseCommandLine(args: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: "help" };
  if (values.version) return { command: "version" };
  const [name, target, ...extra] = positionals;
  if (name === undefined) {
    throw new UsageError(`Missing a command: ${COMMANDS.join(", ")}`);
  }
  const command = COMMANDS.find((c) => c === name);
  if (command === undefined) {
    throw new UsageError(
      `Unknown command ${JSON.stringify(name)}: expected one of ${COMMANDS.join(", ")}`,
    );
  }
  for (const [option, commands] of Object.entries(OPTION_COMMANDS)) {
    if (values[option as keyof typeof values] !== undefined && !commands.includes(command)) {
      throw new UsageError(
        `Option '--${option}' applies to ${listed(commands)}, not ${command}`,
      );
    }
  }
  if (target === undefined) {
    throw new UsageError(`Missing the module: streaq ${command} <module>[:<export>]`);
  }
  const functions = values.function;
  if (
    functions !== undefined && functions.length > 1 && command !== "pause" && command !== "resume"
  ) {
    throw new UsageError(`Option '--function' may be given once for ${command}`);
  }
  const fnName = functions?.[0];
  if (command === "retry") {
    return retryCommand(parseTarget(target), extra, { ...values, function: fnName });
  }
  if (command === "logs") return logsCommand(parseTarget(target), extra);
  if (extra.length > 0) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(extra[0])} after the module`);
  }
  const where = parseTarget(target);
  if (command === "events") return eventsCommand(where, values.since, values.once ?? false);
  if (command === "status") return { command, target: where, once: values.once ?? false };
  if (command === "drain") return { command, target: where };
  if (command === "metrics") return { command, target: where, json: values.json ?? false };
  if (command === "pause" || command === "resume") {
    for (const name of functions ?? []) {
      if (name.trim() === "") {
        throw new UsageError(`Option '--function' must be a function name: received ""`);
      }
    }
    return { command, target: where, functions };
  }
  if (command === "obliterate") return { command, target: where, force: values.force ?? false };
  if (command === "clean") {
    if (values.succeeded && values.failed) {
      throw new UsageError("Options '--succeeded' and '--failed' cannot be combined");
    }
    return {
      command,
      target: where,
      olderThan: duration("older-than", values["older-than"]),
      status: values.succeeded ? "succeeded" : values.failed ? "failed" : undefined,
      fnName,
    };
  }
  if (command === "web") {
    return {
      command,
      target: where,
      hostname: values.hostname,
      port: port(values.port),
      trustProxy: values["trust-proxy"],
    };
  }
  if (values.verbose && values.quiet) {
    throw new UsageError("Options '--verbose' and '--quiet' cannot be combined");
  }
  if (values.watch && values.burst) {
    throw new UsageError("Options '--watch' and '--burst' cannot be combined");
  }
  const workers = positiveInteger("workers", values.workers) ?? 1;
  for (const option of ["deno-flags", "permission-set"] as const) {
    if (values[option] !== undefined && workers === 1 && !values.watch) {
      throw new UsageError(
        `Option '--${option}' applies to worker processes: add '--workers N' (N ≥ 2) or '--watch'`,
      );
    }
  }
  return {
    command,
    target: where,
    workers,
    burst: values.burst ?? false,
    watch: values.watch ?? false,
    concurrency: positiveInteger("concurrency", values.concurrency),
    logLevel: values.verbose ? "debug" : values.quiet ? "warn" : undefined,
    logFormat: logFormat(values["log-format"]),
    denoFlags: (values["deno-flags"] ?? []).flatMap(denoFlags),
    permissionSet: permissionSet(values["permission-set"]),
    supervised: values.supervised ?? false,
  };
}

/** `retry <module> <task-id>`, or `retry <module> --function NAME [--since TIME]`. */
function retryCommand(
  target: Target,
  extra: string[],
  values: { function?: string; since?: string },
): RetryCommand {
  const [taskId, ...more] = extra;
  if (more.length > 0) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(more[0])} after the task id`);
  }
  if (taskId !== undefined && (values.function !== undefined || values.since !== undefined)) {
    throw new UsageError(
      "A task id cannot be combined with '--function' or '--since': retry one task, or a selection",
    );
  }
  if (taskId === undefined && values.function === undefined && values.since === undefined) {
    throw new UsageError(
      "Missing what to retry: streaq retry <module> <task-id>, or --function NAME [--since TIME]",
    );
  }
  if (values.function !== undefined && values.function.trim() === "") {
    throw new UsageError(`Option '--function' must be a function name: received ""`);
  }
  return {
    command: "retry",
    target,
    taskId,
    fnName: values.function,
    since: values.since === undefined ? undefined : sinceTime(values.since, Date.now()),
  };
}

/** `logs <module> <task-id>`. */
function logsCommand(target: Target, extra: string[]): LogsCommand {
  const [taskId, ...more] = extra;
  if (taskId === undefined || taskId === "") {
    throw new UsageError("Missing the task id: streaq logs <module> <task-id>");
  }
  if (more.length > 0) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(more[0])} after the task id`);
  }
  return { command: "logs", target, taskId };
}

/** `events <module> [--since ...] [--once]`. */
function eventsCommand(target: Target, since: string | undefined, once: boolean): EventsCommand {
  const from = since === undefined
    ? (once ? "start" : "now")
    : since === "now" || since === "start" || /^\d{1,20}-\d{1,20}$/.test(since)
    ? since
    : sinceTime(since, Date.now());
  return { command: "events", target, since: from, once };
}

const AGO_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The units of {@linkcode duration}: those of `--since`, and milliseconds. */
const DURATION_UNITS: Record<string, number> = { ms: 1, ...AGO_UNITS };

/** A duration: milliseconds, or a number with a unit (`ms`, `s`, `m`, `h`, `d`): `90s`, `7d`. */
export function duration(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value);
  if (!match) {
    throw new UsageError(
      `Option '--${option}' must be a duration, in milliseconds or with a unit (ms, s, m, h, d, as in 90s or 7d): received ${
        JSON.stringify(value)
      }`,
    );
  }
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? "ms"]);
}

/**
 * The time of `--since`: an ISO 8601 date or date-time (`2026-01-31`, `2026-01-31T09:00Z`), or a
 * duration before `now` (`30m`, `2h`, `7d`).
 */
export function sinceTime(value: string, now: number): Date {
  const ago = /^(\d+)([smhd])$/.exec(value);
  if (ago) return new Date(now - Number(ago[1]) * AGO_UNITS[ago[2]]);
  const time = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
    ? Date.parse(value)
    : NaN;
  if (Number.isNaN(time)) {
    throw new UsageError(
      `Option '--since' must be an ISO 8601 time (2026-01-31T09:00Z) or a duration ago (30m, 2h, 7d): received ${
        JSON.stringify(value)
      }`,
    );
  }
  return new Date(time);
}

/**
 * Splits `<module>[:<export>]`. The export is what follows the last colon when it is a
 * JavaScript identifier, so URLs (`https://...`, `file:///...`) and Windows drive letters
 * (`C:\...`) stay whole.
 */
export function parseTarget(text: string): Target {
  const colon = text.lastIndexOf(":");
  const after = text.slice(colon + 1);
  if (
    colon > 0 && /^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(after) && !/^[a-z]$/i.test(text.slice(0, colon))
  ) {
    return { module: text.slice(0, colon), exportName: after };
  }
  if (text.endsWith(":")) {
    throw new UsageError(`Missing the export name after the colon in ${JSON.stringify(text)}`);
  }
  return { module: text };
}

function positiveInteger(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(
      `Option '--${option}' must be an integer ≥ 1: received ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

function port(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65_535) {
    throw new UsageError(
      `Option '--port' must be an integer from 0 to 65535: received ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

function logFormat(value: string | undefined): LogFormat | undefined {
  if (value === undefined || value === "text" || value === "json") return value;
  throw new UsageError(
    `Option '--log-format' must be text or json: received ${JSON.stringify(value)}`,
  );
}

/**
 * Splits the value of `--deno-flags` into arguments of `deno run` at white space, keeping
 * what is quoted ('...' or "...") together, as a shell would: `--v8-flags=--a --unstable-kv`
 * is two flags.
 */
export function denoFlags(value: string): string[] {
  const flags: string[] = [];
  const pattern = /([^\s'"]+)|'([^']*)'|"([^"]*)"|(\s+)|(['"])/g;
  let current: string | undefined;
  for (const [, bare, single, double, space, unmatched] of value.matchAll(pattern)) {
    if (unmatched) {
      throw new UsageError(
        `Option '--deno-flags' has an unmatched ${unmatched}: received ${JSON.stringify(value)}`,
      );
    }
    if (space !== undefined) {
      if (current !== undefined) flags.push(current);
      current = undefined;
    } else {
      current = (current ?? "") + (bare ?? single ?? double);
    }
  }
  if (current !== undefined) flags.push(current);
  for (const flag of flags) {
    // A module or script argument here would end `deno run`'s flags: everything after it
    // would be passed to the worker's module as its arguments.
    if (!flag.startsWith("-")) {
      throw new UsageError(
        `Option '--deno-flags' must hold only flags of deno run, each starting with '-': received ${
          JSON.stringify(flag)
        } in ${JSON.stringify(value)}`,
      );
    }
  }
  return flags;
}

function permissionSet(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\w.-]+$/.test(value)) {
    throw new UsageError(
      `Option '--permission-set' must be the name of a permission set of deno.json: received ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/** The first sentence of a `parseArgs` error, which is the part that applies here. */
function parseArgsMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\. (?=To specify)/)[0];
}

/** `a`, `a and b`, `a, b and c`: commands named in a message. */
function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}
