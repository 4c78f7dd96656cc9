/**
 * UTC offsets of IANA time zones, read from `Intl.DateTimeFormat` (the runtime's own time zone
 * data), so that crontabs need no date library. Offsets are looked up per instant; the crontab
 * search asks for few of them.
 *
 * @module
 */

const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formats.set(timeZone, format);
  }
  return format;
}

/**
 * The offset of `timeZone` from UTC at instant `t` (ms since the epoch), in milliseconds:
 * the wall-clock time there is `t + offset`, read as if it were UTC.
 *
 * @throws {RangeError} For a time zone the runtime does not know.
 */
export function offsetAt(timeZone: string, t: number): number {
  if (timeZone === "UTC") return 0;
  const whole = Math.floor(t / 1000) * 1000;
  const parts: Record<string, string> = {};
  for (const { type, value } of formatFor(timeZone).formatToParts(whole)) parts[type] = value;
  const wall = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return wall - whole;
}

/** Probe spacing when looking for a change of offset: no zone changes it twice within it. */
const PROBE = 7 * 24 * 3_600_000;

/**
 * The first instant in (`from`, `to`] at which the offset of `timeZone` differs from its offset
 * at `from`, to the second, or undefined if it does not change in between.
 */
export function nextTransition(timeZone: string, from: number, to: number): number | undefined {
  if (timeZone === "UTC") return undefined;
  const offset = offsetAt(timeZone, from);
  let low = from;
  for (let probe = Math.min(from + PROBE, to);; probe = Math.min(probe + PROBE, to)) {
    if (offsetAt(timeZone, probe) !== offset) {
      // Offsets change at whole seconds: bisect (low, probe] down to one second.
      let high = probe;
      while (high - low > 1000) {
        const mid = low + Math.floor((high - low) / 2000) * 1000;
        if (offsetAt(timeZone, mid) === offset) low = mid;
        else high = mid;
      }
      return high;
    }
    if (probe >= to) return undefined;
    low = probe;
  }
}
