/**
 * An HTTP API in front of the queue: each POST enqueues a task and answers with its id at
 * once; GET /tasks/:id tells where the task is and, once it is done, its result.
 *
 * Start the worker (see `examples/worker.ts`), then:
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/http_api.ts
 *
 *   curl -X POST 127.0.0.1:8000/fibonacci -d '{"n": 30}'          # {"id":"..."}
 *   curl -X POST 127.0.0.1:8000/reminders -d '{"to": "ada", "text": "tea", "delay": 5000}'
 *   curl 127.0.0.1:8000/tasks/<id>                                 # {"id":"...","status":"done",...}
 *
 * `PORT` sets the port (default 8000). This process only enqueues and reads results: it never
 * runs tasks, so it does not call `worker.run()`.
 *
 * @module
 */

import { type TaskResult, TaskStatus } from "../mod.ts";
import { fibonacci, sendReminder, worker } from "./worker.ts";

const taskRoute = new URLPattern({ pathname: "/tasks/:id" });

/** Answers one request of the API. */
export async function handle(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  try {
    if (request.method === "POST" && pathname === "/fibonacci") {
      const { n } = await request.json();
      if (!Number.isInteger(n) || n < 0 || n > 35) return error(400, "'n' must be 0 to 35");
      const task = await fibonacci.enqueue(n);
      return Response.json({ id: task.id }, { status: 202 });
    }
    if (request.method === "POST" && pathname === "/reminders") {
      const { to, text, delay = 0 } = await request.json();
      if (typeof to !== "string" || typeof text !== "string") {
        return error(400, "'to' and 'text' must be strings");
      }
      const task = await sendReminder.enqueue(to, text).start({ delay });
      return Response.json({ id: task.id }, { status: 202 });
    }
    const match = taskRoute.exec({ pathname });
    if (request.method === "GET" && match) {
      const id = match.pathname.groups.id!;
      const status = await worker.statusById(id);
      if (status === TaskStatus.NOT_FOUND) return error(404, `no task ${id}`);
      if (status !== TaskStatus.DONE) return Response.json({ id, status });
      return Response.json({
        id,
        status,
        ...describe(await worker.resultById(id, { timeout: 1_000 })),
      });
    }
    return error(404, `no route for ${request.method} ${pathname}`);
  } catch (e) {
    // Bad JSON, a bad option value (a negative delay, ...) or Redis unreachable.
    const status = e instanceof SyntaxError || e instanceof RangeError || e instanceof TypeError
      ? 400
      : 500;
    return error(status, e instanceof Error ? e.message : String(e));
  }
}

function describe(result: TaskResult<unknown>) {
  const times = { tries: result.tries, finishTime: new Date(result.finishTime).toISOString() };
  return result.success ? { success: true, result: result.result, ...times } : {
    success: false,
    error: { name: result.exception.name, message: result.exception.message },
    ...times,
  };
}

function error(status: number, message: string): Response {
  return Response.json({ error: message }, { status });
}

if (import.meta.main) {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 8000),
  }, handle);
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  await worker.close();
}
