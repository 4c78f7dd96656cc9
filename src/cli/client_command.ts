/**
 * The frame of the commands that use the Worker as a client only (`logs`, `retry`, `events`,
 * `metrics`, `pause`, `resume`, `clean`, `drain`, `obliterate`): a failure is one line on stderr
 * saying what could not be done and why, with exit code 1, and the worker's connections are
 * closed either way, so that the process exits.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { ExitCode } from "./args.ts";

/**
 * Runs `body` with `worker` as a client, then closes the worker.
 *
 * @param worker The worker the command loaded.
 * @param what What the command does, for the failure line ("cannot drain queue q"), or
 *   undefined for the error's message alone.
 * @param body The command; returns its exit code.
 * @returns The exit code of `body`, or 1 when it threw.
 */
export async function asClient(
  // deno-lint-ignore no-explicit-any
  worker: Worker<any>,
  what: string | undefined,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    console.error(`streaq: ${what === undefined ? "" : `${what}: `}${why}`);
    return ExitCode.FAILURE;
  } finally {
    await worker.close();
  }
}
