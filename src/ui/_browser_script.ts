/**
 * The dashboard's script, run in the browser: it refreshes the page's live region from the same
 * URL (the server answers the fragment alone) when the queue's events say something changed
 * (Server-Sent Events from `<base>/events`, at most twice a second, and on a task's page only
 * for that task), or every few seconds when the queue has no events stream or the connection to
 * it is down; with events, a slow poll still catches what no event reports (worker heartbeats,
 * schedules). It confirms abort and
 * unschedule in a dialog before sending them with their CSRF token, and submits the task
 * list's filters on change. Plain JavaScript, no build step.
 *
 * @module
 */

/** The script's text. */
export const JS = `"use strict";
(() => {
  const REFRESH_MS = 3000;
  // With events: the slow poll for what no event reports, and the shortest time between two
  // refreshes that events ask for.
  const BACKSTOP_MS = 30000;
  const EVENT_GAP_MS = 500;
  const region = document.getElementById("live");
  const status = document.getElementById("live-status");
  const dialog = document.getElementById("confirm");
  const toastBox = document.getElementById("toast");
  let timer = 0;
  let pending = null;
  let eventsLive = false;
  let eventTimer = 0;
  let lastEventRefresh = 0;
  // On a task's page (".../tasks/<id>"), only that task's events matter.
  const path = location.pathname.split("/");
  const pageTask = path.length > 2 && path[path.length - 2] === "tasks" && path[path.length - 1]
    ? decodeURIComponent(path[path.length - 1])
    : null;

  function show(state, text) {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  }

  function toast(text, kind) {
    if (!toastBox) return;
    toastBox.textContent = text;
    toastBox.dataset.kind = kind;
    toastBox.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (toastBox.hidden = true), 4000);
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, eventsLive ? BACKSTOP_MS : REFRESH_MS);
  }

  function refreshSoon() {
    if (eventTimer) return;
    const wait = Math.max(0, lastEventRefresh + EVENT_GAP_MS - Date.now());
    eventTimer = setTimeout(() => {
      eventTimer = 0;
      lastEventRefresh = Date.now();
      refresh();
    }, wait);
  }

  function listen() {
    const url = region && region.dataset.events;
    if (!url || typeof EventSource !== "function") return;
    const source = new EventSource(url);
    source.onopen = () => {
      eventsLive = true;
      if (status) status.dataset.via = "events";
      schedule();
    };
    source.onmessage = (message) => {
      let event = null;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (pageTask && event.taskId !== pageTask && event.type !== "gap") return;
      refreshSoon();
    };
    source.onerror = () => {
      // Reconnecting (or, for a queue without events, given up): poll meanwhile.
      eventsLive = false;
      if (status) status.dataset.via = "polling";
      schedule();
    };
  }

  async function refresh() {
    clearTimeout(timer);
    if (!region) return;
    if (document.hidden || (dialog && dialog.open)) return schedule();
    try {
      const response = await fetch(location.href, {
        headers: { "X-Streaq-Fragment": "1" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (response.ok) {
        region.innerHTML = await response.text();
        show("live", "Live");
        region.dispatchEvent(new CustomEvent("streaq:refreshed", { bubbles: true }));
      } else {
        show(response.status === 404 ? "gone" : "error", response.status === 404 ? "Gone" : "Error " + response.status);
      }
    } catch {
      show("error", "Offline");
    }
    schedule();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) show("paused", "Paused");
    else refresh();
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm || !dialog) return;
    event.preventDefault();
    pending = form;
    dialog.querySelector("[data-text]").textContent = form.dataset.confirm;
    dialog.querySelector("[data-ok]").textContent = form.dataset.ok || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
  });

  dialog?.addEventListener("close", async () => {
    const form = pending;
    pending = null;
    if (!form || dialog.returnValue !== "ok") return;
    const token = form.querySelector("input[name=csrf]")?.value ?? "";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": token },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      toast(body.message || (response.ok ? "Done" : "Error " + response.status), response.ok ? "ok" : "bad");
    } catch {
      toast("The request failed: is the dashboard still running?", "bad");
    }
    refresh();
  });

  for (const select of document.querySelectorAll("form[data-autosubmit] select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  if (region) {
    schedule();
    listen();
  }
})();
`;
