/**
 * Checks the documentation as a reader meets it: every ```ts block of `README.md`,
 * `CONTRIBUTING.md` and `docs/*.md` type-checks against this checkout, every ```json block
 * parses, and every relative link or image points at a file (and heading) that exists; the
 * README's also at a file the package publishes, since JSR resolves them against the published
 * files (or the linked repository).
 *
 * Each ts block is written as a module of its own into a temporary directory, next to a
 * generated `deno.json` that maps `jsr:@streaq/streaq` (and its `/cli` and `/ui` exports) to
 * this checkout, and all are checked with one `deno check` run. A block whose first line is a
 * comment naming a file (`// worker.ts`) is written under that name, so the other blocks of the
 * same Markdown file can import it (`import { worker } from "./worker.ts"`); CONTRIBUTING.md
 * describes the convention.
 *
 * ```sh
 * deno task check                        # runs it, with the other checks
 * deno run --allow-read --allow-write=/tmp --allow-run=deno tools/check_docs.ts [--root DIR]
 * ```
 *
 * Exits 0 when everything holds, 1 with one line per problem (`README.md:120: ...`) otherwise.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { codeBlocks, headingAnchors, links } from "./_markdown.ts";

/** A problem found, at a line of a Markdown file. */
export interface Problem {
  /** The Markdown file, relative to the root. */
  file: string;
  /** 1-based line. */
  line: number;
  /** What is wrong. */
  message: string;
}

/** Where a generated module came from. */
interface Origin {
  file: string;
  /** The line of the opening fence: the module's line N is the Markdown line `fence + N`. */
  fence: number;
}

const CHECKOUT = new URL("../", import.meta.url);
const NAMED_BLOCK = /^\/\/ ((?:[\w.-]+\/)*[\w.-]+\.tsx?)(?=$|[\s:])/;
const EXTERNAL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;

