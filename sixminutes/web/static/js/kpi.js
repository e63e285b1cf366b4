// The KPIs of one carrier in one window (as sixminutes/board.py computes them), the alert
// thresholds they are judged against, and how they are written.

import { meanInterval, wilson, zOf } from "./evidence.js";

export const ERROR_CODE_MIN = 300; // SIP codes from here up are errors ("top codes")

/** The service's default threshold rules (docs/alerts.md); updated from /6minutes/status
 *  when the service publishes its rules there (`rules: [{name, bound, min_count, op, …}]`). */
export const RULES = {
  zero_duration_ratio: { series: "zero_duration", per: "calls", op: ">", bound: 0.5, min_count: 20, confidence: 0.95, enabled: true },
  network_failure_ratio: { series: "network_failures", per: "calls", op: ">", bound: 0.2, min_count: 20, confidence: 0.95, enabled: true },
  asr: { series: "answered", per: "calls", op: "<", bound: 0.2, min_count: 20, confidence: 0.95, enabled: true },
  mos: { series: "mos", per: null, op: "<", bound: 3.5, min_count: 10, confidence: 0.95, enabled: true },
};

export function applyRules(rules) {
  for (const rule of rules ?? []) {
    const known = RULES[rule?.name];
    if (!known) continue;
    for (const field of ["op", "bound", "min_count", "confidence", "enabled"]) {
      if (rule[field] !== undefined) known[field] = rule[field];
    }
  }
}

const count = (c, name) => c?.stats[name]?.count ?? 0;
const sum = (c, name) => c?.stats[name]?.sum ?? 0;
const mean = (c, name) => { const s = c?.stats[name]; return s && s.count ? s.sum / s.count : null; };
const ratio = (c, name) => (count(c, "calls") ? sum(c, name) / count(c, "calls") : null);

const pct = (v) => {
  if (v === null || v === undefined) return "–";
  const p = v * 100;
  const digits = (p > 0 && p < 1) || (p > 99 && p < 100) ? 1 : 0;
  return `${p.toFixed(digits)}%`;
};
const seconds = (v) => {
  if (v === null || v === undefined) return "–";
  const s = Math.round(v);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}`;
};

// id, label, value(carrier window), text(value), the rule it is judged by, and for the charts:
// range (fixed axis), scale (colours when no rule), hover (plotly's format of the value `z`).
export const KPIS = [
  { id: "calls", label: "Calls", title: "Calls ended in the window",
    value: (c) => count(c, "calls") || null, text: (v) => (v ?? "–").toLocaleString(), scale: "volume", hover: "%{z:,d}" },
  { id: "asr", label: "ASR", title: "Answer-seizure ratio: answered / calls",
    value: (c) => ratio(c, "answered"), text: pct, rule: "asr", ruleValue: (v) => v, range: [0, 1], hover: "%{z:.1%}" },
  { id: "ner", label: "NER", title: "Network efficiency ratio: 1 − network failures / calls",
    value: (c) => { const r = ratio(c, "network_failures"); return r === null ? null : 1 - r; },
    text: pct, rule: "network_failure_ratio", ruleValue: (v) => 1 - v, range: [0, 1], hover: "%{z:.1%}" },
  { id: "zero", label: "Zero-dur", title: "Zero-duration ratio: calls with billsec = 0 / calls",
    value: (c) => ratio(c, "zero_duration"), text: pct, rule: "zero_duration_ratio", ruleValue: (v) => v, range: [0, 1], hover: "%{z:.1%}" },
  { id: "acd", label: "ACD", title: "Average call duration of answered calls (mean billsec)",
    value: (c) => mean(c, "billsec"), text: seconds, scale: "volume", hover: "%{z:.0f} s" },
  { id: "pdd", label: "PDD", title: "Mean post-dial delay",
    value: (c) => { const m = mean(c, "pdd_ms"); return m === null ? null : m / 1000; },
    text: (v) => (v === null ? "–" : `${v.toFixed(1)}s`), scale: "delay", hover: "%{z:.1f} s" },
  { id: "mos", label: "MOS", title: "Mean MOS (audio in)",
    value: (c) => mean(c, "mos"), text: (v) => (v === null ? "–" : v.toFixed(2)), rule: "mos", ruleValue: (v) => v, range: [1, 5], hover: "%{z:.2f}" },
];
export const KPI = Object.fromEntries(KPIS.map((k) => [k.id, k]));

/** How many samples a rule's verdict rests on: calls for a ratio, values for a mean. */
export function samples(kpi, carrier) {
  const rule = RULES[kpi.rule];
  return rule ? count(carrier, rule.per ?? rule.series) : count(carrier, "calls");
}

/** As the service judges a window (docs/alerts.md): null when not measured or on fewer samples
 *  than the rule's minimum (no verdict on a thin window); "bad" when the interval of the measure
 *  at the rule's confidence lies beyond the bound; "weak" when only the point value is beyond
 *  it (noise can do that); "ok". */
export function verdict(kpi, carrier) {
  const value = kpi.value(carrier);
  const rule = RULES[kpi.rule];
  if (value === null || !rule || !rule.enabled) return value === null ? null : "ok";
  const n = samples(kpi, carrier);
  if (n < rule.min_count) return null;
  const v = kpi.ruleValue(value);
  const crossed = rule.op === ">" ? v > rule.bound : v < rule.bound;
  if (!crossed) return "ok";
  const z = zOf(rule.confidence ?? 0.95);
  const [low, high] = rule.per
    ? wilson(sum(carrier, rule.series), n, z)
    : meanInterval(sum(carrier, rule.series), n, carrier?.stats[rule.series]?.squares ?? 0, z);
  return (rule.op === ">" ? low > rule.bound : high < rule.bound) ? "bad" : "weak";
}

/** The bound expressed in the KPI's own terms (NER's bound is 1 − the failure ratio's). */
export function boundOf(kpi) {
  const rule = RULES[kpi.rule];
  if (!rule || !rule.enabled) return null;
  return kpi.id === "ner" ? 1 - rule.bound : rule.bound;
}

export const JUDGED = KPIS.filter((k) => k.rule);

/** The KPIs of a carrier window that are "bad" (alerting). */
export const breaches = (carrier) => JUDGED.filter((k) => verdict(k, carrier) === "bad");

/** SIP error codes (≥ 300) of a carrier window, most frequent first: [[code, count], …]. */
export function topCodes(carrier, n = 3) {
  if (!carrier) return [];
  return [...carrier.codes]
    .filter(([code]) => /^\d+$/.test(code) && Number(code) >= ERROR_CODE_MIN)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n);
}

export const calls = (carrier) => count(carrier, "calls");
export { pct, seconds };
