import assert from "node:assert/strict";
import {
  type RetryPolicy,
  StreaqCancelled,
  StreaqError,
  StreaqRetry,
  taskContext,
  type TaskOptions,
  Worker,
  type WorkerOptions,
} from "../mod.ts";
import { backoffDelay, decideRetry, type RetryInput } from "../src/run/retry_policy.ts";
import { eventually, runInBackground, sleepUnlessAborted, testWorker } from "./_helpers.ts";
import { quotaOnce, retrying } from "./fixtures/retry_thread_task.ts";

/** An error of the application's own, like one a task throws on an HTTP 503. */
class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = "HttpError";
  }
}

/**
 * A local HTTP server that fails the first request with a network error (it closes the
 * connection without answering), answers the second with a 503, and the rest with 200 "ok".
 */
function flakyServer(): { url: string; requests: () => number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let requests = 0;
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    requests++;
    if (requests > 1) {
      const status = requests === 2 ? "503 Service Unavailable" : "200 OK";
      const body = requests === 2 ? "" : "ok";
      await conn.write(new TextEncoder().encode(
        `HTTP/1.1 ${status}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      ));
    }
    conn.close();
  };
  const accepting = (async () => {
    for await (const conn of listener) await serve(conn).catch(() => conn.close());
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
    },
  };
}

/** A linear congruential generator: the same numbers in [0, 1) for the same seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

Deno.test("a fetch that fails with a network error, then a 503, is retried with exponential back-off until it succeeds", async () => {
  await using server = flakyServer();
  await using worker = await testWorker();
  const failures: { tries: number; error: string; at: number }[] = [];
  const starts: number[] = [];
  const policy: RetryPolicy = {
    attempts: 5,
    backoff: { type: "exponential", delay: 200, max: 5_000 },
    retryOn: [TypeError, HttpError],
  };
  const fetchPage = worker.task(async function fetchPage(url: string): Promise<string> {
    const { tries, signal } = taskContext();
    starts.push(Date.now());
    try {
      const res = await fetch(url, { signal });
      if (res.status === 503) {
        await res.body?.cancel();
        throw new HttpError(503);
      }
      return await res.text();
    } catch (error) {
      failures.push({ tries, error: (error as Error).name, at: Date.now() });
      throw error;
    }
  }, { retry: policy });
  const handle = await fetchPage.enqueue(server.url);
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, "ok");
  assert.equal(result.tries, 3);
  assert.equal(server.requests(), 3);
  assert.deepEqual(failures.map((f) => [f.tries, f.error]), [[1, "TypeError"], [2, "HttpError"]]);
  // Each retry started no earlier than the policy's wait for that try: 200 ms, then 400 ms.
  for (const [i, wait] of [200, 400].entries()) {
    const gap = starts[i + 1] - failures[i].at;
    assert.ok(gap >= wait, `try ${i + 2} started ${gap} ms after try ${i + 1} failed (< ${wait})`);
  }
  assert.deepEqual(worker.counters.retried, 2);
});

Deno.test("an error the policy does not match fails the task at once, after one try", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const strict = worker.task(async function strict(): Promise<void> {
    calls++;
    await Promise.resolve();
    throw new RangeError("bad input: no point in trying again");
  }, { retry: { attempts: 5, backoff: 10, retryOn: [TypeError, HttpError] } });
  const handle = await strict.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(calls, 1);
  assert.equal(result.tries, 1);
  assert.equal(result.success, false);
  assert.ok(result.exception instanceof RangeError, "the task's own error, unwrapped");
  assert.equal(result.exception.message, "bad input: no point in trying again");
});

Deno.test("a predicate decides which errors retry", async () => {
  await using worker = await testWorker();
  const seen: number[] = [];
  const picky = worker.task(async function picky(): Promise<number> {
    const { tries } = taskContext();
    seen.push(tries);
    await Promise.resolve();
    if (tries === 1) throw new HttpError(503);
    if (tries === 2) throw new HttpError(404);
    return tries;
  }, {
    retry: { backoff: 10, retryOn: (error) => error instanceof HttpError && error.status >= 500 },
  });
  const handle = await picky.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(seen, [1, 2]);
  assert.equal(result.success, false);
  assert.equal((result.exception as Error).message, "HTTP 404");
});

Deno.test("StreaqRetry's own delay overrides the policy's back-off", async () => {
  await using worker = await testWorker();
  const patient = worker.task(async function patient(): Promise<number> {
    const { tries } = taskContext();
    await Promise.resolve();
    if (tries === 1) throw new StreaqRetry("come back soon", { delay: 50 });
    return tries;
  }, { retry: { backoff: 600_000, retryOn: [] } });
  const handle = await patient.enqueue();
  const running = runInBackground(worker);
  // With the policy's 10 minutes, this would time out.
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, 2);
});

Deno.test("a StreaqRetry without a delay waits the policy's back-off", async () => {
  await using worker = await testWorker();
  let retriedAt = 0;
  const polite = worker.task(async function polite(): Promise<void> {
    await Promise.resolve();
    retriedAt = Date.now();
    throw new StreaqRetry("later");
  }, { retry: { backoff: 600_000 } });
  const handle = await polite.enqueue();
  const running = runInBackground(worker);
  await eventually(async () => (await handle.info())?.scheduled != null, {
    what: "the retry to be scheduled",
  });
  const due = (await handle.info())!.scheduled!.getTime();
  assert.equal(await handle.abort({ timeout: 5_000 }), true);
  await running.stop();
  assert.ok(due >= retriedAt + 600_000, `due ${due - retriedAt} ms after the retry`);
});

Deno.test("the worker's default policy applies to its tasks, and a task's own replaces it", async () => {
  await using worker = await testWorker({
    retry: { attempts: 4, backoff: 10, retryOn: [TypeError] },
  });
  const tries: Record<string, number[]> = { inherits: [], overrides: [] };
  const flaky = async (name: string) => {
    tries[name].push(taskContext().tries);
    await Promise.resolve();
    if (taskContext().tries === 1) throw new TypeError("connection reset");
    return taskContext().tries;
  };
  const inherits = worker.task(async () => await flaky("inherits"), { name: "inherits" });
  const overrides = worker.task(async () => await flaky("overrides"), {
    name: "overrides",
    retry: { retryOn: [HttpError] },
  });
  assert.equal(inherits.maxTries, 4, "the default's attempts are the task's budget");
  assert.equal(overrides.maxTries, 3, "a task's own policy replaces the default as a whole");
  assert.deepEqual(inherits.retry?.retryOn, [TypeError]);
  const [a, b] = await worker.enqueueMany([inherits.enqueue(), overrides.enqueue()]);
  const running = runInBackground(worker);
  const [ra, rb] = [await a.result({ timeout: 5_000 }), await b.result({ timeout: 5_000 })];
  await running.stop();
  assert.equal(ra.success && ra.result, 2);
  assert.equal(rb.success, false);
  assert.equal(rb.tries, 1);
  assert.ok(rb.exception instanceof TypeError);
  assert.deepEqual(tries, { inherits: [1, 2], overrides: [1] });
});

Deno.test("the final failure after the budget names the tries and keeps the last error as its cause", async () => {
  await using worker = await testWorker();
  const seen: number[] = [];
  const down = worker.task(async function down(): Promise<void> {
    const { tries } = taskContext();
    seen.push(tries);
    await Promise.resolve();
    throw new HttpError(500 + tries);
  }, { retry: { attempts: 3, backoff: { type: "fixed", delay: 10 } } });
  const handle = await down.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(result.success, false);
  assert.equal(result.tries, 3);
  const error = result.exception;
  assert.ok(error instanceof StreaqError);
  assert.match(
    error.message,
    /failed after 3 tries \(maxTries 3\); last error: HttpError: HTTP 503/,
  );
  const cause = error.cause as Error;
  assert.ok(cause instanceof Error, "the cause came back through the codec as an Error");
  assert.equal(cause.name, "HttpError");
  assert.equal(cause.message, "HTTP 503");
  assert.match(cause.stack ?? "", /HttpError/);
  assert.deepEqual(
    { retried: worker.counters.retried, failed: worker.counters.failed },
    { retried: 2, failed: 1 },
  );
});

Deno.test("a try handed back at shutdown counts against the policy's budget", async () => {
  await using worker = await testWorker();
  const seen: number[] = [];
  const { promise: started, resolve } = Promise.withResolvers<void>();
  const handedBack = worker.task(async function handedBack(): Promise<void> {
    const { tries, signal } = taskContext();
    seen.push(tries);
    if (tries === 1) {
      resolve();
      await sleepUnlessAborted(60_000, signal);
    }
    throw new TypeError("network down");
  }, { retry: { attempts: 2, backoff: 10 } });
  const handle = await handedBack.enqueue();
  const first = runInBackground(worker);
  await started;
  await first.stop(); // gracePeriod 0: the running try is handed back
  const second = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await second.stop();
  assert.deepEqual(seen, [1, 2]);
  assert.equal(result.success, false);
  assert.equal(result.tries, 2);
  assert.match((result.exception as Error).message, /failed after 2 tries \(maxTries 2\)/);
  assert.equal(((result.exception as Error).cause as Error).name, "TypeError");
});

Deno.test("a back-off function that throws or returns a bad number fails its task alone, and the worker goes on", async () => {
  await using worker = await testWorker();
  const broken = worker.task(async function broken(): Promise<void> {
    await Promise.resolve();
    throw new TypeError("network down");
  }, {
    retry: {
      backoff: () => {
        throw new Error("no back-off today");
      },
    },
  });
  const nan = worker.task(async function nan(): Promise<void> {
    await Promise.resolve();
    throw new TypeError("network down");
  }, { retry: { backoff: () => NaN } });
  const fine = worker.task(async function fine(): Promise<string> {
    return await Promise.resolve("fine");
  });
  const [b, n] = await worker.enqueueMany([broken.enqueue(), nan.enqueue()]);
  const running = runInBackground(worker);
  const [rb, rn] = [await b.result({ timeout: 5_000 }), await n.result({ timeout: 5_000 })];
  const rf = await (await fine.enqueue()).result({ timeout: 5_000 });
  await running.stop();
  assert.equal(rb.success, false);
  assert.match(
    (rb.exception as Error).message,
    /broken .* failed on try 1: its 'retry.backoff' function threw: Error: no back-off today; the task threw TypeError: network down/,
  );
  assert.equal(((rb.exception as Error).cause as Error).message, "network down");
  assert.equal(rn.success, false);
  assert.match(
    (rn.exception as Error).message,
    /'retry.backoff' function must return a number of milliseconds ≥ 0: received NaN \(number\)/,
  );
  assert.equal(rf.success && rf.result, "fine");
});

Deno.test("in a task thread, a policy's error classes match errors by class name", async () => {
  await using worker = await testWorker({ syncConcurrency: 1 });
  worker.include(retrying);
  const handle = await quotaOnce.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 10_000 });
  await running.stop();
  assert.equal(result.success && result.result, 2);
});

Deno.test("a timeout is not retried by a policy that retries every error", async () => {
  await using worker = await testWorker();
  let calls = 0;
  const slow = worker.task(async function slow(): Promise<void> {
    calls++;
    const { signal } = taskContext();
    await new Promise((_, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason));
    });
  }, { timeout: 100, retry: { backoff: 10 } });
  const handle = await slow.enqueue();
  const running = runInBackground(worker);
  const result = await handle.result({ timeout: 5_000 });
  await running.stop();
  assert.equal(calls, 1);
  assert.equal(result.success, false);
  assert.equal(result.exception.name, "TimeoutError");
});

// The policy's decision and back-off, without Redis.

const input = (policy: RetryPolicy | undefined, tries = 1, maxTries = 3): RetryInput => ({
  label: "job (t1)",
  tries,
  maxTries,
  policy,
  thread: false,
});

Deno.test("exponential back-off doubles from its delay and stops at its max", () => {
  const backoff = { type: "exponential", delay: 100, max: 1_000 } as const;
  const waits = [1, 2, 3, 4, 5, 6].map((tries) => backoffDelay(backoff, tries, undefined));
  assert.deepEqual(waits, [100, 200, 400, 800, 1_000, 1_000]);
  const uncapped = { type: "exponential", delay: 1_000 } as const;
  assert.equal(backoffDelay(uncapped, 2_000, undefined), Number.MAX_SAFE_INTEGER);
  assert.equal(backoffDelay({ type: "exponential", delay: 0 }, 2_000, undefined), 0);
});

Deno.test("full jitter stays in [0, wait] and equal jitter in [wait / 2, wait]", () => {
  const random = seeded(42);
  for (let tries = 1; tries <= 8; tries++) {
    const wait = Math.min(100 * 2 ** (tries - 1), 5_000);
    for (let i = 0; i < 200; i++) {
      const full = backoffDelay(
        { type: "exponential", delay: 100, max: 5_000, jitter: "full" },
        tries,
        undefined,
        random,
      ) as number;
      assert.ok(full >= 0 && full <= wait, `full jitter ${full} outside [0, ${wait}]`);
      const equal = backoffDelay(
        { type: "exponential", delay: 100, max: 5_000, jitter: "equal" },
        tries,
        undefined,
        random,
      ) as number;
      assert.ok(equal >= wait / 2 && equal <= wait, `equal jitter ${equal} outside bounds`);
    }
  }
  // The extremes of the random source reach the bounds.
  const fixed = { type: "fixed", delay: 1_000, jitter: "full" } as const;
  assert.equal(backoffDelay(fixed, 1, undefined, () => 0), 0);
  assert.equal(backoffDelay(fixed, 1, undefined, () => 0.9999), 1_000);
  const equal = { ...fixed, jitter: "equal" } as const;
  assert.equal(backoffDelay(equal, 1, undefined, () => 0), 500);
});

Deno.test("a back-off function receives the try and the error", () => {
  const error = new HttpError(429);
  const delay = backoffDelay(
    (tries, e) => (e as HttpError).status === 429 ? tries * 1_000 : 0,
    3,
    error,
  );
  assert.equal(delay, 3_000);
});

Deno.test("decideRetry: without a policy only StreaqRetry retries, with the tries² default", () => {
  const error = new TypeError("network");
  assert.deepEqual(decideRetry(input(undefined), error), { kind: "failure", error });
  const retry = decideRetry(input(undefined, 2), new StreaqRetry("again"));
  assert.deepEqual(retry, { kind: "retry", due: { in: 4_000 }, reason: "StreaqRetry: again" });
});

Deno.test("decideRetry: a policy never retries an abort", () => {
  const error = new StreaqCancelled("aborted");
  assert.deepEqual(decideRetry(input({ backoff: 10 }), error), { kind: "failure", error });
});

Deno.test("decideRetry: a predicate that throws fails the task, saying so", () => {
  const decision = decideRetry(
    input({
      retryOn: () => {
        throw new Error("oops");
      },
    }),
    new TypeError("network"),
  );
  assert.equal(decision.kind, "failure");
  assert.match(
    (decision as { error: Error }).error.message,
    /'retry.retryOn' predicate threw: Error: oops; the task threw TypeError: network/,
  );
});

Deno.test("decideRetry: a StreaqRetry schedule overrides the policy, and the budget ends retries", () => {
  const schedule = new Date(Date.now() + 60_000);
  const decision = decideRetry(input({ backoff: 10 }), new StreaqRetry({ schedule }));
  assert.deepEqual(decision, {
    kind: "retry",
    due: { at: schedule.getTime() },
    reason: "StreaqRetry: retry requested",
  });
  const last = decideRetry(input({ backoff: 10 }, 1, 1), new TypeError("network"));
  assert.equal(last.kind, "failure");
  assert.match(
    (last as { error: Error }).error.message,
    /job \(t1\) failed after 1 try \(maxTries 1\); last error: TypeError: network/,
  );
});

// Checks at registration and construction.

function register(options: Record<string, unknown>): () => unknown {
  const worker = new Worker({ redisUrl: "redis://127.0.0.1:9", handleSignals: false });
  return () => worker.task(async function job(): Promise<void> {}, options as TaskOptions);
}

function assertRefused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: Error) => {
    assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("registration refuses a bad retry policy, naming the option and the value", () => {
  assertRefused(
    register({ retry: 3 }),
    /register task job as 'retry' must be an object.*received 3 \(number\)/,
  );
  assertRefused(
    register({ retry: { attempts: 0 } }),
    /'retry.attempts' must be an integer ≥ 1: received 0 \(number\)/,
  );
  assertRefused(register({ retry: { tries: 2 } }), /'retry.tries' is not an option/);
  assertRefused(
    register({ retry: { backoff: -5 } }),
    /'retry.backoff' must be a number of milliseconds ≥ 0: received -5 \(number\)/,
  );
  assertRefused(
    register({ retry: { backoff: Infinity } }),
    /'retry.backoff'.*received Infinity \(number\)/,
  );
  assertRefused(
    register({ retry: { backoff: "1s" } }),
    /'retry.backoff' must be milliseconds.*received "1s" \(string\)/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "linear", delay: 10 } } }),
    /'retry.backoff' must be milliseconds, \{ type: "fixed" \| "exponential"/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "exponential", delay: NaN } } }),
    /'retry.backoff.delay'.*received NaN \(number\)/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "exponential" } } }),
    /'retry.backoff.delay' is required with type "exponential": received none/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "exponential", delay: 1_000, max: 10 } } }),
    /'retry.backoff.max' must be a number of milliseconds ≥ 1000: received 10 \(number\)/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "fixed", delay: 10, max: 100 } } }),
    /'retry.backoff.max' is not an option/,
  );
  assertRefused(
    register({ retry: { backoff: { type: "exponential", delay: 10, jitter: true } } }),
    /'retry.backoff.jitter' must be one of none, full, equal: received true \(boolean\)/,
  );
  assertRefused(
    register({ retry: { retryOn: "TypeError" } }),
    /'retry.retryOn' must be an array of error classes or a predicate function: received "TypeError"/,
  );
  assertRefused(
    register({ retry: { retryOn: [TypeError, "HttpError"] } }),
    /'retry.retryOn\[1\]' must be an error class.*received "HttpError" \(string\)/,
  );
  assertRefused(
    register({ retry: { retryOn: [(e: unknown) => e instanceof TypeError] } }),
    /'retry.retryOn\[0\]' must be an error class/,
  );
  assertRefused(
    register({ maxTries: 5, retry: { attempts: 3 } }),
    /'maxTries' and 'retry.attempts' are two spellings of one budget, give one: received maxTries 5 \(number\) and retry.attempts 3 \(number\)/,
  );
});

Deno.test("new Worker() refuses a bad default retry policy, and a cron job a bad one of its own", () => {
  const create = (options: Record<string, unknown>) => () =>
    new Worker(
      { redisUrl: "redis://127.0.0.1:9", handleSignals: false, ...options } as WorkerOptions,
    );
  assertRefused(
    create({ retry: { backoff: -1 } }),
    /create worker as 'retry.backoff'.*received -1/,
  );
  assertRefused(
    create({ retry: null }),
    /create worker as 'retry' must be an object.*received null/,
  );
  const worker = create({})();
  assertRefused(
    () =>
      worker.cron("* * * * *", async function tick(): Promise<void> {}, {
        retry: { attempts: 1.5 },
      }),
    /register cron job tick as 'retry.attempts' must be an integer ≥ 1: received 1.5 \(number\)/,
  );
});

Deno.test("a task's policy is a frozen copy: changing the object given changes nothing", () => {
  const retryOn = [TypeError];
  const policy: RetryPolicy = { attempts: 2, retryOn };
  const job = register({ retry: policy })() as { retry: RetryPolicy; maxTries: number };
  retryOn.push(RangeError);
  policy.attempts = 9;
  assert.deepEqual(job.retry.retryOn, [TypeError]);
  assert.equal(job.maxTries, 2);
  assert.ok(Object.isFrozen(job.retry));
});
