/**
 * Real `redis-server` processes for tests, each on its own free loopback port and in its own
 * temporary directory, so no test ever touches a user's Redis on port 6379.
 *
 * @module
 */

/** A redis-server started by this module. */
export interface RedisServer {
  /** Always the loopback address `127.0.0.1`. */
  readonly host: string;
  /** The TCP port, below 55536 so that a Cluster bus port (`port + 10000`) stays valid. */
  readonly port: number;
  /** `redis://127.0.0.1:${port}`. */
  readonly url: string;
  /** Stops the server gracefully and waits until it has exited. Calling it again does nothing. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port with the same arguments. */
  restart(): Promise<void>;
  /**
   * Kills the server with SIGKILL, as a crash would, and waits until it has exited; its
   * directory stays, so {@linkcode RedisServer.restart} can bring it back. Only for servers
   * from {@linkcode startRedis} (a shared, daemonized server is not a child to kill).
   */
  kill(): Promise<void>;
  /** Runs `redis-cli` with `args` against this server and returns its trimmed output. */
  cli(...args: string[]): Promise<string>;
  /** Same as {@linkcode RedisServer.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Extra `redis-server` arguments, appended after the defaults so that they win, for example
   * `["--appendonly", "yes"]`.
   *
   * @default {[]}
   */
  args?: string[];
  /**
   * Start a Sentinel (`redis-server <config file> --sentinel`) instead of a data server. Its
   * configuration file is created empty in the server's directory (Sentinel rewrites it), so
   * `args` carry the monitoring lines, for example
   * `["--sentinel", "monitor", "mymaster", "127.0.0.1", "7000", "2"]`.
   *
   * @default {false}
   */
  sentinel?: boolean;
}

const HOST = "127.0.0.1";
/** The highest port whose Cluster bus port (`port + 10000`) is still a valid port. */
const MAX_PORT = 55_535;
const START_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 20;
const START_ATTEMPTS = 5;
const NOT_FOUND_MESSAGE = "redis-server was not found on PATH. Install it (Debian/Ubuntu: " +
  "apt-get install redis-server; macOS: brew install redis) and run the tests again.";

/** Servers still running in this isolate, killed on "unload" so none outlives the test run. */
const running = new Set<LocalRedis>();
globalThis.addEventListener("unload", () => {
  for (const server of running) server.killNow();
});

class PortInUseError extends Error {}

/**
 * One redis-server. An attached server is a child process of this isolate. A detached one
 * daemonizes itself, so the process this isolate spawns exits at once: that is what lets
 * {@linkcode sharedRedis} start a server inside one test and keep it for the next ones without
 * tripping the op and resource sanitizers, which flag any child process still running when the
 * test that spawned it ends (`child.unref()` does not help). Deno.kill() needs permission to run
 * any program, so a detached server is stopped with `redis-cli SHUTDOWN NOSAVE` instead.
 */
class LocalRedis implements RedisServer {
  readonly host = HOST;
  readonly port: number;
  readonly url: string;
  readonly #dir: string;
  readonly #args: string[];
  readonly #detached: boolean;
  readonly #sentinel: boolean;
  #child: Deno.ChildProcess | undefined;
  #childExit: Promise<string> | undefined;
  #childExited = false;

