/**
 * Crontabs: their syntax, their errors, daylight saving changes, and that the library loads no
 * date library for them. `crontab_oracle_test.ts` compares them with cron-parser.
 *
 * @module
 */

import assert from "node:assert/strict";
import { checkCrontab, nextOccurrence } from "../src/cron/crontab.ts";
import { denoExecutable } from "./_helpers.ts";

/** `nextOccurrence` as an ISO string, for readable expectations. */
function nextIso(crontab: string, tz: string, after: string): string {
  return new Date(nextOccurrence(crontab, tz, Date.parse(after))).toISOString();
}

Deno.test("a fixed-hour job whose time a spring-forward skips runs once, shifted by the gap", () => {
  // New York, 9 March 2025: 2:00 EST becomes 3:00 EDT; 2:30 runs at 3:30 EDT.
  assert.equal(
    nextIso("30 2 * * *", "America/New_York", "2025-03-09T06:00:00Z"),
    "2025-03-09T07:30:00.000Z",
  );
  assert.equal(
    nextIso("30 2 * * *", "America/New_York", "2025-03-09T07:30:00Z"),
    "2025-03-10T06:30:00.000Z",
  );
  // Berlin, 30 March 2025, with a seconds field: 2:30:15 CET runs at 3:30:15 CEST.
  assert.equal(
    nextIso("15 30 2 * * *", "Europe/Berlin", "2025-03-30T00:00:00Z"),
    "2025-03-30T01:30:15.000Z",
  );
  // Lord Howe, 5 October 2025: 2:00 (+10:30) becomes 2:30 (+11); 2:15 runs at 2:45 (+11).
  // cron-parser says 3:15 (+11): it moves skipped times to the next whole hour.
  assert.equal(
    nextIso("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T15:00:00Z"),
    "2025-10-04T15:45:00.000Z",
  );
  // A time after the gap is not moved.
  assert.equal(
    nextIso("45 2 * * *", "Australia/Lord_Howe", "2025-10-04T15:00:00Z"),
    "2025-10-04T15:45:00.000Z",
  );
});

Deno.test("a fixed-hour job runs once in the hour a fall-back repeats; an every-hour job runs in both passes", () => {
  // New York, 2 November 2025: 1:00–2:00 happens at -4 (05:00–06:00Z), then again at -5.
  assert.equal(
    nextIso("*/10 1 * * *", "America/New_York", "2025-11-02T05:50:00Z"),
    "2025-11-03T06:00:00.000Z",
  );
  // Asked during the second pass, it does not run the rest of the repeated hour again.
  // (cron-parser answers 1:30 EST here, a second 1:30 on the same day.)
  assert.equal(
    nextIso("*/10 1 * * *", "America/New_York", "2025-11-02T06:20:00Z"),
    "2025-11-03T06:00:00.000Z",
  );
  assert.equal(
    nextIso("30 * * * *", "America/New_York", "2025-11-02T05:40:00Z"),
    "2025-11-02T06:30:00.000Z",
  );
  // Lord Howe, 5 April 2026: 1:30–2:00 repeats (at +11 from 14:30Z, at +10:30 from 15:00Z).
  assert.equal(
    nextIso("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z"),
    "2026-04-04T14:45:00.000Z",
  );
  assert.equal(
    nextIso("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:45:00Z"),
    "2026-04-05T15:15:00.000Z",
  );
  // An every-hour job runs in the second pass too, as it does in whole-hour zones (cron-parser
  // skips the repeated half hour here: 15:39Z).
  assert.equal(
    nextIso("9/7 * * * *", "Australia/Lord_Howe", "2026-04-04T14:58:00Z"),
    "2026-04-04T15:00:00.000Z",
  );
});

