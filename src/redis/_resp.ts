/**
 * Lays out a command in the Redis protocol (RESP) as one buffer. ioredis encodes a command that
 * carries any bytes argument piece by piece, with a native call for every argument's length and
 * another for its copy; a completion call holds hundreds of arguments, and those calls were a
 * quarter of a busy worker's time. Here arguments made of ASCII characters only, nearly all of
 * them (keys, ids, numbers), are copied by a plain loop, and only other text goes through the
 * encoder.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** An argument of a command: text, a number (sent as its decimal text) or bytes. */
export type CommandArg = string | number | Uint8Array;

const encoder = new TextEncoder();
const CR = 13;
const LF = 10;

/** The bytes of `name` with `args`, as `*<count>\r\n` followed by one bulk string each. */
export function encodeCommand(name: string, args: readonly CommandArg[]): Buffer {
  const texts: (string | Uint8Array)[] = new Array(args.length);
  // Header bytes for each argument are at most 1 + 10 digits + 2, plus 2 after it.
  let size = 32 + name.length;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const piece = typeof arg === "number"
      ? String(arg)
      : typeof arg === "string" && !isAscii(arg)
      ? encoder.encode(arg)
      : arg;
    texts[i] = piece;
    size += piece.length + 16;
  }
  const out = Buffer.allocUnsafe(size);
  let at = writeHeader(out, 0, 0x2a, args.length + 1); // '*'
  at = writeHeader(out, at, 0x24, name.length); // '$'
  at = writeAscii(out, at, name);
  out[at++] = CR;
  out[at++] = LF;
  // Indexed: a for-of loop allocates a step object per argument until the function is optimized.
  for (let i = 0; i < texts.length; i++) {
    const piece = texts[i];
    at = writeHeader(out, at, 0x24, piece.length);
    if (typeof piece === "string") {
      at = writeAscii(out, at, piece);
    } else {
      out.set(piece, at);
      at += piece.length;
    }
    out[at++] = CR;
    out[at++] = LF;
  }
  return out.subarray(0, at);
}

// Any character above U+007F.
const NOT_ASCII = /[\u0080-\uffff]/;

function isAscii(text: string): boolean {
  return !NOT_ASCII.test(text);
}

function writeAscii(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

/** Writes `<prefix><n>\r\n`. */
function writeHeader(out: Uint8Array, at: number, prefix: number, n: number): number {
  out[at++] = prefix;
  at = n < 10 ? (out[at] = 0x30 + n, at + 1) : writeAscii(out, at, String(n));
  out[at++] = CR;
  out[at++] = LF;
  return at;
}
