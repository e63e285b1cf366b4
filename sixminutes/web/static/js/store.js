// The page's copy of the service's windows: window → carriers and accounts → Stats.
//
// Series keys are Prometheus-style, `calls{direction="egress",profile="kestrel"}` (the
// `label` of an SSE item, the keys of /6minutes/data). They are parsed once and filed by
// carrier (profile × direction) or by account (account × direction). A Stat only grows
// within a window, so a Stat with fewer calls than the one held is an older copy and is
// ignored: live events and a refetch can then arrive in any order.

const CARRIER_SERIES = new Set(["calls", "answered", "zero_duration", "billsec", "short_calls",
  "pdd_ms", "network_failures", "mos"]);
const ACCOUNT_SERIES = { account_calls: "calls", account_zero_duration: "zero", account_billsec: "billsec" };

const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"(,|\})/y;
const UNESCAPE = { "\\\\": "\\", '\\"': '"', "\\n": "\n" };
const parsed = new Map();

/** `name{a="x",b="y"}` → {name, labels: {a: "x", b: "y"}}; null when it is not a series key. */
export function parseKey(key) {
  let result = parsed.get(key);
  if (result !== undefined) return result;
  result = null;
  const brace = key.indexOf("{");
  if (brace < 0) {
    result = { name: key, labels: {} };
  } else if (key.endsWith("}")) {
    const labels = {};
    LABEL.lastIndex = brace + 1;
    let match, end = false;
    while (!end && (match = LABEL.exec(key))) {
      labels[match[1]] = match[2].replace(/\\[\\"n]/g, (s) => UNESCAPE[s]);
      end = match[3] === "}";
    }
    if (end && LABEL.lastIndex === key.length) result = { name: key.slice(0, brace), labels };
  }
  if (parsed.size > 200000) parsed.clear();
  parsed.set(key, result);
  return result;
}

/** One key for a (profile, direction) or (account, direction) pair. */
export const pairKey = (a, b) => JSON.stringify([a, b]);

export class Store {
  constructor() { this.reset(); }

  reset() {
    this.windows = new Map(); // t → {carriers: Map(pairKey → Carrier), accounts: Map(pairKey → Account)}
    this.carriers = new Map(); // pairKey → {key, profile, direction}: every carrier seen
  }

  /** /6minutes/data: {"<window>": {"<series key>": Stat}} */
  loadData(data) {
    for (const [t, series] of Object.entries(data)) {
      for (const [key, stat] of Object.entries(series)) this.put(Number(t), key, stat);
    }
  }

  /** An SSE `stats` event: [{timestamp, name, label, data}] — `label` is the key. */
  applyStats(items) {
    for (const item of items) this.put(item.timestamp, item.label, item.data);
  }

  put(t, key, stat) {
    const series = parseKey(key);
    if (!series || !stat) return;
    const { name, labels } = series;
    if (CARRIER_SERIES.has(name) || name === "sip_status") {
      const carrier = this.carrierAt(t, labels.profile ?? "unknown", labels.direction ?? "unknown", true);
      if (name === "sip_status") {
        const code = labels.code ?? "none";
        if ((carrier.codes.get(code) ?? -1) <= stat.count) carrier.codes.set(code, stat.count);
      } else if (newer(carrier.stats[name], stat)) {
        carrier.stats[name] = stat;
      }
    } else if (Object.hasOwn(ACCOUNT_SERIES, name)) {  // not "toString" &c. of the prototype
      const account = this.accountAt(t, labels.account ?? "unknown", labels.direction ?? "unknown");
      const field = ACCOUNT_SERIES[name];
      if (newer(account[field], stat)) account[field] = stat;
    }
  }

  window(t, create = false) {
    let w = this.windows.get(t);
    if (!w && create) this.windows.set(t, (w = { carriers: new Map(), accounts: new Map() }));
    return w;
  }

  carrierAt(t, profile, direction, create = false) {
    const key = pairKey(profile, direction);
    const w = this.window(t, create);
    let carrier = w?.carriers.get(key);
    if (!carrier && create) {
      carrier = { key, profile, direction, stats: {}, codes: new Map() };
      w.carriers.set(key, carrier);
      if (!this.carriers.has(key)) this.carriers.set(key, { key, profile, direction });
    }
    return carrier;
  }

  accountAt(t, account, direction) {
    const key = pairKey(account, direction);
    const w = this.window(t, true);
    let row = w.accounts.get(key);
    if (!row) w.accounts.set(key, (row = { key, account, direction, calls: null, zero: null, billsec: null }));
    return row;
  }

  /** Window starts held, oldest first. */
  times() { return [...this.windows.keys()].sort((a, b) => a - b); }

  /** Forget the windows before `t` (and carriers seen only there). */
  prune(t) {
    let dropped = false;
    for (const w of this.windows.keys()) if (w < t) { this.windows.delete(w); dropped = true; }
    if (!dropped) return;
    const seen = new Set();
    for (const w of this.windows.values()) for (const key of w.carriers.keys()) seen.add(key);
    for (const key of this.carriers.keys()) if (!seen.has(key)) this.carriers.delete(key);
  }
}

function newer(held, stat) {
  return !held || held.count <= stat.count;
}
