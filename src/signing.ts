/**
 * HMAC-SHA256 signatures of payloads and results (Web Crypto). The signed text binds the
 * task id and function name to the payload, so a signed payload copied to another task id, or
 * relabelled as another function, no longer verifies.
 *
 * @module
 */

/** Length in bytes of an HMAC-SHA256 signature. */
export const SIGNATURE_LENGTH = 32;

/** Signs and verifies with one secret; the key is imported once, on first use. */
export class Signer {
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string | Uint8Array) {
    const raw = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
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

  /** The signature of `data` bound to `context` (task id and function name). */
  async sign(context: string, data: Uint8Array): Promise<Uint8Array> {
    const signature = await crypto.subtle.sign("HMAC", await this.#key, bind(context, data));
    return new Uint8Array(signature);
  }

  /** True if `signature` was made with this secret for `context` and `data` (constant time). */
  async verify(context: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      new Uint8Array(signature),
      bind(context, data),
    );
  }
}

function bind(context: string, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(context + "\n");
  const out = new Uint8Array(head.byteLength + data.byteLength);
  out.set(head, 0);
  out.set(data, head.byteLength);
  return out;
}
