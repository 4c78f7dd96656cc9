import assert from "node:assert/strict";
import { StreaqCancelled, StreaqRetry, TaskStatus } from "../mod.ts";
import { createDashboard, serveDashboard } from "../src/ui/mod.ts";
import { localPath } from "../src/ui/_responses.ts";
import { eventually, runInBackground, testWorker } from "./_helpers.ts";
import { queueContextOf } from "../src/worker.ts";
import { cookies, get, ORIGIN, post, session } from "./_dashboard.ts";

async function json(response: Response): Promise<Record<string, unknown>> {
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  return await response.json();
}

Deno.test("a token-protected dashboard answers 401 without credentials, 403 with a wrong token, and signs a browser in with ?token=", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker, { auth: { token: "correct-horse-battery" } });

  const anonymous = await get(handler, "/");
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer/);
  assert.match(await anonymous.text(), /name="token"/, "a sign-in form for browsers");
  assert.equal((await get(handler, "/api/overview")).status, 401);

  const wrong = await get(handler, "/api/overview", { authorization: "Bearer wrong-token-xx" });
  assert.equal(wrong.status, 403);
  await wrong.body?.cancel();
  assert.equal((await get(handler, "/tasks?token=wrong-token-xx")).status, 403);

  const right = await get(handler, "/api/overview", {
    authorization: "Bearer correct-horse-battery",
  });
  assert.equal(right.status, 200);
  await right.body?.cancel();

  const login = await get(handler, "/tasks?status=queued&token=correct-horse-battery");
  assert.equal(login.status, 303);
  assert.equal(login.headers.get("location"), "/tasks?status=queued", "the token leaves the URL");
  const [auth] = cookies(login).filter((c) => c.startsWith("streaq_auth="));
  assert.ok(auth && !auth.includes("correct-horse-battery"), "the cookie is not the token");
  assert.match(login.headers.getSetCookie()[0], /HttpOnly; SameSite=Strict/);
  const signedIn = await get(handler, "/tasks?status=queued", { cookie: auth });
  assert.equal(signedIn.status, 200);
  await signedIn.body?.cancel();
  const forged = await get(handler, "/", { cookie: "streaq_auth=forged-value" });
  assert.equal(forged.status, 401);
  await forged.body?.cancel();
});

Deno.test("basic credentials and an auth function decide who may see the dashboard", async () => {
  await using worker = await testWorker();
  const basic = createDashboard(worker, {
    auth: { basic: { username: "admin", password: "pässword" } },
  });
  const encode = (text: string) =>
    "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const none = await get(basic, "/workers");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Basic realm="streaq"/);
  assert.equal((await get(basic, "/workers", { authorization: encode("admin:nope") })).status, 401);
  const ok = await get(basic, "/workers", { authorization: encode("admin:pässword") });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();

  const byHeader = createDashboard(worker, {
    auth: (request) => request.headers.get("x-team") === "ops",
  });
  assert.equal((await get(byHeader, "/api/workers", { "x-team": "sales" })).status, 403);
  const allowed = await get(byHeader, "/api/workers", { "x-team": "ops" });
  assert.equal(allowed.status, 200);
  assert.deepEqual(await json(allowed), { workers: [] });

  assert.throws(
    () => createDashboard(worker, { auth: { token: "short" } }),
    /Cannot create dashboard as 'auth' token must be a string of at least 8 characters/,
  );
  assert.throws(
    () => createDashboard(worker, { basePath: "admin" }),
    /Cannot create dashboard as 'basePath' must be a path starting with '\/'/,
  );
});

