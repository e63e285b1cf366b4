// Destinations: the countries called most in the last complete window, and the movers (the
// countries whose calls moved most against their baseline, or whose ASR moved against
// yesterday's), from GET /6minutes/destinations.

import { $, h } from "./dom.js";
import { windowRange } from "./time.js";

const count = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString());
const share = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
const signed = (v, text) => (v === null || v === undefined ? "–" : `${v > 0 ? "+" : ""}${text(v)}`);

export function renderDestinations(found) {
  $("#destinations-window").textContent = found.window === null ? "none yet" : windowRange(found.window);
  $("#destinations-baseline").textContent = found.days >= 3
    ? `median of the ${found.days} days before` : found.days ? "the same window yesterday" : "no history yet";
  fill($("#destinations-top"), ["Country", "Calls", "Answered", "ASR"], found.top.map((r) => [
    r.country, count(r.calls), count(r.answered), share(r.asr)]), "No call in that window.");
  fill($("#destinations-movers"), ["Country", "Calls", "Baseline", "Change", "ASR Δ"], found.movers.map((r) => [
    r.country, count(r.calls), count(r.baseline),
    { text: signed(r.change, count), cls: r.change > 0 ? "up" : r.change < 0 ? "down" : "" },
    { text: signed(r.asr_change, share), cls: r.asr_change > 0 ? "up" : r.asr_change < 0 ? "down" : "" },
  ]), "Nothing to compare with yet.");
}

function fill(table, columns, rows, emptyText) {
  $("thead", table).replaceChildren(h("tr", {}, ...columns.map((c, i) =>
    h("th", { scope: "col", class: i ? "num" : "" }, c))));
  const body = rows.length ? rows.map(([country, ...cells]) => h("tr", {},
    h("th", { scope: "row", class: "account" }, country),
    ...cells.map((c) => h("td", { class: `num ${c.cls ?? ""}` }, c.text ?? c)),
  )) : [h("tr", {}, h("td", { colspan: columns.length, class: "empty-row" }, emptyText))];
  $("tbody", table).replaceChildren(...body);
}
