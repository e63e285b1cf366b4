// The service's HTTP API and its live events (Server-Sent Events), as the page uses them.

import { askToken, authHeaders, getToken } from "./auth.js";
import { DAY, WINDOW } from "./time.js";

const BASE = "/6minutes";
// What the board, the heat grid and the chart read over 24 hours…
export const HISTORY_SERIES = ["calls", "answered", "zero_duration", "billsec", "pdd_ms", "network_failures", "mos"];
// …and what only the current and previous windows need.
export const RECENT_SERIES = ["sip_status", "account_calls", "account_zero_duration", "account_billsec"];
const ALERTS_LIMIT = 1000;
const TIMEOUT = 30000; // ms: a request that takes longer failed (the page then retries)

let authReads = false; // the service's reads need the token too (it says so in /status)

/** From /6minutes/status: whether the event stream must be given the token. */
export function setAuthReads(value) {
  authReads = Boolean(value);
}

async function getJSON(path, params = []) {
  const query = new URLSearchParams(params).toString();
  const get = () => fetch(`${BASE}${path}${query ? `?${query}` : ""}`,
    { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT), headers: authHeaders() });
  let response = await get();
  // Reads need the token (auth_reads) and this tab has none, or a stale one: ask, once.
  if (response.status === 401 && askToken("This service needs its token to show its data.")) response = await get();
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** GET /6minutes/destinations: the top destination countries and the movers of the last complete window. */
export function fetchDestinations() {
  return getJSON("/destinations");
}

/** GET /6minutes/baselines: each carrier's calls in the last complete window, with yesterday's and the 7-day median. */
export function fetchBaselines() {
  return getJSON("/baselines", [["name", "calls"]]);
}

/** GET /6minutes/data with the filters: start (epoch), names, labels. */
export function fetchData(start, names, labels = {}) {
  return getJSON("/data", [["start", String(start)], ...names.map((n) => ["name", n]), ...Object.entries(labels)]);
}

/** The last 24 hours of the carrier KPIs, and the last two windows of codes and accounts. */
export async function fetchHistory(now) {
  const [history, recent] = await Promise.all([
    fetchData(now - DAY, HISTORY_SERIES),
    fetchData(now - WINDOW, RECENT_SERIES),
  ]);
  return [history, recent];
}

/** 24 hours of one carrier's SIP codes, for its chart. */
export const fetchCodes = (now, profile, direction) =>
  fetchData(now - DAY, ["sip_status"], { profile, direction });

export const fetchAlerts = () => getJSON("/alerts", [["limit", String(ALERTS_LIMIT)], ["doc", "0"]]);
/** One alert with its sample CDR (lists and live events leave the CDR out: it is big). */
export const fetchIncidents = () => getJSON("/incidents", [["limit", "500"]]);
export const fetchAlert = (id) => getJSON(`/alerts/${encodeURIComponent(id)}`);
export const fetchStatus = () => getJSON("/status");

export function deleteAlerts(token) {
  return fetch(`${BASE}/alerts`, { method: "DELETE", headers: authHeaders(token) });
}

/**
 * Follows GET /6minutes/events. `onSync()` is called on every `ready` (the first connection
 * and each reconnection) and on `resync` (events were lost): the page refetches then.
 * `onStats(items)`, `onAlert(alert)`, `onState("live" | "reconnecting" | …)`.
 * The browser reconnects by itself after most errors; when it gives up (EventSource CLOSED,
 * e.g. the service answered an error while restarting) a new one is opened after a delay.
 */
export class Live {
  constructor(handlers) {
    this.handlers = handlers;
    this.retry = 1000;
  }

  connect() {
    // An EventSource sends no header: with auth_reads the stream alone takes ?token=.
    const token = authReads ? getToken() : "";
    const query = token ? `?${new URLSearchParams({ token })}` : "";
    const source = (this.source = new EventSource(`${BASE}/events${query}`));
    source.addEventListener("ready", () => {
      this.retry = 1000;
      this.handlers.onState("live");
      this.handlers.onSync("ready");
    });
    source.addEventListener("resync", () => this.handlers.onSync("resync"));
    source.addEventListener("stats", (e) => this.handlers.onStats(JSON.parse(e.data)));
    source.addEventListener("alert", (e) => this.handlers.onAlert(JSON.parse(e.data)));
    source.addEventListener("incident", (e) => this.handlers.onIncident?.(JSON.parse(e.data)));
    source.addEventListener("error", () => {
      this.handlers.onState("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(() => this.connect(), this.retry);
        this.retry = Math.min(this.retry * 2, 30000);
      }
    });
  }
}
