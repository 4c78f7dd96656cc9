import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DeliveryWriter } from "../src/run/complete.ts";
import { type Delivery, fetchDeliveries } from "../src/run/fetch.ts";
import { CONSUMER_GROUP } from "../src/redis/keys.ts";
import { testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";

/**
 * A prefetched task can run and end before the call writing its start is sent; the start and
 * the outcome then go in one completion call. These drive that call directly: a worker claims
 * one delivery without starting it, then hands in its start and its outcome in the same tick.
 */
async function startAndEndTogether(
  outcome: "final" | "retry",
): Promise<{ tries: string | null; exists: number; answer: string }> {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(): Promise<void> {});
  const { id } = await noop.enqueue();
  const client = queueContextOf(worker);
  await client.redis.xgroup("CREATE", client.keys.stream("normal"), CONSUMER_GROUP, "0");
  const { deliveries } = await fetchDeliveries(client, "w1", client.prioritiesHighFirst, 0, 1, 0);
  assert.equal(deliveries.length, 1);
  const d: Delivery = deliveries[0];
  assert.equal(d.started, false, "claimed ahead of a slot, not started");
  const completer = new DeliveryWriter(client, "w1");
  const started = completer.start(d);
  const completed = outcome === "final"
    ? completer.complete(d, { kind: "final", result: Buffer.from("1"), ttl: 60_000 })
    : completer.complete(d, { kind: "retry", due: { in: 60_000 }, reason: "r" });
  const [answer, done] = await Promise.all([started, completed]);
  assert.equal(done.applied, true);
  return {
    tries: await client.redis.hget(client.keys.task(id), "tries"),
    exists: await client.redis.exists(client.keys.task(id)),
    answer,
  };
}

Deno.test("a task that ends in the call that writes its start leaves no task hash behind", async () => {
  const { exists, answer } = await startAndEndTogether("final");
  assert.equal(exists, 0, "the start wrote into the hash its outcome deleted");
  assert.equal(answer, "started");
});

Deno.test("a try that ends in a retry in the call that writes its start still counts", async () => {
  const { tries, answer } = await startAndEndTogether("retry");
  assert.equal(tries, "1");
  assert.equal(answer, "started");
});

Deno.test("a fresh prefetched delivery started alone counts its try, is marked running, and hears a pending abort", async () => {
  await using worker = await testWorker();
  const noop = worker.task(async function noop(): Promise<void> {});
  const first = await noop.enqueue();
  const second = await noop.enqueue();
  const client = queueContextOf(worker);
  await client.redis.xgroup("CREATE", client.keys.stream("normal"), CONSUMER_GROUP, "0");
  const { deliveries } = await fetchDeliveries(client, "w1", client.prioritiesHighFirst, 0, 2, 0);
  assert.equal(deliveries.length, 2);
  assert.ok(deliveries.every((d) => !d.started), "claimed ahead of a slot, not started");
  await client.redis.sadd(client.keys.aborting, second.id);
  const completer = new DeliveryWriter(client, "w1");
  const answers = await Promise.all(deliveries.map((d) => completer.start(d)));
  assert.deepEqual(answers, ["started", "aborting"]);
  for (const { id } of [first, second]) {
    assert.deepEqual(await client.redis.hmget(client.keys.task(id), "tries", "run"), ["1", "w1"]);
  }
});