Deno.test("abort and unschedule need a POST carrying the CSRF token of the browser's cookie", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {});
  const delayed = await later.enqueue().start({ delay: 60_000 });
  const repeating = await later.enqueue().start({ schedule: "0 0 1 1 *" });
  const handler = createDashboard(worker);
  const { cookie, token } = await session(handler);
  const { cookie: otherCookie } = await session(handler);
  assert.notEqual(cookie, otherCookie);

  const abortPath = `/tasks/${delayed.id}/abort`;
  assert.equal((await post(handler, abortPath)).status, 403, "no token, no cookie");
  assert.equal((await post(handler, abortPath, { cookie })).status, 403, "no token");
  assert.equal((await post(handler, abortPath, { token })).status, 403, "no cookie");
  assert.equal(
    (await post(handler, abortPath, { cookie: otherCookie, token })).status,
    403,
    "another browser's cookie",
  );
  const viaGet = await get(handler, abortPath);
  assert.equal(viaGet.status, 405);
  assert.equal(viaGet.headers.get("allow"), "POST");
  await viaGet.body?.cancel();
  assert.equal(await delayed.status(), TaskStatus.SCHEDULED, "nothing was aborted yet");

  const aborted = await post(handler, abortPath, { cookie, token });
  assert.equal(aborted.status, 200);
  assert.equal((await json(aborted)).ok, true);
  const result = await delayed.result({ timeout: 1_000 });
  assert.ok(!result.success && result.exception instanceof StreaqCancelled);
  assert.equal((await post(handler, abortPath, { cookie, token })).status, 409, "already done");

  const unschedulePath = `/api/schedules/${repeating.id}/unschedule`;
  assert.equal((await post(handler, unschedulePath, { cookie })).status, 403);
  assert.equal((await worker.schedules()).length, 1);
  const unscheduled = await post(handler, unschedulePath, { cookie, token });
  assert.equal(unscheduled.status, 200);
  assert.equal((await json(unscheduled)).ok, true);
  assert.deepEqual(await worker.schedules(), []);
});

Deno.test("unknown task ids and unknown paths answer 404", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker);
  const { cookie, token } = await session(handler);
  for (const path of ["/tasks/0123456789abcdef", "/nowhere", "/tasks/a/b/c", "/api/nowhere"]) {
    const response = await get(handler, path);
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
  const missing = await get(handler, "/api/tasks/0123456789abcdef");
  assert.equal(missing.status, 404);
  assert.deepEqual(await json(missing), { error: "Not found" });
  const abortMissing = await post(handler, "/tasks/0123456789abcdef/abort", { cookie, token });
  assert.equal(abortMissing.status, 404);
  await abortMissing.body?.cancel();
  const unscheduleMissing = await post(handler, "/schedules/cron%3Anope/unschedule", {
    cookie,
    token,
  });
  assert.equal(unscheduleMissing.status, 404);
  await unscheduleMissing.body?.cancel();
  const badFilter = await get(handler, "/api/tasks?status=exploded");
  assert.equal(badFilter.status, 400);
  await badFilter.body?.cancel();
});

Deno.test("below a base path the dashboard answers only there, and its links, assets, cookies and redirects stay below it", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {});
  const delayed = await later.enqueue().start({ delay: 60_000 });
  const handler = createDashboard(worker, { basePath: "/admin/queues/" });

  for (const path of ["/", "/tasks", "/admin", "/admin/queuesX", "/admin/queuesX/tasks"]) {
    const response = await get(handler, path);
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
  for (const path of ["/admin/queues", "/admin/queues/", "/admin/queues/tasks"]) {
    const response = await get(handler, path);
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
  const page = await get(handler, "/admin/queues/tasks");
  assert.match(page.headers.getSetCookie()[0], /Path=\/admin\/queues;/);
  const html = await page.text();
  const links = [...html.matchAll(/(?:href|src|action)="([^"]+)"/g)].map((m) => m[1])
    .filter((link) => !link.startsWith("data:"));
  assert.ok(links.length > 5);
  for (const link of links) assert.match(link, /^\/admin\/queues\//, link);
  assert.ok(links.includes(`/admin/queues/tasks/${delayed.id}`), "the task links to its page");

  const [stylesheet] = links.filter((link) => link.endsWith(".css"));
  const css = await get(handler, stylesheet);
  assert.equal(css.status, 200);
  assert.match(css.headers.get("content-type") ?? "", /text\/css/);
  await css.body?.cancel();

  const cookie = cookies(page).join("; ");
  const token = /name="csrf" value="([^"]+)"/.exec(
    await (await get(handler, `/admin/queues/tasks/${delayed.id}`, { cookie })).text(),
  )?.[1];
  assert.ok(token);
  // A form POST without JavaScript: the token in the body, a redirect back to the task.
  const form = await handler(
    new Request(`${ORIGIN}/admin/queues/tasks/${delayed.id}/abort`, {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: token }),
    }),
  );
  assert.equal(form.status, 303);
  assert.equal(form.headers.get("location"), `/admin/queues/tasks/${delayed.id}`);
  assert.equal(await delayed.status(), TaskStatus.DONE);
});

