/**
 * Every Lua script of streaq, so that each connection registers them all when it opens and
 * pipelines made from it can call any of them. Each script itself lives next to the
 * TypeScript that calls it.
 *
 * @module
 */

import { ABORT_SCRIPT } from "./abort.ts";
import { COMPLETE_SCRIPT } from "./complete.ts";
import { ENQUEUE_SCRIPT } from "./enqueue.ts";
import { FETCH_SCRIPT, START_SCRIPT } from "./fetch.ts";
import { HEARTBEAT_SCRIPT } from "./heartbeat.ts";
import { INFO_SCRIPT, STATUS_SCRIPT } from "./inspect.ts";
import { PROMOTE_SCRIPT } from "./promote.ts";
import { REGISTER_CRONS_SCRIPT, UNSCHEDULE_SCRIPT } from "./schedule.ts";
import type { Script } from "./_script.ts";

/** All scripts, registered on every connection. */
export const SCRIPTS: readonly Script[] = [
  ENQUEUE_SCRIPT,
  FETCH_SCRIPT,
  START_SCRIPT,
  COMPLETE_SCRIPT,
  PROMOTE_SCRIPT,
  HEARTBEAT_SCRIPT,
  STATUS_SCRIPT,
  INFO_SCRIPT,
  ABORT_SCRIPT,
  REGISTER_CRONS_SCRIPT,
  UNSCHEDULE_SCRIPT,
];
