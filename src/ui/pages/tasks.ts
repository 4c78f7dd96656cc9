/**
 * The task list: tasks of every status, filtered by function, status and priority, paginated.
 *
 * @module
 */

import {
  LIST_STATUSES,
  type TaskFilter,
  type TaskPage,
  type TaskRow,
} from "../../client/queue_reads.ts";
import {
  confirmForm,
  count,
  empty,
  outcomeBadge,
  pagination,
  preview,
  progressView,
  statusBadge,
  taskLink,
  time,
} from "../_components.ts";
import { href, HttpError, type Page, type PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";
import { formatValue } from "../format.ts";

/** Tasks per page. */
export const PAGE_SIZE = 25;

/** The filter and page asked for in the query; throws HttpError 400 for unknown values. */
function readQuery(ctx: PageContext): { filter: TaskFilter; page: number } {
  const q = ctx.url.searchParams;
  const fn = q.get("fn")?.trim() || undefined;
  const status = q.get("status") || undefined;
  const priority = q.get("priority") || undefined;
  if (status && !LIST_STATUSES.includes(status)) {
    throw new HttpError(400, `Unknown status ${JSON.stringify(status)}`);
  }
  if (priority && !ctx.reads.priorities.includes(priority)) {
    throw new HttpError(400, `Unknown priority ${JSON.stringify(priority)}`);
  }
  const page = Number(q.get("page") ?? "1");
  return {
    filter: { fn, status, priority },
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

/** The task list page. */
export async function tasksPage(ctx: PageContext): Promise<Page> {
  const { filter, page } = readQuery(ctx);
  const found = await ctx.reads.taskRows(filter, {
    offset: (page - 1) * PAGE_SIZE,
    limit: PAGE_SIZE,
  });
  const details = await Promise.all(found.rows.map((row) => describe(ctx, row)));
  const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE));
  const link = (p: number) => href(ctx, "/tasks", { ...filter, page: p });
  const first = (page - 1) * PAGE_SIZE + 1;
  // A page past the end (an old link, or tasks that finished meanwhile) shows no range.
  const summary = found.rows.length === 0
    ? null
    : html`<p class="count-line">${count(first)}–${count(first + found.rows.length - 1)} of ${
      count(found.total)
    }${found.capped ? "+" : ""} tasks</p>`;
  const table = found.rows.length === 0
    ? html`<div class="table-wrap">${
      found.total === 0 ? empty("No tasks match.") : pastTheEnd(page, pages, found.total, link)
    }</div>`
    : html`
      <div class="table-wrap">
        <table class="rtable">
          <thead>
            <tr>
              <th>Task</th>
              <th>Function</th>
              <th>Status</th>
              <th class="opt">Priority</th>
              <th class="num opt">Tries</th>
              <th>When</th>
              <th class="opt">Arguments or outcome</th>
            </tr>
          </thead>
          <tbody>${found.rows.map((row, i) =>
            html`
              <tr>
                <td data-label="Task">${taskLink(ctx, row.id, shortId(row.id))}</td>
                <td data-label="Function">${row.fnName}</td>
                <td data-label="Status">${row.result
                  ? outcomeBadge(row.result.success, errorOf(row))
                  : statusBadge(row.status)}${row.progress === undefined ? null : html`
                  ${progressView(row.progress)}
                `}</td>
                <td data-label="Priority" class="opt">${row.priority ??
                  html`<span class="muted">—</span>`}</td>
                <td data-label="Tries" class="num opt">${row.tries}</td>
                <td data-label="When">${when(ctx, row)}</td>
                <td data-label="Arguments or outcome" class="args opt" title="${details[
                  i
                ]}">${details[i]}</td>
              </tr>
            `
          )}</tbody>
        </table>
      </div>
    `;
  return {
    title: "Tasks",
    section: "tasks",
    head: html`<h1>Tasks</h1>${filters(ctx, filter)}${bulkRetry(ctx, filter, found)}`,
    body: html`${summary}${table}${page <= pages ? pagination(page, pages, link) : null}`,
    json: {
      total: found.total,
      capped: found.capped,
      page,
      pages,
      pageSize: PAGE_SIZE,
      tasks: found.rows.map((row) => ({
        id: row.id,
        fnName: row.fnName,
        status: row.status,
        priority: row.priority,
        tries: row.tries,
        createdTime: row.createdTime,
        due: row.due,
        success: row.result?.success ?? null,
        finishTime: row.result?.finishTime ?? null,
        progress: row.progress === undefined
          ? null
          : typeof row.progress === "number"
          ? row.progress
          : formatValue(row.progress),
      })),
    },
  };
}

