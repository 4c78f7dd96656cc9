/**
 * One task: its arguments, status, tries and timings, its result or error, its dependencies
 * and dependents, and the buttons to abort, unschedule or rerun it.
 *
 * @module
 */

import type { TaskDetail } from "../../client/queue_reads.ts";
import type { TaskResult } from "../../result.ts";
import {
  confirmForm,
  duration,
  outcomeBadge,
  progressView,
  statusBadge,
  taskLink,
  time,
} from "../_components.ts";
import { href, type Page, type PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";
import { formatValue } from "../format.ts";

/** The page of the task with this id, or null when there is no such task. */
export async function taskPage(ctx: PageContext, id: string): Promise<Page | null> {
  const task = await ctx.reads.task(id);
  if (!task) return null;
  const { info, result } = task;
  const fnName = info?.fnName ?? result?.fnName ?? "unknown";
  const args = info?.args.map((arg) => formatValue(arg)) ?? null;
  const outcome = result ? formatOutcome(ctx, result) : null;
  return {
    title: `${fnName} ${id}`,
    section: "tasks",
    head: html`<p class="muted"><a href="${href(ctx, "/tasks")}">← Tasks</a></p>`,
    body: html`${titleRow(ctx, task, fnName)}${
      info ? html`<div class="grid-2">${details(ctx, task)}${relations(ctx, task)}</div>` : details(
        ctx,
        task,
      )
    }${args ? argumentsPanel(args) : null}${
      outcome
        ? panel(result!.success ? "Result" : "Error", result!.success ? "result" : "error", outcome)
        : null
    }${task.unreadable ? panel("Result", "error", task.unreadable) : null}${
      task.logs.length > 0 ? panel(`Logs (${task.logs.length})`, "logs", logText(task)) : null
    }`,
    json: {
      id,
      fnName,
      status: info?.status ?? "done",
      priority: info?.priority ?? null,
      tries: info?.tries ?? result?.tries ?? null,
      createdTime: info?.createdTime ?? result?.createdTime ?? null,
      enqueueTime: task.enqueueTime,
      scheduled: info?.scheduled ?? null,
      crontab: info?.crontab ?? null,
      waitReason: info?.waitReason ?? null,
      progress: info?.progress === undefined
        ? null
        : typeof info.progress === "number"
        ? info.progress
        : formatValue(info.progress),
      workerId: task.workerId,
      aborting: task.aborting,
      retryable: task.retryable,
      args,
      success: result?.success ?? null,
      startTime: result?.startTime ?? null,
      finishTime: result?.finishTime ?? null,
      result: result?.success ? outcome : null,
      error: result && !result.success ? outcome : task.unreadable,
      dependencies: info?.dependencies ?? [],
      dependents: info?.dependents ?? [],
      logs: task.logs.map((line) => ({
        time: line.time.getTime(),
        tries: line.tries,
        message: line.message,
      })),
    },
  };
}

/** The lines the task logged, one a line: time, try, text. */
function logText(task: TaskDetail): string {
  return task.logs.map((line) => `${line.time.toISOString()}  try ${line.tries}  ${line.message}`)
    .join("\n");
}

function titleRow(ctx: PageContext, task: TaskDetail, fnName: string): Html {
  return html`
    <div class="title-row">
      <div>
        <h1>${fnName} ${badge(task)}</h1>
        <p class="subtitle mono">${task.id}</p>
      </div>
      ${actions(ctx, task)}
    </div>
  `;
}

function details(ctx: PageContext, task: TaskDetail): Html {
  return html`<section class="panel"><h2>Details</h2>${facts(ctx, task)}</section>`;
}

function argumentsPanel(args: string[]): Html {
  if (args.length === 0) {
    return html`
      <section class="panel">
        <h2>Arguments</h2>
        <p class="muted">none</p>
      </section>
    `;
  }
  const text = args.map((a, i) => `${args.length > 1 ? `[${i}] ` : ""}${a}`).join("\n");
  return panel("Arguments", "args", text);
}

function panel(title: string, kind: string, text: string): Html {
  return html`
    <section class="panel">
      <h2>${title}</h2>
      <pre class="${kind}">${text}</pre>
    </section>
  `;
}

function formatOutcome(ctx: PageContext, result: TaskResult<unknown>): string {
  return result.success
    ? ctx.formatResult(result.result, result)
    : ctx.formatError(result.exception, result);
}

function badge(task: TaskDetail): Html {
  if (task.result) {
    return outcomeBadge(
      task.result.success,
      task.result.success ? undefined : task.result.exception,
    );
  }
  if (task.info) return statusBadge(task.info.status);
  return statusBadge("done");
}

function actions(ctx: PageContext, task: TaskDetail): Html {
  const { info } = task;
  const id = encodeURIComponent(task.id);
  if (task.retryable) {
    const fnName = task.result?.fnName ?? "";
    return html`<div class="actions">${
      confirmForm(
        ctx,
        `/tasks/${id}/retry`,
        "Retry",
        `Rerun task ${fnName} (${task.id}) with its original arguments? Its error is replaced by the outcome of the new run.`,
        { danger: false },
      )
    }</div>`;
  }
  if (!info) return html``;
  return html`<div class="actions">${
    task.aborting
      ? html`<span class="notice">Abort requested: the worker running it will cancel it.</span>`
      : confirmForm(
        ctx,
        `/tasks/${id}/abort`,
        "Abort task",
        `Abort task ${info.fnName} (${task.id})? It will fail as cancelled.`,
      )
  }${
    info.crontab
      ? confirmForm(
        ctx,
        `/schedules/${id}/unschedule`,
        "Unschedule",
        `Stop the repeating task ${info.fnName} (${info.crontab})? Its next occurrences will not run.`,
      )
      : null
  }</div>`;
}

function facts(ctx: PageContext, task: TaskDetail): Html {
  const { info, result } = task;
  const rows: [string, unknown][] = [
    ["Progress", info?.progress === undefined ? null : progressView(info.progress)],
    ["Not started as", info?.waitReason],
    ["Priority", info?.priority],
    ["Tries", info?.tries ?? result?.tries],
    ["Created", time(ctx, info?.createdTime ?? result?.createdTime)],
    ["Entered queue", task.enqueueTime ? time(ctx, task.enqueueTime) : null],
    ["Due", info?.scheduled ? time(ctx, info.scheduled) : null],
    ["Repeats", info?.crontab ? html`<code>${info.crontab}</code>` : null],
    ["Started", result ? time(ctx, result.startTime) : null],
    ["Finished", result ? time(ctx, result.finishTime) : null],
    ["Ran for", result ? duration(result.finishTime - result.startTime) : null],
    ["Waited", result ? duration(Math.max(0, result.startTime - result.enqueueTime)) : null],
    ["Worker", task.workerId ? html`<span class="mono">${task.workerId}</span>` : null],
    ["Last retry reason", task.lastReason],
  ];
  return html`<dl class="facts">${
    rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) =>
      html`
        <dt>${k}</dt>
        <dd>${v}</dd>
      `
    )
  }</dl>`;
}

function relations(ctx: PageContext, task: TaskDetail): Html {
  const list = (ids: readonly string[]) =>
    ids.length === 0
      ? html`<p class="muted">none</p>`
      : html`<ul class="links">${ids.map((id) => html`<li>${taskLink(ctx, id)}</li>`)}</ul>`;
  return html`<section class="panel"><h2>Dependencies</h2>${
    list(task.info?.dependencies ?? [])
  }<h2>Dependents</h2>${list(task.info?.dependents ?? [])}</section>`;
}
