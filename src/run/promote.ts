/**
 * The scheduler: moves delayed, scheduled and backing-off tasks into their streams when they
 * are due, with one script call per wake-up. It sleeps until the earliest due time rather than
 * polling, and the wake channel tells it when an earlier task was added meanwhile.
 *
 * @module
 */

import { TASK_FIELD } from "../redis/keys.ts";
import type { QueueContext } from "../queue_context.ts";
import { runScript, script } from "../redis/_script.ts";
import { lua } from "../redis/lua/compose.ts";
import { layout, luaTuple } from "../redis/lua/layout.ts";
import { enterStream, redisTime } from "../redis/lua/steps.ts";

/** The reply of {@linkcode PROMOTE_SCRIPT}. */
export const PROMOTE_REPLY = layout("promoted", "nextDue", "redisNow");

/**
 * Promotes due tasks, oldest due first, each into the stream of its own priority. Due times
 * are compared with Redis's clock, the one they were computed with (see `src/redis/_redis_time.ts`),
 * not the promoting worker's.
 *
 * KEYS: [1] delayed set, [2..] streams, in the order of the priorities in ARGV
 * ARGV: [1] most tasks to promote, [2] task key prefix, [3..] priority names
 * Returns {@linkcode PROMOTE_REPLY}: {promoted count, due time of the next delayed task or -1,
 * Redis's time (ms)}.
 */
export const PROMOTE_SCRIPT = script(lua(
  redisTime,
  enterStream,
  `
local now, limit, prefix = redisTime(), tonumber(ARGV[1]), ARGV[2]
local streams = {}
for i = 3, #ARGV do streams[ARGV[i]] = KEYS[i - 1] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  local key = prefix .. id
  -- pcall: a key of another type under a task's name must not fail every promotion from now on;
  -- no task can come of it, so it goes. A hash goes to its stream even if fields are missing:
  -- the fetch fails or drops it there, with a result or a log line, instead of losing it here.
  local f = redis.pcall('HMGET', key, '${TASK_FIELD.priority}', '${TASK_FIELD.fn}')
  if f.err then
    redis.call('DEL', key)
  elseif f[1] or f[2] then
    redis.call('HDEL', key, '${TASK_FIELD.due}')
    enterStream(key, streams[f[1]] or KEYS[2], id, now)
  end
  redis.call('ZREM', KEYS[1], id)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return ${
    luaTuple(PROMOTE_REPLY, {
      promoted: "#due",
      nextDue: "head[2] and tonumber(head[2]) or -1",
      redisNow: "now",
    })
  }
`,
));

/** Tasks promoted per call; more due tasks make the scheduler call again at once. */
const PROMOTE_BATCH = 1000;
/** Longest sleep between promotions, in case a wake message was missed (a reconnect). */
const MAX_SLEEP = 5_000;

/** Promotes due tasks until stopped. */
export class Scheduler {
  readonly #client: QueueContext;
  readonly #onError: (error: unknown) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  /**
   * A notice that came while a promotion was in flight: the promotion may have read the delayed
   * set before the task it announces was added, so the loop promotes again before it sleeps.
   */
  #notified = false;
  #nextDue = Infinity;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(client: QueueContext, onError: (error: unknown) => void) {
    this.#client = client;
    this.#onError = onError;
  }

  /** Starts the loop. */
  start(): void {
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /**
   * Wakes the loop if `due` is earlier than the time it sleeps until; during a promotion, has
   * the loop promote again before it sleeps.
   */
  notify(due: number): void {
    // While a promotion is in flight, the next due time it knew of may be the very task it
    // promotes: any notice counts then.
    if (!this.#wake) this.#notified = true;
    else if (due < this.#nextDue) this.#wake();
  }

  /** Stops the loop and waits for it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let sleep = MAX_SLEEP;
      this.#notified = false;
      try {
        const reply = await this.#promote();
        const count = reply[PROMOTE_REPLY.at.promoted];
        const next = reply[PROMOTE_REPLY.at.nextDue];
        const redisNow = reply[PROMOTE_REPLY.at.redisNow];
        this.#nextDue = next === -1 ? Infinity : next;
        // Until the next due time on Redis's clock: a duration, the same on every clock.
        sleep = count >= PROMOTE_BATCH ? 0 : Math.min(MAX_SLEEP, this.#nextDue - redisNow);
      } catch (error) {
        this.#nextDue = Infinity;
        this.#onError(error);
        sleep = 1_000;
      }
      if (sleep > 0 && !this.#stopped && !this.#notified) await this.#sleep(sleep);
    }
  }

  #promote(): Promise<number[]> {
    const { keys, priorities } = this.#client;
    return runScript(
      this.#client.redis,
      PROMOTE_SCRIPT,
      [keys.delayed, ...priorities.map((p) => keys.stream(p))],
      [PROMOTE_BATCH, keys.taskPrefix, ...priorities],
    ) as Promise<number[]>;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      this.#timer = setTimeout(this.#wake, ms);
    });
  }
}
