/**
 * Calling Lua scripts. Each script is declared next to the TypeScript function that calls it,
 * as a constant with a header comment listing its KEYS and ARGV; {@linkcode runScript} calls it
 * by EVALSHA, on a connection or in a pipeline.
 *
 * The calls bypass ioredis's own script commands for the encoding (see `_resp.ts`) and, on a
 * single connection, its `Command` class (see `_direct_call.ts`); ioredis still routes, times
 * out, retries and answers them as any other command. Loading follows ioredis too: the first
 * call of a script on a socket sends its source by EVAL, later ones its hash, and a hash Redis
 * does not know (after SCRIPT FLUSH or a failover) is sent again with the source.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { ChainableCommander } from "ioredis";
import { Command, type Redis } from "./_ioredis.ts";
import { DirectCall, takesDirectCalls } from "./_direct_call.ts";
import { type CommandArg, encodeCommand } from "./_resp.ts";

/** A Lua script, with the hash Redis knows it by. */
export interface Script {
  readonly lua: string;
  readonly sha: string;
  /** The sockets it was sent on by EVAL: Redis caches it for those, until told otherwise. */
  readonly loadedOn: WeakSet<object>;
}

/** How a script runs, besides its text. */
export interface ScriptOptions {
  /**
   * Redis script flags (`allow-oom`, ...), written as the `#!lua flags=...` shebang.
   * @default none (no shebang: Redis's defaults for scripts without one)
   */
  readonly redisFlags?: readonly string[];
}

/**
 * Declares a script: its Lua, with the `#!lua flags=...` shebang when it has Redis flags. Every
 * script is declared here, so a line that every script must carry is added here, once.
 *
 * No script carries Dragonfly's `--!df flags=allow-undeclared-keys` line, which would let
 * Dragonfly run scripts that build keys from the queue's prefix
 * (https://www.dragonflydb.io/docs/managing-dragonfly/scripting, "Script flags"): Dragonfly reads
 * it only at the very start of a script, where Redis requires the shebang of a script with flags,
 * and it cannot compile a script that has a shebang (`#` is not Lua; dragonflydb/dragonfly#3517),
 * so the completion script (`allow-oom`) fails there whatever the others carry; and the line makes
 * each script take Dragonfly's global lock. See "Keys in scripts" in `docs/design.md`.
 *
 * @param lua The script's Lua; its KEYS/ARGV/Returns header is the JSDoc of its constant.
 * @param options Its Redis flags.
 * @returns The script, with its hash.
 */
export function script(lua: string, options: ScriptOptions = {}): Script {
  const { redisFlags = [] } = options;
  const text = (redisFlags.length > 0 ? `#!lua flags=${redisFlags.join(",")}\n` : "") + lua;
  const sha = createHash("sha1").update(text).digest("hex");
  return { lua: text, sha, loadedOn: new WeakSet() };
}

/** An argument of a script: strings and numbers, or bytes for encoded payloads. */
export type ScriptArg = CommandArg;

const NO_ARGS: string[] = [];

/** An EVALSHA of one of streaq's scripts, sent as EVAL on a socket that has not seen it. */
class ScriptCommand extends Command {
  readonly #script: Script;

  constructor(s: Script, keys: readonly string[], args: readonly ScriptArg[], binary: boolean) {
    super("evalsha", NO_ARGS, { replyEncoding: binary ? null : "utf8" });
    // Set after ioredis's constructor, which would copy the list (`flat()`) and turn each number
    // into a string: garbage for every call, as `encodeCommand` writes numbers and bytes itself.
    this.args = scriptArgs(s, keys, args) as string[];
    this.#script = s;
  }

