/**
 * Seeded load for the reliability tests: a PRNG whose seed is printed (set `STREAQ_SEED` to
 * replay a run), a mix of `job` tasks (priorities, delays, retries, failures, slow ones), and
 * enqueueing them in batches.
 *
 * @module
 */

import type { RegisteredTask, Worker } from "../../mod.ts";
import type { JobSpec } from "./_tasks.ts";

/** A PRNG returning numbers in [0, 1) (mulberry32): small, fast and reproducible. */
export type Random = () => number;

/** A PRNG from `seed`. */
export function prng(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a test: `STREAQ_SEED` if set, else a random one; printed either way. */
export function seeded(what: string): Random {
  const fromEnv = Deno.env.get("STREAQ_SEED");
  const seed = fromEnv ? Number(fromEnv) : crypto.getRandomValues(new Uint32Array(1))[0];
  console.log(`${what}: seed ${seed} (STREAQ_SEED=${seed} replays it)`);
  return prng(seed);
}

/** An integer in [min, max]. */
export function between(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A task of a load, before it is sent. */
export interface Planned {
  readonly spec: JobSpec;
  readonly priority: string;
  readonly delay?: number;
}

/** A task that was sent: its enqueue resolved. */
export interface Sent {
  readonly id: string;
  readonly spec: JobSpec;
  readonly delay?: number;
  /** Set when the test asked to abort it. */
  aborted?: boolean;
}

/** Shares of each kind of task in a load (the rest are quick tasks that succeed). */
export interface Mix {
  /** Throw after their side effect. @default {0.06} */
  fail?: number;
  /** Ask for a retry on their first try. @default {0.08} */
  retry?: number;
  /** Start after a delay of 100 to `maxDelay` ms. @default {0.1} */
  delayed?: number;
  /** Work 20 to 60 ms instead of 0 to 3. @default {0.1} */
  slow?: number;
  /** @default {1500} */
  maxDelay?: number;
}

/** The priorities every reliability worker has, lowest first. */
export const PRIORITIES = ["low", "normal", "high"] as const;

/** Plans `count` tasks numbered from `first`. */
export function planLoad(random: Random, count: number, mix: Mix = {}, first = 0): Planned[] {
  const { fail = 0.06, retry = 0.08, delayed = 0.1, slow = 0.1, maxDelay = 1500 } = mix;
  const planned: Planned[] = [];
  for (let n = first; n < first + count; n++) {
    const spec: { -readonly [K in keyof JobSpec]: JobSpec[K] } = { n };
    const ms = random() < slow ? between(random, 20, 60) : between(random, 0, 3);
    if (ms > 0) spec.ms = ms;
    if (random() < fail) spec.fail = true;
    if (random() < retry) spec.retry = between(random, 50, 300);
    const priority = PRIORITIES[between(random, 0, PRIORITIES.length - 1)];
    const delay = random() < delayed ? between(random, 100, maxDelay) : undefined;
    planned.push({ spec, priority, delay });
  }
  return planned;
}

/** Sends planned tasks in batches of `batch`, one round trip each. */
export async function enqueueLoad(
  worker: Worker<unknown>,
  job: RegisteredTask<[JobSpec], number>,
  planned: readonly Planned[],
  batch = 500,
): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (let i = 0; i < planned.length; i += batch) {
    const chunk = planned.slice(i, i + batch);
    const tasks = chunk.map(({ spec, priority, delay }) =>
      job.enqueue(spec).start(delay === undefined ? { priority } : { priority, delay })
    );
    const handles = await worker.enqueueMany(tasks);
    handles.forEach((h, j) => sent.push({ id: h.id, spec: chunk[j].spec, delay: chunk[j].delay }));
  }
  return sent;
}
