/**
 * The dashboard's default formatters: any value the codec can carry as readable text, and
 * errors with their stack and causes.
 *
 * @module
 */

/** Output longer than this is cut, so a huge argument cannot bloat a page. */
const MAX_LENGTH = 20_000;
/** Containers nested deeper than this are summarized. */
const MAX_DEPTH = 8;
/** Items shown per container; the rest are counted. */
const MAX_ITEMS = 100;
/** Bytes shown of a binary value. */
const MAX_BYTES = 32;
/** A container whose items fit in this many characters is written on one line. */
const LINE_WIDTH = 72;
const MAX_CAUSES = 8;

/**
 * Formats a value as readable, JavaScript-like text: strings quoted, `Date`s as ISO times,
 * `Map`, `Set`, `BigInt`, binary data, `undefined`, `NaN` and errors shown for what they are,
 * nested containers indented. Cycles and very deep, long or large values are summarized.
 *
 * @param value Any value, such as a task's argument or result.
 * @returns Its text form, at most about 20,000 characters.
 *
 * @example Formatting a result
 * ```ts
 * import { formatValue } from "@streaq/streaq/ui";
 *
 * const text = formatValue({ at: new Date(0), tags: new Set(["a"]), big: 10n });
 * // { at: Date(1970-01-01T00:00:00.000Z), tags: Set(1) { "a" }, big: 10n }
 * console.log(text);
 * ```
 */
export function formatValue(value: unknown): string {
  const text = format(value, "", new Set(), 0);
  return text.length > MAX_LENGTH
    ? `${text.slice(0, MAX_LENGTH)}… (${text.length - MAX_LENGTH} more characters)`
    : text;
}

/**
 * Formats an error as its stack (or `name: message` without one), followed by its causes.
 * A thrown value that is not an error is formatted with {@linkcode formatValue}.
 *
 * @param error What a task failed with.
 * @returns Its text form.
 *
 * @example Formatting an error with a cause
 * ```ts
 * import { formatError } from "@streaq/streaq/ui";
 *
 * const error = new Error("cannot save", { cause: new TypeError("bad row") });
 * console.log(formatError(error)); // Error: cannot save\n    at ...\nCaused by: TypeError: bad row ...
 * ```
 */
export function formatError(error: unknown): string {
  const parts: string[] = [];
  let current = error;
  for (let depth = 0; depth < MAX_CAUSES; depth++) {
    if (!(current instanceof Error)) {
      parts.push(formatValue(current));
      break;
    }
    parts.push(errorText(current));
    if (current.cause === undefined) break;
    current = current.cause;
  }
  const text = parts.join("\nCaused by: ");
  return text.length > MAX_LENGTH ? `${text.slice(0, MAX_LENGTH)}…` : text;
}

function errorText(error: Error): string {
  const head = `${error.name}: ${error.message}`;
  const stack = typeof error.stack === "string" ? error.stack.trimEnd() : "";
  if (!stack) return head;
  if (stack.startsWith(head)) return stack;
  // A stack rebuilt from another process may start with the class name the error had there.
  const firstLine = stack.split("\n", 1)[0];
  if (error.message && firstLine.includes(error.message)) {
    return head + stack.slice(firstLine.length);
  }
  return `${head}\n${stack}`;
}

function format(value: unknown, indent: string, seen: Set<object>, depth: number): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "undefined":
      return "undefined";
    case "boolean":
    case "symbol":
      return String(value);
    case "function":
      return `[Function ${value.name || "(anonymous)"}]`;
  }
  if (value === null) return "null";
  const object = value as object;
  if (object instanceof Date) {
    return `Date(${Number.isNaN(object.getTime()) ? "Invalid" : object.toISOString()})`;
  }
  if (object instanceof RegExp) return String(object);
  if (object instanceof Error) return `${object.name}: ${object.message}`;
  if (object instanceof ArrayBuffer) return bytes("ArrayBuffer", new Uint8Array(object));
  if (ArrayBuffer.isView(object)) {
    const view = new Uint8Array(object.buffer, object.byteOffset, object.byteLength);
    return bytes(object.constructor.name, view);
  }
  if (seen.has(object)) return "[Circular]";
  if (depth >= MAX_DEPTH) return Array.isArray(object) ? "[Array]" : "[Object]";
  seen.add(object);
  try {
    return container(object, indent, seen, depth);
  } finally {
    seen.delete(object);
  }
}

function container(object: object, indent: string, seen: Set<object>, depth: number): string {
  const inner = indent + "  ";
  const item = (v: unknown) => format(v, inner, seen, depth + 1);
  const items: string[] = [];
  let total: number;
  let open: string;
  let close: string;
  if (Array.isArray(object)) {
    [open, close, total] = ["[", "]", object.length];
    for (const v of object.slice(0, MAX_ITEMS)) items.push(item(v));
  } else if (object instanceof Map) {
    [open, close, total] = [`Map(${object.size}) {`, "}", object.size];
    for (const [k, v] of take(object.entries())) items.push(`${item(k)} => ${item(v)}`);
  } else if (object instanceof Set) {
    [open, close, total] = [`Set(${object.size}) {`, "}", object.size];
    for (const v of take(object.values())) items.push(item(v));
  } else {
    const entries = Object.entries(object);
    const name = Object.getPrototypeOf(object)?.constructor?.name;
    open = name && name !== "Object" ? `${name} {` : "{";
    [close, total] = ["}", entries.length];
    for (const [k, v] of entries.slice(0, MAX_ITEMS)) items.push(`${key(k)}: ${item(v)}`);
  }
  if (total > items.length) items.push(`… ${total - items.length} more`);
  if (items.length === 0) return open.endsWith("{") ? `${open}}` : `${open}${close}`;
  const pad = open.endsWith("{") ? " " : "";
  const oneLine = `${open}${pad}${items.join(", ")}${pad}${close}`;
  if (oneLine.length + indent.length <= LINE_WIDTH && !oneLine.includes("\n")) return oneLine;
  return `${open}\n${items.map((i) => inner + i).join(",\n")}\n${indent}${close}`;
}

function* take<T>(iterator: Iterator<T>): Generator<T> {
  for (let i = 0; i < MAX_ITEMS; i++) {
    const next = iterator.next();
    if (next.done) return;
    yield next.value;
  }
}

function key(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

function bytes(kind: string, data: Uint8Array): string {
  const shown = Array.from(data.subarray(0, MAX_BYTES), (b) => b.toString(16).padStart(2, "0"));
  const more = data.length > MAX_BYTES ? ` … ${data.length - MAX_BYTES} more` : "";
  return `${kind}(${data.length}) [${shown.join(" ")}${more}]`;
}
