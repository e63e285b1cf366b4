// The dashboard: history first, then live.
//
// 1. Subscribe to /6minutes/events; on `ready` (first connection and every reconnection) and
//    on `resync`, refetch /6minutes/data (24 h, only the series the page needs) and
//    /6minutes/alerts, while the live events that arrive meanwhile are held back, then applied.
// 2. Live `stats` update the store, `alert`s the table; the page redraws at most a few times a
//    second (charts less often), and when the clock enters a new 6-minute window.
// 3. /6minutes/status is polled every few seconds for the status strip.

import { $, $$, h, setOptions } from "./dom.js";
import { Alerts } from "./alerts.js";
import { Board } from "./board.js";
import { renderAccounts } from "./accounts.js";
import { Live, fetchAlerts, fetchBaselines, fetchCodes, fetchDestinations, fetchHistory, fetchIncidents, fetchStatus, setAuthReads } from "./api.js";
import { renderDestinations } from "./destinations.js";
import { renderBaselines } from "./baselines.js";
import { Incidents } from "./incidents.js";
import { carrierLabel, drawChart, drawHeat, unavailable } from "./charts.js";
import { KPIS, applyRules, calls } from "./kpi.js";
import { renderStatus } from "./status.js";
import { Store } from "./store.js";
import { findTroubles, renderTroubles } from "./trouble.js";
import { DAY, WINDOW, currentWindow, isUTC, setUTC, windowRange, zoneName } from "./time.js";

const STATUS_EVERY = 3000; // ms
const DESTINATIONS_EVERY = 30000; // ms: they (and the baselines) change once a window
let destinationsAt = 0;

const store = new Store();
const view = readHash(); // {carrier, kpi, heat}: also in the address, so a link shows the same
let now = currentWindow();
let troubles = [];

const board = new Board($("#board"), { onPick: pick });
const alerts = new Alerts({ onCleared: () => { incidents.load([]); redraw("tables"); } });
const incidents = new Incidents();

// -- syncing with the service ---------------------------------------------------------------

let syncing = null; // the running sync (a promise), or null
let again = false; // another sync was asked for while one ran
let held = []; // live events received during a sync, applied after it (null: none running)
let chartsRequested = false;
let syncedAt = 0; // when the page last caught up (Date.now())
const FALLBACK = 30000; // ms: without live events, catch up this often anyway

async function sync() {
  if (syncing) { again = true; return syncing; }
  syncing = (async () => {
    do {
      again = false;
      held = [];
      try {
        const t = currentWindow();
        const chosen = store.carriers.get(view.carrier);
        const [[history, recent], list, codes, incidentList] = await Promise.all([
          fetchHistory(t), fetchAlerts(),
          chosen ? fetchCodes(t, chosen.profile, chosen.direction) : null,
          fetchIncidents(),
        ]);
        store.reset();
        store.loadData(history);
        store.loadData(recent);
        if (codes) store.loadData(codes);
        alerts.load(list);
        incidents.load(incidentList);
        codesLoaded = chosen ? view.carrier : null;
        syncedAt = Date.now();
        if (live.source?.readyState === EventSource.OPEN) setLive("live");
      } catch (error) {
        setLive("reconnecting", `catching up failed (${error.message}); retrying`);
        await sleep(2000);
        again = true;
      }
      for (const [kind, data] of held) apply(kind, data);
      held = null;
    } while (again);
    syncing = null;
    redrawNow("tables", "heat", "chart");
    if (!chartsRequested) { chartsRequested = true; setTimeout(loadCharts, 50); }
  })();
  return syncing;
}

function receive(kind, data) {
  if (held) held.push([kind, data]);
  else apply(kind, data);
}

function apply(kind, data) {
  if (kind === "stats") { store.applyStats(data); redraw(); }
  else if (kind === "incident") incidents.upsert(data);
  else { alerts.upsert(data); redraw("tables"); } // the trouble banner and the board read alerts
}

const live = new Live({
  onSync: () => sync(),
  onStats: (items) => receive("stats", items),
  onAlert: (alert) => receive("alert", alert),
  onIncident: (incident) => receive("incident", incident),
  onState: (state) => setLive(state),
});

