/**
 * HMAC-SHA256 signatures of payloads and results (Web Crypto). The signed text binds the kind
 * of data (payload or result), the task id and, for a payload, the function name to the data,
 * so a signed payload copied to another task id or relabelled as another function, or a
 * signed result copied in as a payload (of a task named `result`, say), no longer verifies.
 *
 * @module
 */

/** Length in bytes of an HMAC-SHA256 signature. */
export const SIGNATURE_LENGTH = 32;

const encoder = new TextEncoder();

/** What a signature is for: the kind of data and the task it belongs to. */
export type SigningContext =
  | { readonly kind: "payload"; readonly taskId: string; readonly fnName: string }
  | { readonly kind: "result"; readonly taskId: string }
  | { readonly kind: "progress"; readonly taskId: string };

/** Signs and verifies with one secret; the key is imported once, on first use. */
export class Signer {
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string | Uint8Array) {
    const raw = typeof secret === "string" ? encoder.encode(secret) : secret;
    if (raw.byteLength === 0) {
      throw new RangeError(
        "Cannot create worker as 'signingSecret' must not be empty: received an empty secret",
      );
    }
    this.#key = crypto.subtle.importKey(
      "raw",
      new Uint8Array(raw),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }

  /** The signature of `data` bound to `context`. */
  async sign(context: SigningContext, data: Uint8Array): Promise<Uint8Array> {
    const signature = await crypto.subtle.sign("HMAC", await this.#key, bind(context, data));
    return new Uint8Array(signature);
  }

  /** True if `signature` was made with this secret for `context` and `data` (constant time). */
  async verify(
    context: SigningContext,
    data: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean> {
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      new Uint8Array(signature),
      bind(context, data),
    );
  }
}

/**
 * The signed text: each field of the context as its UTF-8 length, a colon and itself, then the
 * data. The kind comes first, and the length prefixes keep any id or name (one holding a
 * newline or a digit, say) from reading as another split of the fields: no two contexts give
 * the same text.
 */
function bind(context: SigningContext, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const fields = context.kind === "payload"
    ? [context.kind, context.taskId, context.fnName]
    : [context.kind, context.taskId];
  const head = encoder.encode(
    fields.map((field) => `${encoder.encode(field).byteLength}:${field}`).join(""),
  );
  const out = new Uint8Array(head.byteLength + data.byteLength);
  out.set(head, 0);
  out.set(data, head.byteLength);
  return out;
}
