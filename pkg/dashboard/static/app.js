// Agora dashboard: polls the JSON API every 2 s and renders it. Vanilla JS,
// no build step. URLs are relative so the page also works under the
// apiserver's service proxy path. Every value from the API is inserted as
// text (never as HTML): framework and task names are tenant-controlled.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#2b6cb0", "#dd6b20", "#2f855a", "#c53030", "#6b46c1", "#b7791f", "#0987a0", "#d53f8c", "#4a5568", "#38a169"];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    // style through the CSSOM: the CSP forbids style attributes.
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const pct = (v) => (v * 100).toFixed(1) + "%";
const cpus = (v) => String(Math.round(v * 1000) / 1000);
function mem(b) {
  if (b >= 1 << 30) return (Math.round(b * 10 / (1 << 30)) / 10) + "Gi";
  return Math.round(b / (1 << 20)) + "Mi";
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}
function bar(used, total, label) {
  const w = total > 0 ? Math.min(100, used * 100 / total) : 0;
  const b = el("span", { class: "bar" }, el("span"));
  b.firstChild.style.width = w.toFixed(1) + "%";
  return el("span", {}, b, label);
}
function badge(text, kind) { return el("span", { class: "badge " + (kind || "") }, text); }

function stateKind(s) {
  if (s === "TASK_RUNNING" || s === "TASK_FINISHED") return "ok";
  if (s === "TASK_STAGING" || s === "TASK_STARTING" || s === "TASK_KILLING" || s === "UNBOUND" || s === "TASK_UNREACHABLE") return "warn";
  if (s === "TASK_KILLED") return "";
  return "bad";
}
function phaseKind(p) { return p === "Active" ? "ok" : p === "Inactive" || p === "Pending" || p === "" ? "warn" : "bad"; }

function fill(tableId, rows, emptyText, cols) {
  const tb = document.querySelector("#" + tableId + " tbody");
  const body = document.createDocumentFragment();
  if (rows.length === 0) body.append(el("tr", { class: "empty" }, el("td", { colspan: cols }, emptyText)));
  for (const r of rows) body.append(r);
  tb.replaceChildren(body);
}

// Colours follow the framework's name, so they match across chart and tables.
const colorOf = new Map();
function color(name) {
  if (!colorOf.has(name)) colorOf.set(name, COLORS[colorOf.size % COLORS.length]);
  return colorOf.get(name);
}

function renderSummary(s) {
  const t = s.summary;
  const tiles = [
    ["Frameworks", t.activeFrameworks + " / " + t.frameworks, "active / all"],
    ["Agents", t.readyAgents + " / " + t.agents, "ready / all"],
    ["CPUs", cpus(t.allocated.cpus) + " / " + cpus(t.total.cpus), "allocated / total"],
    ["Memory", mem(t.allocated.mem) + " / " + mem(t.total.mem), "allocated / total"],
    ["Active tasks", t.activeTasks, "of " + s.tasks.total],
    ["Offers", t.outstandingOffers, t.answeredOffers ? t.answeredOffers + " answered, not settled" : "outstanding"],
  ];
  document.getElementById("summary").replaceChildren(...tiles.map(([k, v, sub]) =>
    el("div", { class: "tile" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v), el("div", { class: "k" }, sub))));
}

function renderFrameworks(s) {
  fill("frameworks", s.frameworks.map((f) => {
    const name = f.namespace + "/" + f.name;
    const roles = f.roles.map((r) => {
      const sh = f.shares.find((x) => x.role === r);
      let t = r + (sh && f.roles.length > 1 ? " " + pct(sh.share) : "");
      if (f.suppressedRoles.includes(r)) t += " (suppressed)";
      return t;
    }).join(", ");
    let phase = f.phase || "Pending";
    if (f.deactivated) phase += ", deactivated";
    return el("tr", {}, el("td", {}, el("span", { class: "swatch", style: "background:" + color(name) }), name),
      el("td", {}, badge(phase, phaseKind(f.phase))), el("td", {}, roles),
      el("td", { class: "num" }, pct(f.dominantShare)), el("td", { class: "num" }, cpus(f.allocated.cpus)),
      el("td", { class: "num" }, mem(f.allocated.mem)), el("td", { class: "num" }, f.activeTasks),
      el("td", { class: "num" }, f.outstandingOffers));
  }), "no frameworks", 8);
}

function renderAgents(s) {
  fill("agents", s.agents.map((a) => {
    let ready = a.ready ? badge("ready", "ok") : badge("not ready", "bad");
    const cell = el("td", {}, ready);
    if (a.unschedulable) cell.append(" ", badge("draining", "warn"));
    return el("tr", { title: a.hostname + (a.version ? " (" + a.version + ")" : "") }, el("td", {}, a.name), cell,
      el("td", {}, bar(a.allocated.cpus, a.total.cpus, cpus(a.allocated.cpus) + " / " + cpus(a.total.cpus))),
      el("td", {}, bar(a.allocated.mem, a.total.mem, mem(a.allocated.mem) + " / " + mem(a.total.mem))),
      el("td", { class: "num" }, a.tasks));
  }), "no agents", 5);
}

