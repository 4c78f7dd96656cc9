/**
 * The overview: how many tasks are in each status and priority, the live workers, the tasks
 * finished per minute over the last hour, and what is paused or limited (`flow.ts`). Every number
 * comes from one read of the queue (`QueueReads.snapshot`, the read `streaq status` and
 * `worker.metrics()` make), so they agree with each other and with the command line.
 *
 * @module
 */

import type { MinuteCounts, QueueCounts } from "../../client/queue_reads.ts";
import { throughputChart, type Totals, totalsOf } from "../_chart.ts";
import { count } from "../_components.ts";
import { href, type Page, type PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";
import { flowPanel } from "./flow.ts";

/** The overview page. */
export async function overviewPage(ctx: PageContext): Promise<Page> {
  const { reads } = ctx;
  const [{ metrics, minutes }, pauses, limits] = await Promise.all([
    reads.snapshot(),
    reads.pauses(),
    reads.limits(),
  ]);
  const counts: QueueCounts = { ...metrics.tasks, byPriority: metrics.byPriority };
  const workers = metrics.workers;
  const hour = totalsOf(metrics.lastHour);
  const finished = hour.completed + hour.failed + hour.aborted;
  const priorities = reads.priorities.length;
  return {
    title: "Overview",
    section: "overview",
    head: html`
      <h1>Overview</h1>
      <p class="subtitle">Queue ${reads.queueName} · ${priorities} ${priorities === 1
        ? "priority"
        : "priorities"}</p>
    `,
    body: html`${stats(ctx, counts, hour, workers.length)}${lastHour(minutes, hour)}${
      byPriority(ctx, counts)
    }${pendingAborts(counts)}${flowPanel(ctx, pauses, limits)}`,
    json: {
      queue: reads.queueName,
      priorities: reads.priorities,
      counts: { ...counts, workers: workers.length },
      lastHour: { ...hour, finished },
      workers: workers.map((w) => ({
        id: w.id,
        running: w.running,
        concurrency: w.concurrency,
        outcomes: w.outcomes,
      })),
      minutes: minutes.map((m) => ({ ...m, start: new Date(m.start).toISOString() })),
      pauses,
      limits,
    },
  };
}

function stats(ctx: PageContext, counts: QueueCounts, hour: Totals, workers: number): Html {
  const stat = (label: string, value: number, link: string, note?: string) =>
    html`
      <a class="stat"
        href="${link}"><div class="label">${label}</div><div class="value">${count(
          value,
        )}</div>${note ? html`<div class="note">${note}</div>` : null}</a>
    `;
  const tasks = (status: string) => href(ctx, "/tasks", { status });
  return html`<div class="stats">${[
    stat("Queued", counts.queued, tasks("queued")),
    stat("Running", counts.running, tasks("running")),
    stat("Scheduled", counts.scheduled, tasks("scheduled")),
    stat("Waiting", counts.waiting, tasks("waiting"), "on dependencies"),
    stat("Done", counts.done, tasks("done"), counts.doneExact ? "results kept" : "at least"),
    stat("Failed", hour.failed + hour.aborted, tasks("failed"), "in the last hour"),
    stat("Workers", workers, href(ctx, "/workers")),
    stat("Repeating", counts.repeating, href(ctx, "/schedules")),
  ]}</div>`;
}

function lastHour(minutes: readonly MinuteCounts[], hour: Totals): Html {
  const figure = (n: number, label: string) => html`<span><b>${count(n)}</b> ${label}</span>`;
  const rate = hour.failureRate === null ? "—" : `${(hour.failureRate * 100).toFixed(1)} %`;
  const figures = [
    figure(hour.completed + hour.failed + hour.aborted, "finished"),
    figure(hour.completed, "succeeded"),
    figure(hour.failed, "failed"),
    figure(hour.aborted, "aborted"),
    figure(hour.retried, "retried"),
    html`<span>failure rate <b>${rate}</b></span>`,
  ];
  return html`
    <section class="panel">
      <div class="panel-head"><h2>Last hour</h2><span class="muted">per minute</span></div>
      <p class="figures">${figures}</p>
      ${throughputChart(minutes)}
      <div class="legend">
        <span class="l-ok">succeeded</span>
        <span class="l-bad">failed or aborted</span>
        <span class="l-rate">failure rate</span>
      </div>
    </section>
  `;
}

function byPriority(ctx: PageContext, counts: QueueCounts): Html {
  const link = (status: string, priority: string, n: number | null) =>
    n === null ? "—" : html`<a href="${href(ctx, "/tasks", { status, priority })}">${count(n)}</a>`;
  const rows = [...ctx.reads.priorities].reverse().map((p) => {
    const c = counts.byPriority[p];
    return html`
      <tr>
        <td>${p}</td>
        <td class="num">${link("queued", p, c.queued)}</td>
        <td class="num">${link("running", p, c.running)}</td>
        <td class="num">${link("scheduled", p, c.scheduled)}</td>
      </tr>
    `;
  });
  return html`
    <section>
      <h2>By priority</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Priority</th>
              <th class="num">Queued</th>
              <th class="num">Running</th>
              <th class="num">Scheduled</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      </div>
    </section>
  `;
}

function pendingAborts(counts: QueueCounts): Html | null {
  return counts.aborting > 0
    ? html`<p class="muted">${count(counts.aborting)} abort request(s) pending.</p>`
    : null;
}
