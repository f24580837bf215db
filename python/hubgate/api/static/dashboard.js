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
    addSample({
      cycle: state.cycle,
      current: grid.measured_a || grid.commanded_a,
      limit: grid.limit_a,
      source: grid.limit_source,
    });
    renderLimit(grid);
  }
  drawChart();
  renderEnergy(state.energy);
  renderDemand(state.demand);
  renderTree(state);
  renderConnectors(state);
  renderDevices(state);
  renderEvents(state);
}

function addSample(sample) {
  const last = history[history.length - 1];
  if (last && sample.cycle <= last.cycle) return; // already there (from the decision history)
  history.push(sample);
  if (history.length > HISTORY) history.shift();
}

// The chart starts from the decision history, so it is not empty when the page opens.
async function loadHistory() {
  try {
    const response = await fetch(`${API}/history?last=${HISTORY}`, { headers: headers() });
    if (!response.ok) return;
    const samples = await response.json();
    const newer = history.splice(0); // samples the live stream brought meanwhile
    for (const s of samples) {
      addSample({
        cycle: s.cycle,
        current: s.measured_a || s.commanded_a,
        limit: s.limit_a,
        source: s.source,
      });
    }
    for (const s of newer) addSample(s);
    drawChart();
  } catch (error) {
    console.warn(error);
  }
}

const SOURCE_NAMES = {
  cap: "rating",
  "grid-operator": "grid operator",
  api: "API lease",
  csms: "CSMS",
  "modbus-server": "Modbus server",
  config: "site file",
  "peak-target": "peak target",
};

function sourceName(source) {
  return SOURCE_NAMES[source] || source || "none";
}

function until(expiresAt) {
  return expiresAt === null || expiresAt === undefined
    ? ""
    : ` until ${new Date(expiresAt * 1000).toLocaleTimeString()}`;
}

function limitText(node) {
  const parts = [];
  if (node.limit_a) parts.push(`${node.limit_a.map((v) => fmt(v, 0)).join(" / ")} A`);
  if (node.power_limit_kw !== null && node.power_limit_kw !== undefined) {
    parts.push(`${fmt(node.power_limit_kw, 1)} kW`);
  }
  return parts.join(", ") || "none";
}

function renderLimit(grid) {
  const from = grid.limit_source ? ` from ${sourceName(grid.limit_source)}` : "";
  const box = document.getElementById("limit-now");
  box.textContent = `in force: ${limitText(grid)}${from}${until(grid.limit_expires_at)}`;
  box.dataset.source = grid.limit_source || "";
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

  const pad = { left: 52, right: 10, top: 10, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  let top = 10;
  let low = 0;
  for (const sample of history) {
    for (const value of [...sample.current, ...(sample.limit || [])]) top = Math.max(top, value);
    for (const value of sample.current) low = Math.min(low, value);
  }
  top = niceCeil(top * 1.1);
  const bottom = low < 0 ? -niceCeil(-low * 1.1) : 0;
  const span = Math.max(history.length, MIN_SPAN);
  const x = (i) => pad.left + (i / (span - 1)) * plotW;
  const y = (value) => pad.top + ((top - value) / (top - bottom)) * plotH;

  ctx.font = `11px ${getComputedStyle(document.body).fontFamily}`;
  ctx.strokeStyle = cssVar("--line");
  ctx.fillStyle = cssVar("--muted");
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const ticks = bottom < 0 ? [bottom, bottom / 2, 0, top / 2, top] : [0, top / 4, top / 2, (3 * top) / 4, top];
  for (const value of ticks) {
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

  // Export (current below zero) in its own colour, between the zero line and the lowest phase.
  if (bottom < 0) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.left, pad.top, plotW, plotH);
    ctx.clip();
    ctx.fillStyle = cssVar("--export");
    history.forEach((sample, i) => {
      const lowest = Math.min(0, ...sample.current);
      if (lowest < 0) {
        const left = Math.floor(x(offset + i - 0.5));
        const right = Math.ceil(x(offset + i + 0.5));
        ctx.fillRect(left, y(0), right - left, y(lowest) - y(0));
      }
    });
    ctx.restore();
  }

  // The limit in force per phase, as steps: a change holds until the next one.
  ctx.strokeStyle = cssVar("--limit");
  ctx.lineWidth = 2;
  PHASES.forEach((_, phase) => {
    steps(ctx, history, (s) => (s.limit ? s.limit[phase] : null), offset, x, y);
  });
  PHASES.forEach((_, phase) => {
    ctx.strokeStyle = cssVar(`--l${phase + 1}`);
    ctx.lineWidth = 2;
    trace(ctx, history, (s) => s.current[phase], offset, x, y);
  });

  const last = history[history.length - 1];
  Object.assign(canvas.dataset, {
    samples: String(history.length),
    lastCycle: last ? String(last.cycle) : "",
    firstCycle: history.length ? String(history[0].cycle) : "",
    scaleTop: String(top),
    scaleBottom: String(bottom),
    plotTop: String(pad.top),
    plotHeight: String(plotH),
    plotLeft: String(pad.left),
    plotRight: String(width - pad.right),
    limitY: last && last.limit ? String(y(Math.min(...last.limit))) : "",
  });
  renderReadout();
}

