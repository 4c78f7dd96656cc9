/**
 * Finding the Worker to run: imports the user's module and picks the export named on the
 * command line, else the export named `worker`, else the only Worker the module exports.
 * Each way this can fail is a {@linkcode UsageError} saying which module, and why.
 *
 * @module
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Worker } from "../worker.ts";
import { type Target, UsageError } from "./args.ts";

/** A Worker found in a module. */
export interface LoadedWorker {
  // deno-lint-ignore no-explicit-any
  readonly worker: Worker<any>;
  /** The export it was found under. */
  readonly exportName: string;
  /** The module's URL (a `file:` URL for a path). */
  readonly url: URL;
}

/** Turns a command line module (a path or a URL) into the URL to import. */
export function moduleUrl(module: string): URL {
  // A scheme of two letters or more: `https:`, `file:`, `jsr:`, `npm:` (not a drive letter).
  if (/^[a-z][a-z0-9+.-]+:/i.test(module)) return new URL(module);
  return pathToFileURL(resolve(module));
}

/**
 * Imports the module and returns its Worker.
 *
 * @throws {UsageError} When the module cannot be loaded, exports no Worker, several Workers
 * and none is named, or the named export is not a Worker.
 */
export async function loadWorker(target: Target): Promise<LoadedWorker> {
  const url = moduleUrl(target.module);
  const shown = url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
  let namespace: Record<string, unknown>;
  try {
    namespace = await importModule(url.href);
  } catch (error) {
    throw new UsageError(`Cannot load module ${shown}: ${describeLoadError(error)}`, {
      cause: error,
    });
  }
  // deno-lint-ignore no-explicit-any
  const workers = Object.entries(namespace).filter((entry): entry is [string, Worker<any>] =>
    isWorker(entry[1])
  );
  if (target.exportName !== undefined) {
    if (!(target.exportName in namespace)) {
      throw new UsageError(
        `Module ${shown} has no export named ${target.exportName}${exportsHint(workers)}`,
      );
    }
    const value = namespace[target.exportName];
    if (!isWorker(value)) {
      throw new UsageError(
        `Export ${target.exportName} of module ${shown} is not a Worker: received ${typeof value}${
          exportsHint(workers)
        }`,
      );
    }
    return { worker: value, exportName: target.exportName, url };
  }
  const named = workers.find(([name]) => name === "worker");
  if (named) return { worker: named[1], exportName: "worker", url };
  if (workers.length === 1) return { worker: workers[0][1], exportName: workers[0][0], url };
  if (workers.length === 0) {
    throw new UsageError(
      `Module ${shown} exports no Worker: export one, for example \`export const worker = new Worker({ ... })\``,
    );
  }
  const names = workers.map(([name]) => name);
  throw new UsageError(
    `Module ${shown} exports several Workers (${
      names.join(", ")
    }): choose one with ${target.module}:${names[0]}`,
  );
}

/**
 * `import()` of a module known only at run time (always an absolute URL here). Wrapped in a
 * function made at run time so that `deno publish` does not warn about a dynamic import it
 * cannot analyze: that warning is for imports the registry should rewrite, which this is not.
 */
const importModule = new Function("specifier", "return import(specifier)") as (
  specifier: string,
) => Promise<Record<string, unknown>>;

/**
 * Whether a value is a streaq Worker. Judged by shape rather than `instanceof`, so that a
 * module importing streaq from another copy or version (a JSR release next to a checkout) is
 * still recognised.
 */
// deno-lint-ignore no-explicit-any
function isWorker(value: unknown): value is Worker<any> {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return value.constructor?.name === "Worker" &&
    ["run", "stop", "close", "task"].every((m) => typeof candidate[m] === "function") &&
    typeof candidate.queueName === "string";
}

function exportsHint(workers: readonly [string, unknown][]): string {
  return workers.length > 0
    ? ` (its Workers: ${workers.map(([name]) => name).join(", ")})`
    : " (it exports no Worker)";
}

/** The cause of an import failure in one line, without Deno's colour codes. */
function describeLoadError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").split("\n")[0];
}
