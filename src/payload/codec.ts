/**
 * The default payload codec of streaq: tagged JSON, readable in `redis-cli`. Plain JSON data
 * is written as itself; a value JSON cannot hold (`undefined`, `NaN`, `±Infinity`, `-0`,
 * `bigint`, `Date`, `Map`, `Set`, `Uint8Array`, `ArrayBuffer`, `RegExp`, `Error`) becomes
 * `{"$t": tag, "v": ...}`, and a plain object with its own `"$t"` key or a null prototype is
 * wrapped in the `"object"` tag. Encoding walks the value once and copies only the containers
 * holding such a value, so plain data costs one walk plus `JSON.stringify`.
 *
 * @module
 */

import { KNOWN_ERRORS } from "../errors.ts";

/** What a serializer produces and a deserializer receives. */
export type Encoded = string | Uint8Array;

/** A custom serializer: sync or async. */
export type Serializer = (value: unknown) => Encoded | Promise<Encoded>;

/**
 * A custom deserializer. It receives the same kind ({@linkcode Encoded}) its serializer
 * produced, so one that takes only strings (`JSON.parse`) or only bytes fits, and it may
 * return a `Promise` of the value.
 */
// Declared through a method so that its parameter is checked bivariantly: a function of a
// string alone, such as `JSON.parse`, is accepted, and an inline arrow still gets `Encoded`.
export type Deserializer = { deserialize(data: Encoded): unknown }["deserialize"];

/** A plain, codec-friendly form of an error. */
export interface PlainError {
  /** The error's `name`, used to pick the class it is rebuilt as. */
  name: string;
  /** The error's `message`. */
  message: string;
  /** The error's `stack`, kept so that failures show where they happened. */
  stack?: string;
  /** The error's `cause`: a nested {@linkcode PlainError} or any serializable value. */
  cause?: unknown;
}

const TAG = "$t";
const UNDEFINED = Object.freeze({ [TAG]: "undefined" });
const SPECIAL_NUMBERS: Entries = { NaN, Infinity, "-Infinity": -Infinity, "-0": -0 };
const ERROR_FIELDS = new Set(["name", "message", "stack", "cause"]);
const CIRCULAR = "circular references are not supported (received an object that contains itself)";
const MAX_CAUSE_DEPTH = 8;
const PREVIEW_LENGTH = 60;

type Entries = Record<string, unknown>;
type ErrorClasses = Record<string, new (message: string) => Error>;

/**
 * Serializes a value with the default codec.
 *
 * @param value Any value made of the supported types, nested freely.
 * @returns Tagged JSON text.
 * @throws {TypeError} If the value holds a function, a symbol, an instance of an unsupported
 * class or a circular reference; the message names the path of the bad value, e.g.
 * `Cannot serialize value at [1].user.callback: functions are not supported (received function onDone)`.
 */
export function serialize(value: unknown): string {
  let encoded: unknown;
  try {
    encoded = encode(value, []);
  } catch (error) {
    if (!(error instanceof EncodeFailure)) throw error;
    const path = error.path.startsWith(".") ? error.path.slice(1) : error.path;
    throw new TypeError(`Cannot serialize value${path ? ` at ${path}` : ""}: ${error.reason}`);
  }
  return JSON.stringify(encoded);
}

/**
 * Deserializes what {@linkcode serialize} produced.
 *
 * @param data Tagged JSON text, or its UTF-8 bytes.
 * @returns The original value.
 * @throws {TypeError} If the data is not valid UTF-8 or JSON, or holds an unknown tag or a tag
 * of the wrong shape. The message says what is wrong, such as `not valid JSON: received "x"`;
 * the caller, who knows what the data was (a payload, a result), puts that in front.
 */
