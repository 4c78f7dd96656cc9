import assert from "node:assert/strict";
import type { Completed, Completion } from "../src/run/complete.ts";
import { type Delivery, deliveryKey } from "../src/run/fetch.ts";
import { WorkerLogger } from "../src/logger.ts";
import { type OutcomeWriter, Slots } from "../src/run/slots.ts";
import { StreaqCancelled } from "../src/errors.ts";
import { HandBack } from "../src/run/execute.ts";

// The slots on their own, with the run around them faked: what runs, what waits, what goes
// back. The same behaviour on real Redis is covered by the execution, shutdown and abort tests.

function delivery(id: string, options: { started?: boolean; priority?: string } = {}): Delivery {
  const priority = options.priority ?? "normal";
  const stream = `s:${priority}`;
  return {
    stream,
    priority,
    messageId: id,
    key: deliveryKey(stream, id),
    taskId: `task-${id}`,
    fnName: "work",
    started: options.started ?? true,
  } as Delivery;
}

/** A run of fakes around a `Slots`: tasks run until the test finishes them. */
function harness(options: { concurrency?: number; prefetch?: number } = {}) {
  const running = new Map<string, { controller: AbortController; finish: () => void }>();
  const written: { d: Delivery; completion: Completion; refill: boolean }[] = [];
  const starts: string[] = [];
  const earlyAborts = new Set<string>();
  const stop = { stopping: false };
  let outcomes = 0;
  let wakes = 0;
  const completer: OutcomeWriter = {
    complete(d, completion, _lock, refill = false): Promise<Completed> {
      written.push({ d, completion, refill });
      return Promise.resolve({ applied: true });
    },
    start(d) {
      starts.push(d.messageId);
      return Promise.resolve("started");
    },
  };
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const slots: Slots = new Slots({
    concurrency: options.concurrency ?? 2,
    prefetch: options.prefetch ?? 2,
    priorities: ["high", "normal"],
    completer,
    execute(d, controller) {
      const { promise, resolve } = Promise.withResolvers<{ settled: Promise<unknown> }>();
      running.set(d.messageId, {
        controller,
        // The task's function settles: its slot frees, then its outcome is written.
        finish: () => {
          slots.freeSlotAndYield(d);
          resolve({ settled: Promise.resolve() });
        },
      });
      return promise;
    },
    stop,
    logger: new WorkerLogger(silent, "error", "UTC", { queue: "q", workerId: "w" }),
    onRedisError: (what, error) => Promise.reject(new Error(`${what}: ${error}`)),
    takeEarlyAbort: (taskId) => earlyAborts.delete(taskId),
    onOutcomeWritten: () => void outcomes++,
    onSlotsChanged: () => void wakes++,
  });
  return {
    slots,
    running,
    written,
    starts,
    earlyAborts,
    stop,
    outcomes: () => outcomes,
    wakes: () => wakes,
  };
}

