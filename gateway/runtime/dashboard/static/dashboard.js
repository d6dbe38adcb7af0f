// Operations dashboard: province -> branch -> device, live over server-sent events.
// Plain browser JavaScript, no build step, nothing loaded from outside.
"use strict";

const body = document.body;
const MODE = body.dataset.mode; // "province" (branchd monitor) or "branch" (daemon /ops)
const API = body.dataset.api;
const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
let overview = null; // province overview, kept current by events
let branchShown = null; // branch view on screen

// ------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(path) {
  const response = await fetch(`${API}/${path}`, { cache: "no-store" });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || problem.title || response.statusText);
  }
  return response.json();
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString("zh-CN", { hour12: false });
}

function badge(state) {
  return el("span", { class: `badge ${state}` }, state);
}

const SERIES_LABEL = {
  cards_issued: "制卡量/小时 Cards per hour",
  errors: "设备错误/小时 Device errors per hour",
};

// A small bar chart as inline SVG: points [{hour, value}] over the last 24 hours.
function chart(points, label) {
  const width = 480, height = 120, pad = 18;
  const byHour = new Map(points.map((p) => [p.hour, p.value]));
  const end = Math.floor(Date.now() / 3600000) * 3600;
  const hours = Array.from({ length: 24 }, (_, i) => end - (23 - i) * 3600);
  const values = hours.map((h) => byHour.get(h) || 0);
  const top = Math.max(1, ...values);
  const barWidth = (width - pad) / hours.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  values.forEach((value, i) => {
    const bar = document.createElementNS(ns, "rect");
    const h = ((height - pad) * value) / top;
    bar.setAttribute("x", pad + i * barWidth + 1);
    bar.setAttribute("y", height - pad - h);
    bar.setAttribute("width", barWidth - 2);
    bar.setAttribute("height", h);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${new Date(hours[i] * 1000).getHours()}:00 — ${value}`;
    bar.append(title);
    svg.append(bar);
  });
  const max = document.createElementNS(ns, "text");
  max.setAttribute("x", 0);
  max.setAttribute("y", 10);
  max.textContent = String(top);
  svg.append(max);
  return el("figure", {}, svg, el("figcaption", {}, label));
}

async function charts(branch) {
  if (MODE !== "province") return el("div");
  const box = el("div", { class: "charts" });
  for (const series of ["cards_issued", "errors"]) {
    const query = `history?series=${series}&hours=24${branch ? `&branch=${encodeURIComponent(branch)}` : ""}`;
    try {
      const data = await getJSON(query);
      box.append(chart(data.points, SERIES_LABEL[series]));
    } catch (error) {
      box.append(el("p", { class: "error" }, String(error)));
    }
  }
  return box;
}

// ------------------------------------------------------------------ alerts

function alertList(alerts) {
  if (!alerts.length) return el("p", { class: "quiet" }, "无告警 No active alerts");
  return el(
    "ul",
    { class: "alerts" },
    alerts.map((a) =>
      el(
        "li",
        { class: `alert ${a.severity}${a.acked_at ? " acked" : ""}`, "data-rule": a.rule, "data-branch": a.branch },
        el("b", {}, a.rule),
        " ",
        el("a", { href: `#/branch/${encodeURIComponent(a.branch)}` }, a.branch),
        a.device ? ` / ${a.device}` : "",
        ` — ${a.detail} · ${when(a.raised_at)}`,
        a.acked_at
          ? el("span", { class: "ack" }, ` ✓ ${a.acked_by}`)
          : MODE === "province" && a.id !== null
            ? el("button", { onclick: () => acknowledge(a.id) }, "确认 Ack")
            : null,
      ),
    ),
  );
}

async function acknowledge(id) {
  const by = window.prompt("确认人 Acknowledged by:", localStorage.getItem("ackBy") || "");
  if (!by) return;
  localStorage.setItem("ackBy", by);
  await fetch(`${API}/alerts/${id}/ack`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ by }),
  });
  route();
}

// ------------------------------------------------------------------ views

function summaryRow(line) {
  const c = line.counts;
  return el(
    "tr",
    { "data-branch": line.branch, "data-presence": line.presence, class: line.presence },
    el("td", {}, el("a", { href: `#/branch/${encodeURIComponent(line.branch)}` }, line.branch)),
    el("td", {}, badge(line.presence)),
    el("td", {}, when(line.presence_since)),
    el("td", {}, `${c.online + c.busy} / ${c.online + c.busy + c.error + c.offline}`),
    el("td", {}, c.error || ""),
    el("td", {}, c.offline || ""),
    el("td", { class: line.alerts ? "hot" : "" }, line.alerts || ""),
    el("td", {}, line.cards_last_hour ?? "—"),
  );
}

