/**
 * Deduplication keys on the send path (`sendTasks` in `./enqueue.ts`): the slots a key adds to a
 * task's `links`, and a debounce whose arguments are signed, which replaces another task's
 * arguments only once they are sealed for that task (a second script call, made only then).
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { StreaqError } from "../errors.ts";
import type { DedupeOptions } from "../options.ts";
import { dueArg } from "../redis/_redis_time.ts";
import { runScript } from "../redis/_script.ts";
import { DEDUPE_ANSWER, dedupeSpec, PAYLOAD_BINDING } from "../redis/lua/dedupe.ts";
import { pushRecord } from "../redis/lua/layout.ts";
import { ENQUEUE_SCRIPT, enqueueArgs, type RecordSlots, taskLayout } from "./_enqueue_script.ts";
import { enqueueError, type Task } from "./enqueue.ts";

// deno-lint-ignore no-explicit-any
type AnyTask = Task<any>;

/**
 * A deduplication key's mode as the enqueue script reads it (`dedupeSpec`), for a task whose id
 * was generated (not given with `id`) when `generatedId`. The key goes in a slot of its own.
 */
export function dedupeLinks(
  client: QueueContext,
  dedupe: DedupeOptions,
  generatedId: boolean,
): string {
  const { mode = "pending", window = 0 } = dedupe;
  const signed = mode === "debounce" && client.envelope.bindsTaskId;
  const bound = signed ? PAYLOAD_BINDING.ownId : PAYLOAD_BINDING.any;
  return dedupeSpec(mode, window, bound, generatedId);
}

/** How often a signed debounce is sent again before the enqueue gives up. */
const RESEALS = 10;

/**
 * Sends a debounced task again whose arguments are signed (bound to its id), after the enqueue
 * script found a task `holder` whose arguments it would replace: sealed for `holder`, they
 * replace them if it is still waiting for its first try; if it is not any more, the task is
 * sent again as itself. Returns the id standing for the task, or undefined when it was stored.
 */
export async function replaceSealed(
  client: QueueContext,
  task: AnyTask,
  holder: string,
): Promise<string | undefined> {
  for (let attempt = 0; attempt < RESEALS; attempt++) {
    const replaced = await sendDebounced(client, task, holder, PAYLOAD_BINDING.holder);
    if (replaced !== DEDUPE_ANSWER.stale) return replaced;
    const own = await sendDebounced(client, task, task.id, PAYLOAD_BINDING.ownId);
    if (own === undefined || !own.startsWith(DEDUPE_ANSWER.reseal)) return own;
    holder = own.slice(1);
  }
  throw new StreaqError(
    `Cannot enqueue task ${task.fnName} (${task.id}): the task named by its debounce key "${
      task.options.dedupe!.key
    }" changed ${RESEALS} times while its signed arguments were sealed again for it`,
  );
}

/**
 * One script call for a debounced task (no dependencies, no schedule: a debounce excludes them)
 * as task `id`, its arguments sealed for that id. Returns what the script answered for it.
 */
async function sendDebounced(
  client: QueueContext,
  task: AnyTask,
  id: string,
  binding: string,
): Promise<string | undefined> {
  const { keys } = client;
  const { priority = client.priorities[0], dedupe } = task.options;
  const slots: RecordSlots = { keyed: true, traced: false };
  const args = enqueueArgs(client, client.now(), slots);
  pushRecord(args, taskLayout(slots), {
    id,
    fn: task.fnName,
    payload: await client.envelope.sealArgs(id, task.fnName, task.args),
    priority,
    due: dueArg({ in: dedupe!.window! }),
    links: dedupeSpec("debounce", dedupe!.window!, binding),
    dedupeKey: dedupe!.key,
    trace: "",
  });
  const skipped = await runScript(
    client.redis,
    ENQUEUE_SCRIPT,
    [keys.delayed, keys.schedules],
    args,
  )
    .catch((error) => {
      throw enqueueError(error);
    }) as (number | string)[];
  return skipped.length > 0 ? String(skipped[1]) : undefined;
}
