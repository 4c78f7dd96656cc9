/**
 * The dashboard's stylesheet: light and dark colour schemes, and a layout that turns tables
 * into cards at phone width. No inline style anywhere, so the Content Security Policy can
 * forbid it.
 *
 * @module
 */

/** The stylesheet's text. */
export const CSS = `
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --panel: #fff; --text: #1f2328; --muted: #59636e; --border: #d9dee4;
  --soft: #f0f2f5; --hover: rgba(79, 70, 229, .06); --accent: #4f46e5; --accent-text: #fff;
  --ok: #1a7f37; --bad: #cf222e; --warn: #b25e00; --code: #f3f4f6;
  --top: #171a21; --top-text: #e9ecf1; --top-muted: #9aa3b2;
  --b-queued: #dbeafe; --t-queued: #1d4ed8; --b-running: #fef3c7; --t-running: #92400e;
  --b-scheduled: #ede9fe; --t-scheduled: #6d28d9; --b-waiting: #e5e7eb; --t-waiting: #374151;
  --b-done: #dcfce7; --t-done: #166534; --b-failed: #fee2e2; --t-failed: #b91c1c;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --panel: #161b22; --text: #e6edf3; --muted: #8d96a0; --border: #2d333b;
    --soft: #1c2128; --hover: rgba(129, 140, 248, .08); --accent: #818cf8; --accent-text: #0f1217;
    --ok: #3fb950; --bad: #f85149; --warn: #d29922; --code: #0d1117; --top: #0b0d11;
    --b-queued: #172554; --t-queued: #93c5fd; --b-running: #422006; --t-running: #fcd34d;
    --b-scheduled: #2e1065; --t-scheduled: #c4b5fd; --b-waiting: #1f2937; --t-waiting: #d1d5db;
    --b-done: #052e16; --t-done: #86efac; --b-failed: #450a0a; --t-failed: #fca5a5;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text); line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.mono { font-size: 13px; word-break: break-all; }
.muted { color: var(--muted); }
.top { background: var(--top); color: var(--top-text); }
.top-inner, .tabs, .page { max-width: 1200px; margin: 0 auto; padding-left: 20px; padding-right: 20px; }
.top-inner { display: flex; align-items: center; gap: 12px; padding-top: 12px; padding-bottom: 4px; }
.brand { display: flex; align-items: center; gap: 8px; color: var(--top-text); font-weight: 700; font-size: 16px; }
.brand:hover { text-decoration: none; }
.brand svg { width: 22px; height: 22px; }
.queue { color: var(--top-muted); font-size: 13px; border: 1px solid #39404c; border-radius: 999px; padding: 1px 10px; }
.live { margin-left: auto; font-size: 12px; color: var(--top-muted); display: flex; align-items: center; gap: 6px; }
.live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #3fb950; }
.live[data-state="error"]::before { background: #f85149; }
.live[data-state="gone"]::before, .live[data-state="paused"]::before { background: #8d96a0; }
.tabs { display: flex; gap: 4px; overflow-x: auto; scrollbar-width: none; }
.tabs a { color: var(--top-muted); padding: 10px 12px; border-bottom: 2px solid transparent; white-space: nowrap; font-weight: 500; }
.tabs a:hover { color: var(--top-text); text-decoration: none; }
.tabs a[aria-current="page"] { color: var(--top-text); border-bottom-color: var(--accent); }
.page { padding-top: 20px; padding-bottom: 40px; }
h1 { font-size: 22px; margin: 0 0 4px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
h2 { font-size: 15px; margin: 0 0 12px; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 16px; margin-bottom: 16px; }
.panel-head { display: flex; align-items: baseline; justify-content: space-between; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
.panel-head h2 { margin: 0; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(124px, 1fr)); gap: 12px; margin-bottom: 16px; }
.stat { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 12px 14px; color: var(--text); display: block; }
a.stat:hover { border-color: var(--accent); text-decoration: none; }
.stat .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; font-weight: 600; }
.stat .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.stat .note { color: var(--muted); font-size: 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 0 0 8px; color: var(--muted); }
.figures b { color: var(--text); font-variant-numeric: tabular-nums; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin-top: 6px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.legend .l-ok::before { background: var(--ok); }
.legend .l-bad::before { background: var(--bad); }
.legend .l-rate::before { background: var(--warn); height: 2px; vertical-align: 3px; }
.chart-box { display: grid; grid-template-columns: auto 1fr auto; grid-template-rows: 180px auto; column-gap: 8px; row-gap: 4px; margin-top: 12px; }
.y-labels, .r-labels { position: relative; font-size: 11px; color: var(--muted); min-width: 22px; font-variant-numeric: tabular-nums; }
.y-labels { text-align: right; }
.r-labels { color: var(--warn); min-width: 32px; }
.y-labels span, .r-labels span { position: absolute; right: 0; transform: translateY(-50%); white-space: nowrap; }
.r-labels span { left: 0; right: auto; }
.y-labels .at-0, .r-labels .at-0 { top: 0; }
.y-labels .at-1, .r-labels .at-1 { top: 50%; }
.y-labels .at-2, .r-labels .at-2 { top: 100%; }
.plot { position: relative; min-width: 0; }
.x-labels { grid-column: 2; display: flex; justify-content: space-between; font-size: 11px; color: var(--muted); }
.chart { width: 100%; height: 100%; display: block; overflow: visible; }
.chart .ok { fill: var(--ok); }
.chart .bad { fill: var(--bad); }
.chart .hit { fill: transparent; }
.chart .minute:hover .hit { fill: var(--hover); }
.chart .grid { stroke: var(--border); stroke-width: 1; vector-effect: non-scaling-stroke; }
.chart .rate { fill: none; stroke: var(--warn); stroke-width: 1.75; stroke-linejoin: round; stroke-linecap: round; vector-effect: non-scaling-stroke; }
.chart-empty { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 13px; pointer-events: none; }
.table-wrap { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; overflow-x: auto; margin-bottom: 16px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 9px 12px; border-bottom: 1px solid var(--border); vertical-align: middle; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; background: var(--soft); white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
tbody tr:hover { background: var(--hover); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.args { color: var(--muted); max-width: 360px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap; background: var(--b-waiting); color: var(--t-waiting); }
.badge-queued { background: var(--b-queued); color: var(--t-queued); }
.badge-running { background: var(--b-running); color: var(--t-running); }
.badge-scheduled { background: var(--b-scheduled); color: var(--t-scheduled); }
.badge-done { background: var(--b-done); color: var(--t-done); }
.badge-failed { background: var(--b-failed); color: var(--t-failed); }
.btn { display: inline-flex; align-items: center; gap: 6px; border: 1px solid var(--border); background: var(--panel); color: var(--text); border-radius: 8px; padding: 6px 12px; font: inherit; font-weight: 500; cursor: pointer; }
.btn:hover { border-color: var(--accent); text-decoration: none; }
.btn.disabled { opacity: .45; pointer-events: none; }
.btn-primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
.btn-danger { color: var(--bad); border-color: var(--bad); background: var(--panel); }
.btn-danger:hover { background: var(--bad); color: #fff; border-color: var(--bad); }
form.inline { display: inline; margin: 0; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
.title-row { display: flex; justify-content: space-between; align-items: flex-start; gap: 12px; flex-wrap: wrap; margin-bottom: 4px; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; margin-bottom: 16px; }
.filters label { display: flex; flex-direction: column; gap: 4px; font-size: 12px; color: var(--muted); font-weight: 600; }
.filters input, .filters select { font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 0 10px; height: 34px; min-width: 150px; }
.filters .btn { height: 34px; }
.count-line { color: var(--muted); margin: 0 0 8px; }
.pager { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin: 0 0 16px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 8px 20px; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
pre { background: var(--code); border: 1px solid var(--border); border-radius: 8px; padding: 12px; margin: 0; overflow: auto; max-height: 480px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; }
pre.error { border-left: 3px solid var(--bad); }
.grid-2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin-bottom: 16px; }
.grid-2 > .panel { margin-bottom: 0; }
.links { margin: 0; padding-left: 18px; }
.empty-state { color: var(--muted); text-align: center; padding: 28px 12px; margin: 0; }
.notice { background: var(--b-running); color: var(--t-running); border-radius: 8px; padding: 8px 12px; margin: 0 0 16px; }
.bar { display: inline-block; width: 64px; height: 6px; border-radius: 3px; background: var(--soft); vertical-align: middle; margin-right: 6px; overflow: hidden; }
.bar svg { display: block; width: 100%; height: 100%; }
.bar rect { fill: var(--accent); }
.progress { white-space: nowrap; }
.center { max-width: 420px; margin: 60px auto; text-align: center; }
.center form { display: flex; gap: 8px; justify-content: center; margin-top: 16px; }
.center input { font: inherit; padding: 6px 10px; border: 1px solid var(--border); border-radius: 8px; background: var(--panel); color: var(--text); }
dialog.confirm { border: 1px solid var(--border); border-radius: 12px; padding: 20px; width: min(420px, calc(100vw - 32px)); background: var(--panel); color: var(--text); box-shadow: 0 10px 40px rgba(0,0,0,.25); }
dialog.confirm::backdrop { background: rgba(15, 18, 23, .45); }
dialog.confirm h2 { font-size: 17px; }
dialog.confirm p { margin: 0 0 16px; overflow-wrap: anywhere; }
dialog.confirm .actions { justify-content: flex-end; margin: 0; }
#toast { position: fixed; left: 50%; bottom: 20px; transform: translateX(-50%); background: var(--top); color: var(--top-text); padding: 10px 16px; border-radius: 8px; box-shadow: 0 6px 24px rgba(0,0,0,.2); max-width: calc(100vw - 32px); }
#toast[data-kind="bad"] { background: var(--bad); color: #fff; }
@media (max-width: 720px) {
  .top-inner, .tabs, .page { padding-left: 12px; padding-right: 12px; }
  .page { padding-top: 14px; }
  .opt { display: none; }
  .grid-2 { grid-template-columns: 1fr; }
  .stats { grid-template-columns: repeat(4, 1fr); gap: 6px; }
  .stat { padding: 8px; border-radius: 8px; }
  .stat .label { font-size: 10px; letter-spacing: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .stat .value { font-size: 20px; }
  .stat .note { display: none; }
  .chart-box { grid-template-rows: 140px auto; }
  th, td { padding: 8px; }
  .rtable thead { display: none; }
  .rtable, .rtable tbody, .rtable tr { display: block; }
  .rtable tr { padding: 10px 12px; border-bottom: 1px solid var(--border); }
  .rtable tr:last-child { border-bottom: 0; }
  .rtable td { display: block; padding: 2px 0; border: 0; text-align: right; overflow: hidden; }
  .rtable td::before { content: attr(data-label); float: left; margin-right: 12px; color: var(--muted); font-size: 12px; line-height: 20px; }
  .rtable td:first-child { font-weight: 600; font-size: 15px; padding-bottom: 4px; text-align: left; }
  .rtable td:first-child::before { content: none; }
  .rtable td.opt { display: none; }
  .rtable td form { margin-top: 6px; }
  .filters input, .filters select { min-width: 0; width: 100%; }
  .filters label { flex: 1 1 40%; }
}
`;
