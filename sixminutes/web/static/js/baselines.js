// Traffic against the baseline: per carrier, the calls of the last complete window beside the
// same window yesterday and the median of the last seven days (GET /6minutes/baselines), and
// the difference ("−80 %" against yesterday): a carrier whose traffic fell, even without a
// single SIP error, stands at the top. Every label is a text node (dom.js), never markup.

import { $, h } from "./dom.js";
import { windowRange } from "./time.js";

const MINUS = "\u2212";
const count = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString());

/** The change of `value` against `base`: its text ("−80 %", "+150 %", "new", "–" without
 *  history), a class for its colour and the relative change (null without history). */
export function change(value, base) {
  if (base === null || base === undefined) return { text: "–", cls: "", rel: null };
  if (base === 0) return value > 0 ? { text: "new", cls: "up", rel: Infinity } : { text: "±0 %", cls: "", rel: 0 };
  const pct = Math.round((value / base - 1) * 100);
  const text = pct === 0 ? "±0 %" : `${pct > 0 ? "+" : MINUS}${Math.abs(pct)} %`;
  return { text, cls: pct > 0 ? "up" : pct < 0 ? "down" : "", rel: value / base - 1 };
}

// What the traffic rules compare with: the median from three days of history, else yesterday.
const expected = (r) => (r.days >= 3 ? r.vsMedian : r.vsYesterday);

export function renderBaselines(found) {
  $("#baselines-window").textContent = found.window === null ? "none yet" : windowRange(found.window);
  const rows = found.series.map((r) => ({
    ...r, vsYesterday: change(r.value, r.yesterday), vsMedian: change(r.value, r.median),
  }));
  // Drops first, the deepest first (the traffic_drop rule is the critical one), then rises,
  // the biggest first, then the carriers without history, the busiest first.
  const group = (rel) => (rel === null ? 2 : rel < 0 ? 0 : 1);
  rows.sort((a, b) => {
    const [x, y] = [expected(a).rel, expected(b).rel];
    return group(x) - group(y) || (group(x) === 0 ? x - y : group(x) === 1 ? (y > x) - (y < x) : 0)
      || b.value - a.value || String(a.labels.profile).localeCompare(String(b.labels.profile));
  });
  const table = $("#baselines");
  $("thead", table).replaceChildren(h("tr", {},
    h("th", { scope: "col" }, "Carrier"), h("th", { scope: "col" }, "Dir"),
    h("th", { scope: "col", class: "num" }, "Calls"),
    h("th", { scope: "col", class: "num" }, "Yesterday"),
    h("th", { scope: "col", class: "num" }, "vs yesterday"),
    h("th", { scope: "col", class: "num" }, "7-day median"),
    h("th", { scope: "col", class: "num" }, "vs median")));
  const body = rows.length ? rows.map((r) => h("tr", { "data-series": r.series },
    h("th", { scope: "row", class: "account profile" }, r.labels.profile ?? ""),
    h("td", { class: "dir" }, r.labels.direction ?? ""),
    h("td", { class: "num value" }, count(r.value)),
    h("td", { class: "num yesterday" }, count(r.yesterday)),
    h("td", { class: `num vs-yesterday ${r.vsYesterday.cls}` }, r.vsYesterday.text),
    h("td", { class: "num median", title: r.days ? `median of the ${r.days} days with history` : "no history" },
      count(r.median), r.days ? h("span", { class: "muted small" }, ` (${r.days} d)`) : null),
    h("td", { class: `num vs-median ${r.vsMedian.cls}` }, r.vsMedian.text),
  )) : [h("tr", {}, h("td", { colspan: 7, class: "empty-row" }, "No calls in that window or the same window yesterday."))];
  $("tbody", table).replaceChildren(...body);
}