function setLive(state, detail) {
  const el = $("#live");
  el.dataset.state = state;
  el.textContent = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…" }[state] ?? state;
  el.title = detail ?? (state === "live" ? "following /6minutes/events" : "the page catches up when the service answers");
}

// -- drawing --------------------------------------------------------------------------------
// Tables redraw within a fraction of a second of a change; the plotly charts, heavier, at most
// every few seconds (at once after a choice of the user's).

const EVERY = { heat: 10000, chart: 5000 }; // ms
const drawnAt = { heat: 0, chart: 0 };
const due = { tables: true, heat: true, chart: true };
let pending = null; // the next draw
let chartsLater = null; // the next draw of charts held back by EVERY

function redraw(...parts) {
  for (const part of parts.length ? parts : ["tables", "heat", "chart"]) due[part] = true;
  pending ??= setTimeout(draw, 150);
}

/** Redraw a chart at the next draw, whenever it was drawn last. */
function redrawNow(...charts) {
  for (const chart of charts) drawnAt[chart] = 0;
  redraw(...charts);
}

function draw() {
  pending = null;
  if (held) return; // a sync is running: it redraws when done
  if (currentWindow() !== now) { now = currentWindow(); Object.assign(due, { tables: true, heat: true, chart: true }); }
  if (store.carriers.size !== heatCarriers) drawnAt.heat = 0; // a new carrier: show it now
  if (due.tables) {
    due.tables = false;
    store.prune(now - DAY);
    $("#current-window").textContent = `${windowRange(now)} ${zoneName()}`;
    $("#previous-window").textContent = windowRange(now - WINDOW);
    troubles = findTroubles(store, now, alerts.list());
    renderTroubles($("#trouble"), troubles, pick);
    board.update(store, now);
    renderAccounts(store, now);
    updateSelects();
  }
  if (!window.Plotly) return; // loadCharts() redraws once plotly.js is there
  let wait = Infinity;
  for (const chart of ["heat", "chart"]) {
    if (!due[chart]) continue;
    const left = EVERY[chart] - (Date.now() - drawnAt[chart]);
    if (left > 0) { wait = Math.min(wait, left); continue; }
    due[chart] = false;
    drawnAt[chart] = Date.now();
    if (chart === "heat") drawHeatGrid();
    else drawCarrierChart();
  }
  clearTimeout(chartsLater);
  const later = ["heat", "chart"].filter((chart) => due[chart]);
  chartsLater = later.length ? setTimeout(() => redraw(...later), wait) : null;
}

/** Carriers for the heat grid and the select: in trouble first, then by calls over the day. */
function carrierOrder() {
  const trouble = new Map(troubles.map((t, i) => [t.key, i]));
  const volume = new Map();
  for (const w of store.windows.values()) for (const [key, c] of w.carriers) volume.set(key, (volume.get(key) ?? 0) + calls(c));
  return [...store.carriers.keys()].filter((k) => volume.get(k) > 0).sort((a, b) =>
    (trouble.get(a) ?? 1e9) - (trouble.get(b) ?? 1e9) || volume.get(b) - volume.get(a) || a.localeCompare(b));
}

function updateSelects() {
  const order = carrierOrder();
  if (!store.carriers.has(view.carrier)) view.carrier = troubles[0]?.key ?? order[0] ?? "";
  setOptions($("#chart-carrier"), order.map((k) => [k, carrierLabel(store.carriers.get(k))]), view.carrier);
  $("#chart-carrier").value = view.carrier;
}

const HEAT_ROWS = 30; // carriers in the heat grid unless "show all": those in trouble, then the busiest
let heatAll = false;
let heatCarriers = 0; // carriers known at the last draw of the heat grid

function drawHeatGrid() {
  heatCarriers = store.carriers.size;
  const order = carrierOrder();
  const shown = heatAll ? order : order.slice(0, Math.max(HEAT_ROWS, troubles.length));
  drawHeat($("#heat"), store, now, shown, view.heat, pick);
  const button = $("#heat-all");
  button.hidden = order.length <= HEAT_ROWS;
  button.textContent = heatAll ? `show the ${HEAT_ROWS} busiest` : `show all ${order.length}`;
  $("#heat-note").textContent = `${shown.length} of ${order.length} carriers, in trouble first, then by calls over the day; ` +
    "faded: too few calls to alert; click a row for its chart. ";
}

