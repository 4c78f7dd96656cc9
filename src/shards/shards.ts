/**
 * The shards of a queue spread over several hash tags (`shards` worker option). Shard k is a
 * complete queue of its own keys, `streaq:{queue}:` for shard 0 (the unsharded layout) and
 * `streaq:{queue{k}:` for the others (`shardTag` in `src/redis/keys.ts`); every script and
 * command works on one shard's keys. This object routes sends to the shards (`route.ts`), finds
 * the shard of a task by its id, and refuses a shard count other than the one the queue was
 * created with.
 *
 * @module
 */

import type { QueueContext } from "../queue_context.ts";
import type { Task } from "../client/enqueue.ts";
import { linksOf } from "../client/enqueue.ts";
import type { TaskHandle } from "../task_handle.ts";
import { StreaqError } from "../errors.ts";
import { runScript, script } from "../redis/_script.ts";
import { routingKey, shardOfFunction, shardOfKey } from "./route.ts";
import { linkRemote } from "./remote_deps.ts";

/** The value found most often in `values` (the first of those found as often). */
function mostCommon(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0];
  for (const [v, n] of counts) if (n > counts.get(best)!) best = v;
  return best;
}

// deno-lint-ignore no-explicit-any
type AnyTask = Task<any>;
type SendTasks = (
  client: QueueContext,
  tasks: readonly AnyTask[],
) => Promise<TaskHandle<unknown>[]>;

/** The field of `KEY.shards` holding the shard count. */
const COUNT_FIELD = "n";
/** Prefix of the fields of `KEY.shards` naming the pinned functions (rule 2 of `route.ts`). */
const PINNED_FIELD = "f:";

/**
 * Checks (and, for a sharded queue's first use, stores) the shard count of a queue, on shard 0.
 * A first sharded use of a queue that already holds tasks unsharded is refused: they would stay
 * where a sharded queue's lookups and limits do not expect them.
 *
 * KEYS: [1] the shard count hash, [2] the delayed set, [3] the waiting set, [4...] the streams
 * ARGV: [1] the shard count asked for, [2...] names of functions to store as pinned
 * Returns: `{ stored count or '' (none), pinned function names... }`, or `{ 'busy' }`.
 */
const SHARD_COUNT_SCRIPT = script(`
local n = redis.call('HGET', KEYS[1], '${COUNT_FIELD}')
if not n and tonumber(ARGV[1]) > 1 then
  if redis.call('ZCARD', KEYS[2]) > 0 or redis.call('SCARD', KEYS[3]) > 0 then return {'busy'} end
  for i = 4, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('XLEN', KEYS[i]) > 0 then return {'busy'} end
  end
  redis.call('HSET', KEYS[1], '${COUNT_FIELD}', ARGV[1])
  n = ARGV[1]
end
if n == ARGV[1] then
  for i = 2, #ARGV do redis.call('HSET', KEYS[1], '${PINNED_FIELD}' .. ARGV[i], 1) end
end
local reply = { n or '' }
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, ${PINNED_FIELD.length}) == '${PINNED_FIELD}' then
    reply[#reply + 1] = string.sub(field, ${PINNED_FIELD.length + 1})
  end
end
return reply
`);

/** The shards of one queue, on the context a `Worker` owns. */
export class Shards {
  /** How many shards the queue has. */
  readonly count: number;
  /** Each shard's context, by shard number: its own keys, the queue's connections. */
  readonly contexts: readonly QueueContext[];
  readonly #primary: QueueContext;
  readonly #pinnedHere: (fnName: string) => boolean;
  readonly #pinnedStored = new Set<string>();
  #checked: Promise<void> | undefined;

  /**
   * @param primary The queue's context (shard 0's keys); it keeps the connections.
   * @param count How many shards (1 to 64, checked by the worker options).
   * @param pinnedHere Whether a function registered in this process is pinned to one shard.
   */
  constructor(primary: QueueContext, count: number, pinnedHere: (fnName: string) => boolean) {
    this.#primary = primary;
    this.count = count;
    this.#pinnedHere = pinnedHere;
    this.contexts = Object.freeze(
      Array.from({ length: count }, (_, shard) => primary.shardContext(shard)),
    );
  }

  /** Whether a function's tasks all go to one shard (`route.ts`, rule 2). */
  pinned(fnName: string): boolean {
    return this.#pinnedHere(fnName) || this.#pinnedStored.has(fnName);
  }

