/**
 * Enqueues a few tasks of `examples/worker.ts`, waits for their results and prints them: one
 * task sent right away, one at a high priority, one that retries, one delayed by a second and
 * a batch sent in one round trip.
 *
 * Start the worker first (see `examples/worker.ts`), then, with the same `REDIS_URL`:
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/enqueue.ts [url-to-fetch]
 *
 * The worker downloads the URL (default https://example.com), so it needs network access to
 * it. `deno task demo` does all of this in one process with a local page.
 *
 * @module
 */

import type { TaskHandle, TaskResult } from "../mod.ts";
import { chargeOrder, fetchLength, fibonacci, sendReminder, worker } from "./worker.ts";

/** How long to wait for each result before giving up. */
const RESULT_TIMEOUT = 30_000;

/**
 * Sends the example tasks, waits for every result and prints it.
 *
 * @param url The page that `fetchLength` downloads.
 * @param log Where the lines go.
 */
export async function enqueueExamples(
  url: string,
  log: (line: string) => void = console.log,
): Promise<void> {
  const page = await fetchLength.enqueue(url);
  // "high" is the highest of the worker's priorities: fetched before everything else waiting.
  const urgent = await fibonacci.enqueue(25).start({ priority: "high" });
  const charge = await chargeOrder.enqueue("order-42");
  const reminder = await sendReminder.enqueue("ada@example.com", "stand-up").start({
    delay: 1_000,
  });
  // Five tasks, one round trip: the handles come back in input order.
  const batch = await worker.enqueueMany([20, 21, 22, 23, 24].map((n) => fibonacci.enqueue(n)));
  log(`enqueued ${4 + batch.length} tasks; the reminder is ${await reminder.status()}`);

  const handles: [string, TaskHandle<unknown>][] = [
    [`fetchLength(${JSON.stringify(url)})`, page],
    ["fibonacci(25) at high priority", urgent],
    ["chargeOrder(order-42)", charge],
    ["sendReminder, delayed 1 s", reminder],
    ...batch.map((h, i): [string, TaskHandle<unknown>] => [`fibonacci(${20 + i}) in a batch`, h]),
  ];
  const results = await Promise.all(handles.map(([, h]) => h.result({ timeout: RESULT_TIMEOUT })));
  handles.forEach(([label], i) => log(describe(label, results[i])));
}

/** One line per result: the value or the error, the tries, and the time from enqueue to end. */
function describe(label: string, result: TaskResult<unknown>): string {
  const outcome = result.success
    ? `→ ${JSON.stringify(result.result)}`
    : `✗ ${result.exception.name}: ${result.exception.message}`;
  const took = result.finishTime - result.createdTime;
  return `${label} ${outcome} (try ${result.tries}, ${took} ms after enqueue)`;
}

if (import.meta.main) {
  try {
    await enqueueExamples(Deno.args[0] ?? "https://example.com");
  } finally {
    await worker.close();
  }
}
