/**
 * Repeating tasks: cron jobs and tasks enqueued with a crontab schedule, their next run and
 * last outcome, and the button to unschedule them.
 *
 * @module
 */

import {
  confirmForm,
  count,
  empty,
  outcomeBadge,
  preview,
  taskLink,
  time,
} from "../_components.ts";
import type { Page, PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";
import type { TaskResult } from "../../result.ts";

/** The schedules page. */
export async function schedulesPage(ctx: PageContext): Promise<Page> {
  const schedules = await ctx.reads.schedules();
  const table = schedules.length === 0
    ? html`<div class="table-wrap">${
      empty("No repeating tasks. Cron jobs appear once a worker that registers them runs.")
    }</div>`
    : html`
      <div class="table-wrap">
        <table class="rtable">
          <thead>
            <tr>
              <th>Function</th>
              <th>Crontab</th>
              <th class="opt">Kind</th>
              <th class="opt">Priority</th>
              <th>Next run</th>
              <th>Last outcome</th>
              <th></th>
            </tr>
          </thead>
          <tbody>${schedules.map((s) => {
            return html`
              <tr>
                <td data-label="Function">${taskLink(ctx, s.taskId, s.fnName)}</td>
                <td data-label="Crontab"><code>${s.crontab}</code>${s.timeZone === "UTC"
                  ? null
                  : html`
                    <span class="muted">${s.timeZone}</span>
                  `}</td>
                <td data-label="Kind" class="opt">${s.cronJob ? "cron job" : "schedule"}</td>
                <td data-label="Priority" class="opt">${s.priority}</td>
                <td data-label="Next run">${s.nextRun
                  ? time(ctx, s.nextRun)
                  : html`<span class="muted">running or queued</span>`}</td>
                <td data-label="Last outcome">${lastOutcome(ctx, s.lastResult)}</td>
                <td data-label="">${confirmForm(
                  ctx,
                  `/schedules/${encodeURIComponent(s.taskId)}/unschedule`,
                  "Unschedule",
                  `Stop ${s.fnName} (${s.crontab})? Its next occurrences will not run.`,
                )}</td>
              </tr>
            `;
          })}</tbody>
        </table>
      </div>
    `;
  return {
    title: "Schedules",
    section: "schedules",
    head: html`
      <h1>Schedules</h1>
      <p class="subtitle">Cron jobs and tasks repeating on a crontab, soonest first.</p>
    `,
    body: html`<p class="count-line">${count(schedules.length)} repeating ${
      schedules.length === 1 ? "task" : "tasks"
    }</p>${table}`,
    json: {
      schedules: schedules.map((s) => ({
        taskId: s.taskId,
        fnName: s.fnName,
        cronJob: s.cronJob,
        crontab: s.crontab,
        timeZone: s.timeZone,
        priority: s.priority,
        nextRun: s.nextRun,
        lastResult: s.lastResult
          ? {
            success: s.lastResult.success,
            finishTime: s.lastResult.finishTime,
            error: s.lastResult.success
              ? null
              : ctx.formatError(s.lastResult.exception, s.lastResult),
          }
          : null,
      })),
    },
  };
}

function lastOutcome(ctx: PageContext, last: TaskResult<unknown> | null): Html {
  if (!last) return html`<span class="muted">not run yet</span>`;
  const badge = outcomeBadge(last.success, last.success ? undefined : last.exception);
  const error = last.success
    ? null
    : html`<div class="muted">${preview(ctx.formatError(last.exception, last), 60)}</div>`;
  return html`${badge} ${time(ctx, last.finishTime)}${error}`;
}
