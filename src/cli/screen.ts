/**
 * The terminal of `status`: the alternate screen buffer (the view does not scroll the user's
 * terminal away, and the terminal comes back as it was when the view ends), redraws in place,
 * and colours, which `NO_COLOR` turns off.
 *
 * @module
 */

/** Colours for the parts of the view; {@linkcode PLAIN} leaves text as it is. */
export interface Paint {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

/** No colour: for a pipe, a file, `--once` output, or `NO_COLOR`. */
export const PLAIN: Paint = {
  bold: (t) => t,
  dim: (t) => t,
  red: (t) => t,
  green: (t) => t,
  yellow: (t) => t,
  cyan: (t) => t,
};

const sgr = (on: number, off: number) => (text: string) => `\x1b[${on}m${text}\x1b[${off}m`;

/** ANSI colours. */
export const ANSI: Paint = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

const ENTER = "\x1b[?1049h\x1b[?25l"; // alternate screen on, cursor hidden
const LEAVE = "\x1b[?25h\x1b[?1049l"; // cursor shown, alternate screen off
const HOME = "\x1b[H";
const CLEAR_LINE_END = "\x1b[K";
const CLEAR_BELOW = "\x1b[J";
// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/y;

/**
 * The alternate screen of a terminal, from construction until disposal, which restores the
 * terminal (also if the process exits another way first).
 */
export class Screen implements Disposable {
  readonly #out: typeof Deno.stdout;
  readonly #encoder = new TextEncoder();
  readonly #onUnload = () => this[Symbol.dispose]();
  #open = true;

  constructor(out: typeof Deno.stdout = Deno.stdout) {
    this.#out = out;
    this.#write(ENTER);
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /** Draws `lines` from the top left, each cut to the terminal's width, and clears the rest. */
  draw(lines: readonly string[]): void {
    const { columns, rows } = size(this.#out);
    const shown = lines.slice(0, rows).map((line) => fit(line, columns) + CLEAR_LINE_END);
    this.#write(HOME + shown.join("\n") + CLEAR_BELOW);
  }

  /** Leaves the alternate screen and shows the cursor again. */
  [Symbol.dispose](): void {
    if (!this.#open) return;
    this.#open = false;
    globalThis.removeEventListener("unload", this.#onUnload);
    this.#write(LEAVE);
  }

  /** Synchronous, so that the terminal is restored even by a process on its way out. */
  #write(text: string): void {
    let bytes = this.#encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(this.#out.writeSync(bytes));
  }
}

/** The terminal's size; a terminal that reports none (0) is not cut. */
function size(out: typeof Deno.stdout): { columns: number; rows: number } {
  let reported = { columns: 0, rows: 0 };
  try {
    if (out === Deno.stdout) reported = Deno.consoleSize();
  } catch {
    // Not a terminal after all: nothing to fit.
  }
  return {
    columns: reported.columns || Infinity,
    rows: reported.rows || Infinity,
  };
}

/**
 * `line` cut to `columns` visible characters; colour codes take no room and are kept, and
 * the colour is reset after a cut.
 */
export function fit(line: string, columns: number): string {
  let visible = 0;
  let out = "";
  let coloured = false;
  for (let i = 0; i < line.length;) {
    SGR.lastIndex = i;
    const code = SGR.exec(line);
    if (code) {
      out += code[0];
      coloured = true;
      i += code[0].length;
      continue;
    }
    if (visible === columns) return coloured ? `${out}\x1b[0m` : out;
    const char = String.fromCodePoint(line.codePointAt(i)!);
    out += char;
    visible++;
    i += char.length;
  }
  return out;
}
