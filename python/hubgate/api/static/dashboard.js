// hubgate dashboard: reads the live snapshot stream, draws the site chart, sets the site limit.
// Plain browser JavaScript, no libraries: the page must work on a site without internet.
"use strict";

const API = "/api/v1";
const HISTORY = 300; // chart samples kept (one per control cycle)
const MIN_SPAN = 60; // the chart's x axis spans at least this many samples
const PHASES = ["L1", "L2", "L3"];
const TOKEN_KEY = "hubgate-token";

const history = [];

// ---- helpers ---------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.setAttribute("style", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra = {}) {
  const auth = token() ? { Authorization: `Bearer ${token()}` } : {};
  return { ...auth, ...extra };
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// ---- live stream (server-sent events read with fetch, so the token header works) ----

async function follow() {
  const link = document.getElementById("link");
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      const response = await fetch(`${API}/live`, { headers: headers(), cache: "no-store" });
      if (response.status === 401) {
        link.textContent = "token needed";
        link.className = "badge degraded";
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
      if (!response.ok) throw new Error(`live stream: HTTP ${response.status}`);
      link.textContent = "live";
      link.className = "badge on";
      delay = 1000;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      console.warn(error);
    }
    link.textContent = "offline";
    link.className = "badge off";
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

function onEvent(block) {
  const data = block
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trimStart())
    .join("\n");
  if (data) render(JSON.parse(data));
}

// ---- rendering -------------------------------------------------------------

function gridNode(state) {
  return state.nodes.find((node) => node.parent === null) || state.nodes[0];
}

function render(state) {
  document.getElementById("site-name").textContent = state.site;
  const cycleTime = state.cycle_time_ms === null ? "" : ` · ${fmt(state.cycle_time_ms, 1)} ms`;
  document.getElementById("cycle").textContent = `cycle ${state.cycle}${cycleTime}`;
  const unreachable = state.devices.filter((d) => !d.reachable).length;
  const health = document.getElementById("health");
  health.textContent = unreachable ? `${unreachable} device(s) lost` : "ok";
  health.className = `badge ${unreachable ? "degraded" : "ok"}`;

  const grid = gridNode(state);
  if (grid) {
    history.push({
      cycle: state.cycle,
      current: grid.measured_a || grid.commanded_a,
      limit: grid.limit_a,
    });
    if (history.length > HISTORY) history.shift();
    renderLimit(grid);
  }
  drawChart();
  renderEnergy(state.energy);
  renderTree(state);
  renderConnectors(state);
  renderDevices(state);
  renderEvents(state);
}

function renderLimit(grid) {
  const parts = [];
  if (grid.limit_a) parts.push(`${grid.limit_a.map((v) => fmt(v, 0)).join(" / ")} A`);
  if (grid.power_limit_kw !== null && grid.power_limit_kw !== undefined) {
    parts.push(`${fmt(grid.power_limit_kw, 1)} kW`);
  }
  const sources = grid.limit_sources.length ? ` (from ${grid.limit_sources.join(", ")})` : "";
  document.getElementById("limit-now").textContent =
    `in force: ${parts.join(", ") || "none"}${sources}`;
}

function drawChart() {
  const canvas = document.getElementById("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = { left: 44, right: 10, top: 10, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  let top = 10;
  for (const sample of history) {
    for (const value of [...sample.current, ...(sample.limit || [])]) top = Math.max(top, value);
  }
  top = niceCeil(top * 1.1);
  const span = Math.max(history.length, MIN_SPAN);
  const x = (i) => pad.left + (i / (span - 1)) * plotW;
  const y = (value) => pad.top + plotH - (value / top) * plotH;

  ctx.font = `11px ${getComputedStyle(document.body).fontFamily}`;
  ctx.strokeStyle = cssVar("--line");
  ctx.fillStyle = cssVar("--muted");
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let step = 0; step <= 4; step++) {
    const value = (top * step) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y(value)) + 0.5);
    ctx.lineTo(width - pad.right, Math.round(y(value)) + 0.5);
    ctx.stroke();
    ctx.fillText(`${Math.round(value)} A`, pad.left - 6, y(value));
  }
  const offset = span - history.length;
  ctx.textBaseline = "top";
  if (history.length) {
    ctx.textAlign = "right";
    ctx.fillText(`cycle ${history[history.length - 1].cycle}`, width - pad.right, height - pad.bottom + 6);
  }
  if (history.length > 1 && x(offset) < width - pad.right - 140) {
    ctx.textAlign = "left";
    ctx.fillText(`cycle ${history[0].cycle}`, x(offset), height - pad.bottom + 6);
  }

  PHASES.forEach((_, phase) => {
    const colour = cssVar(`--l${phase + 1}`);
    ctx.strokeStyle = colour;
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1.5;
    trace(ctx, history, (s) => (s.limit ? s.limit[phase] : null), offset, x, y);
    ctx.setLineDash([]);
    ctx.lineWidth = 2;
    trace(ctx, history, (s) => s.current[phase], offset, x, y);
  });

  canvas.dataset.samples = String(history.length);
  canvas.dataset.lastCycle = history.length ? String(history[history.length - 1].cycle) : "";
  renderReadout();
}

