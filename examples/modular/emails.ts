/**
 * One module of a two-module app: the email tasks, registered on a worker of their own. The
 * app's main worker includes them (see `app.ts`); any module can enqueue them through
 * `sendWelcome`, which then goes through whichever worker runs.
 *
 * @module
 */

import { Worker } from "../../mod.ts";

/** The tasks of this module; `app.ts` includes them into the worker that runs. */
export const emails = new Worker();

/** Sends a welcome email (here: pretends to). */
export const sendWelcome = emails.task(async function sendWelcome(to: string): Promise<string> {
  await new Promise((r) => setTimeout(r, 10));
  return `welcome email sent to ${to}`;
});
