/**
 * The main module of a two-module app: its own tasks plus those of `emails.ts`, joined with
 * `include()`, run by one worker. A backend that does not import the worker code at all
 * declares the task with a typed stub instead (`worker.stub<[string], string>("sendWelcome")`).
 *
 *   deno run --allow-net=127.0.0.1,localhost --allow-env examples/modular/app.ts
 *
 * @module
 */

import { Worker } from "../../mod.ts";
import { emails, sendWelcome } from "./emails.ts";

const redisUrl = Deno.env.get("REDIS_URL") ?? "redis://localhost:6379";

export const worker = new Worker({ redisUrl, queueName: "streaq-example-app", logLevel: "warn" });
worker.include(emails);

export const signUp = worker.task(async function signUp(email: string): Promise<string> {
  // Tasks from the other module enqueue through this worker now.
  await sendWelcome.enqueue(email);
  return await Promise.resolve(`signed up ${email}`);
});

if (import.meta.main) {
  const running = worker.run();
  console.log((await (await signUp.enqueue("ada@example.com")).result({ timeout: 5_000 })).result);

  // A separate backend, with no import of the worker code: a typed stub.
  const backend = new Worker({ redisUrl, queueName: "streaq-example-app" });
  const welcome = backend.stub<[to: string], string>("sendWelcome");
  const handle = await welcome.enqueue("grace@example.com");
  console.log((await handle.result({ timeout: 5_000 })).result);
  await backend.close();

  worker.stop();
  await running;
  await worker.close();
}