function trace(ctx, samples, pick, offset, x, y) {
  ctx.beginPath();
  let drawing = false;
  samples.forEach((sample, i) => {
    const value = pick(sample);
    if (value === null || value === undefined) {
      drawing = false;
      return;
    }
    if (drawing) ctx.lineTo(x(offset + i), y(value));
    else ctx.moveTo(x(offset + i), y(value));
    drawing = true;
  });
  ctx.stroke();
}

function niceCeil(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function renderReadout() {
  const box = document.getElementById("readout");
  const last = history[history.length - 1];
  if (!last) return;
  box.replaceChildren(
    ...PHASES.map((name, i) => {
      const limit = last.limit ? ` / ${fmt(last.limit[i], 0)}` : "";
      return el(
        "span",
        { class: "phase", style: `--c: var(--l${i + 1})`, "data-phase": name },
        `${name} ${fmt(last.current[i])}${limit} A`,
      );
    }),
  );
}

function utilisationBar(share) {
  const level = share === null ? "" : share >= 1 ? "alarm" : share >= 0.85 ? "warn" : "";
  const width = share === null ? 0 : Math.min(100, share * 100);
  return el("div", { class: `bar ${level}` }, el("span", { style: `width:${width}%` }));
}

function renderTree(state) {
  const children = new Map();
  for (const node of state.nodes) {
    const key = node.parent || "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(node);
  }
  const items = [];
  const walk = (parent, depth) => {
    for (const node of children.get(parent) || []) {
      const share = utilisation(node);
      const limit = node.limit_a ? `${fmt(Math.min(...node.limit_a), 0)} A` : "no limit";
      items.push(
        el(
          "li",
          { style: `padding-left:${depth * 1.1}rem`, "data-node": node.id },
          el(
            "div",
            { class: "row" },
            el("span", {}, `${node.id} `, el("span", { class: "kind" }, node.kind)),
            el("span", {}, share === null ? limit : `${Math.round(share * 100)} % of ${limit}`),
          ),
          utilisationBar(share),
        ),
      );
      walk(node.id, depth + 1);
    }
  };
  walk("", 0);
  document.getElementById("tree").replaceChildren(...items);
}

function utilisation(node) {
  if (!node.limit_a) return null;
  const used = node.measured_a || node.commanded_a;
  const shares = used.map((u, i) => (node.limit_a[i] > 0 ? u / node.limit_a[i] : 0));
  return Math.max(...shares);
}

function kw(value) {
  return value === null || value === undefined ? "–" : `${fmt(value)} kW`;
}

function renderEnergy(energy) {
  const card = document.getElementById("energy-card");
  card.hidden = !energy;
  if (!energy) return;
  const soc = energy.battery_soc_percent;
  const target = energy.peak_target_kw === null ? "" : ` (target ${kw(energy.peak_target_kw)})`;
  const rows = [
    ["Battery", energy.battery_mode],
    ["State of charge", soc === null ? "–" : `${fmt(soc, 0)} %`],
    ["Battery power", kw(energy.battery_power_kw)],
    ["Command", kw(energy.battery_command_kw)],
    ["PV", kw(energy.pv_power_kw)],
    ["Grid import", kw(energy.grid_import_kw) + target],
    ["PV-mode budget", kw(energy.pv_budget_kw)],
  ];
  document
    .getElementById("energy")
    .replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  document.getElementById("energy-why").textContent = energy.reasons.join(" · ");
}

function sessionText(s) {
  if (!s) return "–";
  if (s.needed_kwh === null) return `${fmt(s.energy_kwh)} kWh`;
  const hhmm = (iso) => (iso ? new Date(iso).toTimeString().slice(0, 5) : "–");
  const finish = s.projected_finish ? `, done ${hhmm(s.projected_finish)}` : "";
  const risk = s.at_risk ? ` · ${fmt(s.shortfall_kwh)} kWh short` : "";
  return `${fmt(s.energy_kwh)} / ${fmt(s.needed_kwh)} kWh by ${hhmm(s.departure)}${finish}${risk}`;
}

function renderConnectors(state) {
  const rows = state.connectors.map((c) =>
    el(
      "tr",
      { "data-connector": c.key },
      el("td", {}, c.key),
      el("td", {}, c.node),
      el("td", {}, c.status),
      el("td", { class: "num" }, fmt(c.setpoint_a)),
      el("td", { class: "num" }, c.measured_a ? c.measured_a.map((v) => fmt(v)).join(" / ") : "–"),
      el("td", { class: "num" }, fmt(c.power_kw)),
      el("td", { class: c.session && c.session.at_risk ? "session at-risk" : "session" }, sessionText(c.session)),
      el("td", {}, c.binding || "–"),
      el("td", { class: "reason" }, c.reason),
    ),
  );
  document.querySelector("#connectors tbody").replaceChildren(...rows);
}

function renderDevices(state) {
  const rows = state.devices.map((d) =>
    el(
      "tr",
      { "data-device": d.id },
      el(
        "td",
        {},
        d.id,
        el("div", { class: "muted" }, `${d.kind} · ${d.protocol}`),
        d.device_failsafe === false
          ? el("div", { class: "warn", title: "keeps its last setpoint when hubgate stops" }, "no device failsafe")
          : "",
      ),
      el(
        "td",
        {},
        el("span", { class: `dot ${d.reachable ? "up" : ""}` }),
        d.reachable ? "up" : "lost",
      ),
      el("td", { class: "num" }, d.requests),
      el("td", { class: "num" }, d.errors),
      el("td", { class: "num" }, `${fmt(d.latency_p50_ms)} / ${fmt(d.latency_p99_ms)}`),
    ),
  );
  document.querySelector("#devices tbody").replaceChildren(...rows);
}

function renderEvents(state) {
  const items = [...state.events].reverse().map((e) =>
    el(
      "li",
      { class: e.level },
      el("time", {}, new Date(e.at * 1000).toLocaleTimeString()),
      el("span", {}, el("strong", {}, e.subject), ` ${e.message}`),
    ),
  );
  document.getElementById("events").replaceChildren(...items);
}

// ---- the site-limit form ---------------------------------------------------

function parsePhases(text) {
  const values = text.split(/[,\s/]+/).filter(Boolean).map(Number);
  if (values.length === 1) return [values[0], values[0], values[0]];
  if (values.length === 3) return values;
  throw new Error("give one current or three (L1, L2, L3)");
}

async function sendLimit(method, body) {
  const result = document.getElementById("limit-result");
  const init = { method, headers: headers({ "Content-Type": "application/json" }) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(`${API}/limits/site`, init);
  const reply = await response.json();
  if (!response.ok) {
    const detail = Array.isArray(reply.detail)
      ? reply.detail.map((d) => d.msg).join("; ")
      : reply.detail;
    result.className = "error";
    result.textContent = `refused (${response.status}): ${detail}`;
    return;
  }
  result.className = "good";
  const phase = reply.in_force.phase_a;
  const power = reply.in_force.power_kw;
  const parts = [];
  if (phase) parts.push(`${phase.map((v) => fmt(v, 0)).join(" / ")} A`);
  if (power !== null) parts.push(`${fmt(power, 1)} kW`);
  result.textContent =
    `accepted: in force ${parts.join(", ") || "none"} from ${reply.sources.join(", ") || "no source"}`;
}

function setupForm() {
  const form = document.getElementById("limit-form");
  form.token.value = token();
  form.token.addEventListener("change", () => localStorage.setItem(TOKEN_KEY, form.token.value));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, form.token.value);
    const result = document.getElementById("limit-result");
    try {
      const body = { lease_s: Number(form.lease.value) };
      if (form.phase.value.trim()) body.phase_a = parsePhases(form.phase.value);
      if (form.power.value.trim()) body.power_kw = Number(form.power.value);
      result.className = "muted";
      result.textContent = "sending…";
      await sendLimit("PUT", body);
    } catch (error) {
      result.className = "error";
      result.textContent = error.message;
    }
  });
  document.getElementById("limit-clear").addEventListener("click", () => {
    localStorage.setItem(TOKEN_KEY, form.token.value);
    sendLimit("DELETE", null).catch((error) => {
      const result = document.getElementById("limit-result");
      result.className = "error";
      result.textContent = error.message;
    });
  });
}

window.addEventListener("resize", drawChart);
setupForm();
drawChart();
follow();
