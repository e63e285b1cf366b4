// The last 24 hours, drawn with plotly.js (served by the service from the `plotly` package):
// a heat grid of one KPI (rows: carriers, columns: 6-minute windows), and one carrier's KPI
// over time with the alert bound, the start of its trouble and its SIP error codes.
// Carrier names go through plotText(): plotly reads tags such as <b> or <a> in its labels.

import { h, plotText } from "./dom.js";
import { KPI, RULES, boundOf, calls, samples, verdict } from "./kpi.js";
import { DAY, WINDOW, plotDate } from "./time.js";

const COLORS = { text: "#c9d4e3", grid: "#233043", plot: "#0d141d", bad: "#ff4d4f", weak: "#f0a020", line: "#5cc8ff" };
const CONFIG = { displayModeBar: false, responsive: true, displaylogo: false };
const CODE_COLORS = ["#ff4d4f", "#ff9f43", "#f6d365", "#b980f0", "#4dd4ac", "#8aa1b8"];

const plotly = () => window.Plotly;

export const carrierLabel = (c) => `${c.profile} · ${c.direction}`;

/** Columns of the grid: every window of the last 24 hours, up to the current one. */
function columns(now) {
  const times = [];
  for (let t = now - DAY + WINDOW; t <= now; t += WINDOW) times.push(t);
  return times;
}

function baseLayout(extra) {
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: COLORS.plot,
    font: { color: COLORS.text, size: 11, family: "system-ui, sans-serif" },
    hoverlabel: { font: { size: 12 } }, showlegend: false,
    ...extra,
  };
}

/** A colour scale that turns red exactly at the KPI's alert bound. */
function colorscale(kpi) {
  const bound = boundOf(kpi);
  if (bound === null) {
    return kpi.scale === "delay"
      ? [[0, "#10243a"], [0.5, "#4b4a8f"], [1, "#d7a6ff"]]
      : [[0, "#0e2238"], [0.5, "#1f6aa5"], [1, "#9fe0ff"]];
  }
  const [lo, hi] = kpi.range;
  const b = Math.min(Math.max((bound - lo) / (hi - lo), 0.002), 0.998);
  const badHigh = kpi.id === "zero"; // zero-duration: high is bad; ASR, NER, MOS: low is bad
  return badHigh
    ? [[0, "#123a36"], [b * 0.7, "#1d6b5a"], [b, "#c9a227"], [b + 0.001, "#d9363e"], [1, "#ff7a7a"]]
    : [[0, "#ff7a7a"], [b - 0.001, "#d9363e"], [b, "#c9a227"], [b + (1 - b) * 0.3, "#1d6b5a"], [1, "#123a36"]];
}

export function unavailable(div) {
  if (!div.dataset.unavailable) {
    div.dataset.unavailable = "1";
    div.replaceChildren(h("p", { class: "empty" }, "Charts unavailable: plotly.js did not load."));
  }
}

/** The heat grid of `kpiId` for the carriers `keys` (in that order). */
export function drawHeat(div, store, now, keys, kpiId, onPick) {
  if (!plotly()) return unavailable(div);
  const kpi = KPI[kpiId];
  const times = columns(now);
  const x = times.map(plotDate);
  const carriers = keys.map((k) => store.carriers.get(k));
  const y = carriers.map((c) => plotText(carrierLabel(c)));
  // Two layers: values resting on enough calls to alert, and the others, faded.
  const strong = [], weak = [], custom = [];
  for (const c of carriers) {
    const rowStrong = [], rowWeak = [], rowCustom = [];
    for (const t of times) {
      const cw = store.carrierAt(t, c.profile, c.direction);
      const value = kpi.value(cw);
      const enough = !kpi.rule || samples(kpi, cw) >= RULES[kpi.rule].min_count;
      rowStrong.push(value !== null && enough ? value : null);
      rowWeak.push(value !== null && !enough ? value : null);
      rowCustom.push(calls(cw));
    }
    strong.push(rowStrong); weak.push(rowWeak); custom.push(rowCustom);
  }
  const range = kpi.range ?? [0, Math.max(0, ...strong.flat().concat(weak.flat()).filter((v) => v !== null)) || 1];
  const trace = (z, opacity, showscale) => ({
    type: "heatmap", x, y, z, customdata: custom, opacity, showscale,
    zmin: range[0], zmax: range[1], colorscale: colorscale(kpi), xgap: 1, ygap: 1, hoverongaps: false,
    colorbar: { thickness: 10, len: 1, outlinewidth: 0, tickfont: { size: 10 },
                tickformat: kpi.range && kpi.id !== "mos" ? ".0%" : "" },
    hovertemplate: `%{y}<br>%{x|%H:%M}<br>${kpi.label} ${kpi.hover}<br>%{customdata} calls<extra></extra>`,
  });
  const rowHeight = carriers.length > 40 ? 12 : 18;
  const height = Math.max(150, rowHeight * carriers.length + 60);
  div.style.height = `${height}px`;
  const layout = baseLayout({
    height, margin: { l: 10, r: 10, t: 8, b: 28 },
    xaxis: { type: "date", tickformat: "%H:%M", gridcolor: COLORS.grid, range: [x[0], plotDate(now + WINDOW)] },
    yaxis: { type: "category", autorange: "reversed", automargin: true, tickfont: { size: rowHeight > 12 ? 11 : 9 } },
  });
  plotly().react(div, [trace(strong, 1, true), trace(weak, 0.35, false)], layout, CONFIG);
  if (!div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (e) => {
      const row = e.points?.[0]?.pointIndex?.[0];
      if (row !== undefined && div._keys) onPick(div._keys[row]);
    });
  }
  div._keys = keys;
}

