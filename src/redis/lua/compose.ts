/**
 * Lua scripts made of named pieces. A piece is one `local function`, with explicit parameters
 * and no state shared with the script that includes it; it names the pieces it calls, and
 * {@linkcode lua} writes each piece a script needs once, callees before callers, ahead of the
 * script's own body. Scripts stay TypeScript string constants (no file reads at run time).
 *
 * @module
 */

/** One Lua function of the library, with the functions it calls. */
export interface LuaFunction {
  /** Its name in Lua: `local function <name>(...)`. */
  readonly name: string;
  /** Its definition. */
  readonly source: string;
  /** The pieces it calls, written before it. */
  readonly needs: readonly LuaFunction[];
}

/**
 * Declares a piece: `source` must define `local function <name>(`.
 *
 * @param name The function's name in Lua.
 * @param needs The pieces it calls.
 * @param source Its definition, with a comment saying what it does, its parameters and what it
 *   returns.
 * @returns The piece, for {@linkcode lua} and for the `needs` of other pieces.
 * @throws {TypeError} When `source` does not define the function `name`.
 */
export function luaFunction(
  name: string,
  needs: readonly LuaFunction[],
  source: string,
): LuaFunction {
  if (!source.includes(`local function ${name}(`)) {
    throw new TypeError(
      `Cannot declare Lua piece as 'source' must define 'local function ${name}(': received ${
        JSON.stringify(source.slice(0, 80))
      }`,
    );
  }
  return { name, needs, source: source.trim() + "\n" };
}

/**
 * The globals the scripts use most, made locals of the script's chunk, which its functions then
 * reach as upvalues: in Redis's Lua a global is a lookup in the globals table each time it is
 * read.
 */
const GLOBALS = ["ARGV", "KEYS", "redis", "string", "table", "tonumber", "math", "unpack", "type"];
const LOCAL_GLOBALS = `local ${GLOBALS.join(", ")} = ${GLOBALS.join(", ")}\n`;

/**
 * A script's text: the pieces given (with the pieces they need, each once, callees first),
 * then the strings given, in order.
 *
 * @param parts Pieces the script calls, and its own body.
 * @returns The Lua source.
 */
export function lua(...parts: (LuaFunction | string)[]): string {
  const written = new Set<LuaFunction>();
  const out: string[] = [];
  const write = (piece: LuaFunction): void => {
    if (written.has(piece)) return;
    written.add(piece);
    piece.needs.forEach(write);
    out.push(piece.source);
  };
  for (const part of parts) if (typeof part !== "string") write(part);
  for (const part of parts) if (typeof part === "string") out.push(part.trim() + "\n");
  return LOCAL_GLOBALS + out.join("\n");
}