Deno.test("values from Redis are HTML-escaped in the task page and the task list", async () => {
  await using worker = await testWorker();
  const script = "<script>alert(1)</script>";
  const handle = await worker.enqueueUnsafe(`<img src=x onerror="alert(2)">`, script, {
    note: `"quoted" & <b>bold</b>`,
  }).start({ delay: 60_000 });
  const handler = createDashboard(worker);

  const page = await get(handler, `/tasks/${handle.id}`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const html = await page.text();
  assert.ok(!html.includes(script), "the argument is not markup");
  assert.ok(!html.includes("<img src=x"), "the function name is not markup");
  assert.ok(!html.includes("<b>bold</b>"));
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), "the argument shows as text");
  assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"));
  assert.ok(html.includes("&amp; &lt;b&gt;bold&lt;/b&gt;"));

  const list = await (await get(handler, "/tasks")).text();
  assert.ok(!list.includes(script) && !list.includes("<img src=x"));
  assert.ok(list.includes("&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"));
});

Deno.test("the JSON endpoints count every task per status and priority, and page through them", async () => {
  await using worker = await testWorker({
    priorities: ["normal", "high"],
    concurrency: 1,
    prefetch: 0,
  });
  const release = Promise.withResolvers<void>();
  const blocker = worker.task(async function blocker(): Promise<void> {
    await release.promise;
  });
  const work = worker.task(async function work(_n: number): Promise<void> {});
  const other = worker.task(async function other(): Promise<void> {});
  const running = await blocker.enqueue();
  const background = runInBackground(worker);
  try {
    await eventually(async () => (await running.status()) === TaskStatus.RUNNING);
    await worker.enqueueMany([
      ...Array.from({ length: 120 }, (_, i) => work.enqueue(i)),
      ...Array.from({ length: 30 }, () => other.enqueue().start({ priority: "high" })),
      ...Array.from({ length: 5 }, (_, i) => work.enqueue(i).start({ delay: 60_000 })),
    ]);
    const handler = createDashboard(worker);
    const overview = await json(await get(handler, "/api/overview"));
    const counts = overview.counts as Record<string, unknown>;
    assert.equal(counts.queued, 150);
    assert.equal(counts.running, 1);
    assert.equal(counts.scheduled, 5);
    assert.equal(counts.workers, 1);
    assert.deepEqual(counts.byPriority, {
      normal: { queued: 120, running: 1, scheduled: 5 },
      high: { queued: 30, running: 0, scheduled: 0 },
    });

    const page1 = await json(await get(handler, "/api/tasks?status=queued&priority=normal"));
    assert.equal(page1.total, 120);
    assert.equal((page1.tasks as unknown[]).length, 25);
    const page5 = await json(
      await get(handler, "/api/tasks?status=queued&priority=normal&page=5"),
    );
    assert.equal((page5.tasks as unknown[]).length, 20);
    const others = await json(await get(handler, "/api/tasks?fn=other"));
    assert.equal(others.total, 30);
    const scheduled = await json(await get(handler, "/api/tasks?status=scheduled&fn=work"));
    assert.equal(scheduled.total, 5);
    const runningNow = await json(await get(handler, "/api/tasks?status=running"));
    assert.deepEqual((runningNow.tasks as { id: string }[]).map((t) => t.id), [running.id]);
    const workers = await json(await get(handler, "/api/workers"));
    assert.equal((workers.workers as { id: string }[])[0].id, worker.id);
  } finally {
    release.resolve();
    await background.stop();
  }
});

Deno.test("finished tasks are counted per minute in Redis and charted on the overview", async () => {
  await using worker = await testWorker();
  let tries = 0;
  const ok = worker.task(async function ok(): Promise<string> {
    return await Promise.resolve("fine");
  });
  const bad = worker.task(async function bad(): Promise<never> {
    await Promise.resolve();
    throw new RangeError("out of range");
  });
  const flaky = worker.task(async function flaky(): Promise<string> {
    await Promise.resolve();
    if (++tries === 1) throw new StreaqRetry("again", { delay: 0 });
    return "at last";
  });
  await worker.enqueueMany([
    ok.enqueue(),
    ok.enqueue(),
    ok.enqueue(),
    bad.enqueue(),
    bad.enqueue(),
  ]);
  await flaky.enqueue();
  // The counts reach Redis within a second and, at the latest, when the worker stops.
  await worker.run({ burst: true });

  const handler = createDashboard(worker);
  const overview = await json(await get(handler, "/api/overview"));
  const hour = overview.lastHour as Record<string, number>;
  assert.equal(hour.completed, 4);
  assert.equal(hour.failed, 2);
  assert.equal(hour.retried, 1);
  assert.equal(hour.finished, 6);
  const minutes = overview.minutes as { completed: number }[];
  assert.equal(minutes.length, 60);
  assert.equal(minutes.reduce((n, m) => n + m.completed, 0), 4);

  const keys = await queueContextOf(worker).redis.keys(`streaq:{${worker.queueName}}:metrics:*`);
  assert.ok(keys.length >= 1 && keys.length <= 2, keys.join(", "));
  for (const key of keys) {
    const ttl = await queueContextOf(worker).redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= 7_200, `${key} expires within two hours (ttl ${ttl})`);
  }
  const html = await (await get(handler, "/")).text();
  assert.match(html, /<svg class="chart"/);
  assert.match(html, /<b>6<\/b> finished/);
});

