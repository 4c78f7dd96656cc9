/**
 * The command line of the two processes of `allocations.ts` (`_alloc_client.ts`,
 * `_alloc_worker.ts`): the Redis URL and queue, the checkout to load streaq from, how many round
 * trips to warm up with and to count, and whether to list allocation sites; and the worker both
 * processes run on that queue (the client enqueues through it, the other process runs it).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Parses the process's arguments, loads streaq from `--mod` and makes the worker. */
export async function allocChildArgs(): Promise<{
  values: {
    url?: string;
    queue?: string;
    mod: string;
    warmup?: string;
    samples?: string;
    sites: boolean;
    retained: boolean;
  };
  worker: InstanceType<typeof import("../mod.ts").Worker>;
}> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      url: { type: "string" },
      queue: { type: "string" },
      mod: { type: "string", default: new URL("../mod.ts", import.meta.url).href },
      warmup: { type: "string" },
      samples: { type: "string" },
      sites: { type: "boolean", default: false },
      retained: { type: "boolean", default: false },
    },
  });
  const { Worker } = await import(values.mod) as typeof import("../mod.ts");
  const worker = new Worker({
    redisUrl: values.url,
    queueName: values.queue,
    concurrency: 16,
    logLevel: "warn",
    handleSignals: false,
  });
  return { values, worker };
}
