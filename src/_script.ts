/**
 * Calling Lua scripts. Each script is declared next to the TypeScript function that calls it,
 * as a constant with a header comment listing its KEYS and ARGV; this helper registers it on a
 * connection once (ioredis then runs it by EVALSHA, loading it on NOSCRIPT) and calls it.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { ChainableCommander, Redis } from "ioredis";

/** A Lua script and the name it is registered under. */
export interface Script {
  readonly name: string;
  readonly lua: string;
}

/** Declares a script; `name` must be unique among streaq's scripts. */
export function script(name: string, lua: string): Script {
  return { name: `streaq_${name}`, lua };
}

/** An argument of a script: strings and numbers, or bytes for encoded payloads. */
export type ScriptArg = string | number | Buffer;

type Caller = (...args: ScriptArg[]) => Promise<unknown>;

/**
 * Runs `s` with `keys` and `args` on a connection or in a pipeline. With `binary`, strings in
 * the reply come back as Buffers (for replies holding payloads).
 */
export function runScript(
  target: Redis | ChainableCommander,
  s: Script,
  keys: readonly string[],
  args: readonly ScriptArg[],
  binary = false,
): Promise<unknown> {
  const redis = target as unknown as Redis & Record<string, Caller>;
  if (typeof redis[s.name] !== "function") {
    // Pipelines carry the commands of the connection they came from; a pipeline can only
    // miss a script if its connection did, which defineScripts() prevents.
    redis.defineCommand(s.name, { lua: s.lua });
  }
  return redis[binary ? `${s.name}Buffer` : s.name](keys.length, ...keys, ...args);
}

/** Registers scripts on a connection so that pipelines made from it can call them. */
export function defineScripts(redis: Redis, scripts: readonly Script[]): void {
  const commands = redis as unknown as Record<string, unknown>;
  for (const s of scripts) {
    if (typeof commands[s.name] !== "function") redis.defineCommand(s.name, { lua: s.lua });
  }
}
