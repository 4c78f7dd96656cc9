/**
 * `events <module>`: prints the queue's events, one a line: time (ISO 8601, UTC), type, function
 * and task id, then what the type carries (try, worker, error, progress, due time). It follows
 * new events until SIGINT or SIGTERM, or with `--once` prints those kept and exits.
 *
 * @module
 */

import { queueContextOf, type Worker } from "../worker.ts";
import { QueueReads } from "../client/queue_reads.ts";
import type { StreaqEvent } from "../events.ts";
import { formatValue } from "../ui/format.ts";
import { type EventsCommand, ExitCode } from "./args.ts";
import { asClient } from "./client_command.ts";

/**
 * Prints the queue's events to stdout.
 *
 * @param worker The worker whose queue to read; closed at the end.
 * @param command Where to start, and whether to stop once caught up.
 * @param signal Ends the printing (SIGINT, SIGTERM).
 * @returns The exit code: 0, or 1 when Redis fails.
 */
export async function printEvents(
  worker: Worker<unknown>,
  command: EventsCommand,
  signal: AbortSignal,
): Promise<number> {
  const stop = new AbortController();
  const ended = AbortSignal.any([signal, stop.signal]);
  return await asClient(worker, undefined, async () => {
    // With --once, the newest event when the command starts is where it stops.
    const last = command.once
      ? await new QueueReads(queueContextOf(worker)).latestEventId()
      : undefined;
    if (last !== undefined && !anyKept(command.since, last)) return ExitCode.OK;
    for await (const event of worker.events({ since: command.since, signal: ended })) {
      console.log(eventLine(event));
      if (last !== undefined && !isBefore(event.id, last)) stop.abort();
    }
    return ExitCode.OK;
  });
}

/** One line per event. */
export function eventLine(e: StreaqEvent): string {
  const head = `${e.time.toISOString()}  ${e.type.padEnd(12)}`;
  switch (e.type) {
    case "gap":
      return `${head}  events after ${e.missedAfter} were trimmed before they were read`;
    case "paused":
    case "resumed":
      return head;
  }
  const parts = [`${e.fnName} (${e.taskId})`];
  if ("tries" in e && e.tries !== undefined) parts.push(`try ${e.tries}`);
  if ("workerId" in e && e.workerId) parts.push(`worker ${e.workerId}`);
  if (e.type === "reclaimed") parts.push(`from ${e.previousWorkerId}`);
  if (e.type === "progress") parts.push(`progress ${formatValue(e.progress)}`);
  if (e.type === "retried") parts.push(`due ${e.due.toISOString()}`);
  if (e.type === "enqueued" && e.due) parts.push(`due ${e.due.toISOString()}`);
  if (e.type === "deduplicated") parts.push(`stood for by ${e.standIn}`);
  if ("error" in e && e.error) parts.push(e.error.replaceAll("\n", "\\n"));
  return `${head}  ${parts.join("  ")}`;
}

/** Whether any event kept, the newest being `last`, comes after `since`. */
function anyKept(since: string | Date, last: string): boolean {
  if (last === "0-0" || since === "now") return false;
  if (since === "start") return true;
  if (since instanceof Date) return Number(last.split("-")[0]) >= since.getTime();
  return isBefore(since, last);
}

/** Whether stream id `a` comes before `b`. */
function isBefore(a: string, b: string): boolean {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am < bm || (am === bm && as < bs);
}
