// The carrier board: one row per profile × direction, each cell the current window's value
// over the previous one's, coloured against the alert thresholds; sortable by any column.

import { $, $$, h } from "./dom.js";
import { KPIS, breaches, calls, topCodes, verdict } from "./kpi.js";
import { severity } from "./trouble.js";
import { WINDOW } from "./time.js";

const ACTIVE_WINDOWS = 10; // a carrier silent for the last hour leaves the board
const STATE_TITLES = {
  bad: "a threshold is crossed with enough calls to alert, in the current or previous window",
  weak: "a KPI is beyond its bound, on too few calls to alert",
  idle: "no call in the current or previous window",
  ok: "within bounds",
};

// Sort columns: how to read a row's value and which way is "worst first" (the first click).
const COLUMNS = [
  { id: "state", label: "State", title: "Trouble first: the most thresholds crossed, then the most calls", worst: "desc",
    value: (r) => r.severity * 1e9 + r.crossed * 1e6 + r.calls },
  { id: "carrier", label: "Carrier", title: "Profile and direction", worst: "asc",
    value: (r) => `${r.profile}\u0000${r.direction}` },
  ...KPIS.map((k) => ({
    id: k.id, label: k.label, title: k.title, kpi: k,
    worst: ["asr", "ner", "mos", "acd"].includes(k.id) ? "asc" : "desc",
    value: (r, basis) => k.value(r[basis]),
  })),
  { id: "codes", label: "Top SIP errors", title: "Most frequent SIP codes ≥ 300", worst: "desc",
    value: (r, basis) => topCodes(r[basis], 1)[0]?.[1] ?? 0 },
];

export class Board {
  constructor(table, { onPick }) {
    this.table = table;
    this.empty = $("#board-empty");
    this.onPick = onPick;
    this.sort = { id: "state", dir: "desc" };
    this.basis = "now";
    this.rows = [];
    this.buildHead();
    for (const button of $$(".board-panel [data-basis]")) {
      button.addEventListener("click", () => {
        this.basis = button.dataset.basis;
        for (const b of $$(".board-panel [data-basis]")) b.setAttribute("aria-pressed", String(b === button));
        this.draw();
      });
    }
  }

  buildHead() {
    const row = $("thead tr", this.table);
    row.replaceChildren(...COLUMNS.map((column) => h("th", { scope: "col", "data-col": column.id, class: column.kpi ? "num" : null },
      h("button", { type: "button", class: "sort", title: `${column.title} — sort`,
                    onclick: () => this.sortBy(column) }, column.label, h("span", { class: "arrow", "aria-hidden": "true" })))));
    this.markSorted();
  }

  markSorted() {
    for (const th of $$("thead th", this.table)) {
      const sorted = th.dataset.col === this.sort.id;
      th.setAttribute("aria-sort", sorted ? (this.sort.dir === "asc" ? "ascending" : "descending") : "none");
      $(".arrow", th).textContent = sorted ? (this.sort.dir === "asc" ? " ▲" : " ▼") : "";
    }
  }

  sortBy(column) {
    const dir = this.sort.id === column.id ? (this.sort.dir === "asc" ? "desc" : "asc") : column.worst;
    this.sort = { id: column.id, dir };
    this.draw();
  }

  /** Rebuild the rows from the store for the current window `now`. */
  update(store, now) {
    const prev = now - WINDOW;
    const recent = new Set();
    for (let t = now - ACTIVE_WINDOWS * WINDOW; t <= now; t += WINDOW) {
      for (const [key, c] of store.window(t)?.carriers ?? []) if (calls(c)) recent.add(key);
    }
    this.rows = [...recent].map((key) => {
      const { profile, direction } = store.carriers.get(key);
      const cur = store.carrierAt(now, profile, direction);
      const before = store.carrierAt(prev, profile, direction);
      return { key, profile, direction, now: cur, prev: before, calls: calls(cur) + calls(before),
               severity: severity(cur, before), crossed: breaches(cur).length + breaches(before).length,
               idle: !calls(cur) && !calls(before) };
    });
    this.draw();
  }

  draw() {
    const column = COLUMNS.find((c) => c.id === this.sort.id);
    const sign = this.sort.dir === "asc" ? 1 : -1;
    const rows = [...this.rows].sort((a, b) => {
      const va = column.value(a, this.basis), vb = column.value(b, this.basis);
      if (va === vb) return b.calls - a.calls || a.profile.localeCompare(b.profile);
      if (va === null || va === undefined) return 1; // no value: last, whichever the direction
      if (vb === null || vb === undefined) return -1;
      return (va < vb ? -1 : 1) * sign;
    });
    this.markSorted();
    $("tbody", this.table).replaceChildren(...rows.map((r) => this.row(r)));
    this.empty.hidden = rows.length > 0;
  }

  row(r) {
    const state = r.severity === 2 ? ["trouble", "bad"] : r.severity === 1 ? ["watch", "weak"] : r.idle ? ["idle", "idle"] : ["", "ok"];
    return h("tr", { class: `sev-${state[1]}`, "data-carrier": r.key, onclick: () => this.onPick(r.key) },
      h("td", { class: "state", title: STATE_TITLES[state[1]] }, state[0] ? h("span", { class: `pill ${state[1]}` }, state[0]) : null),
      h("th", { scope: "row", class: "carrier" }, h("span", { class: "profile" }, r.profile), " ",
        h("span", { class: "dir" }, r.direction)),
      KPIS.map((k) => kpiCell(k, r.now, r.prev)),
      h("td", { class: "codes" }, codes(r.now, "cur"), codes(r.prev, "prev")),
    );
  }
}

function kpiCell(kpi, cur, prev) {
  const vNow = kpi.value(cur), vPrev = kpi.value(prev);
  return h("td", { class: `num kpi v-${verdict(kpi, cur) ?? "none"}`, title: kpi.title },
    h("span", { class: "cur" }, kpi.text(vNow)),
    h("span", { class: `prev v-${verdict(kpi, prev) ?? "none"}` }, kpi.text(vPrev)));
}

function codes(carrier, cls) {
  const top = topCodes(carrier, 3);
  return h("span", { class: cls }, top.length ? top.map(([code, n]) =>
    h("span", { class: `code c${code[0]}`, title: `SIP ${code}: ${n} of ${calls(carrier)} calls` }, code, h("small", {}, `×${n}`))) : "–");
}
