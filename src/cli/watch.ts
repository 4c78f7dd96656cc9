/**
 * `run --watch`: Deno's file watcher (`Deno.watchFs`) on the module's directory, with the
 * changes of a burst of writes (an editor saving, a `git checkout`) gathered into one restart.
 *
 * @module
 */

/** Options of {@linkcode watchForChanges}. */
export interface WatchOptions {
  /**
   * How long the directory must be quiet after a change before `onChange` is called.
   *
   * @default {200}
   */
  debounce?: number;
  /** Stops watching. */
  signal: AbortSignal;
}

/** Extensions of the files whose change restarts the worker: sources and configuration. */
const WATCHED = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs|json|jsonc)$/;
/** Directories whose changes never matter. */
const IGNORED = /[\\/](node_modules|\.git)[\\/]/;

/**
 * Calls `onChange` with the changed files after each burst of changes under `dir` (recursive),
 * one call at a time, until the signal aborts. Resolves when watching has stopped.
 *
 * @param dir The directory to watch.
 * @param onChange Called with the paths that changed; awaited before the next call.
 */
export async function watchForChanges(
  dir: string,
  onChange: (paths: string[]) => Promise<void>,
  { debounce = 200, signal }: WatchOptions,
): Promise<void> {
  if (signal.aborted) return;
  const watcher = Deno.watchFs(dir, { recursive: true });
  const close = () => watcher.close();
  signal.addEventListener("abort", close, { once: true });
  const pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = Promise.resolve();
  const flush = () => {
    timer = undefined;
    const paths = [...pending];
    pending.clear();
    running = running
      .then(() => signal.aborted ? undefined : onChange(paths))
      .catch((error) => console.error(`streaq: reacting to a file change failed: ${error}`));
  };
  try {
    for await (const event of watcher) {
      if (event.kind === "access" || event.kind === "other") continue;
      const paths = event.paths.filter((p) => WATCHED.test(p) && !IGNORED.test(p));
      if (paths.length === 0) continue;
      paths.forEach((p) => pending.add(p));
      clearTimeout(timer);
      timer = setTimeout(flush, debounce);
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", close);
    await running;
  }
}
