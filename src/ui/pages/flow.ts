/**
 * The overview's flow-control panel: whether the queue is paused, and each function with its
 * state (running or paused since when), its concurrency limit and slots taken, how many of its
 * tasks wait set aside, and a button (confirmed) that pauses or resumes it. Read through
 * `QueueReads.pauses()` and `QueueReads.limits()`.
 *
 * @module
 */

import { describeLimit, type FunctionLimit, type PauseState } from "../../client/queue_reads.ts";
import { confirmForm, count, time } from "../_components.ts";
import type { PageContext } from "../_context.ts";
import { type Html, html } from "../_html.ts";

/** The panel, for the pauses read at this request. */
export function flowPanel(
  ctx: PageContext,
  pauses: PauseState,
  limits: readonly FunctionLimit[],
): Html {
  const paused = new Map(pauses.functions.map((f) => [f.name, f]));
  const limited = new Map(limits.map((l) => [l.name, l]));
  const names = [...new Set([...ctx.functions, ...paused.keys(), ...limited.keys()])].sort();
  const rows = names.map((name) => {
    const f = paused.get(name);
    const l = limited.get(name);
    const waiting = f?.held ?? l?.waiting;
    const path = `/functions/${encodeURIComponent(name)}/${f ? "resume" : "pause"}`;
    const button = f
      ? confirmForm(ctx, path, "Resume", `Resume ${name}? Workers start its tasks again.`, {
        danger: false,
      })
      : confirmForm(
        ctx,
        path,
        "Pause",
        `Pause ${name}? No worker starts its tasks until it is resumed; running ones finish.`,
      );
    return html`
      <tr data-function="${name}">
        <td data-label="Function" class="mono">${name}</td>
        <td data-label="State">${f
          ? html`<span class="badge">paused</span> since ${time(ctx, f.since.getTime())}`
          : html`<span class="muted">running</span>`}</td>
        <td data-label="Limit">${l
          ? describeLimit(l).join(", ")
          : html`<span class="muted">none</span>`}</td>
        <td data-label="Waiting" class="num">${waiting === undefined ? "—" : count(waiting)}</td>
        <td data-label="">${button}</td>
      </tr>
    `;
  });
  const queueButton = pauses.queue
    ? confirmForm(
      ctx,
      "/queue/resume",
      "Resume queue",
      "Resume the queue? Workers start its tasks again.",
      {
        danger: false,
      },
    )
    : confirmForm(
      ctx,
      "/queue/pause",
      "Pause queue",
      "Pause the whole queue? No worker starts a task until it is resumed; running ones finish.",
    );
  const state = pauses.queue
    ? html`<span class="badge">paused</span> since ${
      time(ctx, pauses.queue.getTime())
    }: no task starts`
    : html`<span class="muted">running</span>`;
  return html`
    <section class="panel" id="flow">
      <div class="panel-head"><h2>Flow control</h2>${queueButton}</div>
      <p data-queue-state="${pauses.queue ? "paused" : "running"}">Queue: ${state}</p>
      ${names.length === 0 ? null : html`
        <div class="table-wrap">
          <table class="rtable">
            <thead>
              <tr>
                <th>Function</th>
                <th>State</th>
                <th>Limit</th>
                <th class="num"
                  title="tasks set aside by workers: the function is paused, or its slots are taken">Waiting</th>
                <th></th>
              </tr>
            </thead>
            <tbody>${rows}</tbody>
          </table>
        </div>
      `}
    </section>
  `;
}
