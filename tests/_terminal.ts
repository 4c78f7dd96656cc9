/**
 * A command running in a real terminal: a pseudo-terminal from util-linux `script -qec CMD
 * /dev/null`, which gives CMD a terminal as its standard input, output and error, and types into
 * it whatever is written to script's standard input. In a terminal Deno asks at a prompt for any
 * permission not granted (without one it denies silently), and Ctrl-C is a keystroke the terminal
 * turns into SIGINT: tests that run streaq as a person would run it here.
 *
 * @module
 */

import { eventually } from "./_helpers.ts";

/** What Deno prints when it asks for a permission. */
export const PROMPT = "Deno requests";

/** The keystroke that the terminal turns into SIGINT for the program. */
export const CTRL_C = "\x03";

/** A command line for a POSIX shell, each argument quoted. */
export function shellCommand(args: readonly string[]): string {
  return args.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
}

/** A command in a pseudo-terminal, its output (stdout and stderr) collected as it comes. */
export class Terminal implements AsyncDisposable {
  output = "";
  readonly #child: Deno.ChildProcess;
  readonly #keyboard: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;

  /**
   * Starts `command` (a shell command line, or arguments to quote) in a terminal, with `env`
   * added to this process's environment and the variables of `unset` taken out of it.
   */
  constructor(
    command: string | readonly string[],
    options: { cwd?: string; env?: Record<string, string>; unset?: readonly string[] } = {},
  ) {
    let line = typeof command === "string" ? command : shellCommand(command);
    if (options.unset?.length) {
      line = `${shellCommand(["env", ...options.unset.flatMap((name) => ["-u", name])])} ${line}`;
    }
    // script runs the line with $SHELL, or /bin/sh where it is unset (as in CI). Debian's sh
    // (dash) stays as the program's parent, gets the terminal's SIGINT too and dies of it, so
    // script would report the shell's 130, not the program's code: exec the program in its place.
    line = `exec ${line}`;
    this.#child = new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      cwd: options.cwd,
      env: options.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#keyboard = this.#child.stdin.getWriter();
    this.#reading = Promise.all([this.#child.stdout, this.#child.stderr].map(async (stream) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) this.output += chunk;
    })).then(() => {});
  }

  /** Types `keys` into the terminal ({@linkcode CTRL_C} is a SIGINT to the program). */
  async type(keys: string): Promise<void> {
    try {
      await this.#keyboard.write(new TextEncoder().encode(keys));
    } catch (error) {
      const { code } = await this.exit();
      throw new Error(
        `Cannot type ${
          JSON.stringify(keys)
        }: the program has ended with code ${code}; it printed:\n${this.output}`,
        { cause: error },
      );
    }
  }

  /** Waits until the output contains `text`; fails at once, with the output, at a prompt. */
  async waitFor(text: string, timeout = 20_000): Promise<void> {
    await eventually(() => {
      if (this.output.includes(PROMPT)) throw new Error(`a permission prompt:\n${this.output}`);
      return this.output.includes(text);
    }, { timeout, what: `${JSON.stringify(text)} in the terminal; it shows:\n${this.output}` });
  }

  /** Whether the program ends within `ms` milliseconds. */
  async endsWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
    const ended = await Promise.race([this.#child.status.then(() => true), timeout]);
    clearTimeout(timer);
    return ended;
  }

  /** Waits for the program to exit; returns its exit code and everything it printed. */
  async exit(): Promise<{ code: number; output: string }> {
    const { code } = await this.#child.status;
    await this.#reading;
    return { code, output: this.output };
  }

  /** Kills the program if it still runs, and releases the streams. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It has exited.
    }
    await this.#keyboard.close().catch(() => {});
    await this.#child.status;
    await this.#reading;
  }
}
