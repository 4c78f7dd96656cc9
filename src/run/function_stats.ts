/**
 * A worker's outcome counts and recent timings per task function, kept in memory and published
 * with its health record at each heartbeat: a task pays a map lookup and a few array writes,
 * never a Redis write. `worker.metrics()` adds up the live workers' counts and takes
 * percentiles over their recent timings.
 *
 * The timings are a window: the last {@linkcode TIMING_WINDOW} tries of each function on each
 * worker, so the percentiles describe recent work, not all of it, and the health record stays
 * small.
 *
 * @module
 */

/** How many recent timings of each function a worker keeps and publishes. */
export const TIMING_WINDOW = 64;

/** The outcomes counted per function. */
export const FUNCTION_OUTCOMES = [
  "completed",
  "failed",
  "aborted",
  "retried",
  "relinquished",
] as const;

/** One of {@linkcode FUNCTION_OUTCOMES}. */
export type FunctionOutcome = typeof FUNCTION_OUTCOMES[number];

/** What a worker publishes about one function (JSON in its health record). */
export interface FunctionRecord {
  /** Outcome counts since the worker started. */
  readonly counts: Readonly<Record<FunctionOutcome, number>>;
  /** Sum of all run times since the worker started, in ms. */
  readonly runMsSum: number;
  /** How many run times that sum holds. */
  readonly runCount: number;
  /** Sum of all waits since the worker started, in ms. */
  readonly waitMsSum: number;
  /** Run times of the latest tries that ran (ms, oldest first). */
  readonly runMs: readonly number[];
  /** Waits of the latest tries: from when each was due to when it started (ms, oldest first). */
  readonly waitMs: readonly number[];
}

interface Entry {
  counts: Record<FunctionOutcome, number>;
  runMsSum: number;
  runCount: number;
  waitMsSum: number;
  runMs: number[];
  waitMs: number[];
}

/** A worker's per-function counts and recent timings. */
export class FunctionStats {
  readonly #entries = new Map<string, Entry>();

  /**
   * Notes one try's outcome. `runMs` is undefined for a try that never ran its function (a
   * refusal); `waitMs` is how late it started.
   */
  note(fnName: string, outcome: FunctionOutcome, waitMs: number, runMs?: number): void {
    let entry = this.#entries.get(fnName);
    if (!entry) {
      entry = {
        counts: { completed: 0, failed: 0, aborted: 0, retried: 0, relinquished: 0 },
        runMsSum: 0,
        runCount: 0,
        waitMsSum: 0,
        runMs: [],
        waitMs: [],
      };
      this.#entries.set(fnName, entry);
    }
    entry.counts[outcome]++;
    const wait = Math.max(0, Math.round(waitMs));
    entry.waitMsSum += wait;
    push(entry.waitMs, wait);
    if (runMs !== undefined) {
      const ms = Math.max(0, Math.round(runMs));
      entry.runMsSum += ms;
      entry.runCount++;
      push(entry.runMs, ms);
    }
  }

  /** The records of every function seen, for the health record. */
  snapshot(): Record<string, FunctionRecord> {
    const records: Record<string, FunctionRecord> = {};
    for (const [name, e] of this.#entries) {
      records[name] = {
        counts: { ...e.counts },
        runMsSum: e.runMsSum,
        runCount: e.runCount,
        waitMsSum: e.waitMsSum,
        runMs: [...e.runMs],
        waitMs: [...e.waitMs],
      };
    }
    return records;
  }
}

function push(window: number[], value: number): void {
  if (window.length >= TIMING_WINDOW) window.shift();
  window.push(value);
}
