"use strict";
// Number and text formatting shared by the dashboard's views.
const fmt = {
  metric(v, digits = 3) {
    return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);
  },
  epsilon(v) { return fmt.metric(v, 2); },
  int(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); },
  bytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let x = Number(v), i = 0;
    while (Math.abs(x) >= 1000 && i < units.length - 1) { x /= 1000; i += 1; }
    return (i === 0 ? x.toFixed(0) : x.toFixed(1)) + " " + units[i];
  },
  seconds(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1) + " s"; },
  when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  },
  shortHash(h) { return h ? h.slice(0, 10) + "…" : ""; },
};

// Builds DOM nodes without innerHTML, so nothing from the API is ever parsed as markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
