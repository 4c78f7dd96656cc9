/**
 * The stored layout of a finished task's result, inside its envelope: a few bytes of header
 * (outcome, times, tries, function and worker) in front of the codec's encoding of the value.
 * Results are what a queue keeps most of, so the header is binary and the value is left out
 * when there is none (a task returning `undefined`): a no-op task's result fits in 32 bytes,
 * which Redis keeps in a single allocation with its object, where a JSON record took about 150.
 *
 * Layout: flags (bit 0 success, bit 1 value present, bits 4-7 layout version), then varints:
 * created time, then enqueue, start and finish times each as a signed difference from the one
 * before (clocks of different machines may disagree), tries, then the function name and the
 * worker id as a varint length and UTF-8 bytes, then the value's bytes to the end.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { StreaqError } from "../errors.ts";
import type { ResultRecord } from "../result.ts";

/** The layout version in bits 4-7 of a record's first byte (read by the Lua `resultHeader`). */
export const RESULT_LAYOUT_VERSION = 0x10;
const VERSION = RESULT_LAYOUT_VERSION;
const SUCCESS = 0x01;
const HAS_VALUE = 0x02;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A result record as stored, its value still encoded (undefined when there is none). */
export interface PackedResult extends Omit<ResultRecord, "value" | "taskId"> {
  readonly value: Uint8Array | undefined;
}

/** A record to lay out: its value encoded as bytes, or as text (laid out as UTF-8), or none. */
export interface ResultToPack extends Omit<PackedResult, "value"> {
  readonly value: Uint8Array | string | undefined;
}

/**
 * Function names and worker ids, encoded: a worker writes the same few for every result, and
 * an encoding is a call into the runtime. Bounded, should names come from elsewhere.
 */
const names = new Map<string, Uint8Array>();

function nameBytes(name: string): Uint8Array {
  let bytes = names.get(name);
  if (!bytes) {
    if (names.size >= 1_000) names.clear();
    bytes = encoder.encode(name);
    names.set(name, bytes);
  }
  return bytes;
}

/** Lays out a record with its encoded value (undefined: no value). */
export function packResult(record: ResultToPack): Uint8Array {
  const out = new Uint8Array(packedResultSize(record));
  packResultInto(out, 0, record);
  return out;
}

/** How many bytes {@linkcode packResult} lays `record` out in. */
export function packedResultSize(record: ResultToPack): number {
  const { createdTime, enqueueTime, startTime } = record;
  const fn = nameBytes(record.fnName).length;
  const worker = nameBytes(record.workerId).length;
  return 1 + varintSize(createdTime) + varintSize(zigzag(enqueueTime - createdTime)) +
    varintSize(zigzag(startTime - enqueueTime)) +
    varintSize(zigzag(record.finishTime - startTime)) +
    varintSize(record.tries) + varintSize(fn) + fn + varintSize(worker) + worker +
    valueSize(record.value);
}

/** The bytes of a value to lay out: text is measured as UTF-8 without being encoded. */
function valueSize(value: Uint8Array | string | undefined): number {
  if (value === undefined) return 0;
  return typeof value === "string" ? Buffer.byteLength(value, "utf8") : value.length;
}

/**
 * Lays out a record at `at` in `out`, which has the {@linkcode packedResultSize} bytes it takes
 * from there: an envelope's own buffer, so that a worker makes no buffer for the record alone,
 * nor for its value's text (a typed array with a buffer of its own takes longer to make than
 * the whole layout).
 */
export function packResultInto(out: Uint8Array, at: number, record: ResultToPack): void {
  const fn = nameBytes(record.fnName);
  const worker = nameBytes(record.workerId);
  const { value, createdTime, enqueueTime, startTime } = record;
  out[at] = VERSION | (record.success ? SUCCESS : 0) | (value !== undefined ? HAS_VALUE : 0);
  at = writeVarint(out, at + 1, createdTime);
  at = writeVarint(out, at, zigzag(enqueueTime - createdTime));
  at = writeVarint(out, at, zigzag(startTime - enqueueTime));
  at = writeVarint(out, at, zigzag(record.finishTime - startTime));
  at = writeVarint(out, at, record.tries);
  at = writeVarint(out, at, fn.length);
  out.set(fn, at);
  at = writeVarint(out, at + fn.length, worker.length);
  out.set(worker, at);
  at += worker.length;
  if (typeof value === "string") encoder.encodeInto(value, out.subarray(at));
  else if (value !== undefined) out.set(value, at);
}

/**
 * Reads what {@linkcode packResult} laid out.
 *
 * @throws {StreaqError} If the bytes are not such a record (another layout, or cut short).
 */
export function unpackResult(taskId: string, data: Uint8Array): PackedResult {
  const bad = (why: string) =>
    new StreaqError(`Cannot read the result of task ${taskId}: it is not a result record (${why})`);
  if (data.length === 0 || (data[0] & 0xf0) !== VERSION) {
    throw bad(`layout byte ${data[0] ?? "missing"}`);
  }
  let at = 1;
  const get = () => {
    const end = varintEnd(data, at);
    if (end < 0) throw bad("cut short");
    const n = readVarint(data, at, end);
    at = end;
    return n;
  };
  const text = () => {
    const length = get();
    if (at + length > data.length) throw bad("cut short");
    try {
      return decoder.decode(data.subarray(at, at += length));
    } catch {
      throw bad("a name that is not UTF-8");
    }
  };
  const createdTime = get();
  const enqueueTime = createdTime + unzigzag(get());
  const startTime = enqueueTime + unzigzag(get());
  const finishTime = startTime + unzigzag(get());
  const tries = get();
  const fnName = text();
  const workerId = text();
  return {
    success: (data[0] & SUCCESS) !== 0,
    fnName,
    createdTime,
    enqueueTime,
    startTime,
    finishTime,
    tries,
    workerId,
    value: (data[0] & HAS_VALUE) !== 0 ? data.subarray(at) : undefined,
  };
}

/** How many bytes {@linkcode writeVarint} writes for `n`. */
function varintSize(n: number): number {
  let rest = Math.max(0, Math.floor(n));
  let size = 1;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    size++;
  }
  return size;
}

/** Writes a non-negative integer below 2^53, seven bits a byte; returns the next offset. */
function writeVarint(out: Uint8Array, at: number, n: number): number {
  let rest = Math.max(0, Math.floor(n));
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[at++] = rest;
  return at;
}

/**
 * Where the varint at `at` ends (the offset after it), or -1 when the data ends inside it. Apart
 * from {@linkcode readVarint}, so that reading one returns a number, not a pair to destructure:
 * every result read reads five.
 */
function varintEnd(data: Uint8Array, at: number): number {
  for (let i = at; i < data.length && i < at + 8; i++) {
    if ((data[i] & 0x80) === 0) return i + 1;
  }
  return -1;
}

/** Reads the varint from `at` to `end` (found by {@linkcode varintEnd}). */
function readVarint(data: Uint8Array, at: number, end: number): number {
  let n = 0;
  let scale = 1;
  for (let i = at; i < end; i++) {
    n += (data[i] & 0x7f) * scale;
    scale *= 0x80;
  }
  return n;
}

/** Maps a signed integer to a non-negative one: 0, -1, 1, -2, ... to 0, 1, 2, 3, ... */
function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

function unzigzag(n: number): number {
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}