function order(a, b) {
  const rank = { offline: 0, unknown: 1, online: 2 };
  return rank[a.presence] - rank[b.presence] || b.alerts - a.alerts || a.branch.localeCompare(b.branch);
}

async function showProvince() {
  overview = await getJSON("overview");
  const alerts = (await getJSON("alerts")).alerts;
  crumbs.replaceChildren(el("span", {}, `省 Province ${overview.province}`));
  const p = overview.presence;
  view.replaceChildren(
    el(
      "section",
      { class: "tiles" },
      el("div", { class: "tile online" }, el("b", { id: "n-online" }, p.online), " 在线 online"),
      el("div", { class: "tile offline" }, el("b", { id: "n-offline" }, p.offline), " 离线 offline"),
      el("div", { class: "tile" }, el("b", { id: "n-alerts" }, overview.alerts), " 告警 alerts"),
    ),
    el("h2", {}, "告警 Alerts"),
    el("div", { id: "alerts" }, alertList(alerts)),
    await charts(null),
    el("h2", {}, "网点 Branches"),
    el(
      "table",
      { class: "branches" },
      el(
        "thead",
        {},
        el("tr", {}, ["网点 Branch", "状态 Daemon", "自 Since", "设备可用 Devices up", "故障 Error", "离线 Offline", "告警 Alerts", "本小时制卡 Cards/h"].map((t) => el("th", {}, t))),
      ),
      el("tbody", { id: "branch-rows" }, [...overview.branches].sort(order).map(summaryRow)),
    ),
  );
}

