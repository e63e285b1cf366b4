// Accounts: the busiest, and those with the worst zero-duration ratio, over the current and
// previous windows together (series account_calls, account_zero_duration, account_billsec).

import { $, h } from "./dom.js";
import { pct, seconds } from "./kpi.js";
import { WINDOW } from "./time.js";

const TOP = 10;
const MIN_CALLS = 5; // a ratio over fewer calls ranks nothing
const RULE = { bound: 0.8, min_count: 20 }; // account_zero_duration_ratio, as the service's default

const n = (stat) => stat?.count ?? 0;
const zeroRatio = (a) => (n(a?.calls) ? n(a.zero) / n(a.calls) : null);
const acd = (a) => (n(a?.billsec) ? a.billsec.sum / a.billsec.count : null);

export function renderAccounts(store, now) {
  const rows = new Map();
  for (const [which, t] of [["now", now], ["prev", now - WINDOW]]) {
    for (const [key, a] of store.window(t)?.accounts ?? []) {
      if (!rows.has(key)) rows.set(key, { account: a.account, direction: a.direction, now: null, prev: null });
      rows.get(key)[which] = a;
    }
  }
  const all = [...rows.values()].map((r) => ({
    ...r,
    calls: n(r.now?.calls) + n(r.prev?.calls),
    zero: n(r.now?.zero) + n(r.prev?.zero),
  }));
  const busy = all.filter((r) => r.calls > 0).sort((a, b) => b.calls - a.calls || a.account.localeCompare(b.account));
  const worst = all.filter((r) => r.calls >= MIN_CALLS)
    .sort((a, b) => b.zero / b.calls - a.zero / a.calls || b.calls - a.calls);
  $("#accounts-min").textContent = MIN_CALLS;
  fill($("#accounts-busy"), busy.slice(0, TOP), "No account has calls in these windows.");
  fill($("#accounts-zero"), worst.slice(0, TOP), `No account has ${MIN_CALLS} calls or more in these windows.`);
}

function fill(table, rows, emptyText) {
  $("thead", table).replaceChildren(h("tr", {},
    h("th", { scope: "col" }, "Account"), h("th", { scope: "col" }, "Dir"),
    h("th", { scope: "col", class: "num" }, "Calls"), h("th", { scope: "col", class: "num" }, "Zero-dur"),
    h("th", { scope: "col", class: "num" }, "ACD")));
  const body = rows.length ? rows.map((r) => h("tr", {},
    h("th", { scope: "row", class: "account" }, r.account),
    h("td", { class: "dir" }, r.direction),
    pair(n(r.now?.calls), n(r.prev?.calls), (v) => v.toLocaleString()),
    pair(zeroRatio(r.now), zeroRatio(r.prev), pct, [r.now, r.prev]),
    pair(acd(r.now), acd(r.prev), seconds),
  )) : [h("tr", {}, h("td", { colspan: 5, class: "empty-row" }, emptyText))];
  $("tbody", table).replaceChildren(...body);
}

function pair(vNow, vPrev, text, judged) {
  const cls = (v, a) => (judged && v !== null && v > RULE.bound ? (n(a.calls) >= RULE.min_count ? "v-bad" : "v-weak") : "");
  return h("td", { class: `num kpi ${judged ? cls(vNow, judged[0]) : ""}` },
    h("span", { class: "cur" }, text(vNow)),
    h("span", { class: `prev ${judged ? cls(vPrev, judged[1]) : ""}` }, text(vPrev)));
}
