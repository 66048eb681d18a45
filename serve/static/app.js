// enospc serve's page: every limit as a bar of used/max, worst first, with
// its holders and a chart of its history since the server started; a click
// on a row shows the chart of its recorded history (serve --history-dir).
// With serve --trace, the failing syscalls the trace caught are listed
// under the rows (/api/v1/failures). It reloads itself and needs nothing beyond this server.
"use strict";

const refreshMs = 10000;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

function human(v, unit) {
  if (unit === "bytes" && v >= 1 << 20) {
    const u = ["Ki", "Mi", "Gi", "Ti", "Pi"];
    let i = -1;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + u[i];
  }
  return String(v);
}

function holders(f) {
  // Holders that read the same (hidden ones of one uid) are one entry.
  const groups = new Map();
  for (const c of f.consumers || []) {
    // Without --expose-holders serve hides pids, comms and the names users
    // gave their objects: such a holder is shown by its uid.
    let s = c.comm ? `${c.comm}[${c.pid}]` : (c.name || (c.uid !== undefined ? `uid ${c.uid}` : ""));
    if (c.container_name || c.container) s += ` @${c.container_name || c.container.slice(0, 12)}`;
    if (c.pod) s += ` pod ${c.namespace}/${c.pod}`;
    const g = groups.get(s) || { n: 0, count: 0 };
    g.n++;
    g.count += c.count;
    groups.set(s, g);
  }
  const shown = [...groups].slice(0, 3);
  const cs = shown.map(([s, g]) => g.n > 1 ? `${s} ${g.count} (${g.n} holders)` : `${s} ${g.count}`);
  const listed = shown.reduce((a, [, g]) => a + g.n, 0);
  const total = Math.max(f.consumers_total || 0, (f.consumers || []).length);
  if (total > listed) cs.push(`… ${total - listed} more`);
  return cs.join(", ");
}

