/**
 * The benchmark's outputs: the markdown table of medians with the streaq/BullMQ ratio, the
 * table of Redis cost per task (CPU and commands), the markdown page `docs/benchmarks.md`, and
 * the SVG chart of throughput per case.
 *
 * @module
 */

/** What a row's target asks of streaq. */
export type Target =
  /** The ratio (oriented so that more is better for streaq) must reach this. */
  | { readonly ratio: number; readonly text: string }
  /** streaq's own median must reach this. */
  | { readonly atLeast: number; readonly text: string }
  /**
   * streaq against itself: the median, over the runs, of its value on this row over its value on
   * row `of` in the same run (what a feature costs against the case without it) must reach
   * `share`.
   */
  | { readonly of: Row; readonly share: number; readonly text: string };

/** One line of the table: each library's value per run. */
export interface Row {
  readonly title: string;
  readonly unit: string;
  /** Whether a higher value is better (throughput, efficiency) or a lower one (latency, bytes). */
  readonly higherIsBetter: boolean;
  readonly digits: number;
  readonly target?: Target;
  /** For the chart: tasks per second of each run, per library, when the row is a throughput. */
  readonly throughput?: Map<string, number[]>;
  /** For the chart: a short label. */
  readonly chartLabel?: string;
  readonly values: Map<string, number[]>;
}