function renderOffers(s) {
  fill("offers", s.offers.map((o) => el("tr", {}, el("td", {}, o.framework), el("td", { class: "num" }, o.count),
    el("td", { class: "num" }, o.agents), el("td", { class: "num" }, cpus(o.resources.cpus)),
    el("td", { class: "num" }, mem(o.resources.mem)), el("td", {}, o.count ? ago(o.oldest) : "-"),
    el("td", { class: "num" }, o.answered))), "no outstanding offers", 7);
  fill("roles", s.roles.map((r) => el("tr", {}, el("td", {}, r.role), el("td", { class: "num" }, r.weight),
    el("td", { class: "num" }, pct(r.share)), el("td", { class: "num" }, r.frameworks))), "no ResourceRoles (every role weighs 1)", 4);
}

function renderTasks(s) {
  const states = Object.entries(s.tasks.byState).sort((a, b) => b[1] - a[1]);
  document.getElementById("task-states").replaceChildren(...states.map(([k, n]) =>
    el("span", { class: "chip" }, badge(k, stateKind(k)), el("b", {}, n))));
  fill("tasks", s.tasks.recent.map((t) => {
    const reason = el("td", { class: "msg" }, t.reason || "");
    if (t.message) reason.title = t.message;
    if (t.exitCode !== undefined) reason.append((t.reason ? " " : "") + "exit " + t.exitCode);
    return el("tr", {}, el("td", {}, t.namespace + "/" + t.name), el("td", {}, t.framework), el("td", {}, t.agent),
      el("td", { class: "num" }, cpus(t.resources.cpus)), el("td", { class: "num" }, mem(t.resources.mem)),
      el("td", {}, badge(t.state, stateKind(t.state))), reason, el("td", {}, ago(t.updated)));
  }), "no tasks", 8);
}

function hhmmss(ms) { return new Date(ms).toTimeString().slice(0, 8); }

// renderChart draws each framework's share as an SVG polyline; gaps (a
// framework that did not exist yet) break the line.
function renderChart(sh) {
  const box = document.getElementById("chart");
  const W = Math.max(box.clientWidth, 400), H = 240, L = 48, R = 12, T = 10, B = 24;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "dominant shares over time" });
  const times = sh.times;
  let top = 0;
  for (const f of sh.frameworks) for (const v of f.values) if (v !== null && v > top) top = v;
  top = Math.min(1, Math.max(0.05, Math.ceil(top * 11) / 10));
  const x0 = times.length ? times[0] : 0, x1 = times.length ? times[times.length - 1] : 1;
  const x = (t) => L + (x1 > x0 ? (t - x0) / (x1 - x0) : 1) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4;
    root.append(svg("line", { class: i ? "grid" : "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, pct(v)));
  }
  if (times.length > 1) {
    for (let i = 0; i < 5; i++) {
      const t = x0 + (x1 - x0) * i / 4;
      root.append(svg("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, hhmmss(t)));
    }
  }
  if (!sh.frameworks.length) root.append(svg("text", { class: "none", x: W / 2, y: H / 2, "text-anchor": "middle" }, "no samples yet"));
  for (const f of sh.frameworks) {
    let d = "", pen = false, pts = 0;
    f.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += (pen ? "L" : "M") + x(times[i]).toFixed(1) + " " + y(v).toFixed(1);
      pen = true; pts++;
    });
    const c = color(f.name);
    if (pts > 1) root.append(svg("path", { class: "line", d: d, stroke: c }));
    const last = f.values.length - 1;
    if (last >= 0 && f.values[last] !== null) root.append(svg("circle", { cx: x(times[last]), cy: y(f.values[last]), r: 3, fill: c }));
  }
  box.replaceChildren(root);
  document.getElementById("legend").replaceChildren(...sh.frameworks.map((f) => {
    const lastV = [...f.values].reverse().find((v) => v !== null);
    return el("span", {}, el("span", { class: "swatch", style: "background:" + color(f.name) }), f.name + " " + (lastV === undefined ? "-" : pct(lastV)));
  }));
  const secs = times.length > 1 ? Math.round((x1 - x0) / 1000) : 0;
  const span = secs < 120 ? secs + " s" : Math.round(secs / 60) + " min";
  document.getElementById("shares-hint").textContent = `sampled every ${sh.intervalSeconds} s, last ${span}` +
    (sh.omitted ? `; ${sh.omitted} smaller frameworks not drawn` : "");
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}

async function poll() {
  const st = document.getElementById("status");
  try {
    const [s, sh] = await Promise.all([getJSON("api/state"), getJSON("api/shares")]);
    renderSummary(s); renderChart(sh); renderFrameworks(s); renderAgents(s); renderOffers(s); renderTasks(s);
    st.textContent = "updated " + new Date(s.time).toLocaleTimeString();
    st.className = "status";
    document.body.dataset.loaded = "true";
  } catch (e) {
    st.textContent = "cannot reach the master: " + e.message;
    st.className = "status err";
  }
  setTimeout(poll, POLL_MS);
}

poll();
