import assert from "node:assert/strict";
import {
  packedResultSize,
  packResult,
  packResultInto,
  unpackResult,
} from "../src/payload/result_record.ts";

const record = {
  success: true,
  fnName: "résumé",
  createdTime: 1_764_871_234_567,
  enqueueTime: 1_764_871_234_570,
  // Another machine's clock, behind: the start comes "before" the enqueue.
  startTime: 1_764_871_234_500,
  finishTime: 1_764_871_299_999,
  tries: 300,
  workerId: "host-a/1234",
};

Deno.test("a result record keeps every field, times that go backwards included", () => {
  const value = new TextEncoder().encode('{"answer":42}');
  const unpacked = unpackResult("t1", packResult({ ...record, value }));
  assert.deepEqual({ ...unpacked, value: undefined }, { ...record, value: undefined });
  assert.deepEqual(unpacked.value, value);
  assert.equal(unpackResult("t1", packResult({ ...record, success: false, value })).success, false);
});

Deno.test("a value given as text is laid out as its UTF-8 bytes, an empty text included, at any offset", () => {
  // A lone surrogate too, which a custom codec may produce: measured and written as U+FFFD.
  for (const text of ['{"city":"Zürich","n":"日本"}', "", "a\ud800b"]) {
    const bytes = new TextEncoder().encode(text);
    const packed = packResult({ ...record, value: text });
    assert.deepEqual(packed, packResult({ ...record, value: bytes }));
    assert.deepEqual(unpackResult("t1", packed).value, bytes, `value ${JSON.stringify(text)}`);
    // As an envelope lays it out: after its own head, in a buffer sized by packedResultSize.
    const out = new Uint8Array(3 + packedResultSize({ ...record, value: text }));
    packResultInto(out, 3, { ...record, value: text });
    assert.deepEqual(out.subarray(3), packed);
  }
});

Deno.test("a result without a value is stored without one, in a few dozen bytes", () => {
  const packed = packResult({ ...record, fnName: "noop", workerId: "a1b2c3d4", value: undefined });
  assert.equal(unpackResult("t1", packed).value, undefined);
  // Redis keeps a string of up to 44 bytes in one allocation with its object; a result adds two
  // envelope bytes to this.
  assert.ok(packed.length <= 32, `${packed.length} bytes`);
});

Deno.test("bytes that are not a result record are refused with an error naming the task", () => {
  const packed = packResult({ ...record, value: undefined });
  for (const bad of [new Uint8Array(0), packed.subarray(0, 5), Uint8Array.of(0x7b, 0x22)]) {
    assert.throws(
      () => unpackResult("t-bad", bad),
      /Cannot read the result of task t-bad: it is not a result record/,
    );
  }
});
