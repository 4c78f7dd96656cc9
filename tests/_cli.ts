/**
 * The command line as a user runs it: `deno run -P=cli` (the permission set the docs list) in a
 * process of its own, on the fixture module `tests/fixtures/cli_worker_module.ts`, whose worker
 * uses the test's Redis and queue.
 *
 * @module
 */

import { denoExecutable } from "./_helpers.ts";
import { sharedRedis } from "./_redis.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The module the commands load: its worker takes its Redis and queue from the environment. */
export const CLI_MODULE = `${ROOT}tests/fixtures/cli_worker_module.ts`;

/** What a command printed, and its exit code. */
export interface CliOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `streaq COMMAND CLI_MODULE ...rest` to its end on queue `queueName` of the shared test
 * Redis, with no prompt (a permission the set lacks fails the command instead).
 */
export async function runCli(
  queueName: string,
  command: string,
  ...rest: string[]
): Promise<CliOutput> {
  const redis = await sharedRedis();
  const { code, stdout, stderr } = await new Deno.Command(denoExecutable(), {
    args: [
      "run",
      "--no-prompt",
      "--cached-only",
      `--config=${ROOT}deno.json`,
      "-P=cli",
      `${ROOT}src/cli/main.ts`,
      command,
      CLI_MODULE,
      ...rest,
    ],
    cwd: ROOT,
    env: { STREAQ_TEST_REDIS_URL: redis.url, STREAQ_TEST_QUEUE: queueName, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}
