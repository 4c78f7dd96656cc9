/**
 * The dashboard's state-changing requests: aborting a task and unscheduling a repeating one.
 * The dashboard lets them through only as POSTs carrying a valid CSRF token.
 *
 * @module
 */

import type { Worker } from "../worker.ts";

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

/** The action at these path segments, or undefined when they name none. */
export function actionFor(segments: readonly string[]): Action | undefined {
  if (segments.length !== 3) return undefined;
  const [kind, id, verb] = segments;
  if (kind === "tasks" && verb === "abort") return (worker) => abort(worker, id);
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