/** One carrier's KPI over 24 hours, its bound, when its trouble started, its SIP errors. */
export function drawChart(div, store, now, carrierKey, kpiId, since) {
  if (!plotly()) return unavailable(div);
  const kpi = KPI[kpiId];
  const c = store.carriers.get(carrierKey);
  if (!c) {
    plotly().purge(div);
    div.replaceChildren(h("p", { class: "empty" }, "No carrier yet."));
    return;
  }
  if (div.querySelector(".empty")) div.replaceChildren();
  const times = columns(now);
  const x = times.map(plotDate);
  const windows = times.map((t) => store.carrierAt(t, c.profile, c.direction));
  const values = windows.map((w) => kpi.value(w));
  const marker = windows.map((w) => ({ bad: COLORS.bad, weak: COLORS.weak })[verdict(kpi, w)] ?? COLORS.line);
  const traces = [{
    type: "scatter", mode: "lines+markers", x, y: values, name: kpi.label, yaxis: "y",
    line: { color: COLORS.line, width: 2 }, marker: { color: marker, size: 5 }, connectgaps: false,
    text: values.map((v) => kpi.text(v)), customdata: windows.map(calls),
    hovertemplate: `%{x|%H:%M}<br>${kpi.label} %{text}<br>%{customdata} calls<extra></extra>`,
  }];
  // SIP error codes (≥ 300) of this carrier, the five most frequent over the day, stacked.
  const totals = new Map();
  for (const w of windows) for (const [code, n] of w?.codes ?? []) {
    if (/^\d+$/.test(code) && Number(code) >= 300) totals.set(code, (totals.get(code) ?? 0) + n);
  }
  const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([code]) => code);
  const other = (w) => [...(w?.codes ?? [])].reduce((s, [code, n]) =>
    s + (/^\d+$/.test(code) && Number(code) >= 300 && !top.includes(code) ? n : 0), 0);
  const series = [...top.map((code) => [`SIP ${code}`, (w) => w?.codes.get(code) ?? 0]), ["other errors", other]];
  series.forEach(([name, get], i) => traces.push({
    type: "bar", x, y: windows.map(get), name, yaxis: "y2", marker: { color: CODE_COLORS[i % CODE_COLORS.length] },
    hovertemplate: `%{x|%H:%M}<br>${name} %{y}<extra></extra>`,
  }));
  traces.push({ type: "scatter", mode: "lines", x, y: windows.map(calls), name: "calls", yaxis: "y2",
    line: { color: "#8aa1b8", width: 1, dash: "dot" }, hovertemplate: "%{x|%H:%M}<br>%{y} calls<extra></extra>" });

  const shapes = [], annotations = [];
  const bound = boundOf(kpi);
  if (bound !== null) {
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: bound, y1: bound,
                  line: { color: COLORS.bad, width: 1, dash: "dash" } });
  }
  if (since !== null && since !== undefined) {
    shapes.push({ type: "line", xref: "x", x0: plotDate(since), x1: plotDate(since), yref: "paper", y0: 0, y1: 1,
                  line: { color: COLORS.bad, width: 2 } });
    annotations.push({ xref: "x", x: plotDate(since), yref: "paper", y: 1, text: "trouble starts ", showarrow: false,
                       xanchor: "right", yanchor: "top", font: { color: COLORS.bad, size: 11 } });
  }
  const layout = baseLayout({
    height: 300, margin: { l: 48, r: 10, t: 10, b: 28 }, barmode: "stack", bargap: 0.1,
    showlegend: true, legend: { orientation: "h", y: -0.12, font: { size: 10 } },
    xaxis: { type: "date", tickformat: "%H:%M", gridcolor: COLORS.grid, range: [x[0], plotDate(now + WINDOW)] },
    yaxis: { domain: [0.4, 1], gridcolor: COLORS.grid, zeroline: false, title: { text: kpi.label },
             tickformat: kpi.range && kpi.id !== "mos" ? ".0%" : "", range: kpi.range ? [kpi.range[0], kpi.range[1] * 1.02] : undefined },
    yaxis2: { domain: [0, 0.32], gridcolor: COLORS.grid, title: { text: "calls" }, rangemode: "tozero" },
    shapes, annotations,
  });
  plotly().react(div, traces, layout, CONFIG);
}
