/**
 * The dashboard's state-changing requests: aborting a task, unscheduling a repeating one,
 * rerunning failed tasks, one or those of the task list's filter, and pausing or resuming the
 * queue or one function.
 * The dashboard lets them through only as POSTs carrying a valid CSRF token.
 *
 * @module
 */

import type { Worker } from "../worker.ts";
import { StreaqError } from "../errors.ts";

/** What an action did, for the JSON answer or the redirect. */
export interface ActionOutcome {
  readonly ok: boolean;
  /** The HTTP status: 200, or 404 / 409 when the action could not apply. */
  readonly status: number;
  readonly message: string;
  /** Where a browser goes afterwards, below the base path. */
  readonly back: string;
}

/** An action bound to its target. */
export type Action = (worker: Worker<unknown>) => Promise<ActionOutcome>;

/** The action at these path segments (and query), or undefined when they name none. */
export function actionFor(segments: readonly string[], url: URL): Action | undefined {
  if (segments.length === 2 && segments[0] === "tasks" && segments[1] === "retry-failed") {
    const fn = url.searchParams.get("fn")?.trim() || undefined;
    return (worker) => retryFailed(worker, fn);
  }
  if (segments.length === 2 && segments[0] === "queue" && isPauseVerb(segments[1])) {
    const verb = segments[1];
    return (worker) => pauseOrResume(worker, verb);
  }
  if (segments.length !== 3) return undefined;
  const [kind, id, verb] = segments;
  if (kind === "functions" && isPauseVerb(verb)) return (worker) => pauseOrResume(worker, verb, id);
  if (kind === "tasks" && verb === "abort") return (worker) => abort(worker, id);
  if (kind === "tasks" && verb === "retry") return (worker) => retry(worker, id);
  if (kind === "schedules" && verb === "unschedule") return (worker) => unschedule(worker, id);
  return undefined;
}

async function abort(worker: Worker<unknown>, id: string): Promise<ActionOutcome> {
  const back = `/tasks/${encodeURIComponent(id)}`;
  const status = await worker.statusById(id);
  if (status === "missing") {
    return { ok: false, status: 404, message: `No task ${id}`, back };
  }
  if (status === "done") {
    return { ok: false, status: 409, message: `Task ${id} has already finished`, back };
  }
  const cancelled = await worker.abortById(id, { timeout: 0 });
  return {
    ok: true,
    status: 200,
    message: cancelled
      ? `Task ${id} was cancelled`
      : `Abort requested: task ${id} will be cancelled by its worker`,
    back,
  };
}

async function unschedule(worker: Worker<unknown>, id: string): Promise<ActionOutcome> {
  const stopped = await worker.unscheduleById(id);
  return stopped
    ? { ok: true, status: 200, message: `${id} was unscheduled`, back: "/schedules" }
    : { ok: false, status: 404, message: `No repeating task ${id}`, back: "/schedules" };
}

async function retry(worker: Worker<unknown>, id: string): Promise<ActionOutcome> {
  const back = `/tasks/${encodeURIComponent(id)}`;
  try {
    await worker.retryById(id);
  } catch (error) {
    if (!(error instanceof StreaqError)) throw error;
    const status = /as it is unknown/.test(error.message) ? 404 : 409;
    return { ok: false, status, message: error.message, back };
  }
  return { ok: true, status: 200, message: `Task ${id} was queued again`, back };
}

async function retryFailed(
  worker: Worker<unknown>,
  fnName: string | undefined,
): Promise<ActionOutcome> {
  const count = await worker.retryFailed({ fnName });
  const query = fnName ? `?fn=${encodeURIComponent(fnName)}` : "";
  return {
    ok: true,
    status: 200,
    message: `${count} failed ${count === 1 ? "task was" : "tasks were"} queued again`,
    back: `/tasks${query}`,
  };
}

function isPauseVerb(verb: string): verb is "pause" | "resume" {
  return verb === "pause" || verb === "resume";
}

/** Pauses or resumes the whole queue, or one function (`src/client/pause.ts`). */
async function pauseOrResume(
  worker: Worker<unknown>,
  verb: "pause" | "resume",
  fnName?: string,
): Promise<ActionOutcome> {
  const options = fnName === undefined ? {} : { functions: [fnName] };
  try {
    if (verb === "pause") await worker.pause(options);
    else await worker.resume(options);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return { ok: false, status: 400, message: error.message, back: "/" };
  }
  const what = fnName === undefined ? "The queue" : `Function ${fnName}`;
  return { ok: true, status: 200, message: `${what} was ${verb}d`, back: "/" };
}
