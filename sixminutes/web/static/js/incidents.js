// The incidents: one row per rule (or plugin) and labels, from its first window to its
// resolution (GET /6minutes/incidents, then `incident` events), firing first. An account
// incident that a failing carrier explains is shown dimmed, with the carrier that explains it.

import { $, h } from "./dom.js";
import { dateTime, hhmm, windowRange } from "./time.js";

const SHOWN = 100;
const RANK = { critical: 0, warning: 1, info: 2 };

export class Incidents {
  constructor() {
    this.byId = new Map();
    this.table = $("#incidents");
  }

  /** Everything from GET /6minutes/incidents (replaces what is held). */
  load(list) {
    this.byId = new Map((list ?? []).map((i) => [i.id, i]));
    this.draw();
  }

  /** An `incident` event: a new incident, or a change of one (its id may change when a late
   *  record moves its start earlier: the older one is dropped by its first record). */
  upsert(incident) {
    for (const [id, known] of this.byId) {
      if (id !== incident.id && known.alerts?.[0] && incident.alerts?.includes(known.alerts[0])) this.byId.delete(id);
    }
    this.byId.set(incident.id, incident);
    this.draw();
  }

  list() {
    return [...this.byId.values()].sort((a, b) => (a.state === "firing" ? 0 : 1) - (b.state === "firing" ? 0 : 1)
      || (RANK[a.severity] ?? 3) - (RANK[b.severity] ?? 3) || b.starts_at - a.starts_at);
  }

  draw() {
    const all = this.list();
    $("tbody", this.table).replaceChildren(...all.slice(0, SHOWN).map((i) => row(i)));
    $("#incidents-count").textContent = all.length;
    const firing = all.filter((i) => i.state === "firing" && !i.inhibited_by).length;
    $("#incidents-firing").textContent = `${firing} firing`;
    $("#incidents-empty").hidden = all.length > 0;
  }
}

function row(i) {
  const about = i.carrier ?? [i.account, i.direction].filter(Boolean).join(" ");
  const span = i.windows > 1 ? `${i.windows} windows` : "1 window";
  const peak = i.peak === null || i.peak === undefined ? "–"
    : i.bound !== null && i.bound !== undefined && i.bound <= 1 ? `${(i.peak * 100).toFixed(0)}%` : String(i.peak);
  return h("tr", { "data-id": i.id, class: `sev-${i.severity} state-${i.state}${i.inhibited_by ? " explained" : ""}`,
                   title: `${windowRange(i.first_window)} → ${windowRange(i.last_window)}; started ${dateTime(i.starts_at)}` },
    h("td", { class: "when" }, hhmm(i.first_window)),
    h("td", { class: "state" }, h("span", { class: `pill ${i.state}` }, i.state)),
    h("td", { class: "severity" }, i.severity),
    h("td", { class: "msg" }, h("span", { class: "text" }, i.msg), h("span", { class: "plugin" }, i.rule),
      i.inhibited_by ? h("span", { class: "explained-by muted small" }, ` explained by ${i.inhibited_by}`) : null),
    h("td", { class: "about" }, about),
    h("td", { class: "num windows" }, span),
    h("td", { class: "num peak" }, peak));
}
