/**
 * The `--help` text and the `--version` of the command line. The version is the package's,
 * read from `deno.json` when the command line is built, not at run time.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };

/** The package version, from `deno.json`. */
export const VERSION: string = config.version;

/** What `--help` prints. */
export const HELP = `streaq ${VERSION}: run streaq workers and watch their queues

Usage:
  streaq run <module>[:<export>] [options]    run the Worker that a module exports
  streaq status <module>[:<export>] [--once]  show queue sizes, workers and throughput
  streaq metrics <module>[:<export>] [--json]
                                              print the queue's metrics once
  streaq web <module>[:<export>] [options]    serve the dashboard in the browser
  streaq clean <module>[:<export>] [options]  remove results of finished tasks
  streaq drain <module>[:<export>]            remove every task waiting for a worker
  streaq obliterate <module>[:<export>]       remove every key of the queue
  streaq pause <module>[:<export>] [--function NAME ...]
                                              stop workers starting the queue's tasks (or a
                                              function's), keeping them queued
  streaq resume <module>[:<export>] [--function NAME ...]
                                              let workers start them again
  streaq retry <module>[:<export>] <task-id>  rerun one failed task
  streaq retry <module>[:<export>] --function NAME [--since TIME]
                                              rerun failed tasks, and print how many
  streaq logs <module>[:<export>] <task-id>   print the lines a task logged
  streaq events <module>[:<export>] [options] print the queue's events as they happen
  streaq --help | --version

<module> is a path or URL of a module exporting a Worker. <export> names the export; by
default it is the export named "worker", else the only Worker the module exports.

Options of run:
  --workers N       run N worker processes; a process that dies is restarted, and SIGINT
                    or SIGTERM reaches every process (needs --allow-run=deno) [default: 1,
                    the worker runs in this process]
  --burst           stop once nothing is queued, running or due
  --watch           restart the worker when a file in the module's directory changes
                    (needs --allow-run=deno)
  --concurrency N   tasks running at once in each process, instead of the Worker's own
  --verbose         log debug lines too
  --quiet           log only warnings and errors
  --log-format F    text (time, [streaq <queue>/<worker>], message) or json (one object a
                    line: time, level, queue, workerId, message, taskId, fnName, ...) for
                    log collectors [default: the Worker's logFormat, text]; times are
                    ISO 8601 with milliseconds in the Worker's tz
  --deno-flags "F"  flags of deno run for the worker processes of --workers and --watch,
                    which do not inherit this process's own (Deno does not tell a program
                    its flags): --unstable-*, --v8-flags, --config, --lock, --import-map,
                    --cached-only, ... Quote to pass several; may be repeated. Example:
                    --deno-flags="--v8-flags=--max-old-space-size=512 --unstable-kv"
  --permission-set NAME
                    worker processes run with -P=NAME (a permission set of deno.json)
                    instead of the permissions this process finds granted to itself
                    (a scoped grant it cannot see, such as an API host, is not passed on)

Options of status:
  --once            print once and exit, instead of refreshing every second

Options of metrics:
  --json            print the metrics as JSON (what worker.metrics() returns) instead of text

Options of web:
  --port N          the port to listen on [default: 8080; 0 picks a free one]
  --hostname H      the address to listen on [default: 127.0.0.1]; the command line serves
                    loopback addresses only (the dashboard needs auth elsewhere)
  --trust-proxy     behind a proxy that terminates TLS: its X-Forwarded-Proto: https
                    makes the dashboard's cookies Secure

Options of clean (without them it removes every stored result):
  --older-than D    only tasks that finished at least D ago: milliseconds, or with a unit
                    (ms, s, m, h, d), as in 90s or 7d
  --succeeded       only tasks that succeeded
  --failed          only tasks that failed (aborted ones included)
  --function NAME   only tasks of this function

drain keeps tasks that workers hold (running or prefetched) and repeating tasks.

Options of pause and resume (without them, the whole queue):
  --function NAME   only this function; repeat for several. Pausing the queue and pausing
                    functions are independent: resume each the way it was paused

Options of obliterate:
  --force           go ahead even while workers of the queue are alive (refused otherwise)

Options of retry (instead of a task id):
  --function NAME   rerun the failed tasks of this function
  --since TIME      rerun the tasks that failed at or after TIME: an ISO 8601 time
                    (2026-01-31T09:00Z) or a duration ago (30m, 2h, 7d)

Options of events (written by workers with the events option):
  --since S         start after event id S, at a time (as for retry), "now" or "start"
                    (the oldest event kept) [default: now; start with --once]
  --once            print the events kept and exit, instead of following new ones

  -h, --help        print this help
  --version         print the version

Exit codes:
  0  done: a burst run drained the queue, or SIGINT/SIGTERM shut everything down gracefully
  1  failure at run time: Redis unreachable, a worker that failed, a missing permission, an
     obliterate refused as workers are alive
  2  usage error: unknown option or command, bad value, missing module, a module that
     cannot be loaded or exports no Worker (or several, and none was chosen)

Run it with the permissions of a worker plus reading the module, and running deno for
--workers and --watch:
  deno run --allow-net=localhost:6379 --allow-env --allow-sys=hostname --allow-read=. \\
    --allow-run=deno jsr:@streaq/streaq/cli run worker.ts --workers 4
`;
