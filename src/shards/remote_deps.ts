/**
 * Dependencies across the shards of a sharded queue: a task of shard S waiting for task X of
 * shard R. Every script here works on one shard's keys:
 *
 * 1. At enqueue, {@linkcode linkRemote} registers S as waiting for X on R (the member
 *    `shard <S>` of X's dependents set, beside the local ones), or learns X's outcome if it
 *    finished already; then it writes X's mirror on S: `''` while X runs, or X's result.
 * 2. The dependent is then enqueued on S as usual: the enqueue script links it to X's mirror as
 *    to a task of its own shard (`linkDependencies` in `src/redis/lua/graph.ts`).
 * 3. When X finishes, its completion script (`releaseDependents`) settles its dependents on R and
 *    appends (X, S, result) to R's outbox stream.
 * 4. Workers relay the outbox ({@linkcode relayOutbox}): the settle script on S stores X's result
 *    in its mirror and settles the tasks waiting for X there, exactly as X's completion would
 *    have on S; then the entry is deleted from R's outbox. At least once: a worker killed between
 *    the two leaves the entry for another, and settling again does nothing (the tasks it settled
 *    are no longer waiting, and X's dependents set on S is gone).
 *
 * Step 1 before step 2 matters: a mirror written before the dependent exists keeps an outcome
 * relayed in between, which the dependent's enqueue then reads.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { QueueContext } from "../queue_context.ts";
import { KEY, REMOTE_DEPENDENTS } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { releaseDependents } from "../redis/lua/graph.ts";

/** How long a relayed outcome stays in its mirror, for dependents enqueued right after. */
const MIRROR_TTL = 3_600_000;
/** Outbox entries relayed per call. */
const RELAY_BATCH = 100;

/**
 * Registers shard S as waiting for task X, on X's shard.
 *
 * KEYS: [1] X's hash, [2] X's dependents set, [3] X's result, [4] the `linked` flag of X's shard
 * ARGV: [1] S
 * Returns: `{ 'wait' }`, `{ 'done', result }` or `{ 'unknown' }`.
 */
const REGISTER_SCRIPT = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], '${REMOTE_DEPENDENTS}' .. ARGV[1])
  redis.call('SET', KEYS[4], 1)
  return { 'wait' }
end
local result = redis.call('GET', KEYS[3])
if result then return { 'done', result } end
return { 'unknown' }
`);

/**
 * Settles, on shard S, the tasks waiting for task X of another shard, which ended with `result`:
 * stores it in X's mirror and settles X's dependents on S as X's completion does.
 *
 * KEYS: [1] X's mirror on S
 * ARGV: [1] S's key prefix, [2] X's id, [3] X's encoded result, [4] now (ms), [5] the mirror's
 * TTL (ms), [6] S's wake channel
 * Returns: 1.
 */
const SETTLE_SCRIPT = script(lua(
  releaseDependents,
  `
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[5])
local earliest = releaseDependents(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if earliest then redis.call('PUBLISH', ARGV[6], earliest) end
return 1
`,
));

/** Settles X's dependents on shard `on` with X's result (see {@linkcode SETTLE_SCRIPT}). */
async function settle(on: QueueContext, id: string, result: Buffer | string): Promise<void> {
  const { keys } = on;
  await runScript(on.redis, SETTLE_SCRIPT, [keys.prefix + KEY.mirror + id], [
    keys.prefix,
    id,
    result,
    on.now(),
    MIRROR_TTL,
    keys.wakeChannel,
  ]);
}

/**
 * Prepares shard `on` for a task there that waits for task `id` of shard `from` (steps 1 of the
 * module doc): registers the wait on `from` and writes the mirror of `id` on `on`. An unknown
 * task gets no mirror: the dependent's enqueue then fails it as unknown, as on one shard.
 */
export async function linkRemote(
  on: QueueContext,
  from: QueueContext,
  id: string,
): Promise<void> {
  const { keys } = from;
  const [answer, result] = await runScript(
    from.redis,
    REGISTER_SCRIPT,
    [
      keys.task(id),
      keys.prefix + KEY.dependents + id,
      keys.result(id),
      keys.prefix + KEY.linked,
    ],
    [on.keys.shard],
    true,
  ) as [Buffer, Buffer | undefined];
  const said = answer.toString();
  if (said === "wait") {
    // Not over an outcome relayed already (the relay may have run since the registration).
    await on.redis.set(on.keys.prefix + KEY.mirror + id, "", "NX");
  } else if (said === "done") {
    await settle(on, id, result!);
  }
}

/**
 * Relays the outbox of shard `from` to the shards waiting (step 4 of the module doc): each entry
 * settled on its shard, then deleted. Returns how many entries were relayed.
 *
 * @param shards Every shard's context, by shard number.
 * @param from The shard whose outbox is relayed.
 */
export async function relayOutbox(
  shards: readonly QueueContext[],
  from: number,
): Promise<number> {
  const source = shards[from];
  const outbox = source.keys.prefix + KEY.outbox;
  const entries = await source.redis.xrangeBuffer(outbox, "-", "+", "COUNT", RELAY_BATCH);
  for (const [entryId, fields] of entries) {
    const field = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) field.set(fields[i].toString(), fields[i + 1]);
    const waiting = shards[Number(field.get("s")?.toString())];
    const id = field.get("x")?.toString();
    const result = field.get("r");
    if (waiting && id && result) await settle(waiting, id, result);
    await source.redis.xdel(outbox, entryId);
  }
  return entries.length;
}
