import assert from "node:assert/strict";
import {
  deserialize,
  errorToPlain,
  type PlainError,
  plainToError,
  serialize,
} from "../src/payload/codec.ts";
import { KNOWN_ERRORS, StreaqCancelled, StreaqError, StreaqRetry } from "../src/errors.ts";

function roundTrip<T>(value: T): T {
  return deserialize(serialize(value)) as T;
}

Deno.test("serialize() writes plain JSON data as plain JSON", () => {
  const value = { a: 1, b: [true, null, "x"], c: { d: 2.5 } };
  assert.equal(serialize(value), JSON.stringify(value));
  assert.deepStrictEqual(roundTrip(value), value);
});

Deno.test("serialize() round-trips null, booleans, strings and ordinary numbers", () => {
  for (const value of [null, true, false, "", "hello", "ünïcødé 🎉", 0, 1, -1.5, 1e300]) {
    assert.deepStrictEqual(roundTrip(value), value);
  }
});

Deno.test("serialize() round-trips NaN, Infinity, -Infinity and -0", () => {
  const decoded = roundTrip([NaN, Infinity, -Infinity, -0, 0]);
  assert.ok(Number.isNaN(decoded[0]));
  assert.equal(decoded[1], Infinity);
  assert.equal(decoded[2], -Infinity);
  assert.ok(Object.is(decoded[3], -0));
  assert.ok(Object.is(decoded[4], 0));
  assert.ok(Object.is(roundTrip(-0), -0));
  assert.ok(Number.isNaN(roundTrip(NaN)));
});

Deno.test("serialize() round-trips undefined at the top level, in arrays and in objects", () => {
  assert.equal(roundTrip(undefined), undefined);
  assert.deepStrictEqual(roundTrip([1, undefined, 3]), [1, undefined, 3]);
  const decoded = roundTrip({ a: undefined, b: 1 });
  assert.deepStrictEqual(decoded, { a: undefined, b: 1 });
  assert.ok(Object.hasOwn(decoded, "a"));
});

Deno.test("serialize() turns holes of sparse arrays into undefined", () => {
  // deno-lint-ignore no-sparse-arrays
  assert.deepStrictEqual(roundTrip([1, , 3]), [1, undefined, 3]);
});

Deno.test("serialize() round-trips strings and objects that look like tags", () => {
  const strings = ["$t", '{"$t":"undefined"}', "undefined", "NaN"];
  assert.deepStrictEqual(roundTrip(strings), strings);
  const objects = [
    { $t: "undefined" },
    { $t: "bigint", v: "12" },
    { $t: "object", v: { $t: "Date", v: null } },
    { $t: 42, nested: { $t: "Map", v: [] } },
  ];
  assert.deepStrictEqual(roundTrip(objects), objects);
});

Deno.test("serialize() round-trips bigint values", () => {
  const values = [0n, 12345678901234567890123n, -42n];
  assert.deepStrictEqual(roundTrip(values), values);
});

Deno.test("serialize() round-trips valid and invalid Dates", () => {
  const date = new Date("2024-02-29T12:34:56.789Z");
  assert.deepStrictEqual(roundTrip(date), date);
  assert.equal(roundTrip(date).getTime(), date.getTime());
  const invalid = roundTrip(new Date(NaN));
  assert.ok(invalid instanceof Date);
  assert.ok(Number.isNaN(invalid.getTime()));
  const far = new Date(8.64e15);
  assert.equal(roundTrip(far).getTime(), far.getTime());
});

Deno.test("serialize() round-trips Map, Set and BigInt nested in objects", () => {
  const value = {
    map: new Map<unknown, unknown>([
      ["a", 1],
      [2, new Set([1n, "x"])],
      [{ k: 1 }, [undefined]],
      [null, new Map([[new Date(0), -0]])],
    ]),
    set: new Set([1, "1", undefined, { deep: [2n] }]),
  };
  const decoded = roundTrip(value);
  assert.deepStrictEqual(decoded, value);
  assert.ok(decoded.map instanceof Map);
  assert.ok(decoded.set instanceof Set);
  assert.deepStrictEqual([...decoded.map.keys()], ["a", 2, { k: 1 }, null]);
});

