import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src", import.meta.url));
const UI = join(SRC, "ui");
/** The one module of the layers below that the dashboard may import. */
const READ_API = join(SRC, "client", "queue_reads.ts");

/** Every TypeScript file under `dir`, recursively. */
async function sources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

/** The specifiers a module imports or re-exports from, static or dynamic. */
function specifiers(text: string): string[] {
  const found = text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g);
  return [...found].map((m) => m[1]);
}

Deno.test("the dashboard imports only its own files, the public modules of src/ and the read API", async () => {
  const files = await sources(UI);
  assert.ok(files.length > 10, "the dashboard's files are found");
  const wrong: string[] = [];
  for (const file of files) {
    for (const specifier of specifiers(await Deno.readTextFile(file))) {
      if (!specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), specifier);
      const own = target.startsWith(UI + "/");
      const topLevel = dirname(target) === SRC;
      if (!own && !topLevel && target !== READ_API) {
        wrong.push(`${relative(SRC, file)} imports ${specifier}`);
      }
    }
  }
  assert.deepEqual(wrong, [], "imports of Redis plumbing, the run loop or client internals");
});

Deno.test("the dashboard spells no key, no task-hash field and no Lua", async () => {
  const wrong: string[] = [];
  for (const file of await sources(UI)) {
    const text = await Deno.readTextFile(file);
    for (const [i, line] of text.split("\n").entries()) {
      if (/\bTASK_FIELD\b|\bKEY\b|\bCONSUMER_GROUP\b|redis\.call|\.keys\./.test(line)) {
        wrong.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("the library's layers import neither the dashboard nor the command line", async () => {
  const wrong: string[] = [];
  const apps = [UI, join(SRC, "cli")].map((dir) => dir + "/");
  for (const file of await sources(SRC)) {
    if (apps.some((app) => file.startsWith(app))) continue;
    for (const specifier of specifiers(await Deno.readTextFile(file))) {
      if (!specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), specifier);
      if (apps.some((app) => target.startsWith(app))) {
        wrong.push(`${relative(SRC, file)} imports ${specifier}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});