Deno.test("crontabs read names in any case, 7 as Sunday, macros, steps from a value, and days of month or weekdays", () => {
  const after = "2025-01-01T00:00:00Z"; // a Wednesday
  assert.equal(nextIso("0 9 * JAN-Mar Mon-fri", "UTC", after), "2025-01-01T09:00:00.000Z");
  assert.equal(nextIso("0 9 * * 7", "UTC", after), "2025-01-05T09:00:00.000Z");
  assert.equal(nextIso("0 9 * * 5-7", "UTC", after), "2025-01-03T09:00:00.000Z");
  assert.equal(nextIso("@weekly", "UTC", after), "2025-01-05T00:00:00.000Z");
  assert.equal(nextIso("@midnight", "UTC", after), "2025-01-02T00:00:00.000Z");
  assert.equal(nextIso("@yearly", "UTC", after), "2026-01-01T00:00:00.000Z");
  assert.equal(nextIso("@hourly", "UTC", after), "2025-01-01T01:00:00.000Z");
  assert.equal(nextIso("50/5 * * * *", "UTC", "2025-01-01T00:52:00Z"), "2025-01-01T00:55:00.000Z");
  assert.equal(nextIso("50/5 * * * *", "UTC", "2025-01-01T00:56:00Z"), "2025-01-01T01:50:00.000Z");
  assert.equal(
    nextIso("*/20 * * * * *", "UTC", "2025-01-01T00:00:41.5Z"),
    "2025-01-01T00:01:00.000Z",
  );
  // Both day fields restricted: the 15th or any Friday, whichever comes first.
  assert.equal(nextIso("0 0 15 * fri", "UTC", after), "2025-01-03T00:00:00.000Z");
  assert.equal(nextIso("0 0 15 * fri", "UTC", "2025-01-10T00:00:00Z"), "2025-01-15T00:00:00.000Z");
  assert.equal(nextIso("0 0 29 2 *", "UTC", after), "2028-02-29T00:00:00.000Z");
  assert.equal(nextIso("30 9 * * *", "Asia/Kolkata", after), "2025-01-01T04:00:00.000Z");
  // Strictly after, at whole seconds.
  assert.equal(
    nextIso("* * * * * *", "UTC", "2025-01-01T00:00:00.000Z"),
    "2025-01-01T00:00:01.000Z",
  );
  assert.equal(
    nextIso("* * * * * *", "UTC", "2025-01-01T00:00:00.001Z"),
    "2025-01-01T00:00:01.000Z",
  );
});

Deno.test("checkCrontab() refuses a bad crontab with the field, the value and what was expected", () => {
  const refused: [unknown, RegExp][] = [
    [42, /as the crontab must be a string: received 42 \(number\)/],
    [
      "* * * *",
      /must have 5 fields \(minute hour day month weekday\) or 6 \(seconds first\), not 4/,
    ],
    ["@sometimes", /must be one of @yearly, @annually, .*@hourly when it starts with @/],
    [
      "61 * * * *",
      /is invalid \(the minute field "61" has 61, outside 0–59\): received "61 \* \* \* \*"/,
    ],
    ["0 24 * * *", /the hour field "24" has 24, outside 0–23/],
    ["0 0 0 * *", /the day of month field "0" has 0, outside 1–31/],
    ["0 0 * 13 *", /the month field "13" has 13, outside 1–12/],
    ["0 0 * * 8", /the weekday field "8" has 8, outside 0–7/],
    ["0 0 * foo *", /the month field "foo" has "foo", which is not a number or a name \(jan–dec\)/],
    [
      "0 0 * * monday",
      /the weekday field "monday" has "monday", which is not a number or a name \(sun–sat\)/,
    ],
    ["*/0 * * * *", /the minute field "\*\/0" has a step "0" that is not an integer ≥ 1/],
    ["*/x * * * *", /has a step "x" that is not an integer ≥ 1/],
    ["30-10 * * * *", /the minute field "30-10" has a range "30-10" that ends before it starts/],
    ["1,,2 * * * *", /the minute field "1,,2" has an empty or malformed item ""/],
    ["1-2-3 * * * *", /has a malformed range "1-2-3"/],
    ["? * * * *", /the minute field "\?" has "\?", which is not a number/],
    ["0 0 30 2 *", /no allowed month has the days of month in "0 0 30 2 \*", so it never runs/],
    ["0 0 31 4,6,9,11 *", /so it never runs/],
    ["0 0 L * *", /the day of month field "L" has "L", which is not a number/],
  ];
  for (const [crontab, message] of refused) {
    assert.throws(() => checkCrontab("register cron job report", crontab), (error) => {
      assert.ok(error instanceof RangeError, `${crontab}: ${error}`);
      assert.match(error.message, /^Cannot register cron job report as the crontab /);
      assert.match(error.message, message);
      return true;
    });
  }
  // Accepted although cron-parser refuses them: a repeated value, and 0 and 7 together.
  for (const crontab of ["1,1 * * * *", "0 0 * * 0,7", "0 0 30 2 mon", "0 0 ? * 1", " @Daily "]) {
    checkCrontab("register cron job report", crontab);
  }
});

Deno.test("importing mod.ts loads no date library", async () => {
  const { stdout } = await new Deno.Command(denoExecutable(), {
    args: ["info", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(stdout));
  // The npm packages of the module graph: those imported, and theirs.
  const loaded = new Set<string>();
  const visit = (name: string) => {
    if (loaded.has(name)) return;
    loaded.add(name);
    for (const dependency of info.npmPackages[name].dependencies) visit(dependency);
  };
  for (const module of info.modules) if (module.kind === "npm") visit(module.npmPackage);
  const names = [...loaded].map((name) => name.slice(0, name.indexOf("@", 1)));
  assert.ok(names.includes("ioredis"), names.join(", "));
  assert.deepEqual(names.filter((name) => name === "cron-parser" || name === "luxon"), []);
});
