import { type RedisServer, sharedRedis, startRedis, uniqueQueue } from "./_redis.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Sends a raw RESP PING; resolves with the reply line, rejects if nothing listens. */
async function rawPing(port: number): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("PING\r\n"));
  const buffer = new Uint8Array(64);
  const read = await conn.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, read ?? 0)).trim();
}

Deno.test("startRedis() gives a server that answers PING on a loopback port other than 6379", async () => {
  await using server = await startRedis();
  assert(server.port !== 6379, `expected a port other than 6379, got ${server.port}`);
  assert(server.port < 55_536, `expected a port below 55536, got ${server.port}`);
  assert(server.url === `redis://127.0.0.1:${server.port}`, `unexpected url ${server.url}`);
  const reply = await rawPing(server.port);
  assert(reply === "+PONG", `expected +PONG, got ${reply}`);
});

Deno.test("startRedis() appends extra arguments, which win over the defaults", async () => {
  await using server = await startRedis({ args: ["--maxmemory-policy", "noeviction"] });
  const policy = await server.cli("CONFIG", "GET", "maxmemory-policy");
  assert(policy.endsWith("noeviction"), `expected noeviction, got ${policy}`);
});

Deno.test("restart() keeps the port and the server answers again without the old data", async () => {
  await using server = await startRedis();
  await server.cli("SET", "greeting", "hello");
  const port = server.port;
  await server.restart();
  assert(server.port === port, `expected port ${port}, got ${server.port}`);
  assert(await server.cli("PING") === "PONG", "expected PONG after the restart");
  const value = await server.cli("GET", "greeting");
  assert(value === "", `expected no data after the restart, got ${value}`);
});

Deno.test("stop() is idempotent and closes the port", async () => {
  const server = await startRedis();
  await server.stop();
  await server.stop();
  const refused = await rawPing(server.port).then(() => false, () => true);
  assert(refused, `expected port ${server.port} to be closed after stop()`);
});

let firstShared: RedisServer | undefined;

Deno.test("sharedRedis() starts one server for the module", async () => {
  firstShared = await sharedRedis();
  assert(await firstShared.cli("PING") === "PONG", "expected the shared server to answer");
  await firstShared.cli("SET", "shared-marker", "1");
});

Deno.test("sharedRedis() returns the same running server to a later test", async () => {
  const server = await sharedRedis();
  assert(server === firstShared, "expected the same server object");
  assert(await server.cli("GET", "shared-marker") === "1", "expected the earlier test's key");
});

Deno.test("uniqueQueue() never returns the same name twice", () => {
  const names = new Set(Array.from({ length: 1000 }, () => uniqueQueue("q")));
  assert(names.size === 1000, `expected 1000 distinct names, got ${names.size}`);
  assert([...names].every((name) => /^q-[0-9a-f]{16}$/.test(name)), "expected q-<16 hex>");
});
