/**
 * Crontabs: checking them and finding their next occurrence in a time zone, with no date
 * library (time zones come from `Intl.DateTimeFormat`, see `_time_zone.ts`), so that importing
 * streaq to enqueue loads nothing but ioredis.
 *
 * Five fields (minute hour day month weekday), six with a leading seconds field; `*`, lists,
 * ranges and steps (`1-30/5`, `*\/15`, `5/15` = from 5 to the end by 15); names `jan`–`dec` and
 * `sun`–`sat` in any case; `7` is Sunday as `0` is; `?` is `*` in the day fields; the macros
 * `@yearly @annually @monthly @weekly @daily @midnight @hourly`. When both the day of month and
 * the weekday are restricted (neither is `*`), a day matches if either does, as in Vixie cron.
 *
 * Daylight saving time, as Vixie cron and cron-parser (which streaq used before) treat it:
 * - a job with a fixed hour runs once per day: a time skipped by a spring-forward runs shifted
 *   by the gap (2:30 becomes 3:30), and a time repeated by a fall-back runs at its first pass;
 * - a job whose hour field covers every hour follows the real clock: a skipped time does not
 *   run, a repeated one runs in both passes.
 *
 * @module
 */

import { nextTransition, offsetAt } from "./_time_zone.ts";
import { describe } from "../_validate.ts";

const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface FieldRule {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names for the values from `min` on, if the field has any. */
  readonly names?: readonly string[];
}

const SECOND: FieldRule = { name: "second", min: 0, max: 59 };
const MINUTE: FieldRule = { name: "minute", min: 0, max: 59 };
const HOUR: FieldRule = { name: "hour", min: 0, max: 23 };
const DAY: FieldRule = { name: "day of month", min: 1, max: 31 };
const MONTH: FieldRule = { name: "month", min: 1, max: 12, names: MONTHS };
// 7 is Sunday too; it is folded into 0 once the field is read.
const WEEKDAY: FieldRule = { name: "weekday", min: 0, max: 7, names: WEEKDAYS };

/**
 * One field's allowed values, as a table of the next allowed value at or after each value
 * (-1: none left in this field's range); it is one entry longer than the range, so that a
 * value carried one past the end reads -1 too.
 */
type NextAllowed = Int8Array;

/** A parsed crontab. */
interface Crontab {
  readonly second: NextAllowed;
  readonly minute: NextAllowed;
  readonly hour: NextAllowed;
  readonly day: NextAllowed;
  readonly month: NextAllowed;
  readonly weekday: NextAllowed;
  /** Day of month and weekday as written `*` (or `?`): see the OR rule above. */
  readonly anyDay: boolean;
  readonly anyWeekday: boolean;
  /** Every hour allowed: the job follows the real clock across daylight saving changes. */
  readonly everyHour: boolean;
}

/** Why a crontab is invalid, for {@linkcode checkCrontab}'s message. */
class CrontabError extends Error {}

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
  if (text.startsWith("@") && !(text.toLowerCase() in MACROS)) {
    fail(`must be one of ${Object.keys(MACROS).join(", ")} when it starts with @`);
  }
  const fields = text.split(/\s+/).length;
  if (!text.startsWith("@") && fields !== 5 && fields !== 6) {
    fail(`must have 5 fields (minute hour day month weekday) or 6 (seconds first), not ${fields}`);
  }
  try {
    parse(text);
  } catch (error) {
    if (!(error instanceof CrontabError)) throw error;
    fail(`is invalid (${error.message})`);
  }
}

/**
 * The first occurrence of `crontab` in time zone `tz` strictly after `after` (ms epoch), at a
 * whole second.
 *
 * @throws {RangeError} For an invalid crontab or an unknown time zone.
 */
