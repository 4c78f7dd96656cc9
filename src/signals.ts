/**
 * Listening to the shutdown signals, SIGINT and SIGTERM, for a running worker and for the
 * command line. Listening needs no permission; a platform without a signal (SIGTERM on
 * Windows) is skipped.
 *
 * The first signal starts a graceful shutdown. A second one exits at once, as most servers do:
 * a shutdown can wait on a task that ignores its signal, or on a Redis that does not answer,
 * and whoever presses Ctrl-C twice wants the process gone. Nothing is lost by it: the tasks
 * this process held are delivered again after their `idleTimeout`, as after a crash.
 *
 * One Ctrl-C can arrive twice: `deno task` passes the terminal's SIGINT on to its command, which
 * gets it from the terminal too, a millisecond apart. A signal that follows the first within
 * {@linkcode SAME_PRESS} ms is taken for the same press.
 *
 * @module
 */

/** The signals that start a graceful shutdown. */
export const SHUTDOWN_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * How soon after the first signal another one is taken for the same (ms): far longer than the
 * millisecond between the two copies of one Ctrl-C, shorter than anyone presses it twice.
 */
export const SAME_PRESS = 150;

/** The exit code of a process ended by `signal`, as a shell reports it (128 + its number). */
export function signalExitCode(signal: Deno.Signal): number {
  return signal === "SIGTERM" ? 143 : 130;
}

/** What {@linkcode listenToSignals} says and does at a second signal. */
export interface SecondSignal {
  /** Says why the process exits now (to stderr, or a worker's log). */
  report(message: string): void;
  /** Ends the process; `Deno.exit` unless replaced (by a test). */
  exit?(code: number): void;
}

/**
 * Calls `handler` on the first SIGINT or SIGTERM; at the second, reports it and exits at once
 * (with `onSecond`), or calls `handler` again (without). Returns a function that stops
 * listening.
 */
export function listenToSignals(
  handler: (signal: Deno.Signal) => void,
  onSecond?: SecondSignal,
): () => void {
  const added: [Deno.Signal, () => void][] = [];
  let received = 0;
  let firstAt = 0;
  for (const signal of SHUTDOWN_SIGNALS) {
    const listener = () => {
      const now = performance.now();
      if (received > 0 && now - firstAt < SAME_PRESS) return;
      if (received++ === 0) firstAt = now;
      if (received > 1 && onSecond) {
        onSecond.report(`received ${signal} again: exiting now, without waiting for the shutdown`);
        (onSecond.exit ?? Deno.exit)(signalExitCode(signal));
        return;
      }
      handler(signal);
    };
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // Not supported on this platform.
    }
  }
  return () => added.forEach(([signal, listener]) => Deno.removeSignalListener(signal, listener));
}
