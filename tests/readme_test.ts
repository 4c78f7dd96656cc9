/**
 * The README's quick start, run as a new user would run it: its `worker.ts` and `client.ts`
 * blocks written to a fresh directory with a `deno.json` holding the README's permission sets,
 * and its commands run exactly as shown, with the sets and with the flags it lists, in a real
 * pseudo-terminal (`script`), where Deno would prompt for any permission they lack. Only two
 * things differ from a user's machine: the Redis is a private test server (its address replaces
 * `localhost:6379` in the permission sets and the flags, and `REDIS_URL` points at it, which the
 * quick start reads), and `jsr:@streaq/streaq` is mapped to this checkout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { codeBlocks } from "../tools/_markdown.ts";
import { eventually } from "./_helpers.ts";
import { startRedis } from "./_redis.ts";
import { CTRL_C, PROMPT, Terminal } from "./_terminal.ts";

const CHECKOUT = new URL("../", import.meta.url);
const README_REDIS = "localhost:6379";

/** What the README's quick start section holds. */
interface QuickStart {
  /** The ts blocks named by their first line (`// worker.ts`), by file name. */
  modules: Map<string, string>;
  /** The json block: the `deno.json` with the permission sets. */
  config: { permissions: Record<string, { net?: string[] }> };
  /** The `deno run` lines of the sh block. */
  commands: string[];
}

function readQuickStart(): QuickStart {
  const readme = Deno.readTextFileSync(new URL("README.md", CHECKOUT));
  const start = readme.indexOf("\n## Quick start\n");
  assert.ok(start >= 0, "the README has a '## Quick start' section");
  const end = readme.indexOf("\n## ", start + 1);
  const blocks = codeBlocks(readme.slice(start, end < 0 ? undefined : end));
  const modules = new Map<string, string>();
  for (const block of blocks.filter((b) => b.lang === "ts")) {
    const name = block.text.match(/^\/\/ ([\w.-]+\.ts)/)?.[1];
    if (name) modules.set(name, block.text + "\n");
  }
  const json = blocks.find((b) => b.lang === "json");
  assert.ok(json, "the quick start has a json block with the permission sets");
  const commands = blocks.filter((b) => b.lang === "sh")
    .flatMap((b) => b.text.split("\n"))
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line.startsWith("deno run"));
  return { modules, config: JSON.parse(json.text), commands };
}

/** Throws if a permission prompt appeared in `terminal`'s output. */
function assertNoPrompt(terminal: Terminal, who: string): void {
  assert.equal(
    terminal.output.includes(PROMPT),
    false,
    `the ${who} asked for a permission:\n${terminal.output}`,
  );
}

/** The quick start's commands run with permission sets (`-P=`), or with flags. */
const VARIANTS = {
  "with the permission sets of its deno.json": (command: string) => command.includes(" -P="),
  "with the flags it lists": (command: string) => command.includes(" --allow-"),
};

for (const [variant, chosen] of Object.entries(VARIANTS)) {
  Deno.test(`the README's quick start runs as written in a terminal ${variant}: no prompt, the client prints its result and exits, Ctrl-C ends the worker`, async () => {
    const quickStart = readQuickStart();
    const commands = quickStart.commands.filter(chosen);
    await runQuickStart(quickStart, commands);
  });
}

async function runQuickStart(quickStart: QuickStart, commands: string[]): Promise<void> {
  assert.ok(quickStart.modules.has("worker.ts"), "the quick start has a `// worker.ts` block");
  assert.ok(quickStart.modules.has("client.ts"), "the quick start has a `// client.ts` block");
  await using redis = await startRedis();
  const address = `${redis.host}:${redis.port}`;
  const workerCommand = commands.find((c) => c.endsWith(" worker.ts"))
    ?.replaceAll(README_REDIS, address);
  const clientCommand = commands.find((c) => c.endsWith(" client.ts"))
    ?.replaceAll(README_REDIS, address);
  assert.ok(workerCommand && clientCommand, `commands found: ${commands.join(" | ")}`);

  const dir = await Deno.makeTempDir({ prefix: "streaq-readme-" });
  try {
    for (const [name, text] of quickStart.modules) await Deno.writeTextFile(`${dir}/${name}`, text);
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(userConfig(quickStart, redis)));
    await Deno.copyFile(new URL("deno.lock", CHECKOUT), `${dir}/deno.lock`);
    const env = { REDIS_URL: redis.url };

    const worker = new Terminal(workerCommand, { cwd: dir, env });
    try {
      await eventually(() => {
        assertNoPrompt(worker, "worker");
        return worker.output.includes("started on queue");
      }, { timeout: 30_000, what: "the worker to start" });

      const client = new Terminal(clientCommand, { cwd: dir, env });
      try {
        const exited = await client.endsWithin(30_000);
        assertNoPrompt(client, "client");
        assert.ok(exited, `the client did not exit by itself:\n${client.output}`);
        const { code } = await client.exit();
        assert.equal(code, 0, `the client exited with code ${code}:\n${client.output}`);
        assert.match(client.output, /^4 words\r?$/m);
      } finally {
        await client[Symbol.asyncDispose]();
      }

      await worker.type(CTRL_C);
      const ended = await worker.endsWithin(15_000);
      assertNoPrompt(worker, "worker");
      assert.ok(ended, `Ctrl-C did not end the worker:\n${worker.output}`);
    } finally {
      await worker[Symbol.asyncDispose]();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The user's `deno.json`: the README's permission sets with the test Redis in place of
 * `localhost:6379`, and this checkout in place of the published package.
 */
function userConfig(quickStart: QuickStart, redis: { host: string; port: number }) {
  const checkout = JSON.parse(Deno.readTextFileSync(new URL("deno.json", CHECKOUT)));
  const permissions = structuredClone(quickStart.config.permissions);
  let replaced = 0;
  for (const set of Object.values(permissions)) {
    set.net = set.net?.map((host) => {
      if (host !== README_REDIS) return host;
      replaced++;
      return `${redis.host}:${redis.port}`;
    });
  }
  assert.ok(replaced > 0, `the README's permission sets grant net to ${README_REDIS}`);
  return {
    ...quickStart.config,
    permissions,
    imports: { ...checkout.imports, "jsr:@streaq/streaq": new URL("mod.ts", CHECKOUT).href },
    nodeModulesDir: "none",
  };
}
