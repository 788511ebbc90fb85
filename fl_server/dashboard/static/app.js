"use strict";
// The dashboard: hash-routed views over the coordinator's API.
// The API key arrives once in the URL fragment (#token=…, never sent to the server),
// is kept in this tab's sessionStorage, and goes out only as an Authorization header.

const KEY = "fedkg-api-key";
const view = document.getElementById("view");

function token() { return sessionStorage.getItem(KEY); }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = "Bearer " + token();
  const res = await fetch(path, { ...options, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body.message || res.statusText);
  return body;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function problem(err) {
  if (err.status === 401) { signIn("That key was not accepted: " + err.message); return; }
  show(el("div", { class: "error", role: "alert" }, err.message || String(err)));
}

function setActive(name) {
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === name));
}

async function renderWho() {
  const box = document.getElementById("who");
  box.replaceChildren();
  if (!token()) return;
  try {
    const me = await api("/api/me");
    box.append(el("span", { id: "whoami" }, me.role === "admin" ? "admin" : me.institution),
      el("button", { onclick: () => { sessionStorage.removeItem(KEY); location.hash = "#/signin"; } }, "Sign out"));
  } catch (err) { /* the view reports it */ }
}

function signIn(message) {
  setActive("");
  const input = el("input", { type: "password", id: "api-key", placeholder: "fedkg_…", autocomplete: "off" });
  const form = el("form", {
    onsubmit: (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      location.hash = "#/runs";
      route();
    },
  }, el("label", { for: "api-key" }, "API key"), input, el("button", { class: "btn", type: "submit" }, "Open the dashboard"));
  show(el("div", { class: "signin card" },
    el("h1", {}, "Sign in"),
    el("p", { class: "muted" },
      "Paste the admin key or your institution's key. After a simulation, ",
      el("code", {}, "fl-server dashboard results/"), " opens this page already signed in."),
    message ? el("div", { class: "error" }, message) : null,
    form));
}

// --- runs list -----------------------------------------------------------------------------

function statusBadge(status) { return el("span", { class: "badge " + status, "data-status": status }, status); }

function progress(done, total) {
  const bar = el("span");
  bar.style.width = total ? Math.min(100, (100 * done) / total) + "%" : "0%";
  return el("span", {}, el("span", { class: "progress" }, bar), total ? `${done} / ${total}` : String(done));
}

async function runsView() {
  setActive("runs");
  const runs = await api("/api/runs?limit=200");
  const rows = runs.map((r) => el("tr", { "data-run": r.id },
    el("td", {}, el("a", { href: "#/runs/" + encodeURIComponent(r.id) }, el("span", { class: "mono" }, r.id))),
    el("td", {}, r.scenario || "–"),
    el("td", {}, r.task),
    el("td", {}, statusBadge(r.status)),
    el("td", {}, progress(r.last_completed_round, r.total_rounds)),
    el("td", { class: "num", "data-metric": "accuracy" }, fmt.metric(r.latest_metrics.accuracy)),
    el("td", { class: "num" }, fmt.metric(r.latest_metrics.loss)),
    el("td", {}, fmt.when(r.updated_at))));
  show(
    el("h1", {}, "Runs"),
    el("p", { class: "subtitle" }, `${runs.length} federated run${runs.length === 1 ? "" : "s"}, newest first. Open one for its rounds, privacy and traffic.`),
    el("div", { class: "card table-wrap" }, runs.length ? el("table", { id: "runs-table" },
      el("thead", {}, el("tr", {}, ["Run", "Scenario", "Task", "Status", "Rounds", "Accuracy", "Loss", "Updated"]
        .map((h, i) => el("th", { class: i === 5 || i === 6 ? "num" : null }, h)))),
      el("tbody", {}, rows)) : el("div", { class: "empty" }, "No runs yet. Run a simulation, then `fl-server ingest results/`.")));
}

// --- one run ---------------------------------------------------------------------------

function tile(label, value, hint, id) {
  return el("div", { class: "tile", id }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), hint ? el("div", { class: "hint" }, hint) : null);
}

function card(title, ...body) { return el("section", { class: "card" }, el("h2", {}, title), ...body); }

function metricSeries(series, names) {
  return names.filter((n) => series.metrics[n]).map((n) => ({ name: n, values: series.metrics[n] }));
}

