/**
 * The demo behind `deno task demo`: runs the example worker and the example client in one
 * process against a local Redis, prints the results, and shuts everything down gracefully.
 *
 *   deno task demo                                   # Redis at REDIS_URL or localhost:6379
 *   REDIS_URL=redis://127.0.0.1:6380 deno task demo  # another Redis
 *
 * It uses the Redis at `REDIS_URL` (default redis://localhost:6379) if something answers PING
 * there, and otherwise starts a private `redis-server` on a free loopback port for its own
 * lifetime (so it needs `redis-server` on PATH, or `docker compose up -d redis`). On a Redis of
 * yours it touches only the keys of the queue "streaq-demo" (`STREAQ_QUEUE` changes it). The
 * page that the fetch task downloads is served by the demo itself on 127.0.0.1.
 *
 * @module
 */

import { type RedisServer, startRedis } from "../tests/_redis.ts";

const DEFAULT_URL = "redis://localhost:6379";
const PING_TIMEOUT = 500;

/** A reason the demo cannot start that the user can fix: printed alone, without a stack trace. */
class DemoSetupError extends Error {}

/** Whether something answers a RESP PING at `url` within `PING_TIMEOUT` ms (NOAUTH counts). */
async function answersPing(url: string): Promise<boolean> {
  const { hostname: host, port, protocol } = new URL(url);
  if (protocol === "rediss:") return true; // TLS: trust the URL rather than probe it in clear.
  const hostname = host.replace(/^\[(.*)\]$/, "$1"); // [::1] -> ::1
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), PING_TIMEOUT);
  });
  try {
    const connecting = Deno.connect({ hostname, port: Number(port || 6379) });
    const conn = await Promise.race([connecting, timeout]);
    if (conn === "timeout") {
      connecting.then((late) => late.close(), () => {}); // Closed, not leaked, if it comes.
      return false;
    }
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(64);
      const read = await Promise.race([conn.read(buffer), timeout]);
      return typeof read === "number" && read > 0 && (buffer[0] === 0x2b || buffer[0] === 0x2d);
    } finally {
      conn.close();
    }
  } catch (error) {
    // The demo's permissions allow only local hosts: say so rather than fall back silently.
    if (error instanceof Deno.errors.NotCapable) {
      throw new DemoSetupError(
        "The demo may connect only to a Redis on this machine (`deno task demo` allows " +
          `127.0.0.1 and localhost): received ${redact(url)}. Point REDIS_URL at a local ` +
          "Redis, or run examples/demo.ts with --allow-net for that host.",
        { cause: error },
      );
    }
    return false; // Refused, unreachable, or reset.
  } finally {
    clearTimeout(timer);
  }
}

/** Uses the Redis at REDIS_URL or localhost:6379, or starts a private one. */
async function chooseRedis(): Promise<RedisServer | undefined> {
  const given = Deno.env.get("REDIS_URL");
  const url = given ?? DEFAULT_URL;
  if (await answersPing(url)) {
    const queue = Deno.env.get("STREAQ_QUEUE") ?? "streaq-demo";
    console.log(`Using the Redis at ${redact(url)} (queue ${queue})`);
    return undefined;
  }
  const where = `${redact(url)}${given ? " (REDIS_URL)" : ""}`;
  const server = await startRedis().catch((error) => {
    // The harness words a missing redis-server for the tests ("run the tests again").
    if (error?.cause instanceof Deno.errors.NotFound) throw noRedisError(where);
    throw error;
  });
  Deno.env.set("REDIS_URL", server.url);
  console.log(
    `Nothing answers at ${where}: started a private redis-server on ${server.url}, stopped when ` +
      "the demo ends",
  );
  return server;
}

/** What to do when nothing answers at `where` and there is no redis-server to start. */
function noRedisError(where: string): DemoSetupError {
  return new DemoSetupError(
    `The demo needs a Redis and found none: nothing answers at ${where}, and ` +
      "redis-server, which the demo starts for itself when nothing answers, is not installed " +
      "(it is not on PATH). Install it and run `deno task demo` again:\n" +
      "  Debian/Ubuntu: sudo apt-get install redis-server\n" +
      "  macOS:         brew install redis\n" +
      "or start a Redis of your own on this machine (`docker compose up -d redis` publishes one " +
      "on localhost:6379) and point REDIS_URL at it, for example " +
      "`REDIS_URL=redis://127.0.0.1:6380 deno task demo`.",
  );
}

/** The URL without its password, for printing. */
function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.href;
}

/** Serves a small page on a free loopback port for the fetch task. */
function servePage(): Deno.HttpServer<Deno.NetAddr> {
  const page = `<!doctype html><title>streaq demo</title><p>${"hello ".repeat(200)}</p>`;
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(page, { headers: { "content-type": "text/html" } }),
  );
}

/** Runs the demo; resolves to false if Ctrl-C (or SIGTERM) stopped it early. */
async function main(): Promise<boolean> {
  const started = performance.now();
  let interrupted = false;
  const privateRedis = await chooseRedis();
  const page = servePage();
  try {
    // Imported only now: the worker module reads REDIS_URL when it loads.
    const { worker } = await import("./worker.ts");
    const { enqueueExamples } = await import("./enqueue.ts");
    const running = worker.run();
    try {
      // Ctrl-C stops the worker gracefully; then stop waiting for results that will not come.
      const examples = enqueueExamples(`http://127.0.0.1:${page.addr.port}/`);
      examples.catch(() => {}); // Reported below if it finishes first, dropped after Ctrl-C.
      interrupted = await Promise.race([examples.then(() => false), running.then(() => true)]);
    } finally {
      worker.stop();
      await running;
      await worker.close();
    }
  } finally {
    await page.shutdown();
    await privateRedis?.stop();
  }
  const ms = Math.round(performance.now() - started);
  if (interrupted) {
    console.log(`Interrupted after ${ms} ms: the worker stopped before every result came in`);
  } else {
    console.log(`Demo finished in ${ms} ms`);
  }
  return !interrupted;
}

if (import.meta.main) {
  try {
    // After an interruption the result waits still hold timers: exit rather than wait for them.
    if (!await main()) Deno.exit(130);
  } catch (error) {
    if (!(error instanceof DemoSetupError)) throw error;
    console.error(error.message);
    Deno.exitCode = 1; // Nothing was started yet: the process ends by itself.
  }
}
