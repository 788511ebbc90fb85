"use strict";
// Small SVG charts: lines per series over rounds, and grouped or stacked bars.
// Every mark carries data-series / data-x / data-value so what is drawn can be checked.

const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4353d6", "#0f9d8a", "#e3872d", "#d6456b", "#7c4ddb", "#2f9fd8", "#8a9a1c", "#b0563f"];

function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  return (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
}

function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo < 1e-12) { const pad = Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
  const step = niceStep(hi - lo, count);
  const start = Math.floor(lo / step) * step, end = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const W = 560, H = 250, M = { left: 56, right: 16, top: 14, bottom: 36 };

function frame(ticks, xs, xPos, format, xTitle) {
  const y0 = ticks[0], y1 = ticks[ticks.length - 1];
  const y = (v) => M.top + (H - M.top - M.bottom) * (1 - (v - y0) / (y1 - y0 || 1));
  const g = svgEl("g", { class: "axis" });
  for (const t of ticks) {
    g.append(svgEl("line", { class: "grid-line", x1: M.left, x2: W - M.right, y1: y(t), y2: y(t) }));
    g.append(svgEl("text", { x: M.left - 8, y: y(t) + 4, "text-anchor": "end" }, format(t)));
  }
  g.append(svgEl("line", { class: "axis-line", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  const every = Math.ceil(xs.length / 12);
  xs.forEach((x, i) => {
    if (i % every === 0 || i === xs.length - 1) {
      g.append(svgEl("text", { x: xPos(i), y: H - M.bottom + 16, "text-anchor": "middle" }, x));
    }
  });
  g.append(svgEl("text", { class: "axis-title", x: (M.left + W - M.right) / 2, y: H - 3, "text-anchor": "middle" }, xTitle));
  return { g, y };
}

function legend(series) {
  return el("div", { class: "legend" },
    series.map((s) => el("span", { "data-legend": s.name },
      el("span", { class: "swatch", "data-color": s.color }), s.name)));
}

function paintSwatches(root) {
  // Colours are set through the DOM, not inline style attributes, to satisfy the CSP.
  root.querySelectorAll(".swatch[data-color]").forEach((n) => { n.style.background = n.dataset.color; });
}

function withColors(series) {
  return series.map((s, i) => ({ ...s, color: s.color || PALETTE[i % PALETTE.length] }));
}

function emptyChart(id, message) {
  return el("div", { class: "chart", id }, el("div", { class: "empty" }, message));
}

// series: [{name, values: [number|null]}]; xs: round numbers.
function lineChart({ id, xs, series, format = (v) => fmt.metric(v), xTitle = "round", yMin = null }) {
  series = withColors(series.filter((s) => s.values.some((v) => v !== null && v !== undefined)));
  if (!xs.length || !series.length) return emptyChart(id, "nothing recorded yet");
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (yMin !== null) lo = Math.min(lo, yMin);
  const ticks = niceTicks(lo, hi);
  const xPos = (i) => xs.length === 1 ? (M.left + W - M.right) / 2
    : M.left + 10 + (W - M.left - M.right - 20) * i / (xs.length - 1);
  const { g, y } = frame(ticks, xs, xPos, format, xTitle);
  const root = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, g);
  for (const s of series) {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += (d ? " L" : "M") + xPos(i).toFixed(1) + " " + y(v).toFixed(1);
    });
    root.append(svgEl("path", { class: "series-line", d, stroke: s.color, "data-series": s.name }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      root.append(svgEl("circle", {
        class: "point", cx: xPos(i), cy: y(v), r: 3.6, fill: s.color,
        "data-series": s.name, "data-x": xs[i], "data-value": v,
      }, svgEl("title", {}, `${s.name}, round ${xs[i]}: ${format(v)}`)));
    });
  }
  const node = el("div", { class: "chart", id }, root, legend(series));
  paintSwatches(node);
  return node;
}

// Bars per round; stacked adds series on top of each other, otherwise they stand side by side.
function barChart({ id, xs, series, stacked = false, format = (v) => fmt.int(v), xTitle = "round" }) {
  series = withColors(series);
  if (!xs.length) return emptyChart(id, "nothing recorded yet");
  const totals = xs.map((_, i) => stacked
    ? series.reduce((a, s) => a + (s.values[i] || 0), 0)
    : Math.max(...series.map((s) => s.values[i] || 0)));
  const ticks = niceTicks(0, Math.max(1, ...totals));
  const band = (W - M.left - M.right) / xs.length;
  const xPos = (i) => M.left + band * (i + 0.5);
  const { g, y } = frame(ticks, xs, xPos, format, xTitle);
  const root = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, g);
  const inner = Math.min(band * 0.7, 64);
  xs.forEach((x, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      const w = stacked ? inner : inner / series.length;
      const left = xPos(i) - inner / 2 + (stacked ? 0 : k * w);
      const top = y(stacked ? base + v : v), bottom = y(stacked ? base : 0);
      root.append(svgEl("rect", {
        x: left.toFixed(1), y: top.toFixed(1), width: Math.max(w - 2, 1).toFixed(1),
        height: Math.max(bottom - top, 0).toFixed(1), rx: 3, fill: s.color,
        "data-series": s.name, "data-x": x, "data-value": v,
      }, svgEl("title", {}, `${s.name}, round ${x}: ${format(v)}`)));
      if (stacked) base += v;
    });
  });
  const node = el("div", { class: "chart", id }, root, legend(series));
  paintSwatches(node);
  return node;
}