function sparkline(points) {
  const w = 120, h = 20;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("class", "history");
  if (!points || points.r.length === 0) return svg;
  const n = points.r.length;
  const xy = points.r.map((r, i) => `${n === 1 ? w : (i / (n - 1)) * w},${h - Math.min(r, 1) * h}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", xy);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#557");
  svg.append(line);
  svg.dataset.points = String(n);
  return svg;
}

// trend says a row's history (serve --history-dir) in words.
function trend(f) {
  const h = f.history;
  if (!h) return "";
  if (h.eta_seconds !== null && h.eta_seconds !== undefined) {
    const s = h.eta_seconds;
    const eta = s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
    return `full in ~${eta}`;
  }
  return h.rate_per_hour === 0 ? "flat" : h.rate_per_hour < 0 ? "falling" : "rising";
}

// open rows show their chart (/api/v1/chart, an SVG image drawn by
// serve from its history); kept open across refreshes.
const open = new Set();

function chartRow(f) {
  const q = new URLSearchParams({ limit: f.limit, scope: f.scope, since: "48h" });
  const img = el("img", { class: "chart", alt: `history of ${f.limit} ${f.scope}`, src: `/api/v1/chart?${q}` });
  img.addEventListener("error", () => img.replaceWith(el("span", { class: "reason" }, "no history recorded for this row (serve --history-dir)")));
  return el("tr", { class: "chart-row" }, el("td", { colspan: "7" }, img));
}

// Failures caught (/api/v1/failures, serve --trace): the newest first, at
// most failuresShown. Every string is the host's (a comm is whatever a
// process calls itself): it goes in as text, never as markup.
const failuresShown = 50;

function when(t) {
  const d = new Date(t);
  return isNaN(d) ? String(t || "") : d.toISOString().slice(0, 19).replace("T", " ") + "Z";
}

// failure:begin (serve's tests check that the API gives every field read here)
function failureRow(f) {
  // Without --expose-holders serve hides pids, comms and paths: the
  // process is then its uid.
  let who = f.comm ? `${f.comm}[${f.pid}]` : (f.uid !== undefined ? `uid ${f.uid}` : "");
  if (f.container_name || f.container) who += ` @${f.container_name || f.container.slice(0, 12)}`;
  if (f.pod) who += ` pod ${f.namespace}/${f.pod}`;
  const call = el("td", {}, `${f.syscall} `, el("span", { class: "errno" }, f.errno));
  if (f.count > 1) call.append(` ×${f.count}`);
  return el("tr", { class: "failure", "data-limit": f.limit, "data-scope": f.scope, "data-syscall": f.syscall, "data-errno": f.errno },
    el("td", {}, when(f.last)),
    el("td", {}, f.limit),
    el("td", {}, f.scope),
    call,
    el("td", { class: "process" }, who));
}
// failure:end

async function refreshFailures() {
  const sec = document.getElementById("failures");
  const state = document.getElementById("failures-state");
  const body = document.getElementById("failure-rows");
  try {
    const r = await fetch("/api/v1/failures");
    if (r.status === 404) { // serve runs without --trace
      sec.dataset.trace = "off";
      state.textContent = "tracing is off: run enospc serve --trace to catch the failing syscalls as the kernel refuses them";
      body.replaceChildren();
      return;
    }
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    const got = await r.json();
    const fs = got.failures || [];
    const tr = got.trace || {};
    sec.dataset.trace = tr.running ? "on" : "stopped";
    let s = tr.running ? "tracing" : `the trace is not running${tr.error ? ": " + tr.error : ""}`;
    s += fs.length === 0 ? ", no failure caught yet" : fs.length <= failuresShown ? `, the last ${fs.length} failures, newest first` : `, the ${failuresShown} newest of the last ${fs.length} failures`;
    if (tr.stats && tr.stats.dropped > 0) s += ` (${tr.stats.dropped} lost: the kernel's map was full)`;
    state.textContent = s;
    body.replaceChildren(...fs.slice(0, failuresShown).map(failureRow));
  } catch (e) {
    state.textContent = `cannot read the failures: ${e.message}`;
  } finally {
    sec.dataset.loaded = "true";
  }
}

async function refresh() {
  refreshFailures();
  try {
    const [rep, hist] = await Promise.all([
      // 503 with the reason: no snapshot yet, or a stale one.
      fetch("/api/v1/check").then(async r => { if (!r.ok) throw new Error((await r.text()).trim() || r.statusText); return r.json(); }),
      fetch("/api/v1/history").then(r => r.ok ? r.json() : { series: [] }),
    ]);
    const byKey = {};
    for (const s of hist.series || []) byKey[s.limit + "\u0000" + s.scope] = s;
    document.getElementById("host").textContent = `${rep.host} (kernel ${rep.kernel})`;
    document.getElementById("meta").textContent = `snapshot ${rep.time}, ${rep.findings.length} rows, refreshed every ${refreshMs / 1000} s`;
    document.getElementById("error").textContent = "";
    const body = document.getElementById("rows");
    body.replaceChildren();
    for (const f of rep.findings) { // already worst first
      const pct = f.max > 0 ? Math.min(f.used / f.max, 1) * 100 : 0;
      const bar = el("div", { class: "bar", title: `${pct.toFixed(1)}%` }, el("div", { class: "fill", style: `width:${pct}%` }));
      const used = f.severity === "unknown" && f.max === 0 ? "?" : `${human(f.used, f.unit)} / ${human(f.max, f.unit)} ${f.unit}`;
      const scope = el("td", {}, f.scope);
      if (f.reason && f.severity !== "ok") scope.append(el("div", { class: "reason" }, f.reason));
      const tr = el("tr", { class: `row ${f.severity}`, "data-limit": f.limit, "data-scope": f.scope, "data-severity": f.severity, "data-ratio": (f.max > 0 ? f.used / f.max : 0).toFixed(4) },
        el("td", {}, el("span", { class: "sev" }, f.severity)),
        el("td", {}, f.limit),
        scope,
        el("td", {}, used),
        el("td", {}, bar),
        el("td", {}, sparkline(byKey[f.limit + "\u0000" + f.scope]), el("div", { class: "reason" }, trend(f))),
        el("td", { class: "holders" }, holders(f)));
      const key = f.limit + "\u0000" + f.scope;
      tr.addEventListener("click", () => {
        if (open.has(key)) { open.delete(key); tr.nextSibling.remove(); }
        else { open.add(key); tr.after(chartRow(f)); }
      });
      body.append(tr);
      if (open.has(key)) body.append(chartRow(f));
    }
    document.body.dataset.loaded = "true";
  } catch (e) {
    document.getElementById("error").textContent = `cannot read the snapshot: ${e.message}`;
  }
}

refresh();
setInterval(refresh, refreshMs);