async function runView(runId) {
  setActive("runs");
  const [run, s] = await Promise.all([
    api("/api/runs/" + encodeURIComponent(runId)),
    api("/api/runs/" + encodeURIComponent(runId) + "/metrics"),
  ]);
  const last = (arr) => (arr && arr.length ? arr[arr.length - 1] : null);
  const final = run.final || {};
  const acc = final.accuracy ?? last(s.metrics.accuracy);
  const epsNow = Object.values(s.epsilon).map(last).filter((v) => v !== null);
  const totalBytes = s.bytes_up.reduce((a, b) => a + b, 0) + s.bytes_down.reduce((a, b) => a + b, 0);

  const tiles = el("div", { class: "grid tiles" },
    tile("Status", statusBadge(run.status), run.finished_at ? "finished " + fmt.when(run.finished_at) : "updated " + fmt.when(run.updated_at), "tile-status"),
    tile("Rounds", `${run.last_completed_round}${run.total_rounds ? " / " + run.total_rounds : ""}`, `${run.participants.length} institutions`, "tile-rounds"),
    tile("Accuracy", fmt.metric(acc), final.centralized_accuracy !== undefined ? "centralised " + fmt.metric(final.centralized_accuracy) : "last round", "tile-accuracy"),
    final.auc !== undefined ? tile("AUC", fmt.metric(final.auc), final.centralized_auc !== undefined ? "centralised " + fmt.metric(final.centralized_auc) : null, "tile-auc") : null,
    tile(el("span", {}, "Privacy spent ", el("span", { class: "greek" }, "ε")), epsNow.length ? fmt.epsilon(Math.max(...epsNow)) : "–", epsNow.length ? "most by one institution" : "no DP reported", "tile-epsilon"),
    tile("On the wire", fmt.bytes(totalBytes), "up + down, all rounds", "tile-bytes"));

  const lossSeries = [];
  if (s.metrics.loss) lossSeries.push({ name: "evaluation loss", values: s.metrics.loss });
  if (s.train_metrics["train-loss"]) lossSeries.push({ name: "training loss", values: s.train_metrics["train-loss"] });

  const charts = el("div", { class: "grid two section" },
    card("Accuracy per round", lineChart({ id: "chart-accuracy", xs: s.rounds, series: metricSeries(s, ["accuracy", "auc"]) })),
    card("Loss per round", lineChart({ id: "chart-loss", xs: s.rounds, series: lossSeries, format: (v) => fmt.metric(v, 2) })),
    card("Privacy spent (ε) per institution", lineChart({
      id: "chart-epsilon", xs: s.rounds, yMin: 0, format: fmt.epsilon,
      series: Object.entries(s.epsilon).map(([name, values]) => ({ name, values })),
    })),
    card("Participants and rejections", barChart({
      id: "chart-participants", xs: s.rounds, stacked: true,
      series: [{ name: "contributed", values: s.participants, color: "#0f9d8a" }, { name: "rejected", values: s.rejected, color: "#d6456b" }],
    })),
    card("Bytes on the wire", barChart({
      id: "chart-bytes", xs: s.rounds, format: fmt.bytes,
      series: [{ name: "up (to coordinator)", values: s.bytes_up }, { name: "down (to institutions)", values: s.bytes_down, color: "#e3872d" }],
    })),
    card("Rejected replies", s.rejections.length
      ? el("table", { id: "rejections-table" }, el("thead", {}, el("tr", {}, el("th", {}, "Round"), el("th", {}, "Institution"), el("th", {}, "Reason"))),
        el("tbody", {}, s.rejections.map((r) => el("tr", {}, el("td", {}, r.round), el("td", {}, r.institution), el("td", {}, r.reason)))))
      : el("div", { class: "empty", id: "no-rejections" }, "Every reply in this run was accepted.")));

  const rounds = await api("/api/runs/" + encodeURIComponent(runId) + "/rounds");
  const table = el("table", { id: "rounds-table" },
    el("thead", {}, el("tr", {}, ["Round", "Accuracy", "Loss", "Contributors", "Rejected", "Bytes up", "Bytes down", "Time"]
      .map((h, i) => el("th", { class: i === 0 || i === 3 || i === 4 ? null : "num" }, h)))),
    el("tbody", {}, rounds.map((r) => el("tr", { "data-round": r.round },
      el("td", {}, r.round),
      el("td", { class: "num", "data-col": "accuracy" }, fmt.metric(r.metrics.accuracy)),
      el("td", { class: "num", "data-col": "loss" }, fmt.metric(r.metrics.loss, 4)),
      el("td", { "data-col": "clients" }, r.clients.map((c) => el("span", { class: "chip" }, c))),
      el("td", { "data-col": "rejected" }, Object.keys(r.rejected).map((c) => el("span", { class: "chip rejected", title: r.rejected[c] }, c))),
      el("td", { class: "num", "data-col": "bytes_up" }, fmt.bytes(r.bytes_up)),
      el("td", { class: "num", "data-col": "bytes_down" }, fmt.bytes(r.bytes_down)),
      el("td", { class: "num" }, fmt.seconds(r.seconds))))));

  const participants = el("table", { id: "participants-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Institution"), el("th", {}, "Data set"), el("th", { class: "num" }, "Records"), el("th", { class: "num" }, el("span", { class: "greek" }, "ε"), " spent"))),
    el("tbody", {}, run.participants.map((p) => el("tr", { "data-institution": p.institution },
      el("td", {}, p.institution), el("td", {}, p.dataset || "–"), el("td", { class: "num" }, fmt.int(p.records)),
      el("td", { class: "num" }, fmt.epsilon(last(s.epsilon[p.institution] || [])))))));

  show(
    el("p", { class: "muted" }, el("a", { href: "#/runs" }, "← all runs")),
    el("h1", {}, [run.scenario, run.task].filter(Boolean).join(" · "), " ", el("span", { class: "mono muted", id: "run-id" }, run.id)),
    el("p", { class: "subtitle" }, `Started ${fmt.when(run.started_at || run.created_at)} by ${run.created_by || "–"}.`),
    tiles, charts,
    el("div", { class: "section card table-wrap" }, el("h2", {}, "Rounds"), table),
    el("div", { class: "grid two section" },
      el("div", { class: "card table-wrap" }, el("h2", {}, "Institutions"), participants),
      el("div", { class: "card" }, el("h2", {}, "Configuration"),
        el("details", {}, el("summary", {}, "Show the run's configuration"), el("pre", {}, JSON.stringify(run.config, null, 2))))));
}