Deno.test("serialize() round-trips Uint8Array as base64", () => {
  const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
  const text = serialize(bytes);
  assert.match(text, /AAEC\/f7\//);
  assert.deepStrictEqual(roundTrip(bytes), bytes);
  const view = new Uint8Array(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2);
  assert.deepStrictEqual(roundTrip(view), new Uint8Array([8, 7]));
  assert.deepStrictEqual(roundTrip(new Uint8Array()), new Uint8Array());
});

Deno.test("serialize() round-trips ArrayBuffer and RegExp", () => {
  const buffer = new Uint8Array([1, 2, 3]).buffer;
  const decoded = roundTrip(buffer);
  assert.ok(decoded instanceof ArrayBuffer);
  assert.deepStrictEqual([...new Uint8Array(decoded)], [1, 2, 3]);
  const regexp = roundTrip(/a+b?\//giu);
  assert.ok(regexp instanceof RegExp);
  assert.equal(regexp.source, "a+b?\\/");
  assert.equal(regexp.flags, "giu");
});

Deno.test("serialize() round-trips objects with a null prototype and a __proto__ key", () => {
  const bare = Object.assign(Object.create(null), { a: 1, b: undefined });
  const decoded = roundTrip(bare);
  assert.equal(Object.getPrototypeOf(decoded), null);
  assert.deepStrictEqual(decoded, bare);
  const tricky = JSON.parse('{"__proto__": {"x": 1}, "y": 2}');
  tricky.__proto__ = { x: 1n }; // an own property since JSON.parse, so this does not set the prototype
  const back = roundTrip(tricky);
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.ok(Object.hasOwn(back, "__proto__"));
  assert.deepStrictEqual(back.__proto__, { x: 1n });
  assert.deepStrictEqual(back, tricky);
});

Deno.test("serialize() round-trips built-in errors with name, message, stack and cause", () => {
  const error = new TypeError("bad input", { cause: new RangeError("too big") });
  const decoded = roundTrip(error);
  assert.ok(decoded instanceof TypeError);
  assert.equal(decoded.message, "bad input");
  assert.equal(decoded.stack, error.stack);
  assert.ok(decoded.cause instanceof RangeError);
  assert.equal((decoded.cause as Error).message, "too big");
  assert.equal((decoded.cause as Error).stack, (error.cause as Error).stack);
  assert.deepStrictEqual(decoded, error);
});

Deno.test("serialize() restores streaq's error classes", () => {
  const retry = roundTrip(new StreaqRetry("later", { delay: 500 }));
  assert.ok(retry instanceof StreaqRetry);
  assert.equal(retry.name, "StreaqRetry");
  assert.equal(retry.message, "later");
  assert.equal(retry.delay, 500);
  const cancelled = roundTrip(new StreaqCancelled("stop", { cause: "user" }));
  assert.ok(cancelled instanceof StreaqCancelled);
  assert.equal(cancelled.cause, "user");
  const base = roundTrip(new StreaqError("oops"));
  assert.ok(base instanceof StreaqError);
  assert.deepStrictEqual(base, new StreaqError("oops"));
});

Deno.test("serialize() keeps the name of unknown error classes and their own properties", () => {
  class QuotaError extends Error {
    code = "E_QUOTA";
    override name = "QuotaError";
  }
  const decoded = roundTrip({ failure: new QuotaError("over quota") }).failure;
  assert.equal(Object.getPrototypeOf(decoded), Error.prototype);
  assert.equal(decoded.name, "QuotaError");
  assert.equal(decoded.message, "over quota");
  assert.equal(decoded.code, "E_QUOTA");
  const timeout = roundTrip(new DOMException("too slow", "TimeoutError"));
  assert.equal(timeout.name, "TimeoutError");
  assert.equal(timeout.message, "too slow");
});

Deno.test("serialize() round-trips deep nesting of every supported type", () => {
  const value = [{
    when: new Date(1_700_000_000_000),
    tags: new Set(["a", "b"]),
    index: new Map([["k", { bytes: new Uint8Array([1]), n: 10n, missing: undefined }]]),
    list: [[[NaN, -0, Infinity]], { $t: "escaped" }],
    error: new Error("inner"),
  }];
  assert.deepStrictEqual(roundTrip(value), value);
});

Deno.test("serialize() rejects functions and names the path", () => {
  function onDone() {}
  assert.throws(
    () => serialize([1, { user: { callback: onDone } }]),
    {
      name: "TypeError",
      message:
        "Cannot serialize value at [1].user.callback: functions are not supported (received function onDone)",
    },
  );
  assert.throws(
    () => serialize(() => {}),
    /^TypeError: Cannot serialize value: functions are not supported \(received (an anonymous function|function )/,
  );
  assert.throws(
    () => serialize({ "a b": { ok: [0, Math.max] } }),
    /^TypeError: Cannot serialize value at \["a b"\]\.ok\[1\]: functions are not supported \(received function max\)$/,
  );
});

Deno.test("serialize() rejects symbols", () => {
  assert.throws(
    () => serialize({ kind: Symbol("secret") }),
    /^TypeError: Cannot serialize value at kind: symbols are not supported \(received Symbol\(secret\)\)$/,
  );
});

Deno.test("serialize() rejects class instances and names the class", () => {
  class Foo {}
  assert.throws(
    () => serialize({ items: [new Foo()] }),
    /^TypeError: Cannot serialize value at items\[0\]: class instances are not supported \(received an instance of class Foo\)$/,
  );
  for (
    const [value, name] of [[new WeakMap(), "WeakMap"], [new WeakSet(), "WeakSet"], [
      Promise.resolve(1),
      "Promise",
    ], [new Int32Array(1), "Int32Array"]] as const
  ) {
    assert.throws(() => serialize(value), new RegExp(`received an instance of class ${name}\\)$`));
  }
});

Deno.test("serialize() rejects circular references", () => {
  const node: Record<string, unknown> = { name: "root" };
  node.self = node;
  assert.throws(
    () => serialize({ tree: node }),
    /^TypeError: Cannot serialize value at tree\.self: circular reference/,
  );
  const list: unknown[] = [];
  list.push([list]);
  assert.throws(() => serialize(list), /at \[0\]\[0\]: circular reference/);
  const error = new Error("loop");
  error.cause = error;
  assert.throws(() => serialize(error), /at cause: circular reference/);
});

Deno.test("serialize() accepts the same object twice when it is not a cycle", () => {
  const shared = { n: 1n };
  assert.deepStrictEqual(roundTrip([shared, shared]), [{ n: 1n }, { n: 1n }]);
});

Deno.test("serialize() names map and set positions in the path", () => {
  assert.throws(
    () => serialize({ m: new Map([["x", { f: Symbol.iterator }]]) }),
    /at m\.get\("x"\)\.f: symbols are not supported/,
  );
  assert.throws(
    () => serialize(new Map([[() => {}, 1]])),
    /at <map key #0>: functions are not supported/,
  );
  assert.throws(
    () => serialize(new Set([1, new Set([2, Symbol()])])),
    /at <set item #1><set item #1>: symbols are not supported/,
  );
});

Deno.test("deserialize() accepts UTF-8 bytes", () => {
  const text = serialize({ word: "héllo", n: 5n });
  assert.deepStrictEqual(deserialize(new TextEncoder().encode(text)), { word: "héllo", n: 5n });
});

Deno.test("deserialize() rejects garbage with a TypeError saying what is wrong, which its caller prefixes with what it decoded", () => {
  const cases: [string, RegExp][] = [
    ["not json at all", /^not valid JSON: received "not json at all"$/],
    ['{"$t":"nope"}', /^unknown tag "nope"$/],
    ['{"$t":"bigint","v":"12x"}', /^tag "bigint" expects .*"12x"$/],
    ['{"$t":"number","v":"5"}', /^tag "number" expects/],
    ['{"$t":"Date","v":"yesterday"}', /^tag "Date" expects/],
    ['{"$t":"Map","v":[[1]]}', /^tag "Map" expects/],
    ['{"$t":"Set","v":{}}', /^tag "Set" expects an array/],
    ['{"$t":"Uint8Array","v":"***"}', /^tag "Uint8Array" expects/],
    ['{"$t":"RegExp","v":["(", ""]}', /^tag "RegExp" expects/],
    ['{"$t":"Error","v":{"name":1}}', /^tag "Error" expects/],
    ['{"$t":"object","v":[1]}', /^tag "object" expects an object/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => deserialize(text), (error: unknown) => {
      assert.ok(error instanceof TypeError, text);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => deserialize(new Uint8Array([0xff, 0xfe])), /not valid UTF-8/);
});

Deno.test("deserialize() truncates long garbage in its message", () => {
  const garbage = "x".repeat(500);
  assert.throws(() => deserialize(garbage), (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.ok(error.message.length < 120, error.message);
    assert.match(error.message, /"x{59}…$/);
    return true;
  });
});

Deno.test("errorToPlain() keeps name, message, stack and the cause chain", () => {
  const root = new RangeError("root");
  const error = new StreaqError("outer", { cause: new Error("middle", { cause: root }) });
  const plain = errorToPlain(error);
  assert.equal(plain.name, "StreaqError");
  assert.equal(plain.message, "outer");
  assert.equal(plain.stack, error.stack);
  const middle = plain.cause as PlainError;
  assert.equal(middle.name, "Error");
  assert.equal(middle.message, "middle");
  assert.deepStrictEqual(middle.cause, { name: "RangeError", message: "root", stack: root.stack });
  assert.ok(!(middle instanceof Error));
  assert.deepStrictEqual(deserialize(serialize(plain)), plain);
});

Deno.test("errorToPlain() turns non-Error throwables into plain errors", () => {
  assert.deepStrictEqual(errorToPlain("boom"), { name: "Error", message: "boom", cause: "boom" });
  assert.deepStrictEqual(errorToPlain({ code: 7 }), {
    name: "Error",
    message: "[object Object]",
    cause: { code: 7 },
  });
  assert.deepStrictEqual(errorToPlain(undefined), {
    name: "Error",
    message: "undefined",
    cause: undefined,
  });
  const unserializable = { run() {} };
  assert.deepStrictEqual(errorToPlain(unserializable), {
    name: "Error",
    message: "[object Object]",
  });
  assert.deepStrictEqual(errorToPlain(Object.create(null)), {
    name: "Error",
    message: "[object Object]",
    cause: Object.create(null),
  });
});

Deno.test("errorToPlain() stops at cycles and at a depth of eight causes", () => {
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  a.cause = b;
  const plain = errorToPlain(a);
  assert.equal((plain.cause as PlainError).message, "b");
  assert.ok(!("cause" in (plain.cause as PlainError)));

  let deep = new Error("0");
  for (let i = 1; i <= 20; i++) deep = new Error(String(i), { cause: deep });
  let level: PlainError | undefined = errorToPlain(deep);
  let count = 0;
  while (level) {
    count++;
    level = level.cause as PlainError | undefined;
  }
  assert.equal(count, 9);
});

Deno.test("errorToPlain() drops a cause the codec cannot represent", () => {
  const plain = errorToPlain(new Error("x", { cause: Symbol("nope") }));
  assert.ok(!("cause" in plain));
  assert.doesNotThrow(() => serialize(plain));
});

Deno.test("plainToError() rebuilds known classes, cause chains and stacks", () => {
  const original = new StreaqRetry("again", { cause: new TypeError("net down") });
  const rebuilt = plainToError(errorToPlain(original), KNOWN_ERRORS);
  assert.ok(rebuilt instanceof StreaqRetry);
  assert.equal(rebuilt.message, "again");
  assert.equal(rebuilt.stack, original.stack);
  assert.ok(rebuilt.cause instanceof TypeError);
  assert.equal((rebuilt.cause as Error).message, "net down");
  assert.equal((rebuilt.cause as Error).stack, (original.cause as Error).stack);
});

Deno.test("plainToError() makes a plain Error carrying the name of an unknown class", () => {
  const rebuilt = plainToError(
    { name: "HttpError", message: "404", cause: { status: 404 } },
    KNOWN_ERRORS,
  );
  assert.equal(Object.getPrototypeOf(rebuilt), Error.prototype);
  assert.equal(rebuilt.name, "HttpError");
  assert.equal(rebuilt.message, "404");
  assert.deepStrictEqual(rebuilt.cause, { status: 404 });
  const withCode = plainToError({ name: "Error", message: "x", code: "E1" } as PlainError, {});
  assert.equal((withCode as Error & { code: string }).code, "E1");
});

Deno.test("plainToError() falls back to Error when a class rejects the message alone", () => {
  class Picky extends Error {
    constructor(message: string) {
      if (message !== "exact") throw new Error("no");
      super(message);
    }
  }
  const rebuilt = plainToError({ name: "Picky", message: "other" }, { Picky });
  assert.equal(Object.getPrototypeOf(rebuilt), Error.prototype);
  assert.equal(rebuilt.name, "Picky");
  assert.equal(rebuilt.message, "other");
});

Deno.test("serialize() round-trips a large plain payload of 10,000 objects", () => {
  const payload = Array.from({ length: 10_000 }, (_, i) => ({
    id: i,
    name: `item ${i}`,
    tags: ["a", "b"],
    price: i / 7,
    active: i % 2 === 0,
    nested: { depth: 1, list: [i, i + 1] },
  }));
  const text = serialize(payload);
  assert.equal(text, JSON.stringify(payload));
  assert.deepStrictEqual(deserialize(text), payload);
});