// Columns of nodes (x, y in [0, 1]) coloured by kind, joined by curves. `rows` sizes the height.
function networkChart({ id, nodes, edges, kinds, rows }) {
  if (!nodes.length) return emptyChart(id, "no data set cards published yet");
  const columns = new Set(nodes.map((n) => n.x)).size;
  const padL = 150, padR = 250, pad = 30, gap = 300;
  const GW = padL + padR + gap * Math.max(columns - 1, 1), GH = Math.max(260, rows * 26 + 2 * pad);
  const px = (n) => [padL + n.x * gap * Math.max(columns - 1, 1), pad + n.y * (GH - 2 * pad)];
  const pos = new Map(nodes.map((n) => [n.id, px(n)]));
  const colour = new Map(kinds.map((k, i) => [k, ["#e3872d", "#4353d6", "#0f9d8a", "#7c4ddb"][i] || PALETTE[i % PALETTE.length]]));
  const root = svgEl("svg", { viewBox: `0 0 ${GW} ${GH}`, role: "img" });
  for (const e of edges) {
    let a = pos.get(e.source), b = pos.get(e.target);
    if (!a || !b) continue;
    if (a[0] > b[0]) [a, b] = [b, a];
    const mid = (a[0] + b[0]) / 2;
    root.append(svgEl("path", {
      class: "edge", fill: "none", "data-kind": e.kind,
      d: `M${a[0]} ${a[1]} C${mid} ${a[1]}, ${mid} ${b[1]}, ${b[0]} ${b[1]}`,
    }));
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const r = n.kind === "institution" ? 11 : n.kind === "dataset" ? 8 : 5;
    const text = n.kind === "concept" ? conceptLabel(n.label) : n.label;
    const label = n.kind === "institution"
      ? svgEl("text", { x: x - r - 7, y: y + 4, "text-anchor": "end", class: "strong" }, text)
      : n.kind === "dataset"
        ? svgEl("text", { x, y: y - r - 6, "text-anchor": "middle" }, text)
        : svgEl("text", { x: x + r + 6, y: y + 4 }, text);
    root.append(svgEl("g", { "data-node": n.id, "data-kind": n.kind },
      svgEl("circle", { class: "node", cx: x, cy: y, r, fill: colour.get(n.kind) || "#888" },
        svgEl("title", {}, `${n.kind}: ${n.label}`)),
      label));
  }
  const node = el("div", { class: "chart graph", id }, root,
    legend(kinds.map((k) => ({ name: k, color: colour.get(k) }))));
  paintSwatches(node);
  return node;
}

// "finance:number_of_existing_credits" -> "number of existing credits" (the scheme shows in the tooltip).
function conceptLabel(curie) {
  const name = curie.includes(":") ? curie.slice(curie.indexOf(":") + 1) : curie;
  const words = name.replace(/_/g, " ");
  return words.length > 34 ? words.slice(0, 33) + "…" : words;
}