  override toWritable(socket: object): string | Buffer {
    const { loadedOn } = this.#script;
    this.name = nameOnSocket(this.#script, socket, this.args as ScriptArg[], this.name);
    const reject = this.reject;
    this.reject = (error: Error) => {
      if (isNoScript(error)) loadedOn.delete(socket);
      reject.call(this, error);
    };
    return encodeCommand(this.name, this.args as CommandArg[]);
  }
}

/**
 * An EVALSHA of one of streaq's scripts on a single connection (not a pipeline, not a Cluster),
 * sent without ioredis's `Command` class (see `_direct_call.ts`).
 */
class DirectScriptCall extends DirectCall {
  readonly #script: Script;

  constructor(s: Script, keys: readonly string[], args: readonly ScriptArg[]) {
    super("evalsha", scriptArgs(s, keys, args));
    this.#script = s;
  }

  override toWritable(socket: object): string | Buffer {
    this.name = nameOnSocket(this.#script, socket, this.args, this.name);
    return super.toWritable(socket);
  }
}

/** `EVALSHA sha numkeys keys... args...` as one array of the final size, filled by index. */
function scriptArgs(s: Script, keys: readonly string[], args: readonly ScriptArg[]): ScriptArg[] {
  const list: ScriptArg[] = new Array(2 + keys.length + args.length);
  list[0] = s.sha;
  list[1] = keys.length;
  for (let i = 0; i < keys.length; i++) list[2 + i] = keys[i];
  for (let i = 0; i < args.length; i++) list[2 + keys.length + i] = args[i];
  return list;
}

/**
 * EVAL with the source on a socket that has not seen the script, EVALSHA on one that has; sets
 * `args[0]` to match and returns the command's name.
 */
function nameOnSocket(s: Script, socket: object, args: ScriptArg[], name: string): string {
  if (!s.loadedOn.has(socket)) {
    s.loadedOn.add(socket);
    args[0] = s.lua;
    return "eval";
  }
  if (name === "eval") {
    // Written again (a reconnection or a redirection) on a socket that has it now.
    args[0] = s.sha;
    return "evalsha";
  }
  return name;
}

/** A script's reply as ioredis gives it with `replyEncoding: "utf8"`: bulk strings as strings. */
function asText(reply: unknown): unknown {
  if (reply instanceof Uint8Array) return (reply as Buffer).toString();
  if (Array.isArray(reply)) return reply.map(asText);
  return reply;
}

/** What sends commands: a connection, or a pipeline (which knows its connection). */
type Target = (Redis | ChainableCommander) & {
  sendCommand(command: Command): unknown;
  readonly isPipeline?: boolean;
  readonly redis?: Redis;
};

/**
 * Runs `s` with `keys` and `args` on a connection or in a pipeline. With `binary`, strings in
 * the reply come back as Buffers (for replies holding payloads). In a pipeline the answer also
 * comes in the pipeline's replies, in its place.
 */
export function runScript(
  target: Redis | ChainableCommander,
  s: Script,
  keys: readonly string[],
  args: readonly ScriptArg[],
  binary = false,
): Promise<unknown> {
  const t = target as Target;
  if (!t.isPipeline && takesDirectCalls(t as Redis)) {
    const call = new DirectScriptCall(s, keys, args);
    t.sendCommand(call as unknown as Command);
    return call.promise.then((reply) => binary ? reply : asText(reply), (error: Error) => {
      if (!isNoScript(error)) throw error;
      // Redis forgot the script (SCRIPT FLUSH, a restart, a failover): sent again with its source.
      if (call.socket) s.loadedOn.delete(call.socket);
      return runScript(target, s, keys, args, binary);
    });
  }
  const command = new ScriptCommand(s, keys, args, binary);
  // Replaced before sending, so that a pipeline, which reads this promise, gets the answer of
  // the call sent again if the first one found the script unknown.
  command.promise = command.promise.catch((error: Error) => {
    if (!isNoScript(error)) throw error;
    const again = new ScriptCommand(s, keys, args, binary);
    (t.isPipeline ? t.redis! as Target : t).sendCommand(again);
    return again.promise;
  });
  t.sendCommand(command);
  return command.promise;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes("NOSCRIPT");
}
