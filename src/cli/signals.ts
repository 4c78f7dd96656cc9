/**
 * SIGINT and SIGTERM for the command line: listened to from the start, so that a signal that
 * comes while the module is still loading shuts down as gracefully as a later one. A second
 * signal exits at once, unless a listener takes it (the supervisor passes it on to its worker
 * processes, which then exit at once themselves).
 *
 * @module
 */

import { listenToSignals, signalExitCode } from "../signals.ts";

/** The shutdown signals received by this process. */
export class ShutdownSignals implements Disposable {
  readonly #controller = new AbortController();
  readonly #listeners = new Set<(signal: Deno.Signal) => void>();
  readonly #stop: () => void;

  /** Starts listening to SIGINT and SIGTERM (where the platform has them). */
  constructor() {
    this.#stop = listenToSignals((name) => this.#receive(name));
  }

  /** Aborts at the first signal; its reason is the signal's name. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Calls `listener` at every signal from now on (a second Ctrl-C, for instance). */
  onSignal(listener: (signal: Deno.Signal) => void): void {
    this.#listeners.add(listener);
  }

  #receive(name: Deno.Signal): void {
    if (!this.#controller.signal.aborted) {
      this.#controller.abort(name);
    } else if (this.#listeners.size === 0) {
      console.error(
        `streaq: received ${name} again: exiting now, without waiting for the shutdown`,
      );
      Deno.exit(signalExitCode(name));
    }
    for (const listener of this.#listeners) listener(name);
  }

  /** Stops listening. */
  [Symbol.dispose](): void {
    this.#stop();
  }
}