export function deserialize(data: Encoded): unknown {
  let text = data;
  try {
    if (typeof text !== "string") text = new TextDecoder("utf-8", { fatal: true }).decode(text);
  } catch {
    throw new TypeError(`not valid UTF-8 (${data.length} bytes)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TypeError(`not valid JSON: received ${preview(text)}`);
  }
  return decode(parsed);
}

/**
 * Turns anything thrown into a {@linkcode PlainError}. A thrown non-Error becomes an `Error`
 * whose message is `String(value)`, keeping the value as `cause` when the default codec can
 * represent it. Causes are converted recursively, up to 8 deep and stopping at a cycle; other
 * own properties of the error are dropped.
 *
 * @param error Whatever was thrown.
 * @returns Its plain form.
 */
export function errorToPlain(error: unknown): PlainError {
  return toPlain(error, 0, new Set());
}

/**
 * Rebuilds an `Error` from a {@linkcode PlainError}: an instance of `classes[name]` when there
 * is one (constructed with the message alone), else an `Error` whose `name` is set to the
 * original one. `stack`, `cause` and any other property of `plain` are set on it; a cause
 * that looks like a PlainError (an object with a string `name` and `message`) is rebuilt too.
 *
 * @param plain The plain form, e.g. from {@linkcode errorToPlain}.
 * @param classes Error classes by name, e.g. `KNOWN_ERRORS`.
 * @returns The rebuilt error.
 */
export function plainToError(
  plain: PlainError,
  classes: Record<string, new (message: string) => Error>,
): Error {
  return rebuildError(plain, classes, 0);
}

/** Thrown inside the walk (cheaply: not an Error); collects the path while it unwinds. */
class EncodeFailure {
  path = "";
  constructor(readonly reason: string) {}
}

function within(error: unknown, segment: string): unknown {
  if (error instanceof EncodeFailure) error.path = segment + error.path;
  return error;
}

/** Returns the JSON-ready form of `value`: `value` itself when it needs no tag. */
function encode(value: unknown, ancestors: object[]): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isFinite(value) && (value !== 0 || 1 / value > 0)) return value;
      return tagged("number", Object.is(value, -0) ? "-0" : String(value));
    case "undefined":
      return UNDEFINED;
    case "bigint":
      return tagged("bigint", value.toString());
    case "object":
      return value === null ? null : encodeObject(value, ancestors);
    case "function":
      throw new EncodeFailure(`functions are not supported (received ${describe(value)})`);
    case "symbol":
      throw new EncodeFailure(`symbols are not supported (received ${String(value)})`);
  }
}

function encodeObject(value: object, ancestors: object[]): unknown {
  if (ancestors.includes(value)) throw new EncodeFailure(CIRCULAR);
  ancestors.push(value);
  const proto: unknown = Object.getPrototypeOf(value);
  let encoded: unknown;
  if (proto === Array.prototype) encoded = encodeArray(value as unknown[], ancestors);
  else if (proto === Object.prototype || proto === null) {
    encoded = encodePlainObject(value as Entries, proto === null, ancestors);
  } else encoded = encodeInstance(value, ancestors);
  ancestors.pop();
  return encoded;
}

function encodeArray(array: unknown[], ancestors: object[]): unknown[] {
  let copy: unknown[] | undefined;
  let i = 0;
  try {
    for (; i < array.length; i++) {
      const item = array[i];
      const encoded = encode(item, ancestors);
      if (copy) copy.push(encoded);
      else if (encoded !== item) {
        copy = array.slice(0, i);
        copy.push(encoded);
      }
    }
  } catch (error) {
    throw within(error, `[${i}]`);
  }
  return copy ?? array;
}

function encodePlainObject(object: Entries, nullProto: boolean, ancestors: object[]): unknown {
  let copy: Entries | undefined;
  let key = "";
  try {
    // for-in is faster than Object.keys here, and plain objects inherit no enumerable keys.
    for (key in object) {
      const item = object[key];
      const encoded = encode(item, ancestors);
      if (copy) setOwn(copy, key, encoded);
      else if (encoded !== item) copy = copyUntil(object, key, encoded);
    }
  } catch (error) {
    throw within(error, keySegment(key));
  }
  const result = copy ?? object;
  if (nullProto) return { [TAG]: "object", v: result, nullProto: true };
  return Object.hasOwn(object, TAG) ? tagged("object", result) : result;
}

/** Copies the entries before `key`, then sets `key` to its encoded value. */
function copyUntil(object: Entries, key: string, encoded: unknown): Entries {
  const copy: Entries = {};
  for (const before in object) {
    if (before === key) break;
    setOwn(copy, before, object[before]);
  }
  setOwn(copy, key, encoded);
  return copy;
}

function encodeInstance(value: object, ancestors: object[]): unknown {
  if (value instanceof Date) {
    return tagged("Date", Number.isNaN(value.getTime()) ? null : value.toISOString());
  }
  if (value instanceof Uint8Array) return tagged("Uint8Array", value.toBase64());
  if (value instanceof ArrayBuffer) return tagged("ArrayBuffer", new Uint8Array(value).toBase64());
  if (value instanceof RegExp) return tagged("RegExp", [value.source, value.flags]);
  if (value instanceof Map) return tagged("Map", encodeMap(value, ancestors));
  if (value instanceof Set) {
    const items: unknown[] = [];
    try {
      for (const item of value) items.push(encode(item, ancestors));
    } catch (error) {
      throw within(error, `<set item #${items.length}>`);
    }
    return tagged("Set", items);
  }
  if (value instanceof Error) return tagged("Error", encodeError(value, ancestors));
  throw new EncodeFailure(`class instances are not supported (received ${describe(value)})`);
}

