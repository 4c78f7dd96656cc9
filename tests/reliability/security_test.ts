/**
 * Signing under attack. `tests/signing_test.ts` covers an unsigned payload, a tampered one, a
 * payload copied to another task id, and a result read with another secret; here forgeries of
 * every kind are fuzzed, with a codec that records every call, and moved between functions and
 * into pipeline inputs. The web UI's authentication and CSRF protection are tested in
 * `tests/ui_handler_test.ts`.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { runInBackground } from "../_helpers.ts";
import { waitForResults } from "./_audit.ts";
import { between, type Random, seeded } from "./_load.ts";
import { report } from "./_report.ts";
import { reliabilityQueue } from "./_setup.ts";
import { queueContextOf } from "../../src/worker.ts";

const SECRET = "the secret only the workers and trusted clients know";
const FORGERIES = 96;
const SIGNED_STRING = 0x53; // "S": a signed string envelope
const SIGNED_BINARY = 0x42; // "B"

/** Fields of a forged task hash, over the usual ones. */
type Fields = Record<string, Buffer | string>;

function bytes(random: Random, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

Deno.test("payloads forged without the signing secret are never handed to the deserializer, whatever their bytes", async () => {
  const random = seeded("forgery");
  await using q = await reliabilityQueue("forgery");
  const deserialized: string[] = [];
  const codec = { serializer: JSON.stringify, deserializer: JSON.parse };
  const worker = q.worker({
    signingSecret: SECRET,
    serializer: JSON.stringify,
    deserializer: (data) => {
      const text = typeof data === "string" ? data : new TextDecoder().decode(data);
      deserialized.push(text);
      return JSON.parse(text);
    },
  });
  worker.task(async function echo(...args: unknown[]) {
    return await Promise.resolve(args);
  });
  const trusted = q.worker({ signingSecret: SECRET, ...codec });
  const intruder = q.worker({ signingSecret: "a guess", ...codec });
  const prefix = `streaq:{${q.client.queueName}}:`;
  const genuine = (id: string, fn = "job") =>
    queueContextOf(trusted).envelope.sealArgs(id, fn, [{ n: 1, pad: "forged" }]);
  const plain = (n: number) => Buffer.from(JSON.stringify([{ n, pad: "forged" }]));
  const randomId = () => bytes(random, 16).toString("hex");

  /** Each way of forging a task: what to store in its hash. */
  const forgeries: [string, (id: string, n: number) => Fields | Promise<Fields>][] = [
    ["unsigned", (_id, n) => ({ data: Buffer.concat([Buffer.from("s"), plain(n)]) })],
    ["made-up signature", (_id, n) => ({
      data: Buffer.concat([Buffer.from([SIGNED_STRING]), bytes(random, 32), plain(n)]),
    })],
    ["made-up binary", () => ({
      data: Buffer.concat([Buffer.from([SIGNED_BINARY]), bytes(random, between(random, 0, 99))]),
    })],
    ["signed with a guessed secret", async (id) => ({
      data: await queueContextOf(intruder).envelope.sealArgs(id, "job", [{ n: 1, pad: "forged" }]),
    })],
    ["a flipped bit", async (id) => {
      const data = Buffer.from(await genuine(id));
      data[between(random, 1, data.length - 1)] ^= 1 << between(random, 0, 7);
      return { data };
    }],
    ["copied from another task", async () => ({ data: await genuine(randomId()) })],
    ["moved to another function", async (id) => ({ fn: "echo", data: await genuine(id) })],
    ["a forged pipeline input", async (id) => ({
      // Genuine arguments (they are read), with a forged result of a previous stage.
      data: await queueContextOf(trusted).envelope.sealArgs(id, "job", [{ n: 1 }]),
      src: randomId(),
      input: Buffer.concat([Buffer.from("1S"), bytes(random, 32), plain(2)]),
    })],
  ];

  const running = runInBackground(worker);
  try {
    const forged: { id: string; kind: string }[] = [];
    const good: string[] = [];
    for (let n = 0; n < FORGERIES; n++) {
      const [kind, forge] = forgeries[n % forgeries.length];
      const id = randomId();
      const now = String(Date.now());
      await q.redis.hset(`${prefix}task:${id}`, {
        fn: "job",
        pri: "normal",
        ct: now,
        et: now,
        tries: "0",
        ...await forge(id, n),
      });
      await q.redis.xadd(`${prefix}stream:normal`, "*", "id", id);
      forged.push({ id, kind });
      const handle = await worker.registry.get("job")!.enqueue({ n }).start({ priority: "high" });
      good.push(handle.id);
    }
    await waitForResults(q.redis, q.client.queueName, [...good, ...forged.map((f) => f.id)]);
    for (const { id, kind } of forged) {
      const result = await trusted.resultById(id);
      assert.equal(result.success, false, `${kind} ran`);
      assert.match(
        result.exception.message,
        /not signed|signature does not match|unknown envelope/,
        kind,
      );
    }
    for (const id of good) assert.equal((await trusted.resultById(id)).success, true);
    // The deserializer saw nothing forged: only the good payloads, and the genuine arguments
    // that came with a forged pipeline input (rejected before the function ran).
    assert.deepEqual(deserialized.filter((text) => text.includes("forged")), []);
    const withInput = forged.filter((f) => f.kind === "a forged pipeline input").length;
    assert.equal(deserialized.length, good.length + withInput);
    await report([{
      fault: `forged signed payloads (${forgeries.length} kinds)`,
      sent: good.length,
      results: good.length,
      lost: 0,
      duplicated: 0,
      recoverMs: null,
      notes: `${forged.length} forgeries all failed unread (${
        forgeries.map(([kind]) => kind).join(", ")
      }); the deserializer was called for genuine payloads only`,
    }]);
  } finally {
    await running.stop();
  }
});
