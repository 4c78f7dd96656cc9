/**
 * The sweep of deduplication keys: a field of a function's deduplication hash (`KEY.dedupePending`)
 * stays after it stopped standing for its task, as storing keys as fields (no expiry of their own)
 * is what makes them cheap at enqueue. So that a function enqueued with ever new keys (an event id,
 * a request id) does not grow its hash forever, each worker walks the hashes of the functions it
 * runs, a few hundred fields per script call, and removes the fields that stand for nothing any
 * more: a `pending` key whose task and result are both gone, a `throttle` key whose window ended
 * more than {@linkcode SWEEP_GRACE} ago. A walk starts every {@linkcode SWEEP_INTERVAL}; it goes
 * on call after call, with a pause between them, until it has seen the whole hash.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import { KEY } from "../redis/keys.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { HASH_TABLE_MARK, heldBy } from "../redis/lua/dedupe.ts";
import { redisTime } from "../redis/lua/steps.ts";
import type { OnRedisError } from "./redis_errors.ts";

/** How often a walk over the hashes starts (ms). */
export const SWEEP_INTERVAL = 60_000;

/**
 * How long after its window a `throttle` key's field stays (ms): it still names its task to a send
 * of that very task retried (see `SPEC_KIND` in `src/redis/lua/dedupe.ts`).
 */
export const SWEEP_GRACE = 60_000;

/** How many fields one script call looks at: a fraction of a millisecond of Redis. */
export const SWEEP_BATCH = 200;

/** The pause between two calls of a walk (ms), so that a walk never hogs Redis. */
const SWEEP_PAUSE = 10;

/**
 * Removes the fields of one HSCAN step of a deduplication hash that stand for nothing any more.
 *
 * KEYS: [1] the function's deduplication hash
 * ARGV: [1] HSCAN cursor, [2] how many fields to look at, [3] key prefix, [4] grace (ms)
 * Returns [the next cursor ('0' at the end of a walk), how many fields it removed].
 */
export const SWEEP_DEDUPE_KEYS = script(lua(
  redisTime,
  heldBy,
  `
local P, grace = ARGV[3], tonumber(ARGV[4])
local now = redisTime()
local step = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local fields, stale = step[2], {}
for i = 1, #fields, 2 do
  if fields[i] ~= '${HASH_TABLE_MARK.field}' then
    local holder, untilMs = heldBy(fields[i + 1])
    if untilMs then
      if untilMs + grace < now then stale[#stale + 1] = fields[i] end
    elseif redis.call('EXISTS', P .. '${KEY.task}' .. holder, P .. '${KEY.result}' .. holder) == 0 then
      stale[#stale + 1] = fields[i]
    end
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
return {step[1], #stale}
`,
));

/**
 * Walks the deduplication hash of one function once, a batch per call. Returns how many fields it
 * removed.
 *
 * @param client The queue.
 * @param fnName The function whose hash is walked.
 * @param shouldStop Asked between calls: true ends the walk early.
 * @param grace How long after its window a `throttle` key's field stays (ms).
 */
export async function sweepDedupeKeys(
  client: QueueContext,
  fnName: string,
  shouldStop: () => boolean = () => false,
  grace = SWEEP_GRACE,
): Promise<number> {
  const hash = client.keys.prefix + KEY.dedupePending + fnName;
  let cursor = "0";
  let removed = 0;
  do {
    const [next, count] = await runScript(client.redis, SWEEP_DEDUPE_KEYS, [hash], [
      cursor,
      SWEEP_BATCH,
      client.keys.prefix,
      grace,
    ]) as [string, number];
    cursor = next;
    removed += count;
    if (cursor !== "0") await new Promise((resolve) => setTimeout(resolve, SWEEP_PAUSE));
  } while (cursor !== "0" && !shouldStop());
  return removed;
}

/** A worker's sweep of the deduplication hashes of the functions it runs. */
export class DedupeSweep {
  readonly #client: QueueContext;
  readonly #fnNames: readonly string[];
  readonly #onRedisError: OnRedisError;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #walk: Promise<void> | undefined;
  #stopped = false;

  constructor(client: QueueContext, fnNames: readonly string[], onRedisError: OnRedisError) {
    this.#client = client;
    this.#fnNames = fnNames;
    this.#onRedisError = onRedisError;
  }

  /** Starts a walk every {@linkcode SWEEP_INTERVAL}. */
  start(): void {
    this.#timer = setTimeout(() => {
      this.#walk = this.#sweep().finally(() => {
        this.#walk = undefined;
        if (!this.#stopped) this.start();
      });
    }, SWEEP_INTERVAL);
    // A sweep never keeps a process alive by itself.
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the walks; resolves once a walk under way has ended its call. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#walk;
  }

  async #sweep(): Promise<void> {
    try {
      for (const fnName of this.#fnNames) {
        if (this.#stopped) return;
        await sweepDedupeKeys(this.#client, fnName, () => this.#stopped);
      }
    } catch (error) {
      await this.#onRedisError("dedupe sweep", error);
    }
  }
}
