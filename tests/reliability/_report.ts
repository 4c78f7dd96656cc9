/**
 * The summary of a reliability run: one row per fault or load (tasks sent, results, lost,
 * duplicated, time to recover), printed as a table at the end of each test and appended as a
 * JSON line to `$STREAQ_RELIABILITY_DIR/rows.jsonl` (default `/tmp/streaq-reliability`), so that
 * the soak and the README can gather the figures of a whole run.
 *
 * @module
 */

/** One line of the summary. */
export interface Row {
  /** The fault or load, in a few words. */
  readonly fault: string;
  /** Tasks whose enqueue resolved. */
  readonly sent: number;
  /** Tasks with a result afterwards. */
  readonly results: number;
  /** `sent - results`: must be 0. */
  readonly lost: number;
  /** Tasks whose side effect happened more than once (each explained by the fault). */
  readonly duplicated: number;
  /** Milliseconds from the fault to recovery (defined per test, in `notes`), if it applies. */
  readonly recoverMs: number | null;
  /** What recovery means here, memory figures, anything worth reading. */
  readonly notes?: string;
}

/** A row as stored, with where and when it was measured. */
export interface StoredRow extends Row {
  readonly source: string;
  readonly at: string;
}

/** Where rows are appended. */
export function reportFile(): string {
  const dir = Deno.env.get("STREAQ_RELIABILITY_DIR") ?? "/tmp/streaq-reliability";
  return `${dir}/rows.jsonl`;
}

/** Prints `rows` as a table and appends them to the report file. */
export async function report(rows: readonly Row[], source = "deno task test"): Promise<void> {
  console.log(`\n${formatTable(rows)}`);
  const file = reportFile();
  await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  const at = new Date().toISOString();
  const lines = rows.map((row) => JSON.stringify({ ...row, source, at } satisfies StoredRow));
  await Deno.writeTextFile(file, lines.join("\n") + "\n", { append: true });
}

/** The latest row of each fault measured by `source`, in the order they were first seen. */
export async function latestRows(source: string): Promise<StoredRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(reportFile());
  } catch {
    return [];
  }
  const latest = new Map<string, StoredRow>();
  for (const line of text.split("\n").filter(Boolean)) {
    const row = JSON.parse(line) as StoredRow;
    if (row.source === source) latest.set(row.fault, row);
  }
  return [...latest.values()];
}

const COLUMNS = ["fault", "sent", "results", "lost", "duplicated", "recover (ms)"] as const;

/** A Markdown table of rows, with their notes below it. */
export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((r) => [
    r.fault,
    String(r.sent),
    String(r.results),
    String(r.lost),
    String(r.duplicated),
    r.recoverMs === null ? "—" : String(Math.round(r.recoverMs)),
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: readonly string[]) =>
    `| ${
      values.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(" | ")
    } |`;
  const rule = `| ${
    widths.map((w, i) => (i === 0 ? "-".repeat(w) : "-".repeat(w - 1) + ":")).join(" | ")
  } |`;
  const notes = rows.filter((r) => r.notes).map((r) => `- ${r.fault}: ${r.notes}`);
  return [line(COLUMNS), rule, ...cells.map(line), ...(notes.length ? ["", ...notes] : [])]
    .join("\n");
}

/** Megabytes, one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
