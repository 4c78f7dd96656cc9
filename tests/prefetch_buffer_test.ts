import assert from "node:assert/strict";
import { type Delivery, deliveryKey } from "../src/run/fetch.ts";
import { PrefetchBuffer } from "../src/run/prefetch_buffer.ts";

function delivery(priority: string, messageId: string): Delivery {
  const stream = `s:${priority}`;
  const key = deliveryKey(stream, messageId);
  return { stream, priority, messageId, key, taskId: messageId } as Delivery;
}

Deno.test("the prefetch buffer gives the highest priority first, oldest first within one", () => {
  const buffer = new PrefetchBuffer(["high", "normal", "low"]);
  for (const [p, id] of [["low", "1"], ["normal", "2"], ["high", "3"], ["normal", "4"]]) {
    buffer.push(delivery(p, id));
  }
  assert.equal(buffer.length, 4);
  assert.ok(buffer.has(delivery("normal", "4")));
  assert.ok(!buffer.has(delivery("low", "4")), "the same entry id in another stream is another");
  assert.deepEqual([...buffer].map((d) => d.messageId), ["3", "2", "4", "1"]);
  buffer.remove((d) => d.messageId === "2");
  const taken = [];
  for (let d = buffer.take(); d; d = buffer.take()) taken.push(d.messageId);
  assert.deepEqual(taken, ["3", "4", "1"]);
  assert.equal(buffer.length, 0);
});

Deno.test("the prefetch buffer keeps its order over many takes and pushes", () => {
  const buffer = new PrefetchBuffer(["normal"]);
  let next = 0;
  const taken: number[] = [];
  for (let round = 0; round < 3_000; round++) {
    buffer.push(delivery("normal", String(next++)));
    buffer.push(delivery("normal", String(next++)));
    taken.push(Number(buffer.take()!.messageId));
  }
  taken.push(...buffer.clear().map((d) => Number(d.messageId)));
  assert.deepEqual(taken, Array.from({ length: next }, (_, i) => i));
});

Deno.test("the prefetch buffer gives back its newest unstarted deliveries, the last it would run", () => {
  const buffer = new PrefetchBuffer(["high", "normal"]);
  for (const [p, id] of [["normal", "1"], ["high", "2"], ["normal", "3"], ["normal", "4"]]) {
    buffer.push({ ...delivery(p, id), started: id === "4" });
  }
  const back = buffer.takeNewestUnstarted(2);
  assert.deepEqual(back.map((d) => d.messageId), ["3", "1"], "4 started: it stays");
  assert.deepEqual([...buffer].map((d) => d.messageId), ["2", "4"]);
});
