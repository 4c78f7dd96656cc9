/**
 * The overview's chart: tasks finished per minute over the last hour as stacked bars
 * (succeeded, failed), with the failure rate as a line on a 0–100 % scale. Plain inline SVG,
 * styled by the dashboard's stylesheet, with a tooltip per minute.
 *
 * @module
 */

import type { MinuteCounts, OutcomeCounts } from "../client/queue_reads.ts";
import { type Html, html } from "./_html.ts";

/** The plot's own coordinates; the SVG stretches to its box, labels are HTML around it. */
const WIDTH = 600;
const HEIGHT = 160;

/** Totals of a series of minutes. */
export interface Totals {
  readonly completed: number;
  readonly failed: number;
  readonly aborted: number;
  readonly retried: number;
  /** Failed and aborted over all finished, 0 to 1; null when nothing finished. */
  readonly failureRate: number | null;
}

/** Sums a series of minutes. */
export function totals(minutes: readonly MinuteCounts[]): Totals {
  const sum = (f: (m: MinuteCounts) => number) => minutes.reduce((n, m) => n + f(m), 0);
  return totalsOf({
    completed: sum((m) => m.completed),
    failed: sum((m) => m.failed),
    aborted: sum((m) => m.aborted),
    retried: sum((m) => m.retried),
  });
}

/** The totals of outcome counts already added up (such as `QueueMetrics.lastHour`). */
export function totalsOf(outcomes: OutcomeCounts): Totals {
  const { completed, failed, aborted, retried } = outcomes;
  const finished = completed + failed + aborted;
  return {
    completed,
    failed,
    aborted,
    retried,
    failureRate: finished === 0 ? null : (failed + aborted) / finished,
  };
}

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `n`. */
function niceCeiling(n: number): number {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The chart of `minutes` (oldest first). The SVG holds only shapes and stretches to any width
 * (lines keep their thickness); the axis labels are HTML around it, so text stays readable on
 * a phone.
 */
export function throughputChart(minutes: readonly MinuteCounts[]): Html {
  const finished = (m: MinuteCounts) => m.completed + m.failed + m.aborted;
  const max = niceCeiling(Math.max(0, ...minutes.map(finished)));
  const slot = WIDTH / Math.max(1, minutes.length);
  const barW = slot * 0.72;
  const y = (n: number) => HEIGHT - (n / max) * HEIGHT;
  const bars = minutes.map((m, i) => {
    const x = round(i * slot + (slot - barW) / 2);
    const bad = m.failed + m.aborted;
    const okTop = y(m.completed);
    const badTop = y(m.completed + bad);
    const time = new Date(m.start).toISOString().slice(11, 16);
    const rate = finished(m) ? ` (${Math.round((bad / finished(m)) * 100)} % failed)` : "";
    const rect = (kind: string, top: number, bottom: number) =>
      html`
        <rect class="${kind}" x="${x}" y="${round(top)}" width="${round(barW)}"
          height="${round(bottom - top)}" />
      `;
    return html`
      <g
        class="minute"><title>${time} UTC: ${m.completed} succeeded, ${m.failed} failed, ${m
          .aborted} aborted, ${m.retried} retried${rate}</title><rect class="hit" x="${round(
            i * slot,
          )}" y="0" width="${round(slot)}" height="${HEIGHT}"/>${m.completed
          ? rect("ok", okTop, HEIGHT)
          : null}${bad ? rect("bad", badTop, okTop) : null}</g>
    `;
  });
  const points = minutes.flatMap((m, i) =>
    finished(m)
      ? [[i * slot, (i + 1) * slot, HEIGHT - ((m.failed + m.aborted) / finished(m)) * HEIGHT]]
      : []
  );
  // One point alone is drawn as a short level segment: a polyline needs two.
  const line = points.length === 1
    ? `${round(points[0][0])},${round(points[0][2])} ${round(points[0][1])},${round(points[0][2])}`
    : points.map(([a, b, v]) => `${round((a + b) / 2)},${round(v)}`).join(" ");
  const grid = [0.5, HEIGHT / 2, HEIGHT - 0.5].map((v) =>
    html`
      <line class="grid" x1="0" x2="${WIDTH}" y1="${v}" y2="${v}" />
    `
  );
  const sum = totals(minutes);
  const half = max / 2;
  const labels = (values: string[], kind: string) =>
    html`<div class="${kind}" aria-hidden="true">${
      values.map((v, i) => html`<span class="at-${i}">${v}</span>`)
    }</div>`;
  return html`
    <div
      class="chart-box">${labels(
        [String(max), Number.isInteger(half) ? String(half) : half.toFixed(1), "0"],
        "y-labels",
      )}<div class="plot"><svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" preserveAspectRatio="none" role="img" aria-label="Tasks finished per minute over the last ${minutes
        .length} minutes: ${sum.completed} succeeded, ${sum.failed +
        sum.aborted} failed or aborted">${grid}${bars}${points.length > 0
        ? html`
          <polyline class="rate" points="${line}" />
        `
        : null}</svg>${sum.completed + sum.failed + sum.aborted === 0
        ? html`<div class="chart-empty">No task finished in the last hour</div>`
        : null}</div>${labels(
          ["100%", "50%", "0%"],
          "r-labels",
        )}<div class="x-labels" aria-hidden="true"><span>${minutes
        .length} min ago</span><span>${Math.round(
          minutes.length / 2,
        )} min ago</span><span>now</span></div></div>
  `;
}