let codesLoaded = null; // the carrier whose 24 h of SIP codes are in the store

function drawCarrierChart() {
  const trouble = troubles.find((t) => t.key === view.carrier);
  drawChart($("#chart"), store, now, view.carrier, view.kpi, trouble?.since);
  const chosen = store.carriers.get(view.carrier);
  if (chosen && codesLoaded !== view.carrier) {
    codesLoaded = view.carrier;
    fetchCodes(now, chosen.profile, chosen.direction)
      .then((data) => { store.loadData(data); redrawNow("chart"); })
      .catch(() => { codesLoaded = null; });
  }
}

/** plotly.js (~5 MB) is loaded once the tables are drawn, so that they come first. */
function loadCharts() {
  const script = h("script", { src: "/6minutes/static/vendor/plotly.min.js" });
  script.addEventListener("load", () => redrawNow("heat", "chart"));
  script.addEventListener("error", () => { unavailable($("#heat")); unavailable($("#chart")); });
  document.head.append(script);
}

// -- choices: carrier, KPIs, time zone ------------------------------------------------------

function pick(carrierKey) {
  view.carrier = carrierKey;
  writeHash();
  $("#chart-carrier").value = carrierKey;
  redrawNow("chart");
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const kpi = (id, fallback) => (KPIS.some((k) => k.id === id) ? id : fallback);
  return { carrier: params.get("carrier") ?? "", kpi: kpi(params.get("kpi"), "zero"), heat: kpi(params.get("heat"), "zero") };
}

function writeHash() {
  const params = new URLSearchParams({ heat: view.heat, kpi: view.kpi });
  if (view.carrier) params.set("carrier", view.carrier);
  history.replaceState(null, "", `#${params}`);
}

function setupControls() {
  const heatKpis = $("#heat-kpis");
  heatKpis.replaceChildren(...KPIS.map((k) => h("button", {
    type: "button", "data-kpi": k.id, "aria-pressed": String(k.id === view.heat), title: k.title,
    onclick: () => {
      view.heat = k.id;
      for (const b of $$("button", heatKpis)) b.setAttribute("aria-pressed", String(b.dataset.kpi === k.id));
      writeHash();
      redrawNow("heat");
    },
  }, k.label)));
  $("#heat-all").addEventListener("click", () => { heatAll = !heatAll; redrawNow("heat"); });
  setOptions($("#chart-kpi"), KPIS.map((k) => [k.id, k.label]), view.kpi);
  $("#chart-kpi").addEventListener("change", (e) => { view.kpi = e.target.value; writeHash(); redrawNow("chart"); });
  $("#chart-carrier").addEventListener("change", (e) => pick(e.target.value));
  const tz = $("#tz");
  tz.setAttribute("aria-pressed", String(isUTC()));
  tz.addEventListener("click", () => {
    setUTC(!isUTC());
    tz.setAttribute("aria-pressed", String(isUTC()));
    alerts.draw();
    incidents.draw();
    redrawNow("tables", "heat", "chart");
  });
}

// -- status strip ---------------------------------------------------------------------------

async function pollStatus() {
  try {
    const status = await fetchStatus();
    setAuthReads(status.auth_reads);
    applyRules(status.rules);
    renderStatus($("#status"), status);
  } catch (error) {
    renderStatus($("#status"), null, error);
  }
  if (Date.now() - destinationsAt > DESTINATIONS_EVERY) {
    destinationsAt = Date.now();
    fetchDestinations().then(renderDestinations).catch(() => { destinationsAt = 0; });
    fetchBaselines().then(renderBaselines).catch(() => { destinationsAt = 0; });
  }
  setTimeout(pollStatus, STATUS_EVERY);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- start ----------------------------------------------------------------------------------

setupControls();
setLive("connecting");
// The first status says whether the event stream needs the token (auth_reads): connect after it.
pollStatus().finally(() => live.connect());
// A new window starts every six minutes whether or not calls arrive: move the board along.
// (and the last complete window's destinations and baselines are fetched again)
setInterval(() => { if (currentWindow() !== now) { destinationsAt = 0; redraw(); } }, 1000);
// Without live events (the service down, a proxy that holds them back) catch up now and then.
setInterval(() => {
  if ($("#live").dataset.state !== "live" && Date.now() - syncedAt > FALLBACK) sync();
}, 5000);
