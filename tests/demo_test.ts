/**
 * `deno task demo` as a newcomer runs it, in real subprocesses: in a real terminal it runs to the
 * end without a permission prompt, and on a machine without redis-server it explains what is
 * missing and how to get it, without a stack trace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoExecutable } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** A safety net for a demo that hangs (a prompt waiting for an answer), not a speed target. */
const HANG_LIMIT_MS = 60_000;

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * The deno this test may run, as a path: a child whose PATH lacks redis-server lacks the deno
 * that the permission set's `run: ["deno"]` found on the test's own PATH.
 */
function denoPath(): string {
  const command = denoExecutable();
  if (command !== "deno") return command;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/deno`).isFile) return `${dir}/deno`;
    } catch {
      // Not in this directory.
    }
  }
  return command;
}

/** Runs `command` with `args` in the repository, its environment changed by `env`. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(HANG_LIMIT_MS),
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("deno task demo without redis-server says what is missing and how to install it, with no stack trace", async () => {
  // A PATH with deno on it and no redis-server.
  const bin = await Deno.makeTempDir({ prefix: "streaq-demo-path-" });
  try {
    await Deno.writeTextFile(`${bin}/deno`, `#!/bin/sh\nexec '${Deno.execPath()}' "$@"\n`);
    await Deno.chmod(`${bin}/deno`, 0o755);
    const url = `redis://127.0.0.1:${closedPort()}`;
    const { code, output } = await run(denoPath(), ["task", "demo"], {
      PATH: bin,
      REDIS_URL: url,
    });
    assert.equal(code, 1, output);
    assert.ok(output.includes(`nothing answers at ${url} (REDIS_URL)`), output);
    assert.match(output, /redis-server, .* is not installed \(it is not on PATH\)/);
    assert.match(output, /Debian\/Ubuntu: sudo apt-get install redis-server/);
    assert.match(output, /macOS: +brew install redis/);
    assert.match(output, /point REDIS_URL at it/);
    assert.doesNotMatch(output, /^\s+at /m, "no stack trace");
    assert.doesNotMatch(output, /Uncaught|run the tests again/);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("deno task demo in a real terminal runs to the end with no permission prompt", async () => {
  // `script` gives the demo a pseudo-terminal, where Deno would prompt for a missing permission.
  const url = `redis://127.0.0.1:${closedPort()}`;
  const { code, output } = await run(
    "script",
    ["-qec", `exec '${Deno.execPath()}' task demo`, "/dev/null"],
    { REDIS_URL: url },
  );
  assert.doesNotMatch(output, /Deno requests|Allow\?/, "no permission prompt");
  assert.equal(code, 0, output);
  assert.match(output, /started a private redis-server/);
  assert.match(output, /Demo finished in \d+ ms/);
  assert.doesNotMatch(output, /Warning/, "no warning");
});
