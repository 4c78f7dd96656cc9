/**
 * A worker's log lines: one time format, text or JSON lines, control characters in logged
 * values made visible (a task name or an error message cannot forge a line or drive the
 * terminal), and what a connection failure says.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Logger, Worker } from "../mod.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { queueContextOf } from "../src/worker.ts";

/** A logger that keeps every line it is given, as the sink receives it. */
function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (line: string) => void lines.push(line);
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

/** ISO 8601 with milliseconds and a zone: `Z`, or an offset such as `+05:30`. */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$/;

/** A port on the loopback interface that nothing listens on (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("new Worker() rejects a logFormat other than text or json, naming it and the value", () => {
  assert.throws(
    () => new Worker({ logFormat: "xml" as "json", handleSignals: false }),
    (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.equal(
        error.message,
        `Cannot create worker as 'logFormat' must be one of text, json: received "xml" (string)`,
      );
      return true;
    },
  );
});

Deno.test("text log lines start with an ISO 8601 time with milliseconds in the worker's tz, then the queue and worker id", async () => {
  const logger = capture();
  await using worker = await testWorker({ logger, logLevel: "info", tz: "Asia/Kolkata" });
  const noop = worker.task(async function noop() {});
  const background = runInBackground(worker);
  try {
    await (await noop.enqueue()).result({ timeout: 10_000 });
  } finally {
    await background.stop();
  }
  const prefix = `[streaq ${worker.queueName}/${worker.id}]`;
  assert.ok(logger.lines.length >= 3, logger.lines.join("\n"));
  for (const line of logger.lines) {
    const [time, tag] = line.split(" ");
    assert.match(time, ISO_TIME, line);
    assert.ok(time.endsWith("+05:30"), `India's offset in ${line}`);
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000, `the time now in ${line}`);
    assert.equal(line.slice(time.length + 1, time.length + 1 + prefix.length), prefix, line);
    assert.ok(tag.startsWith("[streaq"), line);
  }
});

Deno.test("logFormat json writes one JSON object a line, with time, level, worker id, message, task id and function name", async () => {
  const logger = capture();
  await using worker = await testWorker({ logger, logLevel: "info", logFormat: "json" });
  const fails = worker.task(async function fails(): Promise<void> {
    await Promise.resolve();
    throw new Error("no luck");
  }, { maxTries: 1 });
  const background = runInBackground(worker);
  let taskId: string;
  try {
    const task = await fails.enqueue();
    taskId = task.id;
    await task.result({ timeout: 10_000 });
  } finally {
    await background.stop();
  }
  const records = logger.lines.map((line) => {
    assert.equal(line.includes("\n"), false, line);
    return JSON.parse(line) as Record<string, unknown>;
  });
  for (const record of records) {
    assert.match(String(record.time), ISO_TIME);
    assert.equal(record.queue, worker.queueName);
    assert.equal(record.workerId, worker.id);
    assert.equal(typeof record.message, "string");
  }
  const started = records.find((r) => String(r.message).startsWith("→"));
  assert.equal(started?.level, "info");
  assert.equal(started?.taskId, taskId);
  assert.equal(started?.fnName, "fails");
  assert.equal(started?.tries, 1);
  const failed = records.find((r) => String(r.message).startsWith("✗"));
  assert.equal(failed?.level, "warn");
  assert.equal(failed?.taskId, taskId);
  assert.equal(failed?.fnName, "fails");
  assert.equal(typeof failed?.durationMs, "number");
  assert.match(String(failed?.message), /failed in \d+ ms: Error: no luck$/);
  assert.ok(records.some((r) => String(r.message).includes("started on queue")));
});

Deno.test("a task name and an error message with a newline and ANSI escapes give one text line each, with the escapes visible", async () => {
  const logger = capture();
  await using worker = await testWorker({ logger, logLevel: "info" });
  const name = "evil\n2030-01-01T00:00:00.000Z [streaq forged] ✓ all good \x1b[31mred\x7f\x9b";
  const evil = worker.task(async () => {
    await Promise.resolve();
    throw new Error("first line\nsecond line \x1b[2J\r\tend");
  }, { name, maxTries: 1 });
  const background = runInBackground(worker);
  try {
    await (await evil.enqueue()).result({ timeout: 10_000 });
  } finally {
    await background.stop();
  }
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x1f\x7f-\x9f]/;
  for (const line of logger.lines) assert.equal(control.test(line), false, JSON.stringify(line));
  const shown = "evil\\n2030-01-01T00:00:00.000Z [streaq forged] ✓ all good \\x1b[31mred\\x7f\\x9b";
  assert.equal(logger.lines.filter((line) => line.includes(shown)).length, 3); // with the start
  const about = logger.lines.filter((line) => / [→✗] /.test(line));
  assert.equal(about.length, 2, logger.lines.join("\n"));
  assert.ok(about.every((line) => line.includes(shown)), about.join("\n"));
  assert.match(about[0], / → evil\\n.* try 1$/);
  assert.ok(
    about[1].endsWith("Error: first line\\nsecond line \\x1b[2J\\r\\tend"),
    `the error with visible escapes: ${about[1]}`,
  );
});

Deno.test("an enqueue against a closed port fails within redisTimeout, naming ECONNREFUSED", async () => {
  const logger = capture();
  await using worker = new Worker({
    redisUrl: `redis://127.0.0.1:${closedPort()}`,
    redisTimeout: 500,
    logger,
    handleSignals: false,
  });
  const noop = worker.task(async function noop() {});
  await assert.rejects(async () => await noop.enqueue(), (error: Error) => {
    assert.match(error.message, /did not answer within 500 ms \(option 'redisTimeout'\)/);
    assert.match(error.message, /last connection error: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
    return true;
  });
});

Deno.test("with a wrong password an enqueue fails naming WRONGPASS, and no 'is back' line is logged", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "right-password"] });
  const logger = capture();
  await using worker = new Worker({
    redisUrl: `redis://:wrong-password@${redis.host}:${redis.port}`,
    redisTimeout: 1_000,
    logger,
    logLevel: "info",
    handleSignals: false,
  });
  const noop = worker.task(async function noop() {});
  await assert.rejects(async () => await noop.enqueue(), /WRONGPASS/);
  // A subscriber connection has no ready check: it used to be "ready", and report that it was
  // back, as soon as its socket opened again, before Redis refused its password.
  const subscriber = queueContextOf(worker).connections.open("subscriber");
  subscriber.subscribe("nothing").catch(() => {});
  await eventually(async () => (await wrongPasswords(redis)) >= 4, {
    what: "the subscriber to be refused again after its first failure",
  });
  await worker.close();
  assert.ok(logger.lines.some((line) => /\(subscriber\) failed: WRONGPASS/.test(line)));
  assert.equal(
    logger.lines.some((line) => line.includes("is back")),
    false,
    logger.lines.join("\n"),
  );
});

/** How many times the server has refused a password (`INFO errorstats`). */
async function wrongPasswords(redis: RedisServer): Promise<number> {
  const stats = await redis.cli("--no-auth-warning", "-a", "right-password", "INFO", "errorstats");
  return Number(/errorstat_WRONGPASS:count=(\d+)/.exec(stats)?.[1] ?? 0);
}

