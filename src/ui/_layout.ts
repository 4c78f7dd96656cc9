/**
 * The frame around every page: the header with the queue and the navigation, the refreshed
 * region, the confirmation dialog, and the links to the stylesheet and script.
 *
 * @module
 */

import { SCRIPT, STYLESHEET } from "./_assets.ts";
import { href, type Page, type PageContext, type Section } from "./_context.ts";
import { type Html, html, raw } from "./_html.ts";

const SECTIONS: [Section, string, string][] = [
  ["overview", "Overview", "/"],
  ["tasks", "Tasks", "/tasks"],
  ["workers", "Workers", "/workers"],
  ["schedules", "Schedules", "/schedules"],
];

const LOGO = html`
  <svg viewBox="0 0 24 24" aria-hidden="true">
    <rect x="2" y="4" width="20" height="4" rx="2" fill="#818cf8" />
    <rect x="2" y="10" width="14" height="4" rx="2" fill="#a5b4fc" />
    <rect x="2" y="16" width="8" height="4" rx="2" fill="#c7d2fe" />
  </svg>
`;

const FAVICON = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect width="24" height="24" rx="5" fill="#171a21"/><rect x="4" y="6" width="16" height="3" rx="1.5" fill="#818cf8"/><rect x="4" y="11" width="11" height="3" rx="1.5" fill="#a5b4fc"/><rect x="4" y="16" width="6" height="3" rx="1.5" fill="#c7d2fe"/></svg>',
);

/** A whole HTML document around `page`. */
export function layout(ctx: PageContext, title: string, page: Page): Html {
  const queue = ctx.reads.queueName;
  const tabs = SECTIONS.map(([section, label, path]) =>
    html`<a href="${href(ctx, path)}" ${
      section === page.section ? html`aria-current="page"` : null
    }>${label}</a>`
  );
  const header = html`
    <header class="top">
      <div class="top-inner">
        <a class="brand" href="${href(ctx, "/")}">${LOGO}${title}</a>
        <span class="queue" title="Queue">${queue}</span>
        <span id="live-status" class="live" data-state="live" role="status">Live</span>
      </div>
      <nav class="tabs" aria-label="Sections">${tabs}</nav>
    </header>
  `;
  const confirm = html`
    <dialog id="confirm" class="confirm">
      <form method="dialog">
        <h2>Please confirm</h2>
        <p data-text></p>
        <div class="actions">
          <button class="btn" value="cancel">Cancel</button>
          <button class="btn btn-danger" value="ok" data-ok>Confirm</button>
        </div>
      </form>
    </dialog>
  `;
  return document(
    ctx,
    `${page.title} · ${title} · ${queue}`,
    html`
      ${header}<main
        class="page">${page.head}<div id="live" data-events="${href(ctx, "/events")}">${page
          .body}</div></main>
            <div id="toast" role="status" aria-live="polite" hidden></div>${confirm}
    `,
  );
}

/** A page of its own, without navigation, for an error. */
export function errorPage(ctx: PageContext, message: string): Html {
  return messagePage(
    ctx,
    message,
    html`<p><a class="btn" href="${href(ctx, "/")}">Back to the overview</a></p>`,
  );
}

/** The sign-in form of a token-protected dashboard: it sends the token as `?token=`. */
export function signInPage(ctx: PageContext, action: string): Html {
  return messagePage(
    ctx,
    "Sign in",
    html`
      <p class="muted">This dashboard needs its access token.</p>
      <form method="get" action="${action}">
        <input type="password" name="token" placeholder="Access token" aria-label="Access token" required
          autocomplete="current-password">
        <button class="btn btn-primary" type="submit">Sign in</button>
      </form>
    `,
  );
}

function messagePage(ctx: PageContext, heading: string, body: Html): Html {
  return document(
    ctx,
    heading,
    html`
      <main class="page">
        <div class="center"><h1>${heading}</h1>${body}</div>
      </main>
    `,
  );
}

function document(ctx: PageContext, title: string, body: Html): Html {
  return raw(html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex">${ctx.csrfToken
          ? html`<meta name="csrf-token" content="${ctx.csrfToken}">`
          : null}
        <title>${title}</title>
        <link rel="icon" href="${FAVICON}">
        <link rel="stylesheet" href="${href(ctx, `/assets/${STYLESHEET}`)}">
        <script src="${href(ctx, `/assets/${SCRIPT}`)}" defer></script>
      </head>
      <body>${body}</body>
    </html>
  `.value.trim());
}