Deno.test("results and errors are shown by the default formatters or by the ones given", async () => {
  await using worker = await testWorker();
  const report = worker.task(async function report(): Promise<unknown> {
    return await Promise.resolve({ at: new Date(0), tags: new Set(["a"]), big: 12n });
  });
  const broken = worker.task(async function broken(): Promise<never> {
    await Promise.resolve();
    throw new TypeError("no such row", { cause: new Error("disk full") });
  });
  const [good, failed] = await worker.enqueueMany([report.enqueue(), broken.enqueue()]);
  await worker.run({ burst: true });

  const plain = createDashboard(worker);
  const result = await (await get(plain, `/tasks/${good.id}`)).text();
  assert.ok(
    result.includes(
      "{ at: Date(1970-01-01T00:00:00.000Z), tags: Set(1) { &quot;a&quot; }, big: 12n }",
    ),
  );
  const error = await (await get(plain, `/tasks/${failed.id}`)).text();
  assert.match(error, /TypeError: no such row\n\s+at /, "the error with its stack");
  assert.match(error, /Caused by: Error: disk full/);

  const custom = createDashboard(worker, {
    formatResult: (value) => `custom result ${Object.keys(value as object).join("+")}`,
    formatError: (e) => `custom error ${(e as Error).message}`,
  });
  assert.match(
    await (await get(custom, `/tasks/${good.id}`)).text(),
    /custom result at\+tags\+big/,
  );
  assert.match(await (await get(custom, `/tasks/${failed.id}`)).text(), /custom error no such row/);
  const api = await json(await get(custom, `/api/tasks/${failed.id}`));
  assert.equal(api.error, "custom error no such row");
  assert.equal(api.success, false);
});

Deno.test("a path that a browser reads as another host is never where signing in redirects or the sign-in form goes", async () => {
  await using worker = await testWorker();
  const handler = createDashboard(worker, { auth: { token: "correct-horse-battery" } });
  // Each is a path the dashboard, mounted at "/", is asked for; as a Location or a form's
  // action, a browser would go to evil.example with them.
  const hostile = [
    "//evil.example/",
    "//evil.example/tasks?status=queued",
    "///evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "//evil.example@127.0.0.1:8080/",
  ];
  const isLocal = (target: string) =>
    /^\/(?![/\\])/.test(target) && new URL(target, ORIGIN).origin === ORIGIN;
  for (const path of hostile) {
    const login = await get(
      handler,
      `${path}${path.includes("?") ? "&" : "?"}token=correct-horse-battery`,
    );
    assert.equal(login.status, 303, path);
    const location = login.headers.get("location") ?? "";
    assert.ok(isLocal(location), `${path} redirected to ${location}`);
    assert.equal(location, "/", `${path}: the dashboard's root instead`);

    const signIn = await get(handler, path);
    assert.equal(signIn.status, 401, path);
    const action = /<form method="get" action="([^"]*)"/.exec(await signIn.text())?.[1];
    assert.equal(action, "/", `${path}: the sign-in form's action`);
  }
  // An ordinary page keeps its path and query.
  const login = await get(handler, "/tasks?status=queued&token=correct-horse-battery");
  assert.equal(login.headers.get("location"), "/tasks?status=queued");
});

