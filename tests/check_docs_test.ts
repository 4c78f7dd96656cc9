/**
 * The docs checker (`tools/check_docs.ts`, run by `deno task check`), run as `deno task check`
 * runs it, on temporary Markdown files: what it reports, at which file and line, and that docs
 * without mistakes pass.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoExecutable } from "./_helpers.ts";

const CHECKER = new URL("../tools/check_docs.ts", import.meta.url).pathname;

/** Writes `files` (path → text) under a new temporary root and runs the checker on it. */
async function checkDocs(files: Record<string, string>) {
  const root = await Deno.makeTempDir({ prefix: "streaq-docs-test-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(`${root}/${path}`.replace(/\/[^/]+$/, ""), { recursive: true });
      await Deno.writeTextFile(`${root}/${path}`, text);
    }
    const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write=/tmp",
        "--allow-run=deno",
        CHECKER,
        `--root=${root}`,
      ],
      stdin: "null",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    return { code, output };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const FENCE = "```";

Deno.test("the docs checker passes docs whose blocks compile and whose links resolve", async () => {
  const { code, output } = await checkDocs({
    "README.md": [
      "# Demo", //  1
      "", //        2
      `${FENCE}ts`, // 3
      "// worker.ts", // 4
      'import { Worker } from "jsr:@streaq/streaq";',
      "export const worker = new Worker();",
      "export const add = worker.task(async function add(a: number, b: number): Promise<number> {",
      "  return await Promise.resolve(a + b);",
      "});",
      FENCE,
      "",
      `${FENCE}ts`,
      'import { add } from "./worker.ts";',
      "await add.enqueue(1, 2);",
      FENCE,
      "",
      `${FENCE}json`,
      '{ "permissions": { "client": { "env": true } } }',
      FENCE,
      "",
      "See [the guide](docs/guide.md#a-section-with-code), [above](#demo) and",
      "[the site](https://example.com).",
      "",
    ].join("\n"),
    "docs/guide.md":
      "# Guide\n\n## A section, with `code`\n\nBack to [the README](../README.md).\n",
  });
  assert.equal(code, 0, output);
  assert.match(output, /no problems/);
});

Deno.test("the docs checker reports a block that does not compile and a broken link, at their file and line", async () => {
  const { code, output } = await checkDocs({
    "deno.json": JSON.stringify({ publish: { include: ["README.md", "docs/*.md"] } }),
    "README.md": [
      "# Demo", //                                                          1
      "", //                                                                2
      `${FENCE}ts`, //                                                      3
      'import { Worker } from "jsr:@streaq/streaq";', //                    4
      "const worker = new Worker();", //                                    5
      "worker.task(async function add(a: number): Promise<number> { return await Promise.resolve(a); });",
      'await worker.enqueueMany("not an array");', //                      7
      FENCE, //                                                             8
      "", //                                                                9
      "[missing](docs/missing.md) and [no such heading](docs/guide.md#nowhere)", // 10
      "", //                                                               11
      "[unpublished](examples/app.ts) and [absolute](/docs/guide.md)", //  12
      "", //                                                               13
      `${FENCE}json`, //                                                   14
      '{ "permissions": { "client": { "env": true, } } }', //             15
      FENCE, //                                                            16
      "",
    ].join("\n"),
    "docs/guide.md": "# Guide\n",
    "examples/app.ts": "export {};\n",
  });
  assert.equal(code, 1, output);
  const lines = output.split("\n");
  const reported = (pattern: RegExp) => lines.some((line) => pattern.test(line));
  assert.ok(reported(/^README\.md:7: ts block does not type-check: TS\d+/), output);
  assert.ok(reported(/^README\.md:10: link 'docs\/missing\.md': docs\/missing\.md does not exist/));
  assert.ok(reported(/^README\.md:10: link 'docs\/guide\.md#nowhere': .*no heading/), output);
  assert.ok(reported(/^README\.md:12: link 'examples\/app\.ts': .*not published/), output);
  assert.ok(reported(/^README\.md:12: link '\/docs\/guide\.md' starts with '\/'/), output);
  assert.ok(reported(/^README\.md:14: json block does not parse/), output);
  assert.match(output, /6 problem\(s\)/);
});
