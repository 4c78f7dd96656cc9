/**
 * Reading what a process allocates, for `allocations.ts`: the bytes of V8's heap in use
 * (`Deno.memoryUsage().heapUsed`, exact between two collections) and the lines V8 prints with
 * `--v8-flags=--trace-gc`. Each process under measure opens and closes its window with a forced
 * scavenge (`gc({ type: "minor" })`, which `--expose-gc` provides): V8 traces it with the reason
 * `testing`, so the collections between the two markers are the window's, whatever the clocks.
 *
 * @module
 */

/** The collections of one window of a traced process. */
export interface GcWindow {
  /** Scavenges V8 started by itself (the two markers not counted). */
  readonly scavenges: number;
  /** Their pauses added up, in ms (main thread). */
  readonly scavengeMs: number;
  /** The longest of them, in ms. */
  readonly longestMs: number;
  /** Mark-compact collections (full or incremental), not counting any marker. */
  readonly markCompacts: number;
  /** Their pauses added up, in ms. */
  readonly markCompactMs: number;
  /** Heap bytes allocated in the window, from the sizes before and after each collection. */
  readonly allocatedBytes: number;
}

// [pid:0x...]  1234 ms: Scavenge 3.3 (5.0) -> 2.3 (5.0) MB, pooled: 0.0 MB, 0.20 / 0.00 ms ... reason;
const LINE =
  /ms: ([A-Za-z -]+?) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB,.*?([\d.]+) \/ ([\d.]+) ms.*\) (.*)$/;

/** Whether a line of a child's output is V8's (`[pid:0x...] ...`), a GC trace line or another. */
export function isV8Line(line: string): boolean {
  return /^\[\d+:0x[0-9a-f]+/.test(line);
}

/**
 * The collections between the first two forced scavenges (reason `testing`) of a trace.
 *
 * @throws {Error} When the trace has fewer than two markers.
 */
export function gcWindow(lines: readonly string[]): GcWindow {
  let inside = false;
  let markers = 0;
  let lastAfterMb = 0;
  let scavenges = 0, scavengeMs = 0, longestMs = 0, markCompacts = 0, markCompactMs = 0;
  let allocatedMb = 0;
  for (const line of lines) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, kind, before, , after, , pause, , reason] = m;
    const minor = kind === "Scavenge" || kind === "Minor Mark-Sweep";
    const marker = reason.startsWith("testing") && minor;
    if (inside) allocatedMb += Number(before) - lastAfterMb;
    lastAfterMb = Number(after);
    if (marker) {
      markers++;
      if (inside) break;
      inside = true;
      continue;
    }
    if (!inside) continue;
    const ms = Number(pause);
    if (minor) {
      scavenges++;
      scavengeMs += ms;
      longestMs = Math.max(longestMs, ms);
    } else {
      markCompacts++;
      markCompactMs += ms;
    }
  }
  if (markers < 2) throw new Error(`the GC trace has ${markers} of the 2 window markers`);
  return {
    scavenges,
    scavengeMs,
    longestMs,
    markCompacts,
    markCompactMs,
    allocatedBytes: allocatedMb * 2 ** 20,
  };
}

/** Opens or closes a window: a forced scavenge, traced with the reason `testing`. */
export function markWindow(): void {
  const gc = (globalThis as { gc?: (options: { type: string }) => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc,--trace-gc");
  gc({ type: "minor" });
}

/**
 * Counts heap bytes between calls: `take()` returns what was allocated since the last call, or
 * `undefined` when a collection happened meanwhile (the heap shrank), so that sample is dropped.
 * The bytes `Deno.memoryUsage()` itself allocates are measured once and taken off.
 */
export class HeapCounter {
  #last = Deno.memoryUsage().heapUsed;
  readonly #overhead: number;

  constructor() {
    const costs: number[] = [];
    for (let i = 0; i < 101; i++) {
      const before = Deno.memoryUsage().heapUsed;
      costs.push(Deno.memoryUsage().heapUsed - before);
    }
    this.#overhead = median(costs);
    this.#last = Deno.memoryUsage().heapUsed;
  }

  /** Bytes allocated since the last call, or undefined if a collection intervened. */
  take(): number | undefined {
    const now = Deno.memoryUsage().heapUsed;
    const bytes = now - this.#last - this.#overhead;
    this.#last = now;
    return bytes < -this.#overhead ? undefined : Math.max(0, bytes);
  }
}

/** The median of some numbers (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The mean of some numbers (NaN for none). */
export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
