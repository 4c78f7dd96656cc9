/**
 * An example worker module: a few typical tasks registered on one {@linkcode Worker}.
 *
 * Run the worker (Redis at `REDIS_URL`, default redis://localhost:6379), by itself or through
 * the command line, which can also run several processes of it:
 *
 *   deno task worker        # deno run -P=worker examples/worker.ts
 *   deno run --allow-net=127.0.0.1,localhost --allow-env --allow-sys=hostname --allow-read=. \
 *     examples/worker.ts     # read: fibonacci is synchronous, and task threads import this module
 *   deno task cli run examples/worker.ts --workers 2    # deno run -P=cli src/cli/main.ts ...
 *
 * then enqueue tasks from another terminal with `examples/enqueue.ts`, `examples/http_api.ts`
 * or `examples/deploy_client.ts`. Add `--allow-net` for the hosts `fetchLength` should reach
 * (without `--allow-sys=hostname`, the worker's health data leaves out its host). Ctrl-C stops it
 * gracefully. Other modules import the tasks from here to enqueue them with typed arguments;
 * importing this module connects to nothing.
 *
 * @module
 */

import { StreaqRetry, taskContext, Worker } from "../mod.ts";

/** The worker of the examples, on its own queue so that it never mixes with other work. */
export const worker = new Worker({
  redisUrl: Deno.env.get("REDIS_URL") ?? "redis://localhost:6379",
  queueName: Deno.env.get("STREAQ_QUEUE") ?? "streaq-demo",
  concurrency: 8,
  // From the lowest to the highest; tasks are enqueued at "low" unless told otherwise.
  priorities: ["low", "normal", "high"],
});

/** I/O: downloads a page and returns its size. Passes the task's signal on to `fetch`. */
export const fetchLength = worker.task(
  async function fetchLength(url: string): Promise<{ status: number; bytes: number }> {
    // Fires on timeout, abort or shutdown hand-back: the download stops with the task.
    const { signal } = taskContext();
    const response = await fetch(url, { signal });
    const body = await response.arrayBuffer();
    return { status: response.status, bytes: body.byteLength };
  },
  { timeout: 10_000 },
);

/**
 * CPU: a deliberately naive Fibonacci. A synchronous task runs in one of the worker's task
 * threads (`syncConcurrency` of them), so it never holds the event loop that fetches, heart-beats
 * and runs the async tasks. The thread imports this module to find the function: register such
 * tasks at the module's top level, and grant read access to it (`--allow-read=.`).
 */
export const fibonacci = worker.task(function fibonacci(n: number): number {
  const fib = (k: number): number => (k < 2 ? k : fib(k - 1) + fib(k - 2));
  return fib(n);
}, { timeout: 5_000 });

/**
 * Retries: a payment gateway that is busy on the first two tries. Throwing `StreaqRetry` puts
 * the task back in the queue until `delay` has passed (by default tries² seconds).
 */
export const chargeOrder = worker.task(async function chargeOrder(orderId: string) {
  const { tries } = taskContext();
  if (tries < 3) {
    throw new StreaqRetry(`payment gateway busy on try ${tries}`, { delay: 250 * tries });
  }
  return await Promise.resolve(`charged ${orderId} on try ${tries}`);
}, { maxTries: 5 });

/** A target for delayed tasks: `sendReminder.enqueue(...).start({ delay })`. */
export const sendReminder = worker.task(
  async function sendReminder(to: string, text: string): Promise<string> {
    return await Promise.resolve(`reminded ${to} of "${text}" at ${new Date().toISOString()}`);
  },
);

if (import.meta.main) {
  await worker.run();
  // After run() the worker is still a client with an open connection, which would keep the
  // process alive after Ctrl-C: close it.
  await worker.close();
}