// --- knowledge graph -------------------------------------------------------------------

async function graphView() {
  setActive("graph");
  const g = await api("/api/graph");
  const order = ["institution", "dataset", "concept"];
  const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
  const kinds = [...new Set(g.nodes.map((n) => n.kind))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const counts = kinds.map((k) => {
    const n = g.nodes.filter((node) => node.kind === k).length;
    return `${n} ${k === "dataset" ? "data set" : k}${n === 1 ? "" : "s"}`;
  });
  show(
    el("h1", {}, "Knowledge graph"),
    el("p", { class: "subtitle" }, "Institutions, the data sets they publish, and the shared concepts their columns map to. ",
      counts.length ? counts.join(" · ") + "." : ""),
    el("div", { class: "card" }, networkChart({ id: "chart-graph", nodes: g.nodes, edges: g.edges, kinds, rows: g.rows })));
}

// --- audit log ---------------------------------------------------------------------------

async function auditView() {
  setActive("audit");
  const page = await api("/api/audit?newest_first=true&limit=200");
  const me = await api("/api/me");
  const result = el("div", { id: "verify-result" });
  const verify = me.role === "admin" ? el("button", {
    class: "btn secondary", id: "verify-button",
    onclick: async () => {
      try {
        const r = await api("/api/audit/verify");
        result.replaceChildren(r.ok
          ? el("div", { class: "ok-box" }, `Chain intact: ${r.entries} entries, head ${fmt.shortHash(r.head_hash)}`)
          : el("div", { class: "error" }, "Chain broken: " + r.problems.join("; ")));
      } catch (err) { result.replaceChildren(el("div", { class: "error" }, err.message)); }
    },
  }, "Verify the hash chain") : null;
  show(
    el("h1", {}, "Audit log"),
    el("p", { class: "subtitle" }, "Every change, newest first. Each entry's hash covers the one before it, so an edited or deleted entry breaks the chain."),
    el("div", { class: "toolbar" }, verify, result),
    el("div", { class: "card table-wrap" }, page.entries.length ? el("table", { id: "audit-table" },
      el("thead", {}, el("tr", {}, ["#", "When", "Who", "Action", "Target", "Hash"].map((h) => el("th", {}, h)))),
      el("tbody", {}, page.entries.map((e) => el("tr", { "data-seq": e.seq },
        el("td", {}, e.seq), el("td", {}, fmt.when(e.at)), el("td", {}, e.actor),
        el("td", {}, el("span", { class: "chip" }, e.action)), el("td", { class: "mono" }, e.target),
        el("td", { class: "mono muted", title: e.hash }, fmt.shortHash(e.hash))))))
      : el("div", { class: "empty" }, "Nothing logged yet.")));
}

// --- routing -----------------------------------------------------------------------------

async function route() {
  const hash = location.hash || "#/runs";
  if (hash.startsWith("#token=")) {
    sessionStorage.setItem(KEY, decodeURIComponent(hash.slice(7)));
    history.replaceState(null, "", location.pathname + "#/runs");
    return route();
  }
  if (!token() || hash === "#/signin") { document.getElementById("who").replaceChildren(); return signIn(); }
  renderWho();
  try {
    const parts = hash.slice(2).split("/");
    if (parts[0] === "runs" && parts[1]) await runView(decodeURIComponent(parts[1]));
    else if (parts[0] === "graph") await graphView();
    else if (parts[0] === "audit") await auditView();
    else await runsView();
    document.body.dataset.ready = hash;
  } catch (err) { problem(err); }
}

window.addEventListener("hashchange", route);
route();