export function nextOccurrence(crontab: string, tz: string, after: number): number {
  const spec = parse(crontab.trim());
  let t = Math.floor(after / 1000) * 1000 + 1000;
  // Each turn searches one stretch of constant UTC offset, from t to the next change of offset.
  for (let stretch = 0; stretch < 1_000; stretch++) {
    const offset = offsetAt(tz, t);
    const wall = nextWallTime(spec, wallFloor(spec, tz, t, offset));
    const due = wall - offset;
    const change = nextTransition(tz, t, due);
    if (change === undefined) return due;
    const offsetAfter = offsetAt(tz, change);
    if (!spec.everyHour && offsetAfter > offset) {
      // A spring-forward skips the wall times [change + offset, change + offsetAfter): a job of
      // a fixed hour due in them runs shifted by the gap, as if the clock had not jumped.
      const skipped = nextWallTime(spec, change + offset);
      if (skipped < change + offsetAfter) return skipped - offset;
    }
    t = change;
  }
  throw new RangeError(`Cannot find the next occurrence of crontab "${crontab}" in ${tz}`);
}

const HOUR_MS = 3_600_000;

/**
 * The earliest wall time that may run at or after instant `t`: its own wall time, or, for a job
 * of a fixed hour just after a fall-back, the end of the repeated hour (it ran in the first pass).
 */
function wallFloor(spec: Crontab, tz: string, t: number, offset: number): number {
  if (spec.everyHour) return t + offset;
  const before = offsetAt(tz, t - 24 * HOUR_MS);
  if (before <= offset) return t + offset;
  const change = nextTransition(tz, t - 24 * HOUR_MS, t) ?? t;
  return Math.max(t + offset, change + before);
}

/** The first wall time (ms, read as UTC) at or after `from` that the crontab matches. */
function nextWallTime(spec: Crontab, from: number): number {
  const start = new Date(from);
  let year = start.getUTCFullYear();
  let month = start.getUTCMonth() + 1;
  let day = start.getUTCDate();
  let hour = start.getUTCHours();
  let minute = start.getUTCMinutes();
  let second = start.getUTCSeconds();
  // Each turn fixes one field or moves on to the next value of a larger one. The crontab was
  // checked to match some day, so the loop ends within a few years (Feb 29: 8 at most).
  for (let turn = 0; turn < 100_000; turn++) {
    const m = spec.month[month];
    if (m === -1) [year, month, day, hour, minute, second] = [year + 1, 1, 1, 0, 0, 0];
    else if (m !== month) [month, day, hour, minute, second] = [m, 1, 0, 0, 0];
    else if (day > daysInMonth(year, month)) {
      [month, day, hour, minute, second] = [month + 1, 1, 0, 0, 0];
      if (month > 12) [year, month] = [year + 1, 1];
    } else if (!dayMatches(spec, year, month, day)) {
      [day, hour, minute, second] = [day + 1, 0, 0, 0];
    } else if (spec.hour[hour] !== hour) {
      if (spec.hour[hour] === -1) [day, hour, minute, second] = [day + 1, 0, 0, 0];
      else [hour, minute, second] = [spec.hour[hour], 0, 0];
    } else if (spec.minute[minute] !== minute) {
      if (spec.minute[minute] === -1) [hour, minute, second] = [hour + 1, 0, 0];
      else [minute, second] = [spec.minute[minute], 0];
    } else if (spec.second[second] === -1) [minute, second] = [minute + 1, 0];
    else return Date.UTC(year, month - 1, day, hour, minute, spec.second[second]);
  }
  throw new RangeError("Cannot find a time that the crontab matches");
}

