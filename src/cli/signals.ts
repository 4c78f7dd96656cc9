/**
 * SIGINT and SIGTERM for the command line: listened to from the start, so that a signal that
 * comes while the module is still loading shuts down as gracefully as a later one.
 *
 * @module
 */

import { listenToSignals } from "../signals.ts";

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
    if (!this.#controller.signal.aborted) this.#controller.abort(name);
    for (const listener of this.#listeners) listener(name);
  }

  /** Stops listening. */
  [Symbol.dispose](): void {
    this.#stop();
  }
}
