/**
 * The permissions of worker processes started by `--workers` and `--watch`. A child gets the
 * permissions of the command line that started it, as far as a program can see them: Deno
 * answers `Deno.permissions.query` for one descriptor at a time and never lists an allow-list.
 * So every permission granted in full is passed on as it is, and for a scoped grant the
 * descriptors a worker process needs are probed and passed on when granted: the Redis host,
 * the loopback names, the directories holding the module and the command line, and the `sys`
 * kinds. Anything else that is scoped (an API host your tasks call, a list of environment
 * variables) is not seen, and not passed on: grant it in full, or run one process per worker
 * with your own flags.
 *
 * @module
 */

import { dirname, parse, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** What the probes need to know about the worker. */
export interface ChildNeeds {
  /** The module holding the Worker. */
  readonly moduleUrl: URL;
  /** Where the Worker's Redis is, if known. */
  readonly redis?: { readonly host: string; readonly port: number };
}

type Name = "read" | "write" | "net" | "env" | "sys" | "run" | "ffi" | "import";

const NAMES: readonly Name[] = ["read", "write", "net", "env", "sys", "run", "ffi", "import"];

const SYS_KINDS = [
  "hostname",
  "osRelease",
  "osUptime",
  "loadavg",
  "networkInterfaces",
  "systemMemoryInfo",
  "uid",
  "gid",
  "cpus",
  "homedir",
  "statfs",
  "getPriority",
  "setPriority",
  "username",
  "ca",
  "umask",
] as const;

/** The `--allow-*` flags that give a child process this process's permissions, as seen. */
export function childPermissionFlags(needs: ChildNeeds): string[] {
  const flags: string[] = [];
  for (const name of NAMES) {
    if (granted({ name } as Deno.PermissionDescriptor)) {
      flags.push(`--allow-${name}`);
      continue;
    }
    const scoped = scopedGrants(name, needs);
    if (scoped.length > 0) flags.push(`--allow-${name}=${scoped.join(",")}`);
  }
  return flags;
}

function scopedGrants(name: Name, needs: ChildNeeds): string[] {
  switch (name) {
    case "net":
      return netGrants(needs.redis);
    case "read":
    case "write":
      return pathGrants(name, pathsOf(needs.moduleUrl));
    case "sys":
      return SYS_KINDS.filter((kind) => granted({ name: "sys", kind }));
    default:
      return [];
  }
}

/** For each host, the whole host when granted, else the Redis port of it when granted. */
function netGrants(redis: ChildNeeds["redis"]): string[] {
  const hosts = new Set(["127.0.0.1", "localhost"]);
  if (redis) hosts.add(redis.host);
  const found: string[] = [];
  for (const host of hosts) {
    if (granted({ name: "net", host })) found.push(host);
    else if (redis && granted({ name: "net", host: `${host}:${redis.port}` })) {
      found.push(`${host}:${redis.port}`);
    }
  }
  return found;
}

/** The directories a worker process reads: the module's, the command line's and the cwd. */
function pathsOf(moduleUrl: URL): string[] {
  const paths = [Deno.cwd()];
  if (moduleUrl.protocol === "file:") paths.push(dirname(fileURLToPath(moduleUrl)));
  const cli = new URL("../../", import.meta.url);
  if (cli.protocol === "file:") paths.push(resolve(fileURLToPath(cli)));
  return paths;
}

/** For each path, its shallowest granted ancestor (itself included), if any. */
function pathGrants(name: "read" | "write", paths: readonly string[]): string[] {
  const found = new Set<string>();
  for (const path of paths) {
    const ancestors = [path];
    for (let dir = path; dir !== parse(dir).root;) {
      dir = dirname(dir);
      ancestors.unshift(dir);
    }
    const widest = ancestors.find((dir) => granted({ name, path: dir }));
    if (widest) found.add(widest);
  }
  return [...found];
}

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false; // A descriptor this Deno does not know (an older `sys` kind list, ...).
  }
}

/**
 * The deno executable to start children with: `Deno.execPath()` when allowed, else `deno`
 * from PATH when allowed. `--allow-run=deno` names the `deno` found on PATH, which does not
 * cover `Deno.execPath()` when that `deno` is a symlink (an npm or Homebrew install).
 *
 * @throws {Deno.errors.NotCapable} When neither may be run, saying which flag to add.
 */
export function denoExecutable(): string {
  const execPath = Deno.execPath();
  if (granted({ name: "run", command: execPath })) return execPath;
  if (granted({ name: "run", command: "deno" })) return "deno";
  throw new Deno.errors.NotCapable(
    `Cannot start worker processes: --workers and --watch run the deno executable, which needs --allow-run=deno (or --allow-run=${execPath})`,
  );
}
