/**
 * Helpers of the flow-control tests: worker subprocesses running `fixtures/flow_worker.ts`,
 * whose output says what each started and ended, and when; a client with the same tasks; and a
 * check that something holds for a while.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Worker } from "../mod.ts";
import { sleep, WorkerProcess } from "./_helpers.ts";
import type { Topology } from "./_topologies.ts";

const FLOW_WORKER = new URL("./fixtures/flow_worker.ts", import.meta.url).pathname;

export interface Start {
  fn: string;
  taskId: string;
  tries: number;
  at: number;
}

/** A worker subprocess running `fixtures/flow_worker.ts`, its output read line by line. */
export class FlowWorker {
  readonly #process: WorkerProcess;

  constructor(connection: Topology["connection"], queueName: string, id: string, mode = "") {
    this.#process = new WorkerProcess(FLOW_WORKER, JSON.stringify(connection), queueName, id, mode);
  }

  /** Every end this process printed so far: task id and time. */
  get ends(): { taskId: string; at: number }[] {
    return this.#process.lines.filter((line) => line.startsWith("end ")).map((line) => {
      const [, , taskId, at] = line.split(" ");
      return { taskId, at: Number(at) };
    });
  }

  /** Kills the process with SIGKILL (no shutdown code runs) and returns when it ended. */
  async kill(): Promise<number> {
    await this.#process.end("SIGKILL");
    return Date.now();
  }

  /** Every start this process printed so far. */
  get starts(): Start[] {
    return this.#process.lines.filter((line) => line.startsWith("start ")).map((line) => {
      const [, fn, taskId, tries, at] = line.split(" ");
      return { fn, taskId, tries: Number(tries), at: Number(at) };
    });
  }

  /** Stops the process gracefully (SIGTERM) and checks that it ended well. */
  async stop(): Promise<void> {
    const status = await this.#process.end("SIGTERM");
    assert.equal(status.code, 0, `the worker subprocess failed:\n${await this.#process.stderr}`);
  }
}

/** Starts `count` worker subprocesses on one queue. */
export function startWorkers(
  connection: Topology["connection"],
  queueName: string,
  count: number,
  mode = "",
): FlowWorker[] {
  return Array.from(
    { length: count },
    (_, i) => new FlowWorker(connection, queueName, `flow-${i}`, mode),
  );
}

export function allStarts(workers: readonly FlowWorker[]): Start[] {
  return workers.flatMap((w) => w.starts);
}

/** Waits `ms` and checks that `check` holds all along ("nothing happens for a while"). */
export async function quietFor(ms: number, what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    assert.ok(check(), `expected ${what} for ${ms} ms`);
    await sleep(50);
  }
  assert.ok(check(), `expected ${what} for ${ms} ms`);
}

/** A client of `workers`' queue with the tasks of `fixtures/flow_worker.ts` registered. */
export function flowClient(worker: Worker) {
  const limited = worker.task(async function limited(n: number): Promise<number> {
    return await Promise.resolve(n);
  }, { limit: { concurrency: 3 } });
  const slow = worker.task(async function slow(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const fast = worker.task(async function fast(n: number): Promise<number> {
    return await Promise.resolve(n);
  });
  const rated = worker.task(async function rated(n: number): Promise<number> {
    return await Promise.resolve(n);
  }, { limit: { max: 5, duration: 1_000 } });
  const grouped = worker.task(async function grouped(group: string, n: number): Promise<number> {
    return await Promise.resolve(n + group.length);
  }, { group: (group) => group, groups: { concurrency: 2 } });
  const metered = worker.task(async function metered(group: string, n: number): Promise<number> {
    return await Promise.resolve(n + group.length);
  }, { group: (group) => group, groups: { concurrency: 2, max: 3, duration: 1_000 } });
  return { slow, fast, limited, rated, grouped, metered };
}

/**
 * The most tasks of `fn` that ran at once across `workers`, from their start and end lines; a
 * start without an end (a process killed mid-task) ends at `killedAt` of its process.
 */
export function mostAtOnce(
  workers: readonly FlowWorker[],
  fn: string,
  killedAt: ReadonlyMap<FlowWorker, number> = new Map(),
): number {
  const events: [number, number][] = [];
  for (const w of workers) {
    const ends = new Map(w.ends.map((e) => [e.taskId, e.at]));
    for (const s of w.starts.filter((s) => s.fn === fn)) {
      const end = ends.get(s.taskId) ?? killedAt.get(w) ?? Infinity;
      // Ends sort before starts at the same millisecond: back-to-back runs do not overlap.
      events.push([s.at, 1], [end, -1]);
    }
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, delta] of events) most = Math.max(most, now += delta);
  return most;
}

/** The most starts within any window of `ms` milliseconds. */
export function mostInWindow(times: readonly number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