/** Lets the promise callbacks of finished tasks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("the slots run at most `concurrency` tasks and buffer the rest", () => {
  const h = harness({ concurrency: 2 });
  h.slots.admitFetched([delivery("1"), delivery("2"), delivery("3")]);
  assert.deepEqual([...h.running.keys()], ["1", "2"]);
  assert.equal(h.slots.runningCount, 2);
  assert.equal(h.slots.freeToStart, 0);
  assert.equal(h.slots.freeToPrefetch, 1, "one of two buffer places is taken");
  assert.equal(h.slots.unpromised, -1, "one more buffered than slots are free");
  assert.ok(h.wakes() > 0, "the fetch loop is told after slots were filled");
});

Deno.test("a freed slot runs the next buffered delivery at once, highest priority first", async () => {
  const h = harness({ concurrency: 1 });
  h.slots.admitFetched([delivery("1")]);
  h.slots.admitPrefetched([
    delivery("2", { started: false }),
    delivery("3", { started: false, priority: "high" }),
  ]);
  assert.deepEqual([...h.running.keys()], ["1"]);
  h.running.get("1")!.finish();
  assert.deepEqual([...h.running.keys()], ["1", "3"], "it runs before 1's outcome is written");
  assert.deepEqual(h.starts, ["3"], "the start of a prefetched delivery is written");
  await settle();
  assert.equal(h.outcomes(), 1);
  assert.equal(h.slots.runningCount, 1);
  h.running.get("3")!.finish();
  await settle();
  assert.deepEqual(h.starts, ["3", "2"]);
  assert.ok(h.slots.idle === false && h.slots.runningCount === 1);
});

Deno.test("an outcome written through the slots refills the prefetch buffer in the same call", () => {
  const h = harness({ concurrency: 1, prefetch: 3 });
  h.slots.admitPrefetched([delivery("1", { started: false }), delivery("2", { started: false })]);
  h.slots.writeOutcome(delivery("9"), { kind: "drop" });
  assert.equal(h.written.at(-1)!.refill, true);
  // What the call claims is counted when it is sent: 3 places, 1 taken by the one buffered.
  assert.deepEqual(h.slots.reserveClaims(), { start: 0, prefetch: 2 });
});

Deno.test("deliveries asked for by calls in flight count as held: calls sent together never claim the same room", () => {
  const h = harness({ concurrency: 2, prefetch: 2 });
  assert.deepEqual(h.slots.reserveClaims(), { start: 2, prefetch: 2 });
  assert.deepEqual(h.slots.reserveClaims(), { start: 0, prefetch: 0 }, "all of it is asked for");
  assert.equal(h.slots.freeToStart, 0);
  h.slots.noteClaimed(4, 1, 1);
  h.slots.admitFetched([delivery("1")]);
  assert.deepEqual(
    h.slots.reserveClaims(true),
    { start: 1, prefetch: 0 },
    "one slot is free again; a fetch asks for the free slots first",
  );
});

Deno.test("a delivery already running or buffered here is not taken twice", () => {
  const h = harness({ concurrency: 1 });
  h.slots.admitFetched([delivery("1"), delivery("2", { started: false })]);
  h.slots.admitFetched([delivery("1"), delivery("2", { started: false })]);
  assert.deepEqual([...h.running.keys()], ["1"]);
  assert.deepEqual(h.slots.held(), new Map([["s:normal", ["1", "2"]]]));
});

Deno.test("an abort cancels the running tries of its task, and one that came early cancels at start", () => {
  const h = harness();
  h.slots.admitFetched([delivery("1")]);
  assert.equal(h.slots.cancel("task-1"), true);
  assert.ok(h.running.get("1")!.controller.signal.reason instanceof StreaqCancelled);
  assert.equal(h.slots.cancel("task-7"), false, "not running here");
  h.earlyAborts.add("task-2");
  h.slots.admitFetched([delivery("2")]);
  assert.ok(h.running.get("2")!.controller.signal.reason instanceof StreaqCancelled);
});

Deno.test("deliveries another worker took over are handed back when running, forgotten when buffered", () => {
  const h = harness({ concurrency: 1 });
  h.slots.admitFetched([delivery("1"), delivery("2", { started: false })]);
  h.slots.dropLost(new Set([delivery("1").key, delivery("2").key]));
  assert.ok(h.running.get("1")!.controller.signal.reason instanceof HandBack);
  assert.deepEqual(h.slots.takeBuffered(), []);
});

Deno.test("stopping slots start nothing new and hand back what arrives", async () => {
  const h = harness({ concurrency: 1 });
  h.slots.admitFetched([delivery("1"), delivery("2", { started: false })]);
  h.stop.stopping = true;
  h.slots.admitFetched([delivery("3")]);
  h.slots.admitPrefetched([delivery("4", { started: false })]);
  assert.deepEqual(
    h.written.map(({ d, completion, refill }) => [d.messageId, completion.kind, refill]),
    [["3", "back", false], ["4", "back", false]],
  );
  h.running.get("1")!.finish();
  await settle();
  assert.deepEqual([...h.running.keys()], ["1"], "the buffered delivery does not start");
  assert.deepEqual(h.slots.takeBuffered().map((d) => d.messageId), ["2"]);
  assert.deepEqual(h.slots.unwritten(), []);
});