Deno.test("localPath() accepts a path of this origin only, and anything else becomes the fallback", () => {
  for (const path of ["/", "/tasks?status=queued", "/admin/queues/tasks/abc%2F%2Fdef", "/a//b"]) {
    assert.equal(localPath(path, "/fallback/"), path);
  }
  const hostile = [
    "//evil.example/",
    "/\\evil.example/",
    "/\\/evil.example",
    "/x\\y",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "",
    "/\t/evil.example",
    "/\n/evil.example",
    "/tasks\r\nSet-Cookie: x=1",
    "/\x00",
    "/\x7f",
  ];
  for (const path of hostile) assert.equal(localPath(path, "/fallback/"), "/fallback/", path);
});

/** A request body of `total` bytes streamed on demand (no length), counting what was pulled. */
function countingBody(total: number, chunk = 64 * 1024) {
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) return controller.close();
      counter.pulled += chunk;
      controller.enqueue(new Uint8Array(chunk).fill("a".charCodeAt(0)));
    },
  }, { highWaterMark: 0 });
  return { stream, counter };
}

const FORM = "application/x-www-form-urlencoded";

Deno.test("a POST body over 8 KB is refused with 413 and never buffered, whether its length is declared or it streams without one", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {});
  const delayed = await later.enqueue().start({ delay: 60_000 });
  const handler = createDashboard(worker);
  const { cookie } = await session(handler);
  const abortPath = `${ORIGIN}/tasks/${delayed.id}/abort`;

  const declared = countingBody(150 * 1024 * 1024);
  const refused = await handler(
    new Request(abortPath, {
      method: "POST",
      headers: { cookie, "content-type": FORM, "content-length": String(150 * 1024 * 1024) },
      body: declared.stream,
    }),
  );
  assert.equal(refused.status, 413);
  assert.match(await refused.text(), /Request body too large/);
  assert.equal(declared.counter.pulled, 0, "a body declared too large is not read at all");

  const streamed = countingBody(32 * 1024 * 1024);
  const cut = await handler(
    new Request(abortPath, {
      method: "POST",
      headers: { cookie, "content-type": FORM, accept: "application/json" },
      body: streamed.stream,
    }),
  );
  assert.equal(cut.status, 413);
  assert.match(String((await json(cut)).error), /at most 8192 bytes/);
  assert.ok(
    streamed.counter.pulled <= 8 * 1024 + 64 * 1024,
    `reading stopped past the bound: ${streamed.counter.pulled} bytes pulled`,
  );
  assert.equal(await delayed.status(), TaskStatus.SCHEDULED, "nothing was aborted");
});

Deno.test("a POST without a valid CSRF token is refused without its body being read", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(): Promise<void> {});
  const delayed = await later.enqueue().start({ delay: 60_000 });
  const handler = createDashboard(worker);
  const { cookie, token } = await session(handler);
  const abortPath = `${ORIGIN}/tasks/${delayed.id}/abort`;

  const cases: [string, Record<string, string>][] = [
    ["a form without the CSRF cookie", { "content-type": FORM }],
    ["a forged cookie", { cookie: "streaq_csrf=forged", "content-type": FORM }],
    ["a wrong token in the header", { cookie, "x-csrf-token": "wrong", "content-type": FORM }],
    ["a body that is not a form", { cookie, "content-type": "application/json" }],
  ];
  for (const [what, headers] of cases) {
    const body = countingBody(1024 * 1024);
    const response = await handler(
      new Request(abortPath, { method: "POST", headers, body: body.stream }),
    );
    assert.equal(response.status, 403, what);
    await response.body?.cancel();
    assert.equal(body.counter.pulled, 0, `${what}: the body was read`);
  }
  assert.equal(await delayed.status(), TaskStatus.SCHEDULED, "nothing was aborted");

  // The right token in a form streamed without a length still works.
  const form = new TextEncoder().encode(new URLSearchParams({ csrf: token }).toString());
  const accepted = await handler(
    new Request(abortPath, {
      method: "POST",
      headers: { cookie, "content-type": FORM },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(form);
          controller.close();
        },
      }),
    }),
  );
  assert.equal(accepted.status, 303);
  assert.equal(await delayed.status(), TaskStatus.DONE);
});

