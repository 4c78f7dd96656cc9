/**
 * `run --workers N`: N worker processes, each the command line itself running the worker in
 * its own process, under a supervisor that restarts a process that dies, forwards SIGINT and
 * SIGTERM to every process, and exits once all of them have shut down gracefully.
 *
 * A process that dies unexpectedly is restarted after a short pause that doubles while it
 * keeps dying within seconds of its start (a broken Redis URL should not become a fork loop).
 * The tasks it held are not lost: other workers reclaim them after `idleTimeout`.
 *
 * @module
 */

import type { CliLog } from "./log.ts";

/** How a {@linkcode Supervisor} starts and restarts its processes. */
export interface SupervisorOptions {
  /** How many processes to keep running. */
  readonly processes: number;
  /** The executable (deno) and the arguments of each process. */
  readonly command: string;
  readonly args: readonly string[];
  /** Burst mode: a process that exits with code 0 has drained the queue and stays down. */
  readonly burst: boolean;
  /** Watch mode: a process that exits with code 2 (a broken module) waits for a change. */
  readonly watch: boolean;
  readonly log: CliLog;
}

/** A process that lived at least this long before dying restarts after the shortest pause. */
const STABLE_AFTER = 10_000;
const FIRST_RESTART_DELAY = 250;
const MAX_RESTART_DELAY = 30_000;
/** The exit code of the command line for a usage error (see `ExitCode.USAGE`). */
const USAGE = 2;

interface Slot {
  readonly number: number;
  child?: Deno.ChildProcess;
  exited?: Promise<Deno.CommandStatus>;
  startedAt: number;
  quickDeaths: number;
  restartTimer?: ReturnType<typeof setTimeout>;
  /** Burst mode: this process drained the queue. */
  finished: boolean;
}

/** Runs and watches over N worker processes. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #slots: Slot[];
  readonly #done = Promise.withResolvers<number>();
  #stopSignal: Deno.Signal | undefined;
  #restarting = false;
  #failedShutdown = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.processes }, (_, i) => ({
      number: i + 1,
      startedAt: 0,
      quickDeaths: 0,
      finished: false,
    }));
  }

  /** Resolves to the exit code once every process is down for good. */
  get done(): Promise<number> {
    return this.#done.promise;
  }

  /** Starts every process. */
  start(): void {
    for (const slot of this.#slots) this.#spawn(slot);
  }

  /**
   * Sends `signal` to every process and starts no more; {@linkcode Supervisor.done} resolves
   * once all have exited. Calling it again sends the signal again.
   */
  stop(signal: Deno.Signal): void {
    this.#stopSignal = signal;
    for (const slot of this.#slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      if (slot.child) kill(slot.child, signal);
    }
    this.#settleIfDone();
  }

  /** Stops every process gracefully (SIGTERM), waits for them, and starts them all again. */
  async restartAll(): Promise<void> {
    if (this.#stopSignal) return;
    this.#restarting = true;
    try {
      const exits: Promise<unknown>[] = [];
      for (const slot of this.#slots) {
        clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
        if (slot.child && slot.exited) {
          kill(slot.child, "SIGTERM");
          exits.push(slot.exited);
        }
      }
      await Promise.all(exits);
    } finally {
      this.#restarting = false;
    }
    if (this.#stopSignal) return this.#settleIfDone();
    for (const slot of this.#slots) {
      slot.quickDeaths = 0;
      slot.finished = false;
      this.#spawn(slot);
    }
  }

  #spawn(slot: Slot): void {
    const { command, args, log } = this.#options;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args: [...args],
        // Never written to: it closes when this process ends, however it ends, which tells the
        // worker process to shut down (see `--supervised`).
        stdin: "piped",
        stdout: "inherit",
        stderr: "inherit",
        // Its own process group: a Ctrl-C in the terminal reaches only this process, which
        // passes each signal on once. In the terminal's group a worker process would get every
        // Ctrl-C twice, and take the first for the second that exits at once.
        detached: true,
      }).spawn();
    } catch (error) {
      slot.quickDeaths++;
      const delay = this.#scheduleRestart(slot);
      log.warn(
        `cannot start worker process #${slot.number}: ${error}; trying again in ${delay} ms`,
      );
      return;
    }
    slot.child = child;
    slot.startedAt = Date.now();
    slot.exited = child.status;
    log.info(`worker process #${slot.number} started (pid ${child.pid})`);
    child.status.then((status) => this.#onExit(slot, child, status));
  }

  #onExit(slot: Slot, child: Deno.ChildProcess, status: Deno.CommandStatus): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    const { log } = this.#options;
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    if (this.#stopSignal) {
      const graceful = status.success || status.signal === this.#stopSignal;
      if (!graceful) this.#failedShutdown = true;
      log.info(`worker process #${slot.number} (pid ${child.pid}) ${how}`);
      return this.#settleIfDone();
    }
    if (this.#restarting) {
      log.debug(`worker process #${slot.number} (pid ${child.pid}) ${how} for the restart`);
      return;
    }
    if (this.#options.burst && status.success) {
      slot.finished = true;
      log.info(`worker process #${slot.number} (pid ${child.pid}) drained the queue`);
      return this.#settleIfDone();
    }
    if (this.#options.watch && status.code === USAGE) {
      log.warn(
        `worker process #${slot.number} (pid ${child.pid}) ${how}: waiting for a file change`,
      );
      return;
    }
    slot.quickDeaths = Date.now() - slot.startedAt < STABLE_AFTER ? slot.quickDeaths + 1 : 0;
    const delay = this.#scheduleRestart(slot);
    log.warn(
      `worker process #${slot.number} (pid ${child.pid}) ${how} unexpectedly: restarting it in ${delay} ms`,
    );
  }

  #scheduleRestart(slot: Slot): number {
    const delay = Math.min(
      FIRST_RESTART_DELAY * 2 ** Math.max(0, slot.quickDeaths - 1),
      MAX_RESTART_DELAY,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.#stopSignal) this.#spawn(slot);
    }, delay);
    return delay;
  }

  /** Resolves `done` once no process runs or will be restarted. */
  #settleIfDone(): void {
    const active = this.#slots.some((s) => s.child || s.restartTimer);
    if (active) return;
    if (this.#stopSignal) {
      this.#done.resolve(this.#failedShutdown ? 1 : 0);
    } else if (this.#options.burst && this.#slots.every((s) => s.finished)) {
      this.#done.resolve(0);
    }
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // It has exited already.
  }
}
