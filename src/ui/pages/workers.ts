/**
 * The live workers of the queue, from their health records: where they run, how busy they
 * are, what they have done and for how long. The records are written within a second of a
 * change, and read as `worker.metrics()` and `streaq status` read them.
 *
 * @module
 */

import { count, duration, empty, time } from "../_components.ts";
import type { Page, PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";

/** The workers page. */
export async function workersPage(ctx: PageContext): Promise<Page> {
  const workers = await ctx.reads.workerMetrics();
  const table = workers.length === 0
    ? html`<div class="table-wrap">${
      empty("No worker is running on this queue. Workers appear here once they start.")
    }</div>`
    : html`
      <div class="table-wrap">
        <table class="rtable">
          <thead>
            <tr>
              <th>Worker</th>
              <th class="opt">Host</th>
              <th class="num opt">PID</th>
              <th>Running</th>
              <th class="num">Completed</th>
              <th class="num">Failed</th>
              <th class="num opt">Retried</th>
              <th class="num opt">Aborted</th>
              <th class="num opt">Handed back</th>
              <th>Up for</th>
              <th class="opt">Last report</th>
            </tr>
          </thead>
          <tbody>${workers.map((w) =>
            html`
              <tr>
                <td data-label="Worker" class="mono">${w.id}</td>
                <td data-label="Host" class="opt">${w.host ??
                  html`<span class="muted" title="the worker may not read its host name (--allow-sys=hostname)">—</span>`}</td>
                <td data-label="PID" class="num opt">${w.pid}</td>
                <td data-label="Running">${load(w.running, w.concurrency)}${w.running} / ${w
                  .concurrency}</td>
                <td data-label="Completed" class="num">${count(w.outcomes.completed)}</td>
                <td data-label="Failed" class="num">${count(w.outcomes.failed)}</td>
                <td data-label="Retried" class="num opt">${count(w.outcomes.retried)}</td>
                <td data-label="Aborted" class="num opt">${count(w.outcomes.aborted)}</td>
                <td data-label="Handed back" class="num opt">${count(w.outcomes.relinquished)}</td>
                <td data-label="Up for">${duration(ctx.now - w.startedAt)}</td>
                <td data-label="Last report" class="opt">${time(ctx, w.heartbeatAt)}</td>
              </tr>
            `
          )}</tbody>
        </table>
      </div>
    `;
  return {
    title: "Workers",
    section: "workers",
    head: html`
      <h1>Workers</h1>
      <p
        class="subtitle">Live workers of the queue, as they reported themselves: within a second of a change.</p>
    `,
    body: html`<p class="count-line">${count(workers.length)} ${
      workers.length === 1 ? "worker" : "workers"
    }</p>${table}`,
    json: { workers },
  };
}

/** A small bar of how many slots are busy. */
function load(running: number, concurrency: number): Html {
  const width = Math.round((concurrency > 0 ? Math.min(1, running / concurrency) : 0) * 100);
  const bar = html`
    <svg viewBox="0 0 100 6" preserveAspectRatio="none">
      <rect width="${width}" height="6" />
    </svg>
  `;
  return html`<span class="bar" aria-hidden="true">${bar}</span>`;
}