Deno.test("after a real outage the connections report that they are back", async () => {
  await using redis = await startRedis();
  const logger = capture();
  await using worker = new Worker({
    redisUrl: redis.url,
    queueName: "outage",
    redisTimeout: 2_000,
    logger,
    logLevel: "info",
    handleSignals: false,
  });
  const noop = worker.task(async function noop() {});
  const background = runInBackground(worker);
  try {
    await (await noop.enqueue()).result({ timeout: 10_000 });
    await redis.kill();
    await eventually(() => logger.lines.some((line) => /ECONNREFUSED/.test(line)), {
      what: "the outage to be reported",
    });
    await redis.restart();
    await eventually(
      () => logger.lines.some((line) => line.includes("Redis connection (commands) is back")),
      { what: "the commands connection to be back" },
    );
    await eventually(
      () => logger.lines.some((line) => line.includes("Redis connection (subscriber) is back")),
      { what: "the subscriber connection to be back" },
    );
  } finally {
    await background.stop();
  }
});

Deno.test("JSON log lines keep a hostile task name intact in the value and no control character in the line", async () => {
  const logger = capture();
  await using worker = await testWorker({ logger, logLevel: "info", logFormat: "json" });
  const name = "evil\nforged \x1b[31mred\x7f\x9b\u2028";
  const evil = worker.task(async () => {}, { name });
  const background = runInBackground(worker);
  try {
    await (await evil.enqueue()).result({ timeout: 10_000 });
  } finally {
    await background.stop();
  }
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
  for (const line of logger.lines) assert.equal(control.test(line), false, JSON.stringify(line));
  const done = logger.lines.map((line) => JSON.parse(line)).find((r) => r.message.startsWith("✓"));
  assert.equal(done?.fnName, name);
});
