/**
 * An enqueue-only client, as it would run on Deno Deploy: an HTTP handler that sends a task to
 * the queue and answers with its id, optionally waiting a moment for the result. It imports
 * only `mod.ts` and the task definitions of `examples/worker.ts`, and needs nothing but network
 * access to Redis and the environment (both granted on Deno Deploy):
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/deploy_client.ts
 *
 *   curl '127.0.0.1:8000/remind?to=ada&text=tea&delay=2000'     # {"id":"...","status":"scheduled"}
 *   curl '127.0.0.1:8000/remind?to=ada&text=tea&wait=1'         # {"id":"...","result":"reminded ..."}
 *
 * On Deno Deploy, set `REDIS_URL` (for example `rediss://:password@host:port`) in the project's
 * environment variables. The tasks run in a worker process elsewhere (`examples/worker.ts`).
 *
 * @module
 */

import { sendReminder } from "./worker.ts";

/** Enqueues a reminder from the query string and answers with the task's id. */
export async function handler(request: Request): Promise<Response> {
  const query = new URL(request.url).searchParams;
  const to = query.get("to");
  const text = query.get("text");
  if (!to || !text) return Response.json({ error: "give 'to' and 'text'" }, { status: 400 });
  const delay = Number(query.get("delay") ?? 0);
  if (!(delay >= 0)) return Response.json({ error: "'delay' must be >= 0" }, { status: 400 });
  const task = await sendReminder.enqueue(to, text).start({ delay });
  if (query.get("wait") !== "1") return Response.json({ id: task.id, status: await task.status() });
  // Keep a request short: wait at most two seconds, then let the caller poll.
  try {
    const result = await task.result({ timeout: 2_000 });
    return result.success
      ? Response.json({ id: task.id, result: result.result })
      : Response.json({ id: task.id, error: result.exception.message }, { status: 502 });
  } catch (error) {
    if ((error as Error).name !== "TimeoutError") throw error;
    return Response.json({ id: task.id, status: await task.status() }, { status: 202 });
  }
}

if (import.meta.main) {
  Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT") ?? 8000) }, handler);
}
