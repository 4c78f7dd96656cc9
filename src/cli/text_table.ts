/**
 * Text for the terminal, shared by `status` and `metrics`: values from Redis made safe to
 * print, numbers coloured when not zero, aligned tables, and short durations.
 *
 * @module
 */

import { escapeControl } from "../logger.ts";
import type { Paint } from "./screen.ts";

/** A value from Redis made safe for the terminal: control characters made visible. */
export function clean(text: string): string {
  return escapeControl(String(text));
}

/** A number, coloured when it is not zero. */
export function count(n: number, colour: (text: string) => string): string {
  return n === 0 ? "0" : colour(String(n));
}

/** Rows under a dimmed header, the first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][], paint: Paint): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i]))));
  const pad = (c: string, i: number) => {
    const room = " ".repeat(widths[i] - width(c));
    return i === 0 ? c + room : room + c;
  };
  const line = (cells: string[]) => cells.map(pad).join("  ").trimEnd();
  return [paint.dim(line(header)), ...rows.map(line)].join("\n");
}

/** The visible width of a cell: colour codes take no room. */
function width(text: string): number {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").length;
}

/** A duration as 42s, 3m05s or 2h10m. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}
