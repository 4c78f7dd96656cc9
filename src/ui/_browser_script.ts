/**
 * The dashboard's script, run in the browser: it refreshes the page's live region every few
 * seconds from the same URL (the server answers the fragment alone), confirms abort and
 * unschedule in a dialog before sending them with their CSRF token, and submits the task
 * list's filters on change. Plain JavaScript, no build step.
 *
 * @module
 */

/** The script's text. */
export const JS = `"use strict";
(() => {
  const REFRESH_MS = 3000;
  const region = document.getElementById("live");
  const status = document.getElementById("live-status");
  const dialog = document.getElementById("confirm");
  const toastBox = document.getElementById("toast");
  let timer = 0;
  let pending = null;

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
    timer = setTimeout(refresh, REFRESH_MS);
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

  if (region) schedule();
})();
`;
