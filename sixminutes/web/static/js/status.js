// The status strip: sources connected or not and their lag, CDRs per second, rejected CDRs by
// reason, plugin errors (failing now, or files not loaded) — from GET /6minutes/status, polled
// every few seconds.

import { h } from "./dom.js";

const BAD_STATES = new Set(["disconnected", "error", "failed", "backoff", "connecting"]);

export function renderStatus(section, status, error) {
  if (error) {
    section.replaceChildren(item("bad", "Service", "unreachable", String(error.message ?? error)));
    return;
  }
  const items = [];
  for (const s of status.sources ?? []) {
    const ok = s.connected && !BAD_STATES.has(s.state);
    const lag = s.lag === null || s.lag === undefined ? "" : ` · lag ${Number(s.lag).toLocaleString()}`;
    const why = !ok && s.last_error ? ` — ${clip(s.last_error, 60)}` : "";
    items.push(item(ok ? "ok" : "bad", s.name, `${s.connected ? "●" : "○"} ${s.state ?? (s.connected ? "connected" : "disconnected")}${lag}${why}`,
      [s.last_error ? `last error: ${s.last_error}` : null, s.reconnects ? `reconnects: ${s.reconnects}` : null].filter(Boolean).join("\n")));
  }
  items.push(item("", "CDR/s", (status.rate ?? 0).toLocaleString(undefined, { maximumFractionDigits: 1 })));
  items.push(item("", "Accepted", (status.accepted ?? 0).toLocaleString()));
  const rejected = Object.entries(status.rejected ?? {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  items.push(item(rejected.length ? "warn" : "", "Rejected",
    rejected.length ? rejected.map(([reason, n]) => `${reason} ${n.toLocaleString()}`).join(", ") : "none",
    Object.entries(status.last_rejection ?? {}).map(([reason, why]) => `${reason}: ${why}`).join("\n")));
  // Plugins that raised (failing now: red; only before: amber) and files that did not load.
  const raised = (status.plugins ?? []).filter((p) => p.errors > 0);
  const health = status.plugin_health ?? { failing: [], load_errors: status.plugin_load_errors ?? [] };
  const now = new Set(health.failing.map((p) => p.name));
  const loadErrors = health.load_errors;
  const pluginLevel = now.size || loadErrors.length ? "bad" : raised.length ? "warn" : "";
  items.push(item(pluginLevel, "Plugin errors",
    raised.length || loadErrors.length
      ? [...raised.map((p) => `${p.name} ${p.errors.toLocaleString()}${now.has(p.name) ? " (failing)" : ""}`),
         ...loadErrors.map((e) => `${fileOf(e)} not loaded`)].join(", ")
      : "none",
    [...raised.map((p) => `${p.name}: ${p.last_error ?? ""}`), ...loadErrors].join("\n")));
  if (status.snapshots?.last_error) items.push(item("bad", "Snapshot", "failing", status.snapshots.last_error));
  section.replaceChildren(...items);
}

function item(level, label, value, title) {
  return h("p", { class: `stat ${level}`, title: title || null },
    h("span", { class: "label" }, label), " ", h("span", { class: "value" }, value));
}

/** The plugin file's name in a load error ("/dir/bad.py:3: SyntaxError: …" → "bad.py"). */
const fileOf = (error) => /([^/\\]+\.py)(?::\d+)?:/.exec(error)?.[1] ?? "a plugin file";

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
