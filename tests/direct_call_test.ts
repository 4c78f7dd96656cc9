import assert from "node:assert/strict";
import { Redis, type RedisOptions } from "ioredis";
import { sendDirect } from "../src/redis/_direct_call.ts";

/**
 * A server that accepts connections and reads what they send, but never answers: a Redis
 * behind a network that went silent without closing anything.
 */
function silentServer(): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      connections.push(conn);
      conn.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // closed by its reader already
        }
      }
      await accepting.catch(() => {});
    },
  };
}

/** An ioredis connection to `server` that is ready once connected (it asks nothing first). */
function connectTo(server: { port: number }, options: RedisOptions): Redis {
  return new Redis({
    host: "127.0.0.1",
    port: server.port,
    enableReadyCheck: false,
    disableClientInfo: true, // as streaq connects: CLIENT SETINFO would wait for an answer
    maxRetriesPerRequest: null,
    ...options,
  });
}

/** Fails if `promise` has not settled within `ms`: a bound on a hang, not a timing claim. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

Deno.test("a blocking read sent directly gives up on a silent connection, as ioredis's blockingTimeout makes it", async () => {
  await using server = silentServer();
  const redis = connectTo(server, { blockingTimeout: 5_000 });
  try {
    // Sent once connected: a read queued before has ioredis's longer offline bound instead.
    await new Promise((resolve) => redis.once("ready", resolve));
    const reply = sendDirect(redis, "xread", ["BLOCK", 200, "STREAMS", "s", "$"], 200);
    // Redis answers a BLOCK that ran out with no entries (null); so does the guard.
    assert.equal(await within(reply, 10_000, "the blocking read"), null);
  } finally {
    redis.disconnect();
  }
});

Deno.test("blocking reads on one silent connection each end at their own deadline, on one guard", async () => {
  await using server = silentServer();
  const redis = connectTo(server, { blockingTimeout: 5_000 });
  try {
    await new Promise((resolve) => redis.once("ready", resolve));
    const ended: string[] = [];
    const read = (name: string, block: number) =>
      sendDirect(redis, "xread", ["BLOCK", block, "STREAMS", name, "$"], block).then((reply) => {
        ended.push(name);
        return reply;
      });
    // The long read is watched first, so the guard's timer is armed for it; the short one,
    // watched after, must bring the timer forward.
    const long = read("long", 1_500);
    const short = read("short", 100);
    assert.equal(await within(short, 10_000, "the short read"), null);
    assert.deepEqual(ended, ["short"], "the long read is still waiting");
    assert.equal(await within(long, 10_000, "the long read"), null);
    assert.deepEqual(ended, ["short", "long"]);
  } finally {
    redis.disconnect();
  }
});

Deno.test("a command sent directly fails after ioredis's commandTimeout on a silent connection", async () => {
  await using server = silentServer();
  const redis = connectTo(server, { commandTimeout: 200 });
  try {
    await assert.rejects(
      within(sendDirect(redis, "get", ["x"]), 10_000, "the GET"),
      /Command timed out/,
    );
  } finally {
    redis.disconnect();
  }
});