function dayMatches(spec: Crontab, year: number, month: number, day: number): boolean {
  const inMonth = spec.day[day] === day;
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  const onWeekday = spec.weekday[weekday] === weekday;
  if (spec.anyDay) return onWeekday;
  if (spec.anyWeekday) return inMonth;
  return inMonth || onWeekday;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const parsed = new Map<string, Crontab>();

/** Parses a trimmed crontab (cached: schedulers evaluate the same few over and over). */
function parse(text: string): Crontab {
  const cached = parsed.get(text);
  if (cached) return cached;
  const fields = (MACROS[text.toLowerCase()] ?? text).split(/\s+/);
  if (fields.length === 5) fields.unshift("0");
  if (fields.length !== 6) {
    throw new CrontabError(`it has ${fields.length} fields, not 5 or 6`);
  }
  const [second, minute, hour, day, month, weekday] = fields;
  const weekdays = parseField(weekday, WEEKDAY);
  if (weekdays[7]) weekdays[0] = 1;
  const spec: Crontab = {
    second: nextAllowed(parseField(second, SECOND)),
    minute: nextAllowed(parseField(minute, MINUTE)),
    hour: nextAllowed(parseField(hour, HOUR)),
    day: nextAllowed(parseField(day, DAY)),
    month: nextAllowed(parseField(month, MONTH)),
    weekday: nextAllowed(weekdays.subarray(0, 7)),
    anyDay: day === "*" || day === "?",
    anyWeekday: weekday === "*" || weekday === "?",
    everyHour: parseField(hour, HOUR).every((allowed) => allowed === 1),
  };
  checkReachable(spec, text);
  if (parsed.size >= 1_000) parsed.clear();
  parsed.set(text, spec);
  return spec;
}

/** A day of month that no allowed month has (`0 0 30 2 *`) can never run: refuse it now. */
function checkReachable(spec: Crontab, text: string): void {
  if (!spec.anyDay && !spec.anyWeekday) return; // any weekday occurs in every month
  if (spec.anyDay) return;
  for (let month = 1; month <= 12; month++) {
    // February counts 29 days: a leap year comes.
    const days = month === 2 ? 29 : daysInMonth(2001, month);
    if (spec.month[month] === month && spec.day[1] !== -1 && spec.day[1] <= days) return;
  }
  throw new CrontabError(`no allowed month has the days of month in "${text}", so it never runs`);
}

/** The allowed values of a field as flags indexed by value (index 0 unused below `min`). */
function parseField(field: string, rule: FieldRule): Uint8Array {
  const allowed = new Uint8Array(rule.max + 1);
  const where = `the ${rule.name} field "${field}"`;
  for (const item of field.split(",")) {
    const match = /^([^/]+)(?:\/(.+))?$/.exec(item);
    if (!match) throw new CrontabError(`${where} has an empty or malformed item "${item}"`);
    const [, range, stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!/^\d+$/.test(stepText ?? "1") || step < 1) {
      throw new CrontabError(`${where} has a step "${stepText}" that is not an integer ≥ 1`);
    }
    let low: number, high: number;
    if (range === "*" || (range === "?" && (rule === DAY || rule === WEEKDAY))) {
      [low, high] = [rule.min, rule.max];
    } else {
      const ends = range.split("-");
      if (ends.length > 2) throw new CrontabError(`${where} has a malformed range "${range}"`);
      low = value(ends[0], rule, where);
      // "5/15" means from 5 to the end of the range, by 15.
      high = ends.length === 2 ? value(ends[1], rule, where) : stepText ? rule.max : low;
      if (low > high) {
        throw new CrontabError(`${where} has a range "${range}" that ends before it starts`);
      }
    }
    for (let v = low; v <= high; v += step) allowed[v] = 1;
  }
  return allowed;
}

function value(text: string, rule: FieldRule, where: string): number {
  const index = rule.names?.indexOf(text.toLowerCase()) ?? -1;
  if (index !== -1) return index + rule.min;
  if (!/^\d+$/.test(text)) {
    const names = rule.names ? ` or a name (${rule.names[0]}–${rule.names.at(-1)})` : "";
    throw new CrontabError(`${where} has "${text}", which is not a number${names}`);
  }
  const n = Number(text);
  if (n < rule.min || n > rule.max) {
    throw new CrontabError(`${where} has ${n}, outside ${rule.min}–${rule.max}`);
  }
  return n;
}

/** The table of next allowed values for a field's flags. */
function nextAllowed(allowed: Uint8Array): NextAllowed {
  const next = new Int8Array(allowed.length + 1).fill(-1);
  for (let v = allowed.length - 1; v >= 0; v--) next[v] = allowed[v] ? v : next[v + 1];
  return next;
}