  constructor(port: number, dir: string, args: string[], detached: boolean, sentinel = false) {
    this.port = port;
    this.url = `redis://${HOST}:${port}`;
    this.#dir = dir;
    this.#detached = detached;
    this.#sentinel = sentinel;
    this.#args = [
      // Sentinel mode wants its (writable) configuration file as the first argument.
      ...(sentinel ? [this.#sentinelConfig, "--sentinel"] : []),
      ...["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
      ...["--dir", dir, "--logfile", this.#logFile],
      ...(detached
        ? ["--daemonize", "yes", "--pidfile", `${dir}/redis.pid`]
        : ["--daemonize", "no"]),
      ...args,
    ];
  }

  get #logFile(): string {
    return `${this.#dir}/redis.log`;
  }

  get #sentinelConfig(): string {
    return `${this.#dir}/sentinel.conf`;
  }

  /** Starts the process and resolves once it answers PING. */
  async launch(): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    // A restart must not find the previous run's "ready" line.
    await Deno.remove(this.#logFile).catch(() => {});
    // Kept across restarts: Sentinel records what it learnt (the current master) there.
    if (this.#sentinel) await Deno.writeTextFile(this.#sentinelConfig, "", { append: true });
    const command = new Deno.Command("redis-server", {
      args: this.#args,
      stdin: "null",
      stdout: "null",
      // Configuration errors go to stderr, before the log file is opened.
      stderr: "piped",
    });
    if (this.#detached) {
      let output: Deno.CommandOutput;
      try {
        output = await command.output();
      } catch (error) {
        explainNotFound(error);
      }
      const { code, stderr } = output;
      if (code !== 0) throw await this.#startError(`exited with code ${code}`, decode(stderr));
    } else {
      let child: Deno.ChildProcess;
      try {
        child = command.spawn();
      } catch (error) {
        explainNotFound(error);
      }
      this.#child = child;
      this.#childExited = false;
      this.#childExit = Promise.all([new Response(child.stderr).text(), child.status])
        .then(([stderr]) => {
          this.#childExited = true;
          return stderr;
        });
      running.add(this);
    }
    await this.#waitUntilReady();
  }

  async #waitUntilReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (true) {
      const log = await this.#readLog();
      // The log is our own, so this line proves that the server on the port is ours.
      const ready = this.#sentinel ? "Sentinel ID is" : "Ready to accept connections";
      if (log.includes(ready) && await ping(this.port)) {
        // Only now is a detached server known to be ours to shut down.
        running.add(this);
        return;
      }
      if (log.includes("Address already in use")) {
        throw new PortInUseError(`Cannot start redis-server as port ${this.port} is in use`);
      }
      if (this.#childExited) throw await this.#startError("exited early", await this.#childExit);
      if (Date.now() > deadline) {
        throw await this.#startError(`did not answer in ${START_TIMEOUT_MS} ms`);
      }
      await delay(POLL_MS);
    }
  }

  async #startError(reason: string, stderr = ""): Promise<Error> {
    const output = `${stderr}\n${(await this.#readLog()).split("\n").slice(-20).join("\n")}`;
    return new Error(
      `Cannot start redis-server on ${HOST}:${this.port} as it ${reason}:\n${output}`,
    );
  }

  async #readLog(): Promise<string> {
    try {
      return await Deno.readTextFile(this.#logFile);
    } catch {
      return "";
    }
  }

