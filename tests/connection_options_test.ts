import assert from "node:assert/strict";
import { Worker, type WorkerOptions } from "../mod.ts";

const NODES = [{ host: "127.0.0.1", port: 9 }]; // nothing listens there: nothing connects

function refused(options: WorkerOptions, message: RegExp, type = TypeError): void {
  assert.throws(() => new Worker({ handleSignals: false, ...options }), (error: Error) => {
    assert.ok(error instanceof type, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("giving two ways to connect is refused, naming both", () => {
  refused(
    { redisUrl: "redis://127.0.0.1:9", cluster: { nodes: NODES } },
    /'redis', 'cluster', 'sentinel', 'redisUrl' are ways to connect and exclude each other: received cluster and redisUrl/,
  );
  refused(
    { sentinel: { masterName: "m", nodes: NODES }, cluster: { nodes: NODES } },
    /received cluster and sentinel/,
  );
});

Deno.test("redisOptions alongside a shared client is refused, since it could not apply", () => {
  const shared = { status: "wait", duplicate: () => shared };
  refused({ redis: shared, redisOptions: { db: 1 } }, /'redisOptions' has no effect on a client/);
});

Deno.test("ioredis's keyPrefix is refused wherever it is set, naming where and what was received", () => {
  const keyPrefix =
    /with ioredis's keyPrefix \(([^)]+)\): .*own queueName instead: received "app:"/;
  const where = (options: WorkerOptions) => {
    let message = "";
    assert.throws(() => new Worker({ handleSignals: false, ...options }), (error: Error) => {
      assert.ok(error instanceof TypeError, `${error.name}: ${error.message}`);
      message = error.message;
      return true;
    });
    return keyPrefix.exec(message)?.[1];
  };
  assert.equal(where({ redisOptions: { keyPrefix: "app:" } }), "redisOptions.keyPrefix");
  assert.equal(
    where({ sentinel: { masterName: "m", nodes: NODES, keyPrefix: "app:" } }),
    "sentinel.keyPrefix",
  );
  assert.equal(where({ cluster: { nodes: NODES, keyPrefix: "app:" } }), "cluster.keyPrefix");
  assert.equal(
    where({ cluster: { nodes: NODES, redisOptions: { keyPrefix: "app:" } } }),
    "cluster.redisOptions.keyPrefix",
  );
  const shared = { status: "wait", duplicate: () => shared, options: { keyPrefix: "app:" } };
  assert.equal(where({ redis: shared }), "the keyPrefix of the client passed as 'redis'");
});

Deno.test("Sentinel options need a master name and sentinel addresses", () => {
  refused(
    { sentinel: { nodes: NODES } as never },
    /'sentinel\.masterName' must be a non-empty string: received undefined/,
  );
  refused(
    { sentinel: { masterName: "mymaster", nodes: [] } },
    /'sentinel\.nodes' must be a non-empty array of \{ host, port \}: received \[\]/,
  );
  refused(
    { sentinel: { masterName: "mymaster", nodes: [{ host: "h", port: "26379" as never }] } },
    /'sentinel\.nodes' must be a non-empty array/,
  );
});

Deno.test("Cluster options need node addresses and reads from masters", () => {
  refused({ cluster: {} as never }, /'cluster\.nodes' must be a non-empty array/);
  refused(
    { cluster: { nodes: NODES, scaleReads: "slave" } },
    /'cluster\.scaleReads' must be "master".*received "slave"/,
  );
});

Deno.test("redisTimeout must be a positive number of milliseconds", () => {
  refused({ redisTimeout: 0 }, /'redisTimeout' must be a number of milliseconds ≥ 1/, RangeError);
  refused({ redisTimeout: "5s" as never }, /received "5s" \(string\)/, RangeError);
});

Deno.test("a worker with Sentinel or Cluster options connects nothing until its first command", async () => {
  for (
    const options of [
      { sentinel: { masterName: "mymaster", nodes: NODES } },
      { cluster: { nodes: NODES } },
    ]
  ) {
    await using worker = new Worker({ ...options, handleSignals: false, logLevel: "silent" });
    const idle = worker.task(async function idle(): Promise<void> {});
    assert.equal(idle.name, "idle");
    assert.equal(worker.running(), 0);
  }
});
