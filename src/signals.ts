/**
 * Listening to the shutdown signals, SIGINT and SIGTERM, for a running worker and for the
 * command line. Listening needs no permission; a platform without a signal (SIGTERM on
 * Windows) is skipped.
 *
 * @module
 */

/** The signals that start a graceful shutdown. */
export const SHUTDOWN_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Calls `handler` on SIGINT and SIGTERM; returns a function that stops listening. */
export function listenToSignals(handler: (signal: Deno.Signal) => void): () => void {
  const added: [Deno.Signal, () => void][] = [];
  for (const signal of SHUTDOWN_SIGNALS) {
    const listener = () => handler(signal);
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // Not supported on this platform.
    }
  }
  return () => added.forEach(([signal, listener]) => Deno.removeSignalListener(signal, listener));
}