/** The machine and versions the run used. */
export interface RunInfo {
  readonly runs: number;
  readonly machine: string;
  readonly versions: string;
  readonly command: string;
  readonly date: string;
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A number with thousands separators and `digits` decimals. */
export function format(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * streaq's advantage on a row: more than 1 means streaq is better, whatever the unit. It is the
 * median of the ratios within each run, where the two libraries ran back to back: when the
 * machine's load drifts between runs, that is steadier than the ratio of the medians.
 */
export function ratio(row: Row, streaq: string, other: string): number {
  const a = row.values.get(streaq) ?? [];
  const b = row.values.get(other) ?? [];
  const paired = a.slice(0, b.length).map((x, i) => row.higherIsBetter ? x / b[i] : b[i] / x);
  return median(paired);
}

/** The ratio as a cell: "1.38×", or "—" when a library has no value (a feature it lacks). */
function ratioCell(row: Row, streaq: string, other: string): string {
  const value = ratio(row, streaq, other);
  return Number.isFinite(value) ? `${format(value, 2)}×` : "—";
}

/** Each run's ratio as a cell: "1.15×, 1.49×, 1.38×". */
function ratiosPerRun(row: Row, streaq: string, other: string): string {
  const a = row.values.get(streaq) ?? [];
  const b = row.values.get(other) ?? [];
  const ratios = a.slice(0, b.length)
    .map((x, i) => `${format(row.higherIsBetter ? x / b[i] : b[i] / x, 2)}×`);
  return ratios.length ? ratios.join(", ") : "—";
}

/** Each run's value as a cell: "25,502, 31,426, 27,537". */
function valuesPerRun(row: Row, name: string): string {
  const values = row.values.get(name) ?? [];
  return values.length ? values.map((v) => format(v, row.digits)).join(", ") : "—";
}

/** streaq's value on `row` over its value on row `of`, paired by run: their median. */
function shareOf(row: Row, of: Row, streaq: string): number {
  const base = of.values.get(streaq) ?? [];
  return median((row.values.get(streaq) ?? []).slice(0, base.length).map((x, i) => x / base[i]));
}

function targetMet(row: Row, streaq: string, other: string): string {
  const { target } = row;
  if (!target) return "";
  if ("of" in target) {
    const share = shareOf(row, target.of, streaq);
    return `${target.text}: ${share >= target.share ? "**met**" : "**not met**"} (${
      format(share, 2)
    }×)`;
  }
  const met = "ratio" in target
    ? ratio(row, streaq, other) >= target.ratio
    : median(row.values.get(streaq) ?? []) >= target.atLeast;
  return `${target.text}: ${met ? "**met**" : "**not met**"}`;
}

/** The table of medians, one line per row, with the ratio and the target. */
export function markdownTable(rows: readonly Row[], streaq: string, other: string): string {
  const lines = [
    `| case | unit | ${streaq} | ${other} | ${streaq} vs ${other} | target |`,
    "| --- | --- | ---: | ---: | ---: | --- |",
  ];
  for (const row of rows) {
    const a = median(row.values.get(streaq) ?? []);
    const b = median(row.values.get(other) ?? []);
    const arrow = row.higherIsBetter ? "↑" : "↓";
    lines.push(
      `| ${row.title} | ${row.unit} ${arrow} | ${format(a, row.digits)} | ${
        format(b, row.digits)
      } | ${ratioCell(row, streaq, other)} | ${targetMet(row, streaq, other)} |`,
    );
  }
  return lines.join("\n");
}

/** Every run's value, for the record. */
export function runsTable(rows: readonly Row[], names: readonly string[]): string {
  const [streaq, other] = names;
  const lines = [
    `| case | ${names.map((n) => `${n} runs`).join(" | ")} | ${streaq} vs ${other} per run |`,
    `| --- | ${names.map(() => "---").join(" | ")} | --- |`,
  ];
  for (const row of rows) {
    const cells = names.map((n) => valuesPerRun(row, n));
    lines.push(`| ${row.title} | ${cells.join(" | ")} | ${ratiosPerRun(row, streaq, other)} |`);
  }
  return lines.join("\n");
}

/** What one case cost Redis per task, in every run: CPU time and commands. */
export interface CostRow {
  readonly title: string;
  /** Redis CPU µs per task. */
  readonly cpu: Row;
  /** Redis commands per task. */
  readonly commands: Row;
}

/**
 * The table of Redis cost per task: one line per case, the median Redis CPU and commands per
 * task of each library, each with its ratio (more than 1× means streaq costs Redis less).
 */
export function costTable(rows: readonly CostRow[], streaq: string, other: string): string {
  const lines = [
    `| case | Redis CPU µs/task, ${streaq} | ${other} | ${streaq} vs ${other} | ` +
    `commands/task, ${streaq} | ${other} | ${streaq} vs ${other} |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const { title, cpu, commands } of rows) {
    const cells = [cpu, commands].map((row) =>
      [streaq, other].map((n) => format(median(row.values.get(n) ?? []), row.digits))
        .concat(ratioCell(row, streaq, other)).join(" | ")
    );
    lines.push(`| ${title} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Every run's Redis cost per task, for the record. */
export function costRunsTable(rows: readonly CostRow[], streaq: string, other: string): string {
  const lines = [
    `| case | Redis CPU µs/task, ${streaq} runs | ${other} runs | ${streaq} vs ${other} per run | ` +
    `commands/task, ${streaq} runs | ${other} runs |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const { title, cpu, commands } of rows) {
    lines.push(
      `| ${title} | ${valuesPerRun(cpu, streaq)} | ${valuesPerRun(cpu, other)} | ${
        ratiosPerRun(cpu, streaq, other)
      } | ${valuesPerRun(commands, streaq)} | ${valuesPerRun(commands, other)} |`,
    );
  }
  return lines.join("\n");
}

/** The note that explains the cost table, printed above it. */
export function costNote(streaq: string, other: string): string {
  return `Redis cost per task, medians: the CPU time of the \`redis-server\` process ` +
    `(\`INFO cpu\`, user + system) and the commands it ran (\`INFO commandstats\`; a command ` +
    `run by a Lua script counts besides the \`EVALSHA\` that ran it), divided by the case's ` +
    `tasks. They count what the case times: the drains count the draining only (the tasks are ` +
    `stored before the meter starts) and the enqueue cases the enqueue only; the latency case ` +
    `counts the whole path (enqueue, run, result) of tasks that come one at a time, and the ` +
    `lateness case the enqueue, promotion and run of tasks spread over two seconds (the start ` +
    `is timed in the task, for both libraries, so no result is waited for), so both include ` +
    `what waking up for each task costs. ` +
    `"${streaq} vs ${other}" is ${other}/${streaq}: more than 1× means ${streaq} costs Redis less.`;
}

/** The note that explains the ratio column, printed above the table. */
export function ratioNote(streaq: string, other: string): string {
  return `Medians; ↑ higher is better, ↓ lower is better. The "${streaq} vs ${other}" column is ` +
    `the median of the ratios within each run (the two libraries run back to back), oriented so ` +
    `that **more than 1× means ${streaq} is better**: ${streaq}/${other} for ↑ rows, ` +
    `${other}/${streaq} for ↓ rows. Targets use the same orientation; a target "of" another ` +
    `case compares ${streaq} with itself: the median, over the runs, of its value on the row ` +
    `over its value on that case in the same run (shown in brackets).`;
}

const COLORS = ["#1f6feb", "#d1495b"];

/**
 * A horizontal bar chart of tasks per second, two bars per case (one per library), each case
 * scaled to its own larger value, with the value written next to each bar.
 */
export function throughputSvg(
  rows: readonly Row[],
  names: readonly string[],
  runs: number,
  note: string,
): string {
  const charted = rows.filter((row) => row.throughput);
  const labelWidth = 210;
  const barWidth = 380;
  const valueWidth = 110;
  const barHeight = 13;
  const rowHeight = 2 * barHeight + 14;
  const top = 76;
  const width = labelWidth + barWidth + valueWidth + 20;
  const height = top + charted.length * rowHeight + 16;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<title>Throughput per case, tasks per second, median of ${runs} runs</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="600" fill="#222">Throughput per case (tasks/s, median of ${runs} runs; longer is better)</text>`,
    `<text x="10" y="38" fill="#666">Each case is scaled to its own faster library; ${
      escapeXml(note)
    }</text>`,
  ];
  names.forEach((name, i) => {
    const x = labelWidth + i * 110;
    parts.push(
      `<rect x="${x}" y="48" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${x + 16}" y="58" fill="#222">${escapeXml(name)}</text>`,
    );
  });
  charted.forEach((row, r) => {
    const y = top + r * rowHeight;
    const medians = names.map((n) => median(row.throughput!.get(n) ?? []));
    const max = Math.max(...medians.filter(Number.isFinite), 1);
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + barHeight + 4}" text-anchor="end" fill="#222">${
        escapeXml(row.chartLabel ?? row.title)
      }</text>`,
    );
    medians.forEach((value, i) => {
      const w = Number.isFinite(value) ? Math.max(1, (value / max) * barWidth) : 0;
      const by = y + i * barHeight;
      parts.push(
        `<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${
          barHeight - 2
        }" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${(labelWidth + w + 5).toFixed(1)}" y="${by + barHeight - 3}" fill="#333">${
          format(value, 0)
        }</text>`,
      );
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** The page written to `docs/benchmarks.md`. */
export function markdownPage(
  rows: readonly Row[],
  names: readonly string[],
  info: RunInfo,
  costs: readonly CostRow[],
  sections: readonly string[],
): string {
  const [streaq, other] = names;
  const cost = costs.length
    ? [
      "## Redis cost per task",
      "",
      costNote(streaq, other),
      "",
      costTable(costs, streaq, other),
      "",
    ]
    : [];
  const costRuns = costs.length
    ? ["Redis cost per task in every run:", "", costRunsTable(costs, streaq, other), ""]
    : [];
  return [
    "# Benchmarks",
    "",
    `Written by \`${info.command}\` on ${info.date}. Do not edit by hand: run it again.`,
    "",
    `- Machine: ${info.machine}`,
    `- Versions: ${info.versions}`,
    `- Repetitions: ${info.runs}, the two libraries alternating case by case on one private ` +
    "`redis-server`, emptied (FLUSHALL) before every case.",
    "",
    ratioNote(streaq, other),
    "",
    markdownTable(rows, streaq, other),
    "",
    "![Throughput per case](bench.svg)",
    "",
    ...cost,
    ...sections,
    "## Every run",
    "",
    runsTable(rows, names),
    "",
    ...costRuns,
  ].join("\n");
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