function steps(ctx, samples, pick, offset, x, y) {
  ctx.beginPath();
  let previous = null;
  samples.forEach((sample, i) => {
    const value = pick(sample);
    if (value === null || value === undefined) {
      previous = null;
      return;
    }
    if (previous === null) ctx.moveTo(x(offset + i), y(value));
    else {
      ctx.lineTo(x(offset + i), y(previous));
      ctx.lineTo(x(offset + i), y(value));
    }
    previous = value;
  });
  ctx.stroke();
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
      const limit = last.limit ? ` of ${fmt(last.limit[i], 0)}` : "";
      return el(
        "span",
        { class: "phase", style: `--c: var(--l${i + 1})`, "data-phase": name },
        `${name} ${fmt(last.current[i])}${limit} A`,
      );
    }),
    el("span", { class: "limit-key" }, `limit from ${sourceName(last.source)}`),
  );
}

function utilisationBar(share, exporting) {
  if (exporting) {
    const width = Math.min(100, exporting * 100);
    return el("div", { class: "bar export" }, el("span", { style: `width:${width}%` }));
  }
  const level = share === null ? "" : share >= 1 ? "alarm" : share >= 0.85 ? "warn" : "";
  const width = share === null ? 0 : Math.min(100, Math.max(0, share) * 100);
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
      const exported = exportShare(node);
      const limit = node.limit_a
        ? `${fmt(Math.min(...node.limit_a), 0)} A · ${fmt(node.power_limit_kw, 0)} kW`
        : "no limit";
      const from = node.limit_source ? `${sourceName(node.limit_source)}${until(node.limit_expires_at)}` : "";
      const used = exported
        ? `exporting ${fmt(-Math.min(...node.measured_a), 0)} A, limit ${limit}`
        : share === null
          ? limit
          : `${Math.round(share * 100)} % of ${limit}`;
      items.push(
        el(
          "li",
          {
            style: `padding-left:${depth * 1.1}rem`,
            "data-node": node.id,
            "data-limit-a": node.limit_a ? String(Math.min(...node.limit_a)) : "",
            "data-limit-kw": node.power_limit_kw === null ? "" : String(node.power_limit_kw),
            "data-source": node.limit_source || "",
          },
          el(
            "div",
            { class: "row" },
            el("span", {}, `${node.id} `, el("span", { class: "kind" }, node.kind)),
            el("span", { class: "used" }, used),
          ),
          from ? el("div", { class: "source" }, `limit from ${from}`) : "",
          utilisationBar(share, exported),
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

// A node whose every metered phase exports: the share of its limit it exports, else 0.
function exportShare(node) {
  if (!node.measured_a || !node.limit_a || Math.max(...node.measured_a) >= 0) return 0;
  return -Math.min(...node.measured_a) / Math.max(1, Math.min(...node.limit_a));
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

function renderDemand(demand) {
  const card = document.getElementById("demand-card");
  card.hidden = !demand;
  if (!demand) return;
  const start = new Date(demand.interval_start);
  document.getElementById("demand-interval").textContent =
    `${fmt(demand.interval_min, 0)}-min interval from ${start.toLocaleTimeString()}`;
  const over = demand.target_kw !== null && demand.projection_kw > demand.target_kw;
  const rows = [
    ["Average so far", kw(demand.average_kw)],
    ["Projection", kw(demand.projection_kw) + (over ? " (over target)" : "")],
    ["Target", kw(demand.target_kw)],
    ["Month's peak", kw(demand.month_peak_kw)],
    ["Cap for the rest", kw(demand.cap_kw)],
  ];
  document
    .getElementById("demand")
    .replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  card.dataset.over = over ? "true" : "false";
}

function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

// The schedule ahead, every 30 s (it changes only when a schedule is put or a stretch ends).
async function loadSchedule() {
  try {
    const response = await fetch(`${API}/schedules`, { headers: headers() });
    if (response.ok) renderSchedule(await response.json());
  } catch (error) {
    // the next round tries again
  }
}

function renderSchedule(view) {
  const card = document.getElementById("schedule-card");
  card.hidden = view.schedules.length === 0;
  const items = view.ahead.map((s) =>
    el(
      "li",
      { "data-target": s.target, "data-start": String(s.start) },
      `${clock(s.start)} – ${clock(s.end)} · ${s.target === "site" ? "grid" : s.target} `,
      el("b", {}, limitText({ limit_a: s.limit.phase_a, power_limit_kw: s.limit.power_kw })),
      ` (${s.schedules.join(", ")})`,
    ),
  );
  const none = el("li", { class: "muted" }, "no scheduled limit in the next 24 h");
  document.getElementById("schedule").replaceChildren(...(items.length ? items : [none]));
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${fmt(seconds, 0)} s`;
  if (seconds < 5400) return `${fmt(seconds / 60, 0)} min`;
  return `${fmt(seconds / 3600, 1)} h`;
}

function connectorWhy(c) {
  if (c.unreachable_since !== null) {
    const since = new Date(c.unreachable_since * 1000).toLocaleTimeString();
    return `unreachable since ${since}, ${fmt(c.reserved_a)} A reserved`;
  }
  if (c.reserved_a !== null) return `${c.reason}; ${fmt(c.reserved_a)} A reserved`;
  return c.reason;
}

function sessionText(s) {
  if (!s) return "–";
  if (s.needed_kwh === null) return `${fmt(s.energy_kwh)} kWh`;
  const hhmm = (iso) => (iso ? new Date(iso).toTimeString().slice(0, 5) : "–");
  const finish = s.projected_finish ? `, done ${hhmm(s.projected_finish)}` : "";
  const most = s.ev_max_a === null ? "" : `, EV max ${fmt(s.ev_max_a)} A`;
  const risk = s.at_risk ? ` · ${fmt(s.shortfall_kwh)} kWh short` : "";
  return `${fmt(s.energy_kwh)} / ${fmt(s.needed_kwh)} kWh by ${hhmm(s.departure)}${most}${finish}${risk}`;
}

function renderConnectors(state) {
  const rows = state.connectors.map((c) =>
    el(
      "tr",
      {
        "data-connector": c.key,
        "data-age": c.measured_age_s === null ? "" : String(c.measured_age_s),
        class: c.stale ? "stale" : "",
        title: c.stale ? "older than the control rules accept: shown, not trusted" : "",
      },
      el("td", {}, c.key),
      el("td", {}, c.node),
      el("td", {}, c.status),
      el("td", { class: "num" }, fmt(c.setpoint_a)),
      el("td", { class: "num measured" }, c.measured_a ? c.measured_a.map((v) => fmt(v)).join(" / ") : "–"),
      el("td", { class: "num measured" }, fmt(c.power_kw)),
      el("td", { class: "num age" }, age(c.measured_age_s)),
      el("td", { class: c.session && c.session.at_risk ? "session at-risk" : "session" }, sessionText(c.session)),
      el("td", {}, c.binding || "–"),
      el("td", { class: "reason" }, connectorWhy(c)),
    ),
  );
  document.querySelector("#connectors tbody").replaceChildren(...rows);
}

function renderDevices(state) {
  const rows = state.devices.map((d) =>
    el(
      "tr",
      { "data-device": d.id, class: d.reachable ? "" : "stale" },
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
      el("td", { class: "num age" }, age(d.last_message_age_s ?? d.last_ok_age_s)),
      el("td", { class: "num" }, d.messages_per_min === null ? "–" : fmt(d.messages_per_min, 0)),
      el("td", { class: "num" }, d.requests),
      el(
        "td",
        { class: "num", title: `${d.rejected} rejected, ${d.timeouts} timed out` },
        d.errors,
      ),
      el("td", { class: "num" }, `${fmt(d.latency_p50_ms)} / ${fmt(d.latency_p99_ms)}`),
    ),
  );
  document.querySelector("#devices tbody").replaceChildren(...rows);
}

let shownEvents = "";

function renderEvents(state) {
  const key = state.events.map((e) => e.id).join(",");
  if (key === shownEvents) return; // unchanged: keep what the operator opened
  shownEvents = key;
  const items = [...state.events].reverse().map((e) => {
    const body = el(
      "span",
      {},
      el("strong", {}, e.subject),
      ` ${e.message}`,
      el("span", { class: "category" }, ` · ${e.category}`),
    );
    if (e.members.length) {
      body.append(
        el("details", {}, el("summary", {}, `${e.members.length} listed`), e.members.join(", ")),
      );
    }
    return el(
      "li",
      { class: e.severity, "data-event": String(e.id), "data-category": e.category },
      el("time", {}, new Date(e.at * 1000).toLocaleTimeString()),
      body,
    );
  });
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
// The latest charging sessions, every 10 s (they change slowly; the file keeps them all).
const SESSIONS_SHOWN = 20;

async function loadSessions() {
  try {
    const response = await fetch(`${API}/sessions?limit=${SESSIONS_SHOWN}`, { headers: headers() });
    if (response.ok) renderSessions(await response.json());
  } catch (error) {
    // the next round tries again
  }
}

function renderSessions(sessions) {
  const rows = [...sessions].reverse().map((s) =>
    el(
      "tr",
      { "data-session": String(s.id), class: s.stopped_at === null ? "open" : "" },
      el("td", {}, s.connector),
      el("td", {}, s.id_token || "–"),
      el("td", {}, new Date(s.started_at * 1000).toLocaleString()),
      el("td", {}, s.stopped_at === null ? "charging" : new Date(s.stopped_at * 1000).toLocaleTimeString()),
      el("td", { class: "num" }, fmt(s.energy_kwh, 2)),
      el("td", { class: "num" }, fmt(s.peak_current_a)),
      el("td", { class: "num" }, `${fmt(s.min_setpoint_a)} – ${fmt(s.max_setpoint_a)}`),
      el(
        "td",
        { class: "reason" },
        Object.entries(s.limited_s)
          .map(([why, seconds]) => `${why} ${age(seconds)}`)
          .join(" · ") || "–",
      ),
    ),
  );
  document.querySelector("#sessions tbody").replaceChildren(...rows);
}

loadHistory();
follow();
loadSessions();
setInterval(loadSessions, 10000);
loadSchedule();
setInterval(loadSchedule, 30000);
