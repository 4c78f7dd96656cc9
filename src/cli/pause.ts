/**
 * `pause` and `resume` on the command line: they call the Worker's methods of the same names on
 * the module's queue (the whole queue, or the functions named with `--function`) and print what
 * is paused afterwards. They run no worker. Also the lines of `status` that say what is paused
 * and what is limited.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { describeLimit, type FunctionLimit, type PauseState } from "../client/pause.ts";
import { escapeControl } from "../logger.ts";
import { ExitCode, type PauseCommand } from "./args.ts";
import { type Paint, PLAIN } from "./screen.ts";
import { asClient } from "./client_command.ts";

/**
 * Runs `pause` or `resume`, prints the pauses in force afterwards on stdout (a failure on
 * stderr), and closes the worker's connections.
 *
 * @returns The exit code: 0 done, 1 failed.
 */
export async function runPauseCommand(
  // deno-lint-ignore no-explicit-any
  worker: Worker<any>,
  command: PauseCommand,
): Promise<number> {
  const queue = worker.queueName;
  const options = command.functions ? { functions: command.functions } : {};
  return await asClient(worker, `cannot ${command.command} queue ${queue}`, async () => {
    if (command.command === "pause") await worker.pause(options);
    else await worker.resume(options);
    console.log(
      `queue ${escapeControl(queue)}: ${formatPauses(await worker.paused(), Date.now())}`,
    );
    return ExitCode.OK;
  });
}

/**
 * What is paused, in one line: `nothing paused`, or the whole queue and the paused functions,
 * each with how long it has been paused and how many of its tasks wait.
 *
 * @param state The pauses, as `worker.paused()` reads them.
 * @param now The time to count the pauses' ages from (ms).
 * @param paint Colours for a terminal.
 * @returns The line.
 */
export function formatPauses(state: PauseState, now: number, paint: Paint = PLAIN): string {
  const parts: string[] = [];
  if (state.queue) parts.push(`the whole queue (for ${age(now - state.queue.getTime())})`);
  for (const f of state.functions) {
    parts.push(
      `${escapeControl(f.name)} (for ${age(now - f.since.getTime())}, ${f.held} task${
        f.held === 1 ? "" : "s"
      } set aside)`,
    );
  }
  return parts.length === 0 ? "nothing paused" : paint.yellow(`paused: ${parts.join(", ")}`);
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/**
 * The limits in force, in one line: `no limit`, or each limited function with its slots taken,
 * its starts in the current window and its tasks waiting.
 *
 * @param limits The limits, as `worker.limits()` reads them.
 * @returns The line.
 */
export function formatLimits(limits: readonly FunctionLimit[]): string {
  if (limits.length === 0) return "no limit";
  return `limited: ${
    limits.map((l) =>
      `${escapeControl(l.name)} (${[...describeLimit(l), `${l.waiting} waiting`].join(", ")})`
    )
      .join("; ")
  }`;
}
