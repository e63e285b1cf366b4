// Which carriers are in trouble, since which window, with which SIP codes and accounts:
// the banner at the top of the page, and the order of the board.

import { JUDGED, calls, topCodes, verdict } from "./kpi.js";
import { pairKey } from "./store.js";
import { h } from "./dom.js";
import { WINDOW, hhmm, nowEpoch } from "./time.js";

/** A carrier is in trouble while the service has a firing incident about it (a rule or a
 *  plugin naming its profile and direction): the page says what the service concluded, on
 *  evidence and with hysteresis, not what one thin window looks like. Its trouble started at
 *  its incidents' first window; its KPIs are shown from the latest window with calls. */
export function findTroubles(store, now, alerts) {
  const firing = new Map(); // carrier key → {profile, direction, since, rules}
  for (const a of alerts) {
    if (a.state !== "firing" || !a.profile || !a.direction || a.account) continue;
    const key = pairKey(a.profile, a.direction);
    const entry = firing.get(key) ?? { profile: a.profile, direction: a.direction, since: Infinity, rules: new Set() };
    entry.since = Math.min(entry.since, a.starts_at || a.timestamp);
    entry.rules.add(a.plugin);
    firing.set(key, entry);
  }
  const found = [];
  for (const [key, { profile, direction, since, rules }] of firing) {
    const latest = [now, now - WINDOW].find((t) => calls(store.carrierAt(t, profile, direction))) ?? now;
    const carrier = store.carrierAt(latest, profile, direction);
    found.push({
      key, profile, direction, carrier, since, latest,
      kpis: JUDGED.filter((k) => rules.has(k.rule)),
      others: [...rules].filter((r) => !JUDGED.some((k) => k.rule === r)),
      calls: calls(carrier),
      codes: topCodes(carrier, 3),
      accounts: alertAccounts(alerts, direction, since),
    });
  }
  return found.sort((a, b) => a.since - b.since || b.calls - a.calls);
}

/** The accounts with a firing incident in this direction since `from` (a failing carrier
 *  explains them: docs/alerts.md), most frequent first. */
function alertAccounts(alerts, direction, from) {
  const counts = new Map();
  for (const a of alerts) {
    if (a.state === "firing" && a.direction === direction && a.timestamp >= from && a.account) {
      counts.set(a.account, (counts.get(a.account) ?? 0) + a.count);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([account]) => account);
}

/** 2 for a carrier with a crossed threshold (alerting), 1 for beyond a bound on few calls. */
export function severity(...carriers) {
  let level = 0;
  for (const c of carriers) {
    for (const k of JUDGED) {
      const v = verdict(k, c);
      if (v === "bad") return 2;
      if (v === "weak") level = 1;
    }
  }
  return level;
}

const FOLDED = 4; // lines shown before "show n more"
let unfolded = false;

/** The banner: one line per carrier in trouble. `onPick(key)` shows it in the chart. */
export function renderTroubles(section, troubles, onPick) {
  announce(troubles);
  section.hidden = troubles.length === 0;
  if (!troubles.length) return section.replaceChildren();
  // Redrawn at every change of figures: keep the keyboard focus where it was.
  const focused = document.activeElement;
  const focusedKey = section.contains(focused) ? focused.dataset.carrier ?? "more" : null;
  const shown = unfolded ? troubles : troubles.slice(0, FOLDED);
  const more = troubles.length - FOLDED;
  const redraw = () => { unfolded = !unfolded; renderTroubles(section, troubles, onPick); };
  section.replaceChildren(...[
    h("h2", {}, troubles.length === 1 ? "1 carrier in trouble" : `${troubles.length} carriers in trouble`),
    h("ul", {}, shown.map((t) => h("li", {},
      h("button", { type: "button", class: "trouble-item", "data-carrier": t.key,
                    title: "Show this carrier over the last 24 hours", onclick: () => onPick(t.key) },
        h("strong", { class: "carrier" }, t.profile), " ", h("span", { class: "dir" }, t.direction),
        h("span", { class: "what" }, [...t.kpis.map((k) => `${k.label} ${k.text(k.value(t.carrier))}`), ...t.others].join(" · ")),
        t.codes.length ? h("span", { class: "codes" }, t.codes.map(([code, n]) => `SIP ${code} ×${n}`).join(", ")) : null,
        h("span", { class: "since" }, `since ${hhmm(t.since)}`, h("span", { class: "muted" }, ` (for ${duration(nowEpoch() - t.since)})`)),
        t.accounts.length ? h("span", { class: "accts" }, "accounts ", t.accounts.map((a) => h("span", { class: "acct" }, a))) : null,
      )))),
    more > 0 ? h("button", { type: "button", class: "link more", onclick: redraw },
      unfolded ? "show fewer" : `show ${more} more`) : null,
  ].filter(Boolean));
  if (focusedKey) {
    [...section.querySelectorAll("button")].find((b) => (b.dataset.carrier ?? "more") === focusedKey)?.focus();
  }
}

let announced = "";

/** Tell screen readers when the set of carriers in trouble changes (not at every figure). */
function announce(troubles) {
  const names = troubles.map((t) => `${t.profile} ${t.direction}`).join(", ");
  if (names === announced) return;
  announced = names;
  document.getElementById("trouble-announce").textContent =
    names ? `Carriers in trouble: ${names}` : "No carrier in trouble";
}

function duration(seconds) {
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")}`;
}
