/**
 * What every page of the dashboard is rendered with, and the shape of a rendered page.
 *
 * @module
 */

import { QueueReads } from "../client/queue_reads.ts";
import type { TaskResult } from "../result.ts";
import { queueContextOf, type Worker } from "../worker.ts";
import type { Html } from "./_html.ts";

/** The dashboard's sections, one per navigation tab. */
export type Section = "overview" | "tasks" | "workers" | "schedules";

/** One request's view of the dashboard. */
export interface PageContext {
  /** The reads of the worker's queue: everything the pages show comes through it. */
  readonly reads: QueueReads;
  /** The names of the tasks registered on the worker, for the function filter. */
  readonly functions: readonly string[];
  readonly url: URL;
  /** The base path without a trailing slash: `""` at the root, `"/admin/queues"` below it. */
  readonly base: string;
  readonly csrfToken: string;
  /** When the request is served (ms since the epoch): every relative time is against it. */
  readonly now: number;
  readonly formatResult: (value: unknown, result: TaskResult<unknown>) => string;
  readonly formatError: (error: unknown, result: TaskResult<unknown>) => string;
}

/**
 * The reads of a worker's queue. The one place the dashboard reaches the worker's queue
 * context: every read goes through the returned object.
 */
export function queueReadsOf(worker: Worker<unknown>): QueueReads {
  return new QueueReads(queueContextOf(worker));
}

/** A rendered page. */
export interface Page {
  /** The page's own title, before the dashboard's. */
  readonly title: string;
  readonly section: Section;
  /** The part above the refreshed region: headings and filters. */
  readonly head: Html;
  /** The refreshed region: sent alone when the page's script asks for it. */
  readonly body: Html;
  /** The page's data for the JSON endpoint. */
  readonly json: unknown;
}

/** A path below the dashboard's base, with query parameters (empty ones left out). */
export function href(
  ctx: PageContext,
  path: string,
  query: Record<string, string | number | undefined> = {},
): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== "") params.set(k, String(v));
  }
  const search = params.size > 0 ? `?${params}` : "";
  return `${ctx.base}${path}${search}`;
}

/** The path of a task's page. */
export function taskHref(ctx: PageContext, id: string): string {
  return href(ctx, `/tasks/${encodeURIComponent(id)}`);
}

/** An error answered with its HTTP status and message (a bad filter, for example). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}
