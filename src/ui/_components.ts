/**
 * Small pieces shared by the dashboard's pages: status badges, times, durations, numbers,
 * links to tasks, confirmation forms and pagination.
 *
 * @module
 */

import { href, type PageContext, taskHref } from "./_context.ts";
import { CSRF_FIELD } from "./_csrf.ts";
import { type Html, html } from "./_html.ts";
import { formatValue } from "./format.ts";

const numbers = new Intl.NumberFormat("en-US");

/** A count with thousands separators. */
export function count(n: number): string {
  return numbers.format(n);
}

/** A status as a coloured badge. */
export function statusBadge(status: string): Html {
  const known = ["queued", "running", "scheduled", "waiting", "done", "failed"];
  const kind = known.includes(status) ? status : "other";
  return html`<span class="badge badge-${kind}">${status}</span>`;
}

/** The badge of a finished task: succeeded, cancelled or failed. */
export function outcomeBadge(success: boolean, error?: unknown): Html {
  if (success) return html`<span class="badge badge-done">succeeded</span>`;
  const cancelled = (error as Error | undefined)?.name === "StreaqCancelled";
  return html`<span class="badge badge-failed">${cancelled ? "cancelled" : "failed"}</span>`;
}

/** A duration in the largest sensible units: `850 ms`, `12.3 s`, `5 min 3 s`, `2 d 4 h`. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(abs)} ms`;
  if (abs < 60_000) return `${(abs / 1_000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  const units: [number, string][] = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [
    1_000,
    "s",
  ]];
  const parts: string[] = [];
  let rest = abs;
  for (const [size, name] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    } else if (parts.length > 0) break;
  }
  return parts.join(" ");
}

/** `12 s ago` or `in 3 min`, relative to the request. */
export function relative(ctx: PageContext, at: number): string {
  const delta = at - ctx.now;
  if (Math.abs(delta) < 1_000) return "just now";
  return delta < 0 ? `${duration(delta)} ago` : `in ${duration(delta)}`;
}

/** A point in time: relative text, with the exact UTC time as its tooltip. */
export function time(ctx: PageContext, at: number | Date | null | undefined): Html {
  if (at === null || at === undefined) return html`<span class="muted">—</span>`;
  const ms = typeof at === "number" ? at : at.getTime();
  if (!Number.isFinite(ms) || ms <= 0) return html`<span class="muted">—</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}" title="${iso.replace("T", " ").slice(0, 19)} UTC">${
    relative(ctx, ms)
  }</time>`;
}

/** A link to a task's page, showing its id. */
export function taskLink(ctx: PageContext, id: string, label: string = id): Html {
  return html`<a class="mono" href="${taskHref(ctx, id)}">${label}</a>`;
}

/** The first line of a text, cut to `max` characters. */
export function preview(text: string, max = 80): string {
  const line = text.split("\n", 1)[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * A POST form of one button, confirmed in a dialog by the page's script, carrying the CSRF
 * token.
 */
export function confirmForm(
  ctx: PageContext,
  action: string,
  label: string,
  question: string,
  { query = {}, danger = true }: {
    query?: Record<string, string | undefined>;
    danger?: boolean;
  } = {},
): Html {
  return html`
    <form method="post" action="${href(
      ctx,
      action,
      query,
    )}" class="inline" data-confirm="${question}"
      data-ok="${label}"><input type="hidden" name="${CSRF_FIELD}" value="${ctx
        .csrfToken}"><button type="submit" class="btn ${danger
        ? "btn-danger"
        : "btn-primary"}">${label}</button></form>
  `;
}

/** A message for an empty list. */
export function empty(text: string): Html {
  return html`<p class="empty-state">${text}</p>`;
}

/** Previous and next links of a paginated list. */
export function pagination(
  page: number,
  pages: number,
  link: (page: number) => string,
): Html {
  if (pages <= 1) return html``;
  const prev = page > 1
    ? html`<a class="btn" rel="prev" href="${link(page - 1)}">← Previous</a>`
    : html`<span class="btn disabled">← Previous</span>`;
  const next = page < pages
    ? html`<a class="btn" rel="next" href="${link(page + 1)}">Next →</a>`
    : html`<span class="btn disabled">Next →</span>`;
  return html`
    <nav class="pager"
      aria-label="Pages">${prev}<span class="muted">Page ${page} of ${count(
        pages,
      )}</span>${next}</nav>
  `;
}

/**
 * A task's reported progress: a bar and a percentage for a number from 0 to 100, else the
 * value as text (shortened).
 */
export function progressView(value: unknown): Html {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 100) {
    const width = Math.round(value * 100) / 100;
    return html`
      <span
        class="progress"><span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${width}"><svg viewBox="0 0 100 6" preserveAspectRatio="none"><rect width="${width}" height="6" /></svg></span>${width}%</span>
    `;
  }
  return html`<span class="mono">${preview(formatValue(value))}</span>`;
}
