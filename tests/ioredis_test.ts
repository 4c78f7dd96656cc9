/**
 * The ioredis internals streaq relies on (`src/redis/_ioredis.ts`) are those of the version its import
 * map pins, and a version without them is refused with a message that names the one to use.
 *
 * @module
 */

import assert from "node:assert/strict";
import config from "../deno.json" with { type: "json" };
import { StreaqError } from "../mod.ts";
import {
  checkIoredisInternals,
  Cluster,
  Command,
  IOREDIS_VERSION,
  Redis,
} from "../src/redis/_ioredis.ts";

Deno.test("the import map pins the ioredis version whose internals streaq checks", () => {
  assert.equal(config.imports.ioredis, `npm:ioredis@${IOREDIS_VERSION}`);
  checkIoredisInternals({ Redis, Cluster, Command });
});

Deno.test("an ioredis without an internal streaq relies on is refused, naming what is missing and the version to use", () => {
  class Changed {
    sendCommand() {}
    disconnect() {}
  }
  assert.throws(
    () => checkIoredisInternals({ Redis: Changed, Cluster, Command: class {} }),
    (error: Error) => {
      assert.ok(error instanceof StreaqError);
      assert.match(error.message, /Command#toWritable, Redis#setStatus, Redis#flushQueue/);
      assert.ok(error.message.includes(`npm:ioredis@${IOREDIS_VERSION}`), error.message);
      return true;
    },
  );
});