  /** Stops the process gracefully; keeps the directory for a restart. */
  async #halt(): Promise<void> {
    const wasRunning = running.delete(this);
    if (this.#child) {
      const child = this.#child;
      this.#child = undefined;
      kill(child, "SIGTERM"); // Redis shuts down cleanly on SIGTERM.
      const timer = setTimeout(() => kill(child, "SIGKILL"), STOP_TIMEOUT_MS);
      await this.#childExit;
      clearTimeout(timer);
    } else if (this.#childExit) {
      await this.#childExit; // A concurrent stop() is already on it.
    } else if (wasRunning) {
      await this.cli("SHUTDOWN", "NOSAVE").catch(() => {});
      await this.#waitUntilClosed();
    }
  }

  async #waitUntilClosed(): Promise<void> {
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (await ping(this.port)) {
      if (Date.now() > deadline) throw new Error(`Cannot stop redis-server on port ${this.port}`);
      await delay(POLL_MS);
    }
  }

  async stop(): Promise<void> {
    await this.#halt();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async restart(): Promise<void> {
    await this.#halt();
    await this.launch();
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) throw new Error(`Cannot kill redis-server on port ${this.port}: not a child`);
    this.#child = undefined;
    running.delete(this);
    kill(child, "SIGKILL");
    await this.#childExit;
  }

  async cli(...args: string[]): Promise<string> {
    const { code, stdout, stderr } = await new Deno.Command("redis-cli", {
      args: ["-h", HOST, "-p", String(this.port), ...args],
      stdin: "null",
    }).output();
    if (code !== 0) {
      throw new Error(
        `Cannot run redis-cli ${args.join(" ")}: exit code ${code}: ${decode(stderr)}`,
      );
    }
    return decode(stdout).trim();
  }

  /** Synchronous last-resort stop for the "unload" event, where nothing can be awaited. */
  killNow(): void {
    try {
      if (this.#child) kill(this.#child, "SIGKILL");
      else {
        new Deno.Command("redis-cli", {
          args: ["-h", HOST, "-p", String(this.port), "SHUTDOWN", "NOSAVE"],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).outputSync();
      }
      Deno.removeSync(this.#dir, { recursive: true });
    } catch {
      // Already gone: nothing to clean up.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a private redis-server on a free loopback port (never 6379) with no persistence
 * (`--save "" --appendonly no`) and its own temporary directory.
 *
 * @param options Extra arguments for redis-server.
 * @returns The server, once it answers PING.
 * @throws {Error} If redis-server is not on PATH or does not start within 5 seconds.
 *
 * @example Start a server for one test
 * ```ts ignore
 * await using server = await startRedis();
 * console.log(await server.cli("PING")); // "PONG"
 * ```
 */
export function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return launchOnFreePort(options.args ?? [], false, options.sentinel);
}

let shared: Promise<RedisServer> | undefined;

/**
 * One server shared by all tests of the calling module: started on first call and stopped when
 * the module's isolate unloads, so tests need not stop it. Tests sharing it must use their own
 * keys, for example through {@linkcode uniqueQueue}, and must not stop or restart it: a test
 * that does so wants its own {@linkcode startRedis}.
 *
 * It runs daemonized (see `LocalRedis`), so if the test process is killed before it unloads
 * (SIGKILL, or SIGINT sent to the deno process alone) the server is left running.
 *
 * @returns The shared server, once it answers PING.
 * @throws {Error} If redis-server is not on PATH or does not start within 5 seconds.
 *
 * @example Use the shared server
 * ```ts ignore
 * const server = await sharedRedis();
 * console.log(server.url);
 * ```
 */
export function sharedRedis(): Promise<RedisServer> {
  shared ??= launchOnFreePort([], true).catch((error) => {
    shared = undefined; // Let the next test try again and report its own failure.
    throw error;
  });
  return shared;
}

/**
 * Returns a queue name that no other test uses.
 *
 * @param prefix The start of the name.
 * @returns `${prefix}-${16 random hex digits}`.
 *
 * @example A queue for one test
 * ```ts ignore
 * const name = uniqueQueue("retry"); // "retry-3f9a0c2d41b7e855"
 * ```
 */
export function uniqueQueue(prefix = "test"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

async function launchOnFreePort(
  args: string[],
  detached: boolean,
  sentinel = false,
): Promise<RedisServer> {
  for (let attempt = 1;; attempt++) {
    // The permission set of the tests allows writing to /tmp only.
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "streaq-redis-" });
    const server = new LocalRedis(freePort(), dir, args, detached, sentinel);
    try {
      await server.launch();
      return server;
    } catch (error) {
      await server.stop();
      // Another process may take the port between our check and redis binding it: try another.
      if (!(error instanceof PortInUseError) || attempt === START_ATTEMPTS) throw error;
    }
  }
}

function freePort(): number {
  const port = bindAndRelease(0);
  if (port !== undefined && port <= MAX_PORT) return port;
  for (let tries = 0; tries < 100; tries++) {
    const candidate = bindAndRelease(20_000 + Math.floor(Math.random() * 35_000));
    if (candidate !== undefined) return candidate;
  }
  throw new Error(`Cannot find a free port on ${HOST} below ${MAX_PORT + 1}`);
}

/** Binds `port` (0 lets the OS choose) and releases it; undefined if the port is taken. */
function bindAndRelease(port: number): number | undefined {
  try {
    const listener = Deno.listen({ hostname: HOST, port });
    const bound = listener.addr.port;
    listener.close();
    return bound;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return undefined;
    throw error;
  }
}

/** True if something on `port` answers a RESP PING (an error reply such as NOAUTH counts). */
async function ping(port: number): Promise<boolean> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: HOST, port });
  } catch {
    return false;
  }
  try {
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const read = await conn.read(buffer);
    return read !== null && /^[+-]/.test(decode(buffer.subarray(0, read)));
  } catch {
    return false;
  } finally {
    conn.close();
  }
}

function explainNotFound(error: unknown): never {
  if (error instanceof Deno.errors.NotFound) throw new Error(NOT_FOUND_MESSAGE, { cause: error });
  throw error;
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // It has already exited.
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