function encodeMap(map: Map<unknown, unknown>, ancestors: object[]): unknown[] {
  const entries: unknown[] = [];
  let key: unknown;
  let keyDone = false;
  try {
    for (const entry of map) {
      key = entry[0];
      keyDone = false;
      const encodedKey = encode(key, ancestors);
      keyDone = true;
      entries.push([encodedKey, encode(entry[1], ancestors)]);
    }
  } catch (error) {
    const i = entries.length;
    const shown = typeof key === "string" ? JSON.stringify(key) : `<key #${i}>`;
    throw within(error, keyDone ? `.get(${shown})` : `<map key #${i}>`);
  }
  return entries;
}

/** An error becomes its fields and own enumerable properties, so paths read `.cause`, `.code`. */
function encodeError(error: Error, ancestors: object[]): unknown {
  const fields: Entries = { name: safeString(error.name) };
  fields.message = safeString(error.message);
  if (typeof error.stack === "string") fields.stack = error.stack;
  if (Object.hasOwn(error, "cause")) fields.cause = error.cause;
  for (const [key, value] of Object.entries(error)) {
    if (!ERROR_FIELDS.has(key)) setOwn(fields, key, value);
  }
  return encodePlainObject(fields, false, ancestors);
}

function tagged(tag: string, v: unknown): Entries {
  return { [TAG]: tag, v };
}

function decode(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (typeof item === "object" && item !== null) value[i] = decode(item);
    }
    return value;
  }
  return Object.hasOwn(value, TAG)
    ? decodeTagged(value as Entries)
    : decodeEntries(value as Entries);
}

/** Decodes the values of a parsed object in place, without looking for a tag on it. */
function decodeEntries(object: Entries): Entries {
  for (const key in object) {
    const item = object[key];
    if (typeof item !== "object" || item === null) continue;
    const decoded = decode(item);
    if (decoded !== item) setOwn(object, key, decoded);
  }
  return object;
}

function decodeTagged(object: Entries): unknown {
  const tag = object[TAG];
  const v = object.v;
  switch (tag) {
    case "undefined":
      return undefined;
    case "number":
      if (typeof v === "string" && Object.hasOwn(SPECIAL_NUMBERS, v)) return SPECIAL_NUMBERS[v];
      throw badShape(tag, '"NaN", "Infinity", "-Infinity" or "-0"', v);
    case "bigint":
      if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
      throw badShape(tag, "a string of digits", v);
    case "Date": {
      const date = new Date(typeof v === "string" ? v : NaN);
      if (v === null || !Number.isNaN(date.getTime())) return date;
      throw badShape(tag, "an ISO date string or null", v);
    }
    case "Uint8Array":
    case "ArrayBuffer": {
      let bytes: Uint8Array | undefined;
      try {
        if (typeof v === "string") bytes = Uint8Array.fromBase64(v);
      } catch { /* reported below */ }
      if (!bytes) throw badShape(tag, "a base64 string", v);
      return tag === "Uint8Array" ? bytes : bytes.buffer;
    }
    case "RegExp":
      try {
        if (Array.isArray(v) && v.length === 2) return new RegExp(v[0], v[1]);
      } catch { /* reported below */ }
      throw badShape(tag, "[source, flags]", v);
    case "Map":
      if (Array.isArray(v) && v.every((entry) => Array.isArray(entry) && entry.length === 2)) {
        return new Map(v.map(([key, value]) => [decode(key), decode(value)]));
      }
      throw badShape(tag, "an array of [key, value] pairs", v);
    case "Set":
      if (Array.isArray(v)) return new Set(decode(v) as unknown[]);
      throw badShape(tag, "an array", v);
    case "object":
      if (!isRecord(v)) throw badShape(tag, "an object", v);
      return object.nullProto === true
        ? Object.setPrototypeOf(decodeEntries(v), null)
        : decodeEntries(v);
    case "Error":
      return decodeError(v);
  }
  throw new TypeError(`unknown tag ${preview(tag)}`);
}

