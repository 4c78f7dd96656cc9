/**
 * The library's configuration holds the library's dependencies only: a fresh clone running
 * `deno task demo`, or a user importing streaq, downloads ioredis and what ioredis needs, and
 * nothing the benchmarks or the browser tests use (they have their own configurations,
 * `bench/deno.json` and `tests/tools.json`, each with its own lockfile).
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoExecutable } from "./_helpers.ts";
import { IOREDIS_VERSION } from "../src/redis/_ioredis.ts";

const ROOT = new URL("../", import.meta.url);

interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, { dependencies?: string[] }>;
}

/** The npm packages (name@version) of the module graph of `entry`, as `deno info` lists them. */
async function npmPackagesOf(entry: string): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
    args: ["info", "--json", `--config=${new URL("deno.json", ROOT).pathname}`, entry],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout));
  return Object.keys(info.npmPackages).sort();
}

Deno.test("the library's import map and lockfile hold ioredis and its dependencies only, and there is no package.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert.deepEqual(config.imports, { ioredis: `npm:ioredis@${IOREDIS_VERSION}` });
  const lock: Lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", ROOT)));
  assert.deepEqual(lock.specifiers, { [`npm:ioredis@${IOREDIS_VERSION}`]: IOREDIS_VERSION });
  // Every package of the lockfile is ioredis or one it needs, directly or not.
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    for (const dependency of lock.npm[name]?.dependencies ?? []) {
      visit(Object.keys(lock.npm).find((key) => key.startsWith(`${dependency}@`)) ?? dependency);
    }
  };
  visit(`ioredis@${IOREDIS_VERSION}`);
  assert.deepEqual(Object.keys(lock.npm).sort(), [...needed].sort());
  // deno task installs every package of a package.json it finds, build scripts included.
  await assert.rejects(Deno.stat(new URL("package.json", ROOT)), Deno.errors.NotFound);
});

Deno.test("the modules of the library, its command line, its dashboard and the demo load the lockfile's packages only", async () => {
  const lock: Lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", ROOT)));
  const locked = Object.keys(lock.npm).sort();
  for (const entry of ["mod.ts", "src/cli/main.ts", "src/ui/mod.ts", "examples/demo.ts"]) {
    const packages = await npmPackagesOf(new URL(entry, ROOT).pathname);
    assert.ok(packages.includes(`ioredis@${IOREDIS_VERSION}`), `${entry}: ${packages.join(", ")}`);
    assert.deepEqual(packages.filter((name) => !locked.includes(name)), [], entry);
  }
});
