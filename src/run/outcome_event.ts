/**
 * The event a task's final outcome emits, for workers with events on: `completed`, `failed` or
 * `aborted`, with the error's message. The completion script writes it (`outcomeEvent` in
 * `./_complete_lua.ts`) in the same call as the outcome.
 *
 * @module
 */

import { StreaqCancelled } from "../errors.ts";

/** The longest error message an event carries; a longer one is cut, ending with "…". */
export const EVENT_ERROR_LENGTH = 1_000;

/** What the completion script needs to emit a final outcome's event. */
export interface OutcomeEvent {
  readonly type: "completed" | "failed" | "aborted";
  /** The error's message (`name: message`), or "" for a success. */
  readonly error: string;
}

/**
 * The event of a final outcome.
 *
 * @param success Whether the task succeeded.
 * @param error The error it failed with (as stored in its result).
 * @returns Its type and message.
 */
export function outcomeEvent(success: boolean, error: unknown): OutcomeEvent {
  if (success) return { type: "completed", error: "" };
  const cancelled = error instanceof StreaqCancelled ||
    (error as Error | undefined)?.name === "StreaqCancelled";
  return { type: cancelled ? "aborted" : "failed", error: eventError(error) };
}

/**
 * An error as an event carries it: `name: message`, cut to {@linkcode EVENT_ERROR_LENGTH}
 * characters.
 *
 * @param error Anything thrown, or a reason.
 * @returns Its text.
 */
export function eventError(error: unknown): string {
  const text = error instanceof Error
    ? `${error.name}: ${error.message}`
    : typeof error === "string"
    ? error
    : String(error);
  return text.length > EVENT_ERROR_LENGTH ? text.slice(0, EVENT_ERROR_LENGTH - 1) + "…" : text;
}