function decodeError(v: unknown): Error {
  const fields = decode(v);
  if (!looksLikePlainError(fields)) {
    throw badShape("Error", "an object with a string name and message", v);
  }
  // The cause is decoded already: a plain object that looks like an error must stay one.
  return rebuildError(fields, KNOWN_ERRORS, MAX_CAUSE_DEPTH);
}

function badShape(tag: string, expected: string, received: unknown): TypeError {
  return new TypeError(
    `tag "${tag}" expects ${expected}: received ${preview(received)}`,
  );
}

function toPlain(error: unknown, depth: number, seen: Set<Error>): PlainError {
  if (!(error instanceof Error)) {
    const plain: PlainError = { name: "Error", message: safeString(error) };
    if (isSerializable(error)) plain.cause = error;
    return plain;
  }
  seen.add(error);
  const plain: PlainError = { name: safeString(error.name), message: safeString(error.message) };
  if (typeof error.stack === "string") plain.stack = error.stack;
  if (Object.hasOwn(error, "cause")) {
    const cause = error.cause;
    if (!(cause instanceof Error)) {
      if (isSerializable(cause)) plain.cause = cause;
    } else if (depth < MAX_CAUSE_DEPTH && !seen.has(cause)) {
      plain.cause = toPlain(cause, depth + 1, seen);
    }
  }
  return plain;
}

/** Rebuilds the error, then sets `stack`, `cause` and any other property `plain` has. */
function rebuildError(plain: PlainError, classes: ErrorClasses, depth: number): Error {
  const error = createError(safeString(plain.name), safeString(plain.message), classes);
  for (const [key, value] of Object.entries(plain)) {
    if (key === "name" || key === "message" || (key === "stack" && typeof value !== "string")) {
      continue;
    }
    const rebuilt = key === "cause" && depth < MAX_CAUSE_DEPTH && looksLikePlainError(value)
      ? rebuildError(value, classes, depth + 1)
      : value;
    defineValue(error, key, rebuilt, !ERROR_FIELDS.has(key));
  }
  return error;
}

function createError(name: string, message: string, classes: ErrorClasses): Error {
  let error: Error | undefined;
  if (Object.hasOwn(classes, name)) {
    try {
      error = new classes[name](message);
    } catch { /* a constructor that insists on more than a message: use a plain Error */ }
  }
  error ??= new Error(message);
  if (error.message !== message) defineValue(error, "message", message, false);
  if (error.name !== name) defineValue(error, "name", name, false);
  return error;
}

function looksLikePlainError(value: unknown): value is PlainError {
  return isRecord(value) && !(value instanceof Error) && typeof value.name === "string" &&
    typeof value.message === "string";
}

function isSerializable(value: unknown): boolean {
  try {
    encode(value, []);
    return true;
  } catch {
    return false;
  }
}

function isRecord(value: unknown): value is Entries {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sets an own property, even one named "__proto__" (which plain assignment would not). */
function setOwn(target: Entries, key: string, value: unknown): void {
  if (key === "__proto__") defineValue(target, key, value, true);
  else target[key] = value;
}

function defineValue(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, enumerable, writable: true, configurable: true });
}

function keySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Names a value for an error message: its kind, and its class or function name. */
function describe(value: object): string {
  if (typeof value === "function") {
    return value.name ? `function ${value.name}` : "an anonymous function";
  }
  const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
  return name && typeof name === "string"
    ? `an instance of class ${name}`
    : "an object with a custom prototype";
}

/** Shows parsed JSON (which always stringifies) in a message, shortened. */
function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > PREVIEW_LENGTH ? `${text.slice(0, PREVIEW_LENGTH)}…` : text;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
