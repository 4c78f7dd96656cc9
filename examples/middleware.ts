/**
 * Middleware that times every task and logs slow ones. Middleware wraps every task of a
 * worker, the first registered outermost; it can change arguments and results, throw
 * `StreaqRetry`, or translate errors, and reads the running task's context from its handle.
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/middleware.ts
 *
 * @module
 */

import { StreaqRetry, Worker } from "../mod.ts";

const worker = new Worker({
  redisUrl: Deno.env.get("REDIS_URL") ?? "redis://localhost:6379",
  queueName: "streaq-example-middleware",
  logLevel: "warn",
});

/** Times each task; tasks slower than 100 ms are reported. */
const timing = worker.middleware((next) => async (...args) => {
  const started = performance.now();
  try {
    return await next(...args);
  } finally {
    const ms = performance.now() - started;
    const { fnName, taskId, tries } = timing.context;
    console.log(`${fnName} (${taskId.slice(0, 8)}) try ${tries}: ${ms.toFixed(1)} ms`);
  }
});

/** Turns a rate-limit error of any task into a retry with back-off. */
const rateLimits = worker.middleware((next) => async (...args) => {
  try {
    return await next(...args);
  } catch (error) {
    if (error instanceof Error && error.message.includes("429")) {
      throw new StreaqRetry("rate limited", { delay: 100 * rateLimits.context.tries });
    }
    throw error;
  }
});

const callApi = worker.task(async function callApi(path: string): Promise<string> {
  await new Promise((r) => setTimeout(r, 120));
  if (Math.random() < 0.5) throw new Error("HTTP 429 from the API");
  return `GET ${path}: 200`;
}, { maxTries: 10 });

if (import.meta.main) {
  const running = worker.run();
  const result = await (await callApi.enqueue("/users")).result({ timeout: 10_000 });
  console.log(result.success ? result.result : result.exception.message);
  worker.stop();
  await running;
  await worker.close();
}