Deno.test("cookies are Secure over https, with secureCookies: true, and behind a proxy saying https only with trustProxy", async () => {
  await using worker = await testWorker();
  const secure = async (
    options: Parameters<typeof createDashboard>[1],
    url: string,
    headers: Record<string, string> = {},
  ) => {
    const response = await createDashboard(worker, options)(new Request(url, { headers }));
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [csrf] = response.headers.getSetCookie();
    assert.match(csrf, /^streaq_csrf=/);
    return /; Secure(;|$)/.test(csrf);
  };
  const http = `${ORIGIN}/`;
  const https = "https://127.0.0.1:8443/";
  const proxied = { "x-forwarded-proto": "https" };
  assert.equal(await secure({}, http), false);
  assert.equal(await secure({}, https), true);
  assert.equal(
    await secure({}, http, proxied),
    false,
    "X-Forwarded-Proto is not trusted by default",
  );
  assert.equal(await secure({ trustProxy: true }, http, proxied), true);
  assert.equal(
    await secure({ trustProxy: true }, http, { "x-forwarded-proto": "https, http" }),
    true,
  );
  assert.equal(await secure({ trustProxy: true }, http, { "x-forwarded-proto": "http" }), false);
  assert.equal(await secure({ trustProxy: true }, http), false);
  assert.equal(await secure({ secureCookies: true }, http), true);
  assert.equal(await secure({ secureCookies: false }, https), false);
  assert.equal(await secure({ secureCookies: false, trustProxy: true }, http, proxied), false);

  // The sign-in cookie follows the same rule.
  const handler = createDashboard(worker, {
    auth: { token: "correct-horse-battery" },
    secureCookies: true,
  });
  const login = await get(handler, "/?token=correct-horse-battery");
  assert.equal(login.status, 303);
  assert.match(login.headers.getSetCookie()[0], /^streaq_auth=.*; Secure$/);

  assert.throws(
    // @ts-expect-error: not one of the values
    () => createDashboard(worker, { secureCookies: "yes" }),
    /Cannot create dashboard as 'secureCookies' must be true, false or "auto": received "yes" \(string\)/,
  );
  assert.throws(
    // @ts-expect-error: not a boolean
    () => createDashboard(worker, { trustProxy: "true" }),
    /Cannot create dashboard as 'trustProxy' must be a boolean: received "true" \(string\)/,
  );
});

Deno.test("a tasks page past the last one shows no range, says so and links to the last page", async () => {
  await using worker = await testWorker();
  const later = worker.task(async function later(_n: number): Promise<void> {});
  await worker.enqueueMany(
    Array.from({ length: 20 }, (_, i) => later.enqueue(i).start({ delay: 60_000 })),
  );
  const handler = createDashboard(worker);
  const first = await (await get(handler, "/tasks")).text();
  assert.match(first, /1–20 of 20 tasks/);

  const past = await get(handler, "/tasks?page=2");
  assert.equal(past.status, 200);
  const html = await past.text();
  assert.doesNotMatch(html, /26–|of 20 tasks/, "no range past the end");
  assert.match(html, /Page 2 is past the end: 20 tasks fit on 1 page\./);
  assert.match(html, /<a href="\/tasks\?page=1">Go to page 1<\/a>/);
  assert.doesNotMatch(html, /Page 2 of 1/, "no pager counting past the end");

  const api = await json(await get(handler, "/api/tasks?page=3"));
  assert.equal(api.total, 20);
  assert.equal(api.pages, 1);
  assert.deepEqual(api.tasks, []);
});

/** Sends a raw HTTP/1.1 GET with this Host header and returns the status code. */
async function statusWithHost(port: number, host: string): Promise<number> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = `GET /api/workers HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    await connection.write(new TextEncoder().encode(request));
    const buffer = new Uint8Array(64);
    const read = await connection.read(buffer);
    return Number(new TextDecoder().decode(buffer.subarray(0, read ?? 0)).split(" ")[1]);
  } finally {
    connection.close();
  }
}

Deno.test("serveDashboard listens on loopback, refuses another address without auth, and answers loopback host names only", async () => {
  await using worker = await testWorker();
  assert.throws(
    () => serveDashboard(worker, { hostname: "0.0.0.0", port: 0 }),
    /Cannot serve the dashboard on "0.0.0.0" without 'auth'/,
  );
  const server = serveDashboard(worker, { port: 0, onListen: () => {} });
  try {
    assert.equal(server.addr.hostname, "127.0.0.1");
    const { port } = server.addr;
    assert.equal(await statusWithHost(port, `127.0.0.1:${port}`), 200);
    assert.equal(await statusWithHost(port, `localhost:${port}`), 200);
    assert.equal(await statusWithHost(port, "attacker.example"), 403, "DNS rebinding is refused");
  } finally {
    await server.shutdown();
  }
});
