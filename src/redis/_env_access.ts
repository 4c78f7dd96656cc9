/**
 * A check that runs before ioredis is loaded: every module importing ioredis imports this one
 * first, so that its check runs first (modules are evaluated in import order).
 *
 * ioredis loads the package `debug`, which reads the names of all environment variables as it
 * is imported. With environment access scoped to some variables (`--allow-env=REDIS_URL`) or
 * denied (`--no-prompt`), that read throws deep inside `debug`, with a stack trace that names
 * neither streaq nor the flag to change; in a terminal, Deno would first stop at a prompt. Say
 * it here instead, whatever the state: streaq never leaves a process at a permission prompt.
 *
 * @module
 */

import { StreaqError } from "../errors.ts";

/** The state of full environment access, or "granted" where permissions cannot be queried. */
function fullEnvAccess(): Deno.PermissionState {
  try {
    return Deno.permissions.querySync({ name: "env" }).state;
  } catch {
    return "granted";
  }
}

const state = fullEnvAccess();
if (state !== "granted") {
  throw new StreaqError(
    `Cannot load streaq as it needs access to the whole environment (--allow-env, or "env": true in a permission set): its Redis client, ioredis, loads the package debug, which reads the names of all environment variables when it is imported, so a list such as --allow-env=REDIS_URL is not enough: received environment access "${state}"`,
  );
}