/** The Markdown files the checker reads: README.md, CONTRIBUTING.md and docs/*.md. */
export function markdownFiles(root: string): string[] {
  const files = ["README.md", "CONTRIBUTING.md"].filter((name) => exists(`${root}/${name}`));
  try {
    const docs = [...Deno.readDirSync(`${root}/docs`)]
      .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
      .map((entry) => `docs/${entry.name}`)
      .sort();
    files.push(...docs);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files;
}

/** Checks every link and image of the Markdown `files` under `root`. */
export function checkLinks(root: string, files: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  const published = publishedMatcher(root);
  for (const file of files) {
    const text = Deno.readTextFileSync(`${root}/${file}`);
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    for (const link of links(text)) {
      const problem = checkLink(root, file, dir, link.target, published);
      if (problem) problems.push({ file, line: link.line, message: problem });
    }
  }
  return problems;
}

function checkLink(
  root: string,
  file: string,
  dir: string,
  target: string,
  published: ((path: string) => boolean) | undefined,
): string | undefined {
  if (EXTERNAL.test(target)) return undefined;
  if (target.startsWith("/")) {
    return `link '${target}' starts with '/', which JSR resolves against jsr.io: make it relative`;
  }
  const [rawPath, anchor] = splitAnchor(target);
  const path = rawPath === "" ? file : normalize(dir ? `${dir}/${rawPath}` : rawPath);
  if (path === undefined) return `link '${target}' leaves the repository`;
  if (!exists(`${root}/${path}`)) return `link '${target}': ${path} does not exist`;
  if (anchor !== undefined && path.endsWith(".md")) {
    const anchors = headingAnchors(Deno.readTextFileSync(`${root}/${path}`));
    if (!anchors.has(decodeURIComponent(anchor))) {
      return `link '${target}': ${path} has no heading with the anchor #${anchor}`;
    }
  }
  if (file === "README.md" && published && !published(path)) {
    return `link '${target}': ${path} is not published (deno.json "publish"), so the link ` +
      "is broken on the JSR package page";
  }
  return undefined;
}

function splitAnchor(target: string): [string, string | undefined] {
  const hash = target.indexOf("#");
  return hash < 0 ? [target, undefined] : [target.slice(0, hash), target.slice(hash + 1)];
}

/** `a/./b/../c` as `a/c`; undefined when it climbs above the root. */
function normalize(path: string): string | undefined {
  const parts: string[] = [];
  for (const part of decodeURI(path).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(part);
  }
  return parts.join("/");
}

/** Whether a path is among the published files of `root`'s deno.json; undefined without one. */
function publishedMatcher(root: string): ((path: string) => boolean) | undefined {
  let config;
  try {
    config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
  } catch {
    return undefined;
  }
  const include: string[] | undefined = config.publish?.include;
  if (!include) return undefined;
  const patterns = include.map((entry) => {
    const clean = entry.replace(/^\.\//, "");
    if (clean.endsWith("/")) return (path: string) => path.startsWith(clean);
    const regex = new RegExp(
      `^${clean.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}(?:/.*)?$`,
    );
    return (path: string) => regex.test(path);
  });
  return (path) => patterns.some((matches) => matches(path));
}

/** Parses every ```json block of the Markdown `files` under `root`. */
export function checkJsonBlocks(root: string, files: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  for (const file of files) {
    for (const block of codeBlocks(Deno.readTextFileSync(`${root}/${file}`))) {
      if (block.lang !== "json") continue;
      try {
        JSON.parse(block.text);
      } catch (error) {
        problems.push({
          file,
          line: block.line,
          message: `json block does not parse: ${(error as Error).message}`,
        });
      }
    }
  }
  return problems;
}

/**
 * Type-checks every ```ts block of the Markdown `files` under `root` with one `deno check`
 * run, in a temporary directory removed afterwards.
 */
export async function checkTsBlocks(root: string, files: readonly string[]): Promise<Problem[]> {
  const work = await Deno.makeTempDir({ prefix: "streaq-docs-" });
  try {
    const { modules, problems } = await writeModules(root, files, work);
    if (modules.size === 0) return problems;
    await writeConfig(work);
    const output = await new Deno.Command("deno", {
      args: ["check", "--quiet", `--config=${work}/deno.json`, ...modules.keys()],
      cwd: work,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    if (!output.success) {
      const text = new TextDecoder().decode(output.stderr) +
        new TextDecoder().decode(output.stdout);
      problems.push(...diagnostics(text, modules));
    }
    return problems;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

async function writeModules(
  root: string,
  files: readonly string[],
  work: string,
): Promise<{ modules: Map<string, Origin>; problems: Problem[] }> {
  const modules = new Map<string, Origin>();
  const problems: Problem[] = [];
  for (const file of files) {
    const dir = `${work}/${file.replaceAll("/", "__")}`;
    const names = new Set<string>();
    for (const block of codeBlocks(await Deno.readTextFile(`${root}/${file}`))) {
      if (block.lang !== "ts" && block.lang !== "typescript") continue;
      const name = block.text.match(NAMED_BLOCK)?.[1] ?? `block_line_${block.line}.ts`;
      if (names.has(name)) {
        problems.push({ file, line: block.line, message: `a second ts block named ${name}` });
        continue;
      }
      names.add(name);
      const path = `${dir}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(path, block.text + "\n");
      modules.set(path, { file, fence: block.line });
    }
  }
  return { modules, problems };
}

/** A deno.json mapping the package's exports to this checkout, with its dependencies. */
async function writeConfig(work: string): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", CHECKOUT)));
  const imports: Record<string, string> = { ...config.imports };
  for (const [key, path] of Object.entries<string>(config.exports)) {
    const target = new URL(path, CHECKOUT).href;
    const subpath = key === "." ? "" : key.slice(1);
    imports[`jsr:${config.name}${subpath}`] = target;
    imports[`${config.name}${subpath}`] = target;
  }
  // Blocks show fragments that declare what they use; an unused name there is no mistake.
  const { noUnusedLocals: _l, noUnusedParameters: _p, ...compilerOptions } =
    config.compilerOptions ?? {};
  await Deno.writeTextFile(
    `${work}/deno.json`,
    JSON.stringify({ imports, compilerOptions, nodeModulesDir: "none" }, null, 2),
  );
  // The checkout's lock pins the same dependency versions, so nothing new is resolved.
  await Deno.copyFile(new URL("deno.lock", CHECKOUT), `${work}/deno.lock`);
}

/** `deno check` diagnostics, each pointed at the Markdown line of the block it is in. */
function diagnostics(output: string, modules: Map<string, Origin>): Problem[] {
  const problems: Problem[] = [];
  const chunks = output.split(/\n(?=TS\d+ \[ERROR\]|error:)/);
  for (const chunk of chunks) {
    const at = chunk.match(/at file:\/\/(\/[^\s:]+):(\d+):(\d+)/);
    const origin = at ? modules.get(at[1]) : undefined;
    const message = chunk.split("\n")[0].trim();
    if (!message || message.startsWith("error: Type checking failed")) continue;
    if (at && origin) {
      const line = origin.fence + Number(at[2]);
      const code = chunk.split("\n").slice(1).find((l) => l.trim() && !l.includes("^"));
      problems.push({
        file: origin.file,
        line,
        message: `ts block does not type-check: ${message}${code ? ` (in: ${code.trim()})` : ""}`,
      });
    } else {
      problems.push({ file: "(deno check)", line: 0, message: chunk.trim() });
    }
  }
  if (problems.length === 0) {
    problems.push({ file: "(deno check)", line: 0, message: output.trim() || "failed" });
  }
  return problems;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Runs every check on the Markdown files under `root`; the problems found, in file order. */
export async function checkDocs(root: string): Promise<Problem[]> {
  const files = markdownFiles(root);
  return [
    ...checkLinks(root, files),
    ...checkJsonBlocks(root, files),
    ...await checkTsBlocks(root, files),
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { root: { type: "string", default: new URL(".", CHECKOUT).pathname } },
  });
  const root = values.root.replace(/\/$/, "");
  const problems = await checkDocs(root);
  const files = markdownFiles(root);
  if (problems.length === 0) {
    console.log(`docs: ${files.length} files checked (${files.join(", ")}): no problems`);
    return;
  }
  for (const { file, line, message } of problems) console.error(`${file}:${line}: ${message}`);
  console.error(`docs: ${problems.length} problem(s) in ${files.length} files`);
  Deno.exit(1);
}

if (import.meta.main) await main();
