/**
 * The one path between values and the bytes stored in Redis. Arguments and results are
 * encoded by the codec (the default tagged JSON, or the user's serializer), then wrapped in an
 * envelope: one kind byte, an optional signature, the data.
 *
 * Kind bytes: `s`/`b` for unsigned string/binary data, `S`/`B` for signed ones. The kind lets
 * the deserializer receive the same kind the serializer produced, and lets a worker with a
 * signing secret refuse unsigned data before decoding a single byte of it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  deserialize,
  type Deserializer,
  type Encoded,
  errorToPlain,
  type PlainError,
  plainToError,
  serialize,
  type Serializer,
} from "./codec.ts";
import { KNOWN_ERRORS, StreaqCancelled, StreaqError } from "../errors.ts";
import { ENDED } from "../client/graph.ts";
import type { ResultRecord } from "../result.ts";
import {
  packedResultSize,
  packResult,
  packResultInto,
  type ResultToPack,
  unpackResult,
} from "./result_record.ts";
import { SIGNATURE_LENGTH, Signer, type SigningContext } from "./signing.ts";

const STRING = 0x73; // "s"
const BINARY = 0x62; // "b"
const SIGNED = 0x20; // subtracting it turns the kind upper case
const STRING_KIND = String.fromCharCode(STRING);

/** The kind bytes of envelopes, unsigned and signed (read by the Lua `resultHeader`). */
export const ENVELOPE_KINDS = {
  unsigned: [STRING, BINARY],
  signed: [STRING - SIGNED, BINARY - SIGNED],
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes and decodes task arguments and results for one queue. */
export class Envelope {
  readonly #serialize: Serializer;
  readonly #deserialize: Deserializer;
  readonly #signer: Signer | undefined;

  constructor(options: {
    serializer?: Serializer;
    deserializer?: Deserializer;
    signingSecret?: string | Uint8Array;
  }) {
    this.#serialize = options.serializer ?? serialize;
    this.#deserialize = options.deserializer ?? deserialize;
    this.#signer = options.signingSecret === undefined
      ? undefined
      : new Signer(options.signingSecret);
  }

  /**
   * Whether sealed arguments are bound to their task's id (signed): arguments sealed for one
   * task cannot be given to another, so a debounce that replaces a task's arguments must seal
   * them for that task.
   */
  get bindsTaskId(): boolean {
    return this.#signer !== undefined;
  }

  /**
   * Encodes the arguments of a task; a value the codec refuses gives a TypeError naming it.
   * Unsigned text comes back as a string (its kind letter and the text), which ioredis sends
   * without building a buffer: most of the cost of sending a batch of tasks. At once when
   * nothing to encode them is asynchronous (no signature, a codec that answers at once): a batch
   * seals every task's arguments, and a promise per task is garbage to collect.
   */
  sealArgs(
    taskId: string,
    fnName: string,
    args: readonly unknown[],
  ): Buffer | string | Promise<Buffer | string> {
    let encoded: Encoded | Promise<Encoded>;
    try {
      encoded = this.#serialize(args);
    } catch (error) {
      throw unserializableArgs(fnName, error);
    }
    if (isThenable(encoded)) {
      return Promise.resolve(encoded).then(
        (done) => this.#sealArgsEncoded(taskId, fnName, done),
        (error) => {
          throw unserializableArgs(fnName, error);
        },
      );
    }
    return this.#sealArgsEncoded(taskId, fnName, encoded);
  }

  /** {@linkcode Envelope.sealArgs} once the arguments are encoded. */
  #sealArgsEncoded(
    taskId: string,
    fnName: string,
    encoded: Encoded,
  ): Buffer | string | Promise<Buffer> {
    if (typeof encoded === "string" && !this.#signer) return STRING_KIND + encoded;
    return this.#seal({ kind: "payload", taskId, fnName }, encoded);
  }

  /**
   * Decodes the arguments of a task; throws StreaqError for unsigned, tampered or bad data. At
   * once when nothing to decode them is asynchronous (no signature, the built-in codec): every
   * task a worker runs is opened here, and a promise per task is garbage to collect.
   */
  openArgs(taskId: string, fnName: string, blob: Uint8Array): unknown[] | Promise<unknown[]> {
    const args = this.#open({ kind: "payload", taskId, fnName }, blob, "payload");
    return args instanceof Promise
      ? args.then((decoded) => argumentList(taskId, fnName, decoded))
      : argumentList(taskId, fnName, args);
  }

  /**
   * Encodes a running task's progress value; a value the codec refuses gives a TypeError
   * naming `progress()` and the task. Signed like a result, bound to the task's id.
   */
  async sealProgress(taskId: string, fnName: string, value: unknown): Promise<Buffer> {
    let encoded: Encoded;
    try {
      encoded = await this.#serialize(value);
    } catch (error) {
      throw new TypeError(
        `Cannot report progress of task ${fnName} (${taskId}) as the value cannot be serialized: ${
          (error as Error)?.message ?? String(error)
        }`,
        { cause: error },
      );
    }
    return await this.#seal({ kind: "progress", taskId }, encoded);
  }

  /** Decodes a stored progress value; throws StreaqError for unsigned, tampered or bad data. */
  async openProgress(taskId: string, blob: Uint8Array): Promise<unknown> {
    return await this.#open({ kind: "progress", taskId }, blob, "progress");
  }

  /**
   * Encodes a finished task's result; an unserializable return value becomes a failure. At once
   * when nothing to encode it is asynchronous (no signature, a codec that answers at once).
   */
  sealResult(
    record: ResultRecord,
  ): { blob: Buffer; record: ResultRecord } | Promise<{ blob: Buffer; record: ResultRecord }> {
    let blob: Buffer | Promise<Buffer>;
    try {
      blob = this.#sealRecord(record);
    } catch (error) {
      return this.#sealUnserializable(record, error);
    }
    if (!(blob instanceof Promise)) return { blob, record };
    return blob.then(
      (sealed) => ({ blob: sealed, record }),
      (error) => this.#sealUnserializable(record, error),
    );
  }

  /** The failure sealed in place of a result whose value could not be encoded. */
  async #sealUnserializable(
    record: ResultRecord,
    error: unknown,
  ): Promise<{ blob: Buffer; record: ResultRecord }> {
    if (!record.success) throw error;
    const failed: ResultRecord = {
      ...record,
      success: false,
      value: new TypeError(
        `Task ${record.fnName} returned a value that cannot be serialized: ${
          (error as Error)?.message ?? String(error)
        }`,
        { cause: error },
      ),
    };
    return { blob: await this.#sealRecord(failed), record: failed };
  }

  /** Decodes a stored result. */
  async openResult(taskId: string, blob: Uint8Array): Promise<ResultRecord> {
    const unwrapped = this.#unwrap({ kind: "result", taskId }, blob.subarray(1), "result");
    const { data, isString } = unwrapped instanceof Promise ? await unwrapped : unwrapped;
    const stored = unpackResult(taskId, data);
    let decoded = stored.value === undefined
      ? undefined
      : this.#decode(stored.value, isString, "result");
    if (decoded instanceof Promise) decoded = await decoded;
    // Field by field rather than by rest and spread, which copy through slower generic paths:
    // every result a client waits for is read here.
    return {
      taskId,
      fnName: stored.fnName,
      createdTime: stored.createdTime,
      enqueueTime: stored.enqueueTime,
      startTime: stored.startTime,
      finishTime: stored.finishTime,
      tries: stored.tries,
      workerId: stored.workerId,
      success: stored.success,
      value: stored.success ? decoded : plainToError(decoded as PlainError, KNOWN_ERRORS),
    };
  }

  /**
   * A stored result is the envelope of the record (`src/payload/result_record.ts`) behind one byte
   * saying how the task ended (`ENDED` in `src/client/graph.ts`), which the task-graph scripts read
   * without decoding. The codec encodes the value only, and only when there is one.
   */
  #sealRecord(record: ResultRecord): Buffer | Promise<Buffer> {
    const { value } = record;
    let encoded: Encoded | Promise<Encoded> | undefined;
    if (!record.success || value !== undefined) {
      encoded = this.#serialize(record.success ? value : errorToPlain(value));
    }
    return isThenable(encoded)
      ? Promise.resolve(encoded).then((done) => this.#packRecord(record, done))
      : this.#packRecord(record, encoded);
  }

  /** {@linkcode Envelope.#sealRecord} once the value is encoded (`undefined`: no value). */
  #packRecord(record: ResultRecord, encoded: Encoded | undefined): Buffer | Promise<Buffer> {
    const isString = encoded === undefined || typeof encoded === "string";
    // Field by field rather than by rest and spread: one result per task a worker runs.
    const packed: ResultToPack = {
      fnName: record.fnName,
      createdTime: record.createdTime,
      enqueueTime: record.enqueueTime,
      startTime: record.startTime,
      finishTime: record.finishTime,
      tries: record.tries,
      workerId: record.workerId,
      success: record.success,
      value: encoded,
    };
    const ended =
      (record.success
        ? ENDED.success
        : record.value instanceof StreaqCancelled
        ? ENDED.cancelled
        : ENDED.failure).charCodeAt(0);
    if (!this.#signer) {
      // The record is laid out in the envelope's own buffer, not copied into it.
      const size = packedResultSize(packed);
      const out = this.#unsignedEnvelope(size, isString, ended);
      packResultInto(out, out.length - size, packed);
      return out;
    }
    const context: SigningContext = { kind: "result", taskId: record.taskId };
    return this.#sealData(context, packResult(packed), isString, ended);
  }

  async #seal(context: SigningContext, encoded: Encoded): Promise<Buffer> {
    const isString = typeof encoded === "string";
    return await this.#sealData(context, isString ? encoder.encode(encoded) : encoded, isString);
  }

  /**
   * Wraps data in an envelope; `isString` says the codec's encoding is text. A `lead` byte goes
   * in front of the envelope (a result's ending), in the same allocation.
   */
  async #sealData(
    context: SigningContext,
    data: Uint8Array,
    isString: boolean,
    lead?: number,
  ): Promise<Buffer> {
    if (!this.#signer) {
      const out = this.#unsignedEnvelope(data.byteLength, isString, lead);
      out.set(data, out.length - data.byteLength);
      return out;
    }
    const signature = await this.#signer.sign(context, data);
    const at = lead === undefined ? 0 : 1;
    const out = Buffer.allocUnsafe(at + 1 + signature.byteLength + data.byteLength);
    if (lead !== undefined) out[0] = lead;
    out[at] = (isString ? STRING : BINARY) - SIGNED;
    out.set(signature, at + 1);
    out.set(data, at + 1 + signature.byteLength);
    return out;
  }

  /**
   * An unsigned envelope's buffer for `size` bytes of data, its head written: the `lead` byte if
   * any, then the kind. The data goes in its last `size` bytes.
   */
  #unsignedEnvelope(size: number, isString: boolean, lead?: number): Buffer {
    const at = lead === undefined ? 0 : 1;
    const out = Buffer.allocUnsafe(at + 1 + size);
    if (lead !== undefined) out[0] = lead;
    out[at] = isString ? STRING : BINARY;
    return out;
  }

  /** Opens an envelope and decodes its data: at once when neither step is asynchronous. */
  #open(context: SigningContext, blob: Uint8Array, what: string): unknown {
    const unwrapped = this.#unwrap(context, blob, what);
    return unwrapped instanceof Promise
      ? unwrapped.then(({ data, isString }) => this.#decode(data, isString, what))
      : this.#decode(unwrapped.data, unwrapped.isString, what);
  }

  /**
   * Checks an envelope (kind, signature) and returns the data in it: at once when there is no
   * signature to check, as for most payloads and results, sparing each read a promise.
   */
  #unwrap(
    context: SigningContext,
    blob: Uint8Array,
    what: string,
  ): Unwrapped | Promise<Unwrapped> {
    const kind = blob[0];
    if ((kind === STRING || kind === BINARY) && !this.#signer) {
      return { data: blob.subarray(1), isString: kind === STRING };
    }
    return this.#unwrapSigned(context, blob, what);
  }

  /** {@linkcode Envelope.#unwrap} for a signed envelope, or for a worker that requires one. */
  async #unwrapSigned(
    context: SigningContext,
    blob: Uint8Array,
    what: string,
  ): Promise<Unwrapped> {
    const kind = blob[0];
    const signed = kind === STRING - SIGNED || kind === BINARY - SIGNED;
    if (!signed && kind !== STRING && kind !== BINARY) {
      throw new StreaqError(
        `Cannot decode ${what}: unknown envelope (first byte ${kind ?? "missing"})`,
      );
    }
    let data = blob.subarray(1);
    if (signed) {
      const signature = data.subarray(0, SIGNATURE_LENGTH);
      data = data.subarray(SIGNATURE_LENGTH);
      if (this.#signer && !await this.#signer.verify(context, data, signature)) {
        throw new StreaqError(
          `Refusing to decode ${what}: its signature does not match (tampered, signed with another secret, or moved from another task)`,
        );
      }
    } else if (this.#signer) {
      throw new StreaqError(
        `Refusing to decode ${what}: it is not signed and this worker requires a 'signingSecret' signature`,
      );
    }
    return { data, isString: (kind | SIGNED) === STRING };
  }

  /**
   * Decodes data with the codec: at once when the deserializer answers at once (the built-in
   * one does), else a promise of it.
   */
  #decode(data: Uint8Array, isString: boolean, what: string): unknown {
    let value: unknown;
    try {
      value = this.#deserialize(isString ? decoder.decode(data) : data);
    } catch (error) {
      throw decodeError(what, error);
    }
    if (!isThenable(value)) return value;
    return Promise.resolve(value).catch((error) => {
      throw decodeError(what, error);
    });
  }
}

/** What an envelope holds: the codec's data, and whether the codec wrote text. */
interface Unwrapped {
  readonly data: Uint8Array;
  readonly isString: boolean;
}

/** The TypeError of arguments the codec refused, naming the task's function. */
function unserializableArgs(fnName: string, error: unknown): TypeError {
  return new TypeError(
    `Cannot enqueue task ${fnName} as its arguments cannot be serialized: ${
      (error as Error)?.message ?? String(error)
    }`,
    { cause: error },
  );
}

/** The decoded payload of a task, checked to be an argument list. */
function argumentList(taskId: string, fnName: string, args: unknown): unknown[] {
  if (!Array.isArray(args)) {
    throw new StreaqError(
      `Cannot run task ${fnName} (${taskId}): its payload decoded to ${typeof args}, not an argument list`,
    );
  }
  return args;
}

function decodeError(what: string, error: unknown): StreaqError {
  return new StreaqError(
    `Cannot decode ${what}: ${(error as Error)?.message ?? String(error)}`,
    { cause: error },
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