function reportsPanel(reports) {
  const rows = [];
  const o = reports.outbox;
  if (o) rows.push(["上行队列 Outbox", `${o.pending} waiting, ${o.dead_letters} dead letters`]);
  const a = reports.applications;
  if (a) rows.push(["申请 Applications", `${a.open} open, ${a.overdue} overdue`]);
  const s = reports.stock;
  if (s) {
    const feeders = s.feeders.map((f) => `${f.feeder}: ${f.remaining}${f.low ? " (low)" : ""}`).join(", ");
    const state = s.reconciled === null ? "not yet reconciled" : s.reconciled ? "reconciled" : `${s.problems} difference(s)`;
    rows.push(["卡库存 Stock", `${feeders || "—"}; ${state}`]);
  }
  const q = reports.queues;
  if (q) rows.push(["队列 Queues", Object.entries(q.queues).map(([k, v]) => `${k} ${v}`).join(", ") || "—"]);
  const p = reports.production;
  if (p && p.hours.length) rows.push(["本小时制卡 Cards this hour", `${p.hours.at(-1).issued} issued, ${p.hours.at(-1).spoiled} spoiled`]);
  const c = reports.certificates;
  if (c) rows.push(["证书 Certificates", c.certificates.map((x) => `${x.days_left.toFixed(0)} days left`).join(", ")]);
  if (!rows.length) return el("p", { class: "quiet" }, "No business reports yet.");
  return el("table", { class: "reports" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

function levelsText(levels) {
  if (!levels || levels.feeder === null) return "—";
  return `feeder ${levels.feeder}, ribbon ${levels.ribbon_remaining ?? "?"}${levels.reject_box_full ? ", reject box full" : ""}`;
}

async function showBranch(name, data) {
  const branch = data || (MODE === "branch" ? await getJSON("branch") : await getJSON(`branches/${encodeURIComponent(name)}`));
  branchShown = branch;
  crumbs.replaceChildren(
    MODE === "province" ? el("a", { href: "#/" }, "省 Province") : "",
    MODE === "province" ? " › " : "",
    el("span", {}, `网点 ${branch.branch}`),
  );
  view.replaceChildren(
    el("h2", { id: "branch-title", "data-presence": branch.presence }, `网点 Branch ${branch.branch} `, badge(branch.presence)),
    el("p", { class: "quiet" }, `since ${when(branch.presence_since)}${branch.presence_reason ? ` (${branch.presence_reason})` : ""}`),
    el("h2", {}, "告警 Alerts"),
    alertList(branch.alerts),
    el("h2", {}, "设备 Devices"),
    el(
      "table",
      { class: "devices" },
      el("thead", {}, el("tr", {}, ["设备 Device", "类型 Kind", "状态 State", "原因 Reason", "自 Since", "耗材 Levels"].map((t) => el("th", {}, t)))),
      el(
        "tbody",
        {},
        branch.devices.map((d) =>
          el(
            "tr",
            { "data-device": d.device, "data-state": d.state },
            el("td", {}, el("a", { href: `#/branch/${encodeURIComponent(branch.branch)}/device/${encodeURIComponent(d.device)}` }, d.device)),
            el("td", {}, d.kind),
            el("td", {}, badge(d.state)),
            el("td", {}, d.reason || ""),
            el("td", {}, when(d.since)),
            el("td", {}, levelsText(d.levels)),
          ),
        ),
      ),
    ),
    el("h2", {}, "业务 Business"),
    reportsPanel(branch.reports),
    await charts(branch.branch),
  );
}

async function showDevice(name, device) {
  const branch = MODE === "branch" ? await getJSON("branch") : await getJSON(`branches/${encodeURIComponent(name)}`);
  const d = branch.devices.find((x) => x.device === device);
  crumbs.replaceChildren(
    MODE === "province" ? el("a", { href: "#/" }, "省 Province") : "",
    MODE === "province" ? " › " : "",
    el("a", { href: `#/branch/${encodeURIComponent(name)}` }, `网点 ${name}`),
    ` › ${device}`,
  );
  if (!d) {
    view.replaceChildren(el("p", { class: "error" }, `No device ${device}.`));
    return;
  }
  const rows = [
    ["类型 Kind", d.kind],
    ["状态 State", badge(d.state)],
    ["原因 Reason", d.reason || "—"],
    ["自 Since", when(d.since)],
    ...Object.entries(d.levels || {}).map(([k, v]) => [k, v === null ? "—" : String(v)]),
    ...Object.entries(d.counters || {}).map(([k, v]) => [k, v]),
  ];
  view.replaceChildren(
    el("h2", { id: "device-title" }, `设备 Device ${d.device} `, badge(d.state)),
    el("table", { class: "reports" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
  );
}

// ------------------------------------------------------------------ routing and live updates

function current() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "branch" && parts[1]) return { branch: parts[1], device: parts[3] || null };
  return { branch: null, device: null };
}

async function route() {
  const here = current();
  branchShown = null;
  try {
    if (MODE === "branch") {
      if (here.device) await showDevice(here.branch, here.device);
      else await showBranch(null);
    } else if (here.device) await showDevice(here.branch, here.device);
    else if (here.branch) await showBranch(here.branch);
    else await showProvince();
  } catch (error) {
    view.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  }
}

function applyUpdate(update) {
  const here = current();
  if (!here.branch && overview) {
    const rows = document.getElementById("branch-rows");
    for (const line of update.branches) {
      const index = overview.branches.findIndex((b) => b.branch === line.branch);
      if (index >= 0) overview.branches[index] = line;
      else overview.branches.push(line);
      const old = rows && rows.querySelector(`tr[data-branch="${CSS.escape(line.branch)}"]`);
      if (old) old.replaceWith(summaryRow(line));
      else if (rows) rows.append(summaryRow(line));
    }
    const p = { online: 0, offline: 0, unknown: 0 };
    overview.branches.forEach((b) => (p[b.presence] += 1));
    for (const key of ["online", "offline"]) {
      const node = document.getElementById(`n-${key}`);
      if (node) node.textContent = p[key];
    }
    const alerts = document.getElementById("n-alerts");
    if (alerts) alerts.textContent = update.alerts;
    if (update.alerts_changed) getJSON("alerts").then((a) => document.getElementById("alerts")?.replaceChildren(alertList(a.alerts)));
  } else if (here.branch && !here.device && update.branches.some((b) => b.branch === here.branch)) {
    showBranch(here.branch);
  }
}

function connect() {
  const source = new EventSource(`${API}/events`);
  source.onopen = () => {
    live.className = "badge online";
    live.textContent = "live";
  };
  source.onerror = () => {
    live.className = "badge offline";
    live.textContent = "reconnecting";
  };
  source.addEventListener("update", (event) => applyUpdate(JSON.parse(event.data)));
  source.addEventListener("branch", (event) => {
    const here = current();
    if (!here.device) showBranch(null, JSON.parse(event.data));
  });
}

window.addEventListener("hashchange", route);
route().then(connect);
