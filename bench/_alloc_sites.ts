/**
 * Where a process allocates, for `allocations.ts --sites`: V8's sampling heap profiler (through
 * `node:inspector`), keeping the objects that scavenges and mark-compacts collected, so that
 * short-lived garbage, the kind that makes scavenges, is sampled too. The report adds up the
 * sampled bytes by allocating function and source line.
 *
 * @module
 */

import { Session } from "node:inspector";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

let session: Session | undefined;

function post<T>(method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) =>
    session!.post(method, params, (error: Error | null, result?: object) => {
      if (error) reject(error);
      else resolve(result as T);
    })
  );
}

/**
 * Starts sampling every `interval` bytes on average; with `retained`, only the sampled objects
 * still in the heap when sampling stops are reported: those that outlived scavenges, which make
 * scavenges slow (they are copied) and fill the old space, even when they are garbage by then.
 */
export async function startSites(retained = false, interval = 256): Promise<void> {
  session = new Session();
  session.connect();
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: interval,
    includeObjectsCollectedByMinorGC: !retained,
    includeObjectsCollectedByMajorGC: true,
  });
}

/**
 * Stops sampling; returns the `top` allocation sites as lines `bytes-per-task  function  place`,
 * the place shortened to the file's path from `src/` or the package name.
 */
export async function stopSites(tasks: number, top = 40): Promise<string[]> {
  // A last scavenge, so that what was allocated since the previous one and is garbage now is
  // not reported as retained.
  (globalThis as { gc?: (options: { type: string }) => void }).gc?.({ type: "minor" });
  const { profile } = await post<{ profile: { head: ProfileNode } }>("HeapProfiler.stopSampling");
  session!.disconnect();
  const bySite = new Map<string, number>();
  const walk = (node: ProfileNode, caller: string) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const place = url ? `${shorten(url)}:${lineNumber + 1}` : "";
    // Built-ins and the runtime's own modules are named with the nearest caller outside them.
    const internal = !url || url.startsWith("ext:") || url.startsWith("node:");
    const site = `${functionName || "(anonymous)"} ${place}` + (internal ? ` < ${caller}` : "");
    if (node.selfSize) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, internal ? caller : site);
  };
  walk(profile.head, "");
  return [...bySite.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([site, bytes]) => `${(bytes / tasks).toFixed(0).padStart(7)} B/task  ${site}`);
}

function shorten(url: string): string {
  const src = url.lastIndexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  const npm = /\/npm\/[^/]+\/(.+)$/.exec(url);
  if (npm) return npm[1];
  return url.replace(/^.*\//, "");
}