/**
 * With the failed tasks listed (status "failed"), a button that reruns those of the filter's
 * function (all functions without one), with their count.
 */
function bulkRetry(ctx: PageContext, filter: TaskFilter, found: TaskPage): Html | null {
  if (filter.status !== "failed" || filter.priority || found.total === 0) return null;
  const n = `${found.total}${found.capped ? "+" : ""}`;
  const tasks = found.total === 1 && !found.capped ? "task" : "tasks";
  const of = filter.fn ? ` of ${filter.fn}` : "";
  return html`<div class="actions bulk">${
    confirmForm(
      ctx,
      "/tasks/retry-failed",
      `Retry ${n} failed ${tasks}`,
      `Rerun the ${n} failed ${tasks}${of} with their original arguments?`,
      { query: { fn: filter.fn }, danger: false },
    )
  }</div>`;
}

/** The message of a page past the last one, with a link to the last. */
function pastTheEnd(
  page: number,
  pages: number,
  total: number,
  link: (p: number) => string,
): Html {
  return html`
    <p
      class="empty-state">Page ${page} is past the end: ${count(total)} ${total === 1
        ? "task fits"
        : "tasks fit"} on ${count(pages)} ${pages === 1 ? "page" : "pages"}. <a href="${link(
          pages,
        )}">Go to page ${pages}</a></p>
  `;
}

/** A generated id cut to 12 digits (the page shows it whole); other ids cut at 32. */
function shortId(id: string): string {
  if (/^[0-9a-f]{32}$/.test(id)) return `${id.slice(0, 12)}…`;
  return id.length > 32 ? `${id.slice(0, 31)}…` : id;
}

function errorOf(row: TaskRow): unknown {
  return row.result && !row.result.success ? row.result.exception : undefined;
}

function when(ctx: PageContext, row: TaskRow): Html {
  if (row.result) return html`finished ${time(ctx, row.result.finishTime)}`;
  if (row.status === "scheduled") return html`due ${time(ctx, row.due)}`;
  return html`created ${time(ctx, row.createdTime)}`;
}

/** A one-line preview: the arguments of an unfinished task, the outcome of a finished one. */
async function describe(ctx: PageContext, row: TaskRow): Promise<string> {
  if (row.result) {
    const r = row.result;
    return preview(r.success ? ctx.formatResult(r.result, r) : ctx.formatError(r.exception, r));
  }
  try {
    const info = await ctx.reads.taskInfo(row.id);
    return info ? preview(`(${info.args.map(formatValue).join(", ")})`) : "";
  } catch {
    return "";
  }
}

function filters(ctx: PageContext, filter: TaskFilter): Html {
  const functions = ctx.functions.map((f) => html`<option value="${f}"></option>`);
  const clear = filter.fn || filter.status || filter.priority
    ? html`<a class="btn" href="${href(ctx, "/tasks")}">Clear</a>`
    : null;
  return html`
    <form class="filters" method="get" action="${href(ctx, "/tasks")}" data-autosubmit>
      <label>Function <input name="fn" list="functions" value="${filter.fn ??
        ""}" placeholder="any" autocomplete="off"></label>
      <datalist id="functions">${functions}</datalist>
      ${select("Status", "status", LIST_STATUSES, filter.status)}
      ${select("Priority", "priority", ctx.reads.priorities, filter.priority)}
      <button class="btn btn-primary" type="submit">Filter</button>
      ${clear}
    </form>
  `;
}

/** A select of `values`, with "any" first (the empty value). */
function select(
  label: string,
  name: string,
  values: readonly string[],
  selected: string | undefined,
): Html {
  const options = ["", ...values].map((value) =>
    html`<option value="${value}" ${value === (selected ?? "") ? "selected" : ""}>${
      value || "any"
    }</option>`
  );
  return html`<label>${label} <select name="${name}">${options}</select></label>`;
}