  /** The context of the shard a function's pinned tasks and its cron job live on. */
  forFunction(fnName: string): QueueContext {
    return this.contexts[shardOfFunction(fnName, this.count)];
  }

  /**
   * True once an unsharded queue's count has been checked: its sends then take the unsharded
   * path with no routing at all (`sendTasks`), as before sharding existed.
   */
  get bypass(): boolean {
    return this.#bypass;
  }
  #bypass = false;

  /**
   * Checks the queue's stored shard count against this one, once per process (again after a
   * failure); a worker also stores the functions it pins, so clients that do not register them
   * route them alike.
   *
   * @param pinnedFunctions The functions this worker pins, to store (workers only).
   * @throws {StreaqError} When the queue has another shard count, naming both.
   */
  check(pinnedFunctions?: readonly string[]): Promise<void> {
    if (pinnedFunctions?.length) return this.#check(pinnedFunctions);
    this.#checked ??= this.#check([]).catch((error) => {
      this.#checked = undefined;
      throw error;
    });
    return this.#checked;
  }

  async #check(pinnedFunctions: readonly string[]): Promise<void> {
    const { keys, priorities } = this.#primary;
    const reply = await runScript(
      this.#primary.redis,
      SHARD_COUNT_SCRIPT,
      [keys.shardCount, keys.delayed, keys.waiting, ...priorities.map((p) => keys.stream(p))],
      [this.count, ...pinnedFunctions],
    ) as string[];
    const [stored, ...pinned] = reply;
    const queue = keys.queueName;
    const move =
      "a queue's shard count cannot change while it holds tasks: let it drain (or drain() it) with its present setting and delete that key, or use a new queue name";
    if (stored === "busy") {
      throw new StreaqError(
        `Cannot use queue '${queue}' with 'shards' ${this.count}: it already holds tasks unsharded (1 shard); ${move}`,
      );
    }
    const count = stored === "" ? 1 : Number(stored);
    if (count !== this.count) {
      throw new StreaqError(
        `Cannot use queue '${queue}' with 'shards' ${this.count}: it was created with ${count} (key ${keys.shardCount}); ${move}`,
      );
    }
    for (const fn of pinned) this.#pinnedStored.add(fn);
    this.#bypass = this.count === 1;
  }

  /**
   * Sends tasks to their shards (one `sendTasks` call per shard, in parallel) and returns their
   * handles in input order.
   *
   * @throws {StreaqError} For a task whose dependencies are on different shards, or on another
   * shard than its function or group pins it to.
   */
  async send(tasks: readonly AnyTask[], sendTasks: SendTasks): Promise<TaskHandle<unknown>[]> {
    await this.check();
    if (this.count === 1) return await sendTasks(this.contexts[0], tasks);
    const remote: { id: string; from: number; on: number }[] = [];
    const shards = await this.#route(tasks, remote);
    // Dependencies on other shards are registered there before their dependents are stored.
    const linked = new Set<string>();
    await Promise.all(remote.map(({ id, from, on }) => {
      if (linked.has(`${id} ${on}`)) return;
      linked.add(`${id} ${on}`);
      return linkRemote(this.contexts[on], this.contexts[from], id);
    }));
    const parts = new Map<number, AnyTask[]>();
    tasks.forEach((t, i) => {
      const part = parts.get(shards[i]);
      if (part) part.push(t);
      else parts.set(shards[i], [t]);
    });
    const sent = await Promise.all(
      [...parts].map(async ([shard, part]) => {
        const handles = await sendTasks(this.contexts[shard], part);
        return new Map(part.map((t, i) => [t, handles[i]]));
      }),
    );
    return tasks.map((t) => sent.find((m) => m.has(t))!.get(t)!);
  }

  /**
   * The shard of each task. Tasks of this send tied by dependencies (a pipeline, a fallback,
   * `after` a task of the same send) form one component, which goes to one shard: the shard of
   * the tasks it waits for outside this send, or of its tasks that are tied to a shard by their
   * function, group or dedupe key (rules 1 to 4 of `route.ts`), else its first task's shard by id.
   */
  async #route(
    tasks: readonly AnyTask[],
    remote: { id: string; from: number; on: number }[],
  ): Promise<number[]> {
    // The tasks this send stores: the given ones and the unsent sources they bring along.
    const inSend = new Map<string, AnyTask>();
    for (const given of tasks) {
      for (
        let t: AnyTask | undefined = given;
        t && !inSend.has(t.id) && (t === given || !linksOf(t).sent);
        t = linksOf(t).source
      ) inSend.set(t.id, t);
    }
    const outside = new Set<string>();
    for (const t of inSend.values()) {
      for (const id of linksOf(t).dependencies) if (!inSend.has(id)) outside.add(id);
    }
    const located = new Map(
      await Promise.all([...outside].map(async (id) => [id, await this.locate(id)] as const)),
    );
    // Union-find over the tasks of the send, by id.
    const parent = new Map<string, string>();
    const root = (id: string): string => {
      let r = id;
      while (parent.has(r)) r = parent.get(r)!;
      if (r !== id) parent.set(id, r);
      return r;
    };
    for (const t of inSend.values()) {
      for (const dep of linksOf(t).dependencies) {
        if (!inSend.has(dep)) continue;
        const [a, b] = [root(t.id), root(dep)];
        if (a !== b) parent.set(a, b);
      }
    }
    /**
     * Per component (by root id): the shards its tied tasks must be on (with why), the shards of
     * the tasks it waits for outside this send, and its first task.
     */
    const components = new Map<
      string,
      { tied: Map<number, string>; waitsOn: number[]; first: AnyTask }
    >();
    for (const t of inSend.values()) {
      const r = root(t.id);
      let c = components.get(r);
      if (!c) components.set(r, c = { tied: new Map(), waitsOn: [], first: t });
      const tie = this.#tie(t);
      if (tie) c.tied.set(this.#ownShard(t), `task ${t.fnName} (${t.id}): its ${tie}`);
      for (const dep of linksOf(t).dependencies) {
        if (!inSend.has(dep)) c.waitsOn.push(located.get(dep)!);
      }
    }
    const shardOfComponent = new Map<string, number>();
    for (const [r, { tied, waitsOn, first }] of components) {
      if (tied.size > 1) {
        throw new StreaqError(
          `Cannot enqueue task ${first.fnName} (${first.id}) on queue '${this.#primary.keys.queueName}': it and the tasks tied to it by dependencies in this send would need ${tied.size} different shards (${
            [...tied].map(([shard, why]) => `shard ${shard} for ${why}`).join("; ")
          }): send them separately (a task may wait for tasks already sent to other shards)`,
        );
      }
      // Where its limits, group or dedupe key put it; else beside most of what it waits for
      // (those dependencies settle it atomically; the others through the outbox relay).
      shardOfComponent.set(
        r,
        tied.size === 1
          ? [...tied.keys()][0]
          : waitsOn.length > 0
          ? mostCommon(waitsOn)
          : this.#ownShard(first),
      );
    }
    for (const t of inSend.values()) {
      const shard = shardOfComponent.get(root(t.id))!;
      for (const dep of linksOf(t).dependencies) {
        const from = located.get(dep);
        if (from !== undefined && from !== shard) remote.push({ id: dep, from, on: shard });
      }
    }
    return tasks.map((t) => shardOfComponent.get(root(t.id))!);
  }

  /** What ties a task to its own shard (rules 2 to 4 of `route.ts`), if anything does. */
  #tie(task: AnyTask): string | undefined {
    const { dedupe, group } = task.options;
    if (this.pinned(task.fnName)) return "function's limit or uniqueness";
    if (group !== undefined) return "group";
    if (dedupe !== undefined) return "dedupe key";
    return undefined;
  }

  /** The shard of a task by its own routing key (`route.ts`, rules 2 to 5). */
  #ownShard(task: AnyTask): number {
    const { dedupe, group } = task.options;
    return shardOfKey(
      routingKey(
        { id: task.id, fnName: task.fnName, group, dedupeKey: dedupe?.key },
        (fn) => this.pinned(fn),
      ),
      this.count,
    );
  }

  /**
   * The shard holding task `id` (its hash, result or failure record), asking every shard at
   * once; the shard its id routes to when none holds it yet.
   */
  async locate(id: string): Promise<number> {
    const home = shardOfKey(id, this.count);
    if (this.count === 1) return home;
    const held = await Promise.all(
      this.contexts.map(({ keys, redis }) =>
        redis.exists(keys.task(id), keys.result(id), keys.failed(id))
      ),
    );
    if (held[home] > 0) return home;
    const found = held.findIndex((n) => n > 0);
    return found === -1 ? home : found;
  }

  /** The context of the shard holding task `id` (see {@linkcode Shards.locate}). */
  async forId(id: string): Promise<QueueContext> {
    if (this.count === 1) return this.contexts[0];
    return this.contexts[await this.locate(id)];
  }
}
