/**
 * A worker's priorities declared `as const` type every option that names a priority, so that
 * an unknown one is a compile error, not only a run-time one. `deno check` verifies the
 * `@ts-expect-error` lines (one with no error under it fails the check); the tests run the same
 * calls, which the run-time checks still refuse. Nothing here sends a command to Redis: a task
 * that is built is sent by itself, so calls that would succeed are only compiled (`compiles`).
 */

import assert from "node:assert/strict";
import { Worker } from "../mod.ts";

/** Nothing listens here; the tests below never send a command, so nothing connects. */
const NOWHERE = "redis://127.0.0.1:9";

/** Type-checks `build` without running it: a task it built would be sent. */
function compiles(_build: () => unknown): void {}

Deno.test("priorities declared as const make an unknown priority a compile error", async () => {
  await using worker = new Worker({
    redisUrl: NOWHERE,
    handleSignals: false,
    priorities: ["low", "normal", "high"] as const,
  });
  const job = worker.task(async function job(): Promise<void> {});
  compiles(() => job.enqueue().start({ priority: "high" }));
  assert.throws(
    // @ts-expect-error: "urgent" is not one of the worker's priorities
    () => job.enqueue().start({ priority: "urgent" }),
    RangeError,
  );
  assert.throws(
    // @ts-expect-error: nor for a task enqueued by name
    () => worker.enqueueUnsafe("job").start({ priority: "urgent" }),
    RangeError,
  );
  assert.throws(
    // @ts-expect-error: nor for a cron job
    () => worker.cron("0 0 1 1 *", async function yearly() {}, { priority: "urgent" }),
    RangeError,
  );
  await assert.rejects(
    // @ts-expect-error: nor when listing tasks
    worker.getTasksByStatus("queued", { priority: "urgent" }),
    RangeError,
  );
  // Such a worker is still a Worker<unknown> where one is expected.
  const anyWorker: Worker<unknown> = worker;
  assert.equal(anyWorker.queueName, "default");
});

Deno.test("priorities from a string[] or an array literal, or none, accept any string at compile time", async () => {
  const names: string[] = ["low", "high"];
  const chosen: string = "high";
  await using fromArray = new Worker({
    redisUrl: NOWHERE,
    handleSignals: false,
    priorities: names,
  });
  await using fromLiteral = new Worker({
    redisUrl: NOWHERE,
    handleSignals: false,
    priorities: ["low", "high"],
  });
  await using withNone = new Worker({ redisUrl: NOWHERE, handleSignals: false });
  for (const worker of [fromArray, fromLiteral]) {
    const job = worker.task(async function job(): Promise<void> {});
    compiles(() => job.enqueue().start({ priority: chosen }));
  }
  const job = withNone.task(async function job(): Promise<void> {});
  compiles(() => job.enqueue().start({ priority: "normal" }));
  // Any string compiles; an unknown one is still refused when the task is built.
  assert.throws(() => job.enqueue().start({ priority: chosen }), RangeError);
});
