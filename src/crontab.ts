/**
 * Crontabs: checking them and finding their next occurrence in a time zone, with
 * `npm:cron-parser`. Five fields (minute to weekday), six with a leading seconds field, names
 * such as `mon-fri` and `jan`, and macros such as `@hourly`.
 *
 * @module
 */

import { CronExpressionParser } from "cron-parser";
import { describe } from "./_validate.ts";

const MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/**
 * Throws a RangeError naming `where` and the crontab unless it is a valid crontab.
 *
 * @param where What was being done, for the message: `"register cron job report"`.
 */
export function checkCrontab(where: string, crontab: unknown): asserts crontab is string {
  const fail = (why: string): never => {
    throw new RangeError(
      `Cannot ${where} as the crontab ${why}: received ${describe(crontab)}`,
    );
  };
  if (typeof crontab !== "string") fail("must be a string");
  const text = (crontab as string).trim();
  if (text.startsWith("@")) {
    if (!MACROS.includes(text)) fail(`must be one of ${MACROS.join(", ")} when it starts with @`);
    return;
  }
  const fields = text.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    fail(`must have 5 fields (minute hour day month weekday) or 6 (seconds first), not ${fields}`);
  }
  try {
    CronExpressionParser.parse(text, { tz: "UTC" });
  } catch (error) {
    fail(`is invalid (${(error as Error).message})`);
  }
}

/** The first occurrence of `crontab` in time zone `tz` strictly after `after` (ms epoch). */
export function nextOccurrence(crontab: string, tz: string, after: number): number {
  return CronExpressionParser.parse(crontab.trim(), { tz, currentDate: new Date(after) })
    .next()
    .getTime();
}
