/**
 * A run of a worker on a sharded queue (`shards` worker option): one {@linkcode Runner} per
 * shard, each on that shard's keys only, with its share of the worker's slots. Each shard's run
 * fetches, completes, reclaims and promotes its own delayed tasks exactly as a run of an
 * unsharded queue does, so every guarantee of one queue holds within a shard; the shards share
 * the worker's connections, task threads, counters and lifespan.
 *
 * Why a share of the slots each rather than one pool for all shards: each shard's fetch loop
 * then asks for its own free slots without racing the others, and a worker reads every shard
 * however busy the others are (no shard is starved by a busy one). The price: a shard's tasks
 * wait for that shard's slots while another's are idle (see `docs/sharding.md`).
 *
 * @module
 */

import type { ExecutionEnv } from "./execute.ts";
import { Runner, type RunSettings } from "./runner.ts";
import type { QueueContext } from "../queue_context.ts";
import { OutboxRelay } from "../shards/outbox_relay.ts";

type Counters = ExecutionEnv["counters"];

/**
 * `total` split into `parts` integers that differ by at most one, the larger ones first.
 *
 * @param total What to split (≥ 0).
 * @param parts Into how many parts (≥ 1).
 */
export function splitEvenly(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

/**
 * Counters of one shard's run that add every change to the worker's counters as well: each
 * shard's per-minute metrics count its own outcomes once, and `worker.counters` counts all.
 */
function shardCounters(total: Counters): Counters {
  const own: Counters = { completed: 0, failed: 0, retried: 0, aborted: 0, relinquished: 0 };
  const view = {} as Counters;
  for (const key of Object.keys(own) as (keyof Counters)[]) {
    Object.defineProperty(view, key, {
      enumerable: true,
      get: () => own[key],
      set: (value: number) => {
        total[key] += value - own[key];
        own[key] = value;
      },
    });
  }
  return view;
}

/** A run of a worker over every shard of its queue. */
export class ShardedRunner {
  readonly #runners: readonly Runner[];
  readonly #relay: OutboxRelay;

  /**
   * Wires one run per shard; nothing starts before {@linkcode ShardedRunner.run}.
   *
   * @param env What every shard's run shares; its `client` is replaced by each shard's.
   * @param settings The worker's settings; `concurrency` and `prefetch` are divided among the
   * shards (concurrency must be at least the number of shards).
   * @param shards Each shard's context.
   */
  constructor(
    env: Omit<ExecutionEnv, "completer" | "release">,
    settings: RunSettings,
    shards: readonly QueueContext[],
  ) {
    this.#relay = new OutboxRelay(shards, env.logger);
    const slots = splitEvenly(settings.concurrency, shards.length);
    const prefetch = splitEvenly(settings.prefetch, shards.length);
    this.#runners = shards.map((client, i) =>
      new Runner(
        { ...env, client, counters: shardCounters(env.counters) },
        {
          ...settings,
          concurrency: slots[i],
          prefetch: prefetch[i],
          shard: { index: i, count: shards.length },
        },
      )
    );
  }

  /**
   * Runs every shard until `stop()` (or, in burst mode, until each shard is empty) and shuts
   * them all down. A shard that fails to start stops the others: a worker runs all its shards or
   * none.
   */
  async run(): Promise<void> {
    // Outcomes that tasks of other shards wait for are relayed while the worker runs.
    this.#relay.start();
    const runs = this.#runners.map((runner) =>
      runner.run().catch((error) => {
        this.stop();
        throw error;
      })
    );
    const settled = await Promise.allSettled(runs);
    await this.#relay.stop();
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Starts the graceful shutdown of every shard's run. */
  stop(): void {
    for (const runner of this.#runners) runner.stop();
  }

  /** Number of tasks running now, over every shard. */
  get runningCount(): number {
    return this.#runners.reduce((sum, runner) => sum + runner.runningCount, 0);
  }
}
