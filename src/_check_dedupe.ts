/**
 * The checks of the `id` and `dedupe` start options (`StartOptions` in `./options.ts`): a task id
 * or deduplication key of a safe length and character set, the modes and windows of a key, and
 * what a debounce excludes.
 *
 * @module
 */

import type { DedupeOptions, StartOptions } from "./options.ts";
import { checkDuration, checkKnownKeys, describe } from "./_validate.ts";

/**
 * A task id or a deduplication key: 1 to 128 printable ASCII characters, `!` to `~`. No spaces
 * (ids are listed space-separated, in `after` and in the task hash), no control characters (they
 * are shown in terminals and logs), no other Unicode (look-alike characters would make two ids
 * that read the same), and not `.` or `..` alone (a URL path resolves them: the dashboard's link
 * to the task would lead elsewhere).
 */
const TASK_ID = /^(?!\.\.?$)[\x21-\x7e]{1,128}$/;

/** Throws a TypeError unless `value` is undefined or a valid task id or deduplication key. */
export function checkTaskId(where: string, option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string" || !TASK_ID.test(value)) {
    throw new TypeError(
      `Cannot ${where} as '${option}' must be 1 to 128 printable ASCII characters, without spaces, other than "." and "..": received ${
        typeof value === "string" && value.length > 60
          ? `a string of ${value.length} characters starting "${value.slice(0, 40)}"`
          : describe(value)
      }`,
    );
  }
}

const DEDUPE_OPTIONS: readonly (keyof DedupeOptions)[] = ["key", "mode", "window"];
const DEDUPE_MODES = ["pending", "throttle", "debounce"];

/** Checks the `dedupe` start option. */
export function checkDedupe(where: string, dedupe: unknown): void {
  if (dedupe === undefined) return;
  if (typeof dedupe !== "object" || dedupe === null || Array.isArray(dedupe)) {
    throw new TypeError(
      `Cannot ${where} as 'dedupe' must be an object { key, mode?, window? }: received ${
        describe(dedupe)
      }`,
    );
  }
  checkKnownKeys(where, dedupe, DEDUPE_OPTIONS, " with 'dedupe'");
  const { key, mode = "pending", window } = dedupe as DedupeOptions;
  if (key === undefined) {
    throw new TypeError(`Cannot ${where} as 'dedupe.key' is required: received no key`);
  }
  checkTaskId(where, "dedupe.key", key);
  if (!DEDUPE_MODES.includes(mode)) {
    throw new TypeError(
      `Cannot ${where} as 'dedupe.mode' must be one of ${DEDUPE_MODES.join(", ")}: received ${
        describe(mode)
      }`,
    );
  }
  if (mode === "pending" && window !== undefined) {
    throw new TypeError(
      `Cannot ${where} as 'dedupe.window' applies to the throttle and debounce modes: received window ${
        describe(window)
      } with mode "pending"`,
    );
  }
  if (mode !== "pending" && window === undefined) {
    throw new TypeError(
      `Cannot ${where} as 'dedupe.window' is required by mode "${mode}": received no window`,
    );
  }
  // Checked only when given: the bounds object is not made for every key of a batch.
  if (window !== undefined) checkDuration(where, "dedupe.window", window, { min: 1 });
}

/**
 * Checks what a debounce excludes, on a task's merged start options: `delay`, `schedule`,
 * `after`, and being a pipeline stage after the first (`staged`). A deduplication key excludes
 * a crontab `schedule`.
 */
export function checkDedupeCombination(
  fnName: string,
  options: StartOptions,
  staged: boolean,
): void {
  const { dedupe } = options;
  if (!dedupe) return;
  if (typeof options.schedule === "string") {
    throw new TypeError(
      `Cannot enqueue task ${fnName} as 'dedupe' and a crontab 'schedule' exclude each other: received schedule ${
        describe(options.schedule)
      }`,
    );
  }
  if (dedupe.mode !== "debounce") return;
  for (const option of ["delay", "schedule", "after"] as const) {
    if (options[option] !== undefined) {
      throw new TypeError(
        `Cannot enqueue task ${fnName} as a 'dedupe' debounce sets its own start and excludes '${option}': received ${option} ${
          describe(options[option])
        }`,
      );
    }
  }
  if (staged) {
    throw new TypeError(
      `Cannot enqueue task ${fnName} as a 'dedupe' debounce is allowed only on the first stage of a pipeline: received it on a stage after the first`,
    );
  }
}
