/**
 * How the browser tests find Chromium (`_chromium.ts`): `CHROME_PATH` first, then the usual
 * locations, and a message naming what is missing and how to install it when nothing is there.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CHROMIUM_LOCATIONS, findChromium } from "./_chromium.ts";

/** A temporary directory holding an empty file named `chromium`, removed on dispose. */
async function fakeBrowser(): Promise<{ dir: string; path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "streaq-chromium-" });
  const path = `${dir}/chromium`;
  await Deno.writeTextFile(path, "");
  return { dir, path, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("findChromium() names what is missing and how to install it when no browser exists", async () => {
  await using fake = await fakeBrowser();
  const missing = [`${fake.dir}/nowhere/chromium`, `${fake.dir}/nowhere/google-chrome`];
  const error = await findChromium({ chromePath: undefined, locations: missing }).then(
    () => assert.fail("a browser was found where there is none"),
    (error: Error) => error,
  );
  assert.match(error.message, /^Cannot run the browser tests as no Chromium was found/);
  assert.match(error.message, /CHROME_PATH is not set/);
  for (const path of missing) assert.ok(error.message.includes(path), `names ${path}`);
  assert.match(error.message, /sudo apt-get install chromium/);
  assert.match(error.message, /brew install --cask google-chrome/);
});

Deno.test("findChromium() takes the first usual location that holds a file", async () => {
  await using fake = await fakeBrowser();
  const locations = [`${fake.dir}/nowhere/chromium`, fake.dir, fake.path];
  assert.equal(await findChromium({ chromePath: undefined, locations }), fake.path);
});

Deno.test("findChromium() refuses a CHROME_PATH that is not a file rather than use another browser", async () => {
  await using fake = await fakeBrowser();
  const typo = `${fake.dir}/chromuim`;
  await assert.rejects(
    findChromium({ chromePath: typo, locations: [fake.path] }),
    (error: Error) => {
      assert.match(error.message, /CHROME_PATH must name a Chromium or Chrome executable/);
      assert.ok(error.message.includes(`received "${typo}", which is not a file`));
      return true;
    },
  );
});

Deno.test("findChromium() says where to allow a CHROME_PATH the permission set does not let it run", async () => {
  await using fake = await fakeBrowser();
  await assert.rejects(findChromium({ chromePath: fake.path }), (error: Error) => {
    assert.match(error.message, /must be a path in the "run" list of the "test" permission set/);
    assert.ok(error.message.includes("tests/tools.json"));
    assert.ok(error.message.includes(`received "${fake.path}"`));
    return true;
  });
});

Deno.test("tests/tools.json lets the browser tests run Chromium from every usual location", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("./tools.json", import.meta.url)),
  ) as { permissions: { test: { run: string[] } } };
  const run = config.permissions.test.run;
  for (const path of CHROMIUM_LOCATIONS) assert.ok(run.includes(path), `${path} may be run`);
});
