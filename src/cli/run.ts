/**
 * `run <module>`: runs the module's Worker in this process, or, with `--workers N` or
 * `--watch`, in worker processes under a {@linkcode Supervisor}.
 *
 * @module
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ExitCode, type RunCommand } from "./args.ts";
import type { LoadedWorker } from "./load.ts";
import { CliLog } from "./log.ts";
import { childPermissionFlags, denoExecutable } from "./permissions.ts";
import type { ShutdownSignals } from "./signals.ts";
import { Supervisor } from "./supervisor.ts";
import { watchForChanges } from "./watch.ts";
import { queueContextOf } from "../worker.ts";

/**
 * Runs the worker here until it stops: at the first SIGINT/SIGTERM (graceful shutdown), or in
 * burst mode once the queue is empty.
 *
 * @returns The exit code: 0 after a normal end, 1 when the worker failed.
 */
export async function runInProcess(
  { worker }: LoadedWorker,
  command: RunCommand,
  signals: ShutdownSignals,
): Promise<number> {
  const signal = command.supervised
    ? AbortSignal.any([signals.signal, supervisorGone()])
    : signals.signal;
  try {
    await worker.run({
      burst: command.burst,
      signal,
      concurrency: command.concurrency,
      logLevel: command.logLevel,
      logFormat: command.logFormat,
    });
    return ExitCode.OK;
  } catch (error) {
    console.error(`streaq: worker ${worker.id} failed: ${describe(error)}`);
    return ExitCode.FAILURE;
  } finally {
    await worker.close();
  }
}

/**
 * Runs the worker in `command.workers` processes, restarted when they die and, with
 * `--watch`, when a file changes, until a SIGINT/SIGTERM (forwarded to every process) or, in
 * burst mode, until every process has drained the queue.
 *
 * @returns The exit code: 0 once every process has exited gracefully.
 */
export async function runSupervised(
  loaded: LoadedWorker,
  command: RunCommand,
  signals: ShutdownSignals,
): Promise<number> {
  const log = new CliLog("supervisor", {
    level: cliLevel(command),
    format: command.logFormat,
    timeZone: queueContextOf(loaded.worker).timeZone,
  });
  let deno: string;
  try {
    deno = denoExecutable();
  } catch (error) {
    console.error(`streaq: ${describe(error)}`);
    return ExitCode.FAILURE;
  }
  // Deno does not tell a program its own flags (`--unstable-*`, `--v8-flags`, `--config`, a
  // permission set): the user passes them with `--deno-flags` and `--permission-set`.
  const permissions = command.permissionSet !== undefined
    ? [`--permission-set=${command.permissionSet}`]
    : childPermissionFlags({ moduleUrl: loaded.url, redis: redisAddress(loaded) });
  const flags = ["--no-prompt", ...command.denoFlags, ...permissions];
  await loaded.worker.close(); // This process only supervises: it never talks to Redis.
  const supervisor = new Supervisor({
    processes: command.workers,
    command: deno,
    args: [
      "run",
      ...flags,
      cliSpecifier(),
      ...childArguments(loaded, command),
    ],
    burst: command.burst,
    watch: command.watch,
    log,
  });
  log.debug(`worker processes run: ${deno} run ${flags.join(" ")} ...`);
  signals.onSignal((signal) => supervisor.stop(signal));
  if (signals.signal.aborted) return ExitCode.OK;
  supervisor.start();
  const watching = command.watch ? watch(loaded, supervisor, log, signals.signal) : undefined;
  const code = await supervisor.done;
  await watching;
  log.info(`all worker processes have exited`);
  return code;
}

/**
 * Aborts when standard input closes. The supervisor gives each process a pipe that it never
 * writes to: the pipe closes when the supervisor exits, even when it is killed with SIGKILL,
 * so that its processes shut down instead of running on unsupervised.
 */
function supervisorGone(): AbortSignal {
  const controller = new AbortController();
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) {
        // Nothing is ever written; only the end matters.
      }
    } catch {
      // A closed or broken pipe: the supervisor is gone all the same.
    }
    console.error(`streaq: the supervisor is gone: shutting down`);
    controller.abort();
  })();
  return controller.signal;
}

/** Restarts every worker process after each burst of file changes in the module's directory. */
function watch(
  loaded: LoadedWorker,
  supervisor: Supervisor,
  log: CliLog,
  signal: AbortSignal,
): Promise<void> {
  if (loaded.url.protocol !== "file:") {
    log.warn(`--watch ignored: ${loaded.url.href} is not a local file`);
    return Promise.resolve();
  }
  const dir = dirname(fileURLToPath(loaded.url));
  log.info(`watching ${dir} for changes`);
  return watchForChanges(dir, async (paths) => {
    log.info(`${paths.length === 1 ? paths[0] : `${paths.length} files`} changed: restarting`);
    await supervisor.restartAll();
  }, { signal });
}

/** The Redis host and port of a single-node connection; undefined for Sentinel or Cluster. */
function redisAddress({ worker }: LoadedWorker): { host: string; port: number } | undefined {
  // Reading `options` creates the connection object (it connects lazily, on the first command).
  const { host, port } =
    (queueContextOf(worker).redis as { options?: { host?: unknown; port?: unknown } })
      .options ?? {};
  return typeof host === "string" && typeof port === "number" ? { host, port } : undefined;
}

/** The arguments after the command line's specifier that run one worker in a process. */
function childArguments(loaded: LoadedWorker, command: RunCommand): string[] {
  const args = ["run", `${loaded.url.href}:${loaded.exportName}`, "--supervised"];
  if (command.burst) args.push("--burst");
  if (command.concurrency !== undefined) args.push("--concurrency", String(command.concurrency));
  if (command.logLevel === "debug") args.push("--verbose");
  if (command.logLevel === "warn") args.push("--quiet");
  if (command.logFormat !== undefined) args.push("--log-format", command.logFormat);
  return args;
}

/**
 * How a worker process runs this command line: its own file in a checkout, or the `./cli`
 * export of the same JSR release (a JSR file's https URL would not resolve its imports).
 */
function cliSpecifier(): string {
  const main = new URL("./main.ts", import.meta.url);
  const jsr = main.href.match(/^https:\/\/jsr\.io\/(@[^/]+\/[^/]+)\/([^/]+)\//);
  return jsr ? `jsr:${jsr[1]}@${jsr[2]}/cli` : main.href;
}

function cliLevel(command: RunCommand): "debug" | "info" | "warn" {
  return command.logLevel ?? "info";
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
