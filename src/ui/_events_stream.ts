/**
 * The dashboard's Server-Sent Events endpoint (`<base>/events`): the queue's events as they
 * happen, for the page script to refresh its live region when something changed instead of
 * polling. Each message is an `id` (the event's) and `data`, the event's type, task id and
 * function, as JSON; a browser that reconnects sends the last id it saw (`Last-Event-ID`) and the stream
 * resumes after it. A queue without an events stream (no worker has the `events` option)
 * answers 204, which tells `EventSource` not to reconnect: the page goes on polling.
 *
 * @module
 */

import type { QueueReads } from "../client/queue_reads.ts";
import type { StreaqEvent } from "../events.ts";

/** How often a comment line keeps an idle connection open through proxies (ms). */
const KEEP_ALIVE = 15_000;

/** What the browser waits before it reconnects after a lost connection (ms). */
const RECONNECT = 3_000;

const ID = /^\d{1,20}-\d{1,20}$/;

/**
 * The events endpoint's response.
 *
 * @param reads The queue's read API.
 * @param request The request (its `Last-Event-ID` header, and HEAD).
 * @returns 204 without an events stream, else a `text/event-stream` that lasts until the
 * browser goes away.
 */
export async function eventStreamResponse(
  reads: QueueReads,
  request: Request,
): Promise<Response> {
  if (!await reads.hasEvents()) return new Response(null, { status: 204 });
  const headers = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  if (request.method === "HEAD") return new Response(null, { headers });
  const lastId = request.headers.get("last-event-id") ?? "";
  // "Now" is read before the response goes out: an event right after it is not missed.
  const since = ID.test(lastId) ? lastId : await reads.latestEventId();
  const controller = new AbortController();
  const events = reads.events({ since, signal: controller.signal });
  const encoder = new TextEncoder();
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    clearInterval(keepAlive);
    controller.abort();
  };
  const body = new ReadableStream<Uint8Array>({
    start(stream) {
      stream.enqueue(encoder.encode(`retry: ${RECONNECT}\n: connected\n\n`));
      keepAlive = setInterval(() => {
        try {
          stream.enqueue(encoder.encode(": keep-alive\n\n"));
        } catch {
          stop();
        }
      }, KEEP_ALIVE);
      (async () => {
        try {
          for await (const event of events) stream.enqueue(encoder.encode(message(event)));
        } catch (error) {
          if (!controller.signal.aborted) {
            reads.logger.warn(`dashboard: the events stream failed: ${(error as Error)?.message}`);
          }
        } finally {
          stop();
          try {
            stream.close();
          } catch {
            // Already cancelled by the browser going away.
          }
        }
      })();
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, { headers });
}

/** One event as an SSE message: what the page needs to decide whether to refresh. */
function message(event: StreaqEvent): string {
  const data = "taskId" in event
    ? { type: event.type, taskId: event.taskId, fnName: event.fnName }
    : { type: event.type };
  return `id: ${event.id}\ndata: ${JSON.stringify(data)}\n\n`;
}
