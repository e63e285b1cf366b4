// The alerts table: newest first, updated in place by id (the same alert comes again with a
// higher count), filtered by text, profile and account; a row opens its sample CDR; the
// "Clear alerts" button deletes them all on the service (with the token: the one this tab
// holds, from the service's one-time link, is offered; else it is asked for).

import { $, h, setOptions } from "./dom.js";
import { deleteAlerts, fetchAlert } from "./api.js";
import { getToken, setToken } from "./auth.js";
import { dateTime, hhmm, windowRange } from "./time.js";

const SHOWN = 300; // rows drawn at most; the filters find the rest

export class Alerts {
  constructor({ onCleared }) {
    this.byId = new Map();
    this.seen = new Map(); // id → count when last drawn, to flash what changed
    this.drawn = false;
    this.onCleared = onCleared;
    this.table = $("#alerts");
    this.filters = { text: $("#alert-text"), state: $("#alert-state"), profile: $("#alert-profile"),
                     account: $("#alert-account") };
    $("#alert-filters").addEventListener("submit", (e) => e.preventDefault());
    for (const input of Object.values(this.filters)) input.addEventListener("input", () => this.draw());
    $("tbody", this.table).addEventListener("click", (e) => this.open(e.target.closest("tr[data-id]")));
    $("tbody", this.table).addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        const row = e.target.closest("tr[data-id]");
        if (row) { e.preventDefault(); this.open(row); }
      }
    });
    setupDialog($("#doc-dialog"));
    // Back to the alert's row on close, even if the table was redrawn meanwhile.
    $("#doc-dialog").addEventListener("close", () =>
      $("tbody", this.table).querySelector(`tr[data-id="${CSS.escape(this.opened ?? "")}"]`)?.focus());
    setupClear($("#clear-dialog"), () => this.clear());
  }

  /** Everything from GET /6minutes/alerts (replaces what is held). */
  load(list) {
    this.byId = new Map(list.map((a) => [a.id, a]));
    this.draw();
  }

  /** One `alert` event: a new alert, a known one with a higher count, or one that resolved. */
  upsert(alert) {
    const held = this.byId.get(alert.id);
    if (held && held.count > alert.count) return;
    this.byId.set(alert.id, alert);
    this.drawSoon();
  }

  drawSoon() {
    this.timer ??= setTimeout(() => { this.timer = null; this.draw(); }, 200);
  }

  list() {
    return [...this.byId.values()].sort((a, b) => b.timestamp - a.timestamp || b.time - a.time);
  }

  draw() {
    const all = this.list();
    setOptions(this.filters.profile, [["", "all"], ...distinct(all, "profile")]);
    setOptions(this.filters.account, [["", "all"], ...distinct(all, "account")]);
    const text = this.filters.text.value.trim().toLowerCase();
    const profile = this.filters.profile.value, account = this.filters.account.value;
    const state = this.filters.state.value;
    const shown = all.filter((a) => (!profile || a.profile === profile) && (!account || a.account === account)
      && (!state || stateOf(a) === state) && (!text || searchable(a).includes(text)));
    const focused = document.activeElement?.closest?.("#alerts tr[data-id]")?.dataset.id;
    const body = $("tbody", this.table);
    body.replaceChildren(...shown.slice(0, SHOWN).map((a) => this.row(a)));
    this.drawn = true;
    if (focused) body.querySelector(`tr[data-id="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
    $("#alerts-count").textContent = all.length;
    $("#alerts-firing").textContent = `${all.filter((a) => stateOf(a) === "firing").length} firing`;
    $("#alerts-empty").hidden = shown.length > 0;
    $("#alerts-empty").textContent = all.length ? "No alert matches the filters." : "No alerts.";
    const more = $("#alerts-more");
    more.hidden = shown.length <= SHOWN;
    more.textContent = `Showing the newest ${SHOWN} of ${shown.length}; narrow the filters to see others.`;
  }

  row(a) {
    const seen = this.seen.get(a.id);
    const fresh = this.drawn && seen !== a.count; // new, or counted again, since the last draw
    this.seen.set(a.id, a.count);
    const severity = a.severity ?? (a.rule ? "warning" : "info");
    const state = stateOf(a);
    return h("tr", { "data-id": a.id, tabindex: 0,
                     class: `sev-${severity} state-${state}${fresh ? " fresh" : ""}`,
                     title: "Enter or click: the sample CDR that raised it" },
      h("td", { class: "when", title: `window ${windowRange(a.timestamp)}, raised ${dateTime(a.time)}` }, hhmm(a.timestamp)),
      h("td", { class: "state", title: lifetime(a) }, h("span", { class: `pill ${state}` }, state)),
      h("td", { class: "num count" }, a.count.toLocaleString()),
      h("td", { class: "msg" }, h("span", { class: "text" }, a.msg),
        h("span", { class: "plugin" }, a.plugin, a.severity ? ` · ${a.severity}` : "")),
      h("td", { class: "profile" }, a.profile, h("span", { class: "dir" }, a.direction)),
      h("td", { class: "account" }, a.account));
  }

  open(row) {
    const alert = row && this.byId.get(row.dataset.id);
    if (!alert) return;
    this.opened = alert.id;
    $("#doc-title").textContent = alert.msg;
    const meta = [["Window", `${windowRange(alert.timestamp)} (${dateTime(alert.timestamp)})`],
      ["Raised", dateTime(alert.time)], ["State", `${stateOf(alert)}: ${lifetime(alert)}`],
      ["Count", alert.count], ["Plugin", alert.plugin],
      ["Profile", alert.profile], ["Direction", alert.direction], ["Account", alert.account],
      ["Duration", alert.duration ? `billable ${alert.duration.billable} s, total ${alert.duration.total} s` : "–"]];
    $("#doc-meta").replaceChildren(...meta.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v ?? "–"))]));
    $("#doc-json").textContent = "(loading the sample CDR…)";
    $("#doc-dialog").showModal();
    $("#doc-json").scrollTop = 0;
    fetchAlert(alert.id).then((full) => full.doc, () => null).then((doc) => {
      if (this.opened !== alert.id) return;  // another alert was opened meanwhile
      $("#doc-json").textContent = doc ? JSON.stringify(doc, null, 2) : "(no sample CDR kept for this alert)";
    });
  }

  async clear() {
    const token = $("#clear-token").value;
    const response = await deleteAlerts(token);
    if (response.ok) {
      setToken(token);
      this.load([]);
      this.onCleared?.();
      return null;
    }
    if (response.status === 401) setToken("");
    const body = await response.json().catch(() => ({}));
    return response.status === 401 ? "The service refused this token." : `Failed: ${body.message ?? response.status}`;
  }
}

/** "firing" or "resolved" (alerts saved before the lifecycle existed have no state: firing). */
const stateOf = (a) => (a.state === "resolved" ? "resolved" : "firing");

/** Since when the condition behind an alert fired, and when and why it ended. */
function lifetime(a) {
  const since = a.starts_at ? `since ${dateTime(a.starts_at)}` : "";
  if (stateOf(a) !== "resolved") return since;
  const why = a.resolution === "recovered" ? "recovered" : "none since";
  return `${since}, ended ${a.ends_at ? dateTime(a.ends_at) : "?"} (${why})`;
}

const distinct = (alerts, field) =>
  [...new Set(alerts.map((a) => a[field]).filter((v) => v !== undefined && v !== null && v !== ""))]
    .sort((a, b) => String(a).localeCompare(String(b))).map((v) => [String(v), String(v)]);

const searchable = (a) => [a.msg, a.plugin, a.profile, a.direction, a.account, a.code, a.rule, a.severity, a.state]
  .filter(Boolean).join(" ").toLowerCase();

function setupDialog(dialog) {
  dialog.addEventListener("click", (e) => {
    if (e.target.closest("[data-close]")) dialog.close();
  });
}

function setupClear(dialog, clear) {
  const form = $("#clear-form"), error = $("#clear-error"), input = $("#clear-token");
  setupDialog(dialog);
  $("#clear-alerts").addEventListener("click", () => {
    input.value = getToken(); // from the one-time link, or typed here before
    error.hidden = true;
    dialog.showModal();
    input.focus();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const message = await clear().catch((err) => `Failed: ${err.message}`);
    if (message === null) dialog.close();
    else { error.textContent = message; error.hidden = false; }
  });
}
