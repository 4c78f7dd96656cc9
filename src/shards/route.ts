/**
 * Which shard of a sharded queue a task goes to (`shards` worker option). The rule, in order:
 *
 * 1. tasks sent together that wait for one another (`after`, a pipeline stage, a fallback) go to
 *    one shard, so that a dependency settles its dependents in the same script call as on an
 *    unsharded queue: where rules 2 to 4 put one of them, else beside most of the tasks sent
 *    before that they wait for, else by the first one's id (`shards.ts`); a task waiting for
 *    tasks of other shards is settled through the outbox relay (`remote_deps.ts`);
 * 2. a task of a pinned function (`unique`, or a `limit`: concurrency or rate) goes by the
 *    function's name: all its tasks on one shard, so the lock and the limits are the same keys
 *    as on an unsharded queue and hold exactly as before;
 * 3. a task with a group key goes by function and group, so a group stays on one shard;
 * 4. a task with a deduplication key goes by function and key, so the key is one key;
 * 5. any other task goes by its id.
 *
 * The hash is 32-bit FNV-1a over the UTF-16 code units of the routing key: stable across
 * processes and versions, cheap, and well spread for random ids.
 *
 * @module
 */

/** 32-bit FNV-1a of `text`'s UTF-16 code units, as an unsigned integer. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The shard (0 ≤ shard < count) of routing key `key`. */
export function shardOfKey(key: string, count: number): number {
  return count === 1 ? 0 : fnv1a(key) % count;
}

/** What the routing reads of a task (rules 2 to 5). */
export interface RoutedTask {
  readonly id: string;
  readonly fnName: string;
  readonly group?: string;
  readonly dedupeKey?: string;
}

/**
 * The routing key of a task that waits for nothing (rules 2 to 5). Function names and group
 * and dedupe keys hold no space, so the keys of different rules never meet.
 */
export function routingKey(task: RoutedTask, pinned: (fnName: string) => boolean): string {
  if (pinned(task.fnName)) return `f ${task.fnName}`;
  if (task.group !== undefined) return `g ${task.fnName} ${task.group}`;
  if (task.dedupeKey !== undefined) return `d ${task.fnName} ${task.dedupeKey}`;
  return task.id;
}

/** The shard of a function's pinned tasks (rule 2), and of its cron job. */
export function shardOfFunction(fnName: string, count: number): number {
  return shardOfKey(`f ${fnName}`, count);
}
