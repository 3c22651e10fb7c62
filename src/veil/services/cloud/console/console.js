// veil console: plain JavaScript, no build step, no dependencies.
// Live data arrives over server-sent events read with fetch (so the API key travels in the
// Authorization header, never in a URL); every stream resumes with Last-Event-ID.
"use strict";

const KEY_STORE = "veil.apiKey";
const GPU_NAMES = { 0: "CPU (TDX)", 1: "H100", 2: "H200", 3: "B200" };
const view = document.getElementById("view");
let cleanup = [];

// ---------- small helpers ----------
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}
function short(hex, n = 6) {
  if (!hex) return "—";
  const s = String(hex);
  return s.length <= 2 * n + 3 ? s : `${s.slice(0, n + 2)}…${s.slice(-n)}`;
}
function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
function tokens(raw, decimals = 18, digits = 2) {
  if (raw == null) return "—";
  const big = BigInt(raw);
  const unit = 10n ** BigInt(decimals);
  const whole = big / unit;
  const frac = (big % unit) * 10n ** BigInt(digits) / unit;
  return `${whole.toLocaleString("en-US")}.${frac.toString().padStart(digits, "0")}`;
}
function ago(unix) {
  if (!unix) return "—";
  const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString("en-GB", { hour12: false }) + "." +
    String(d.getMilliseconds()).padStart(3, "0");
}
function pill(status) {
  return `<span class="pill" data-status="${esc(status)}">${esc(status)}</span>`;
}
function apiKey() { return localStorage.getItem(KEY_STORE); }
function setConn(state) {
  const el = document.getElementById("conn");
  el.dataset.state = state;
  el.querySelector("b").textContent = state;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status; this.code = body && body.code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// A server-sent events reader over fetch: parses `id:`, `event:`, `data:` and resumes
// after a dropped connection with the last id it saw.
function stream(path, onEvent, { resume = true } = {}) {
  const controller = new AbortController();
  let lastId = null; let stopped = false; let delay = 500;
  async function run() {
    while (!stopped) {
      try {
        const headers = { Accept: "text/event-stream" };
        const key = apiKey();
        if (key) headers.Authorization = `Bearer ${key}`;
        if (resume && lastId) headers["Last-Event-ID"] = lastId;
        const res = await fetch(path, { headers, signal: controller.signal });
        if (!res.ok) {
          let body = null;
          try { body = await res.json(); } catch (_) { body = null; }
          onEvent({ event: "error", data: JSON.stringify(body || { message: `HTTP ${res.status}` }) });
          if (res.status === 401 || res.status === 404) return;
          throw new Error(`HTTP ${res.status}`);
        }
        setConn("live"); delay = 500;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = ""; let item = { data: [] };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, cut).replace(/\r$/, "");
            buffer = buffer.slice(cut + 1);
            if (line === "") {
              if (item.data.length) {
                if (item.id) lastId = item.id;
                onEvent({ id: item.id, event: item.event || "message", data: item.data.join("\n") });
              }
              item = { data: [] };
            } else if (!line.startsWith(":")) {
              const at = line.indexOf(":");
              const name = at < 0 ? line : line.slice(0, at);
              const val = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
              if (name === "data") item.data.push(val);
              else if (name === "id") item.id = val;
              else if (name === "event") item.event = val;
            }
          }
        }
        if (!resume) return;
      } catch (err) {
        if (stopped) return;
      }
      if (stopped) return;
      setConn("retrying");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
    }
  }
  run();
  return () => { stopped = true; controller.abort(); };
}

// ---------- charts (canvas) ----------
class Chart {
  constructor(canvas, { color, format, max }) {
    this.canvas = canvas; this.color = color; this.format = format; this.max = max;
    this.points = []; this.windowSec = 600;
  }
  set(points) { this.points = points.slice(-600); this.draw(); }
  push(t, v) {
    if (v == null) return;
    this.points.push([t, v]);
    if (this.points.length > 600) this.points.shift();
    this.draw();
  }
  draw() {
    const c = this.canvas; const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || 400; const h = c.clientHeight || 140;
    c.width = w * ratio; c.height = h * ratio;
    const g = c.getContext("2d"); g.scale(ratio, ratio); g.clearRect(0, 0, w, h);
    c.dataset.points = String(this.points.length);
    c.dataset.last = this.points.length ? String(this.points[this.points.length - 1][1]) : "";
    const padL = 44; const padB = 18; const padT = 6;
    const now = Date.now() / 1000;
    // the window grows with the data: a young app's first minute fills the chart
    const first = this.points.length ? this.points[0][0] : now;
    this.windowSec = Math.min(600, Math.max(60, Math.ceil((now - first) / 60) * 60));
    const t0 = now - this.windowSec;
    const values = this.points.map((p) => p[1]);
    const top = Math.max(this.max || 0, ...values, 1e-9) * (this.max ? 1 : 1.2);
    g.font = "11px Inter, sans-serif"; g.fillStyle = "#94a3b8"; g.strokeStyle = "#eef0f6";
    g.lineWidth = 1;
    for (let i = 0; i <= 3; i += 1) {
      const y = padT + (h - padB - padT) * (i / 3);
      g.beginPath(); g.moveTo(padL, y); g.lineTo(w, y); g.stroke();
      g.fillText(this.format(top * (1 - i / 3)), 0, y + 4);
    }
    for (let i = 0; i <= 2; i += 1) {
      const back = (this.windowSec * (2 - i)) / 2;
      const x = padL + (w - padL) * (i / 2);
      const label = back === 0 ? "now" : back < 60 ? `-${back}s` : `-${back / 60}m`;
      g.fillText(label, Math.min(Math.max(x - 8, padL), w - 24), h - 4);
    }
    const pts = this.points.filter((p) => p[0] >= t0);
    if (pts.length === 0) {
      g.fillStyle = "#94a3b8"; g.font = "12px Inter, sans-serif";
      g.fillText("waiting for the first sample…", padL + 12, (h - padB) / 2);
      return;
    }
    const X = (t) => padL + (w - padL) * ((t - t0) / this.windowSec);
    const Y = (v) => padT + (h - padB - padT) * (1 - v / top);
    const grad = g.createLinearGradient(0, padT, 0, h - padB);
    grad.addColorStop(0, this.color + "55"); grad.addColorStop(1, this.color + "05");
    g.beginPath(); g.moveTo(X(pts[0][0]), h - padB);
    pts.forEach(([t, v]) => g.lineTo(X(t), Y(v)));
    g.lineTo(X(pts[pts.length - 1][0]), h - padB); g.closePath();
    g.fillStyle = grad; g.fill();
    g.beginPath(); pts.forEach(([t, v], i) => (i ? g.lineTo(X(t), Y(v)) : g.moveTo(X(t), Y(v))));
    g.strokeStyle = this.color; g.lineWidth = 2; g.lineJoin = "round"; g.stroke();
    const [lt, lv] = pts[pts.length - 1];
    g.beginPath(); g.arc(X(lt), Y(lv), 3.5, 0, Math.PI * 2); g.fillStyle = this.color; g.fill();
  }
}

// ---------- layout ----------
function renderAccount() {
  const el = document.getElementById("account");
  const key = apiKey();
  if (!key) { el.innerHTML = `<a class="btn ghost" href="#/apps">Sign in</a>`; return; }
  el.innerHTML = `<span class="addr" id="who">API key ${esc(short(key, 4))}</span>
    <button class="btn ghost" id="signout">Sign out</button>`;
  document.getElementById("signout").onclick = () => {
    localStorage.removeItem(KEY_STORE); location.hash = "#/apps"; route();
  };
}
function activeTab(name) {
  document.querySelectorAll(".tabs a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
}
function emptyState(icon, title, text) {
  return `<div class="empty-state"><div class="art">${icon}</div><h3>${esc(title)}</h3><p>${text}</p></div>`;
}
function errorBox(err) {
  return `<div class="error-box" role="alert"><b>Something went wrong.</b> ${esc(err.message)}</div>`;
}

// ---------- Network ----------
function networkView() {
  activeTab("network");
  view.innerHTML = `
    <div class="page-head"><div><h1>Network</h1>
      <div class="sub">Workers, rewards, the vault and the migration, live.</div></div>
      <span class="muted small" id="net-updated"></span></div>
    <div id="net-error"></div>
    <div class="grid stats" id="net-stats"></div>
    <div class="grid two">
      <div class="card"><h2>Workers by model</h2><div id="net-models"></div></div>
      <div class="card"><h2>Rewards per epoch</h2><div id="net-rewards"></div></div>
    </div>
    <div class="grid two" style="margin-top:20px">
      <div class="card"><h2>Providers</h2><div id="net-providers"></div></div>
      <div class="card"><h2>Vault, migration and escrow</h2><div id="net-vault"></div></div>
    </div>`;
  const stop = stream("/v1/network/stream", (ev) => {
    if (ev.event === "error") {
      document.getElementById("net-error").innerHTML = errorBox(JSON.parse(ev.data)); return;
    }
    if (ev.event === "network") {
      document.getElementById("net-error").innerHTML = "";
      drawNetwork(JSON.parse(ev.data));
    }
  }, { resume: false });
  cleanup.push(stop);
}

function drawNetwork(net) {
  const w = net.workers; const chain = net.chain;
  const running = net.apps.running || 0;
  const totalApps = Object.values(net.apps).reduce((a, b) => a + b, 0);
  const gpus = w.by_model.reduce((a, m) => a + m.gpus, 0);
  const uptime = chain && chain.workers && chain.workers.uptime_bps != null
    ? `${(chain.workers.uptime_bps / 100).toFixed(2)}%` : null;
  document.getElementById("net-stats").innerHTML = [
    ["Workers online", w.online, `${w.offline} offline · ${w.providers} provider${w.providers === 1 ? "" : "s"}`],
    ["GPUs", gpus, `${w.by_model.reduce((a, m) => a + m.vcpu, 0)} vCPUs online and offline`],
    ["Apps running", running, `${totalApps} deployed`],
    chain && chain.vault
      ? ["Vault APR", chain.vault.apr_bps == null ? "—" : `${(chain.vault.apr_bps / 100).toFixed(2)}%`,
        `share price ${Number(chain.vault.share_price).toFixed(4)} PHA`]
      : ["Uptime", uptime || "—", uptime ? "heartbeats accepted" : "no chain connected"],
  ].map(([label, value, hint]) => `<div class="card stat"><div class="label">${esc(label)}</div>
      <div class="value" data-stat="${esc(label)}">${esc(value)}</div><div class="hint">${esc(hint)}</div></div>`).join("");
  document.getElementById("net-updated").textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;

  const models = chain && chain.workers && chain.workers.by_model && chain.workers.by_model.length
    ? chain.workers.by_model.map((m) => ({ name: m.model, online: m.active, offline: m.total - m.active }))
    : w.by_model.map((m) => ({ name: GPU_NAMES[m.gpu_model] || `model ${m.gpu_model}`, online: m.online, offline: m.offline }));
  const most = Math.max(1, ...models.map((m) => m.online + m.offline));
  document.getElementById("net-models").innerHTML = models.length
    ? `<div class="bars">${models.map((m) => `<div class="bar-row"><span>${esc(m.name)}</span>
        <span class="track"><i class="on" style="width:${(100 * m.online) / most}%"></i>
        <i class="off" style="width:${(100 * m.offline) / most}%"></i></span>
        <span class="n">${m.online} / ${m.online + m.offline}</span></div>`).join("")}</div>
        <div class="legend"><span><i style="background:#6366f1"></i>online</span>
        <span><i style="background:#cbd5e1"></i>offline</span></div>`
    : emptyState("◎", "No workers yet", "Workers appear here as soon as they sync with this control plane.");

  document.getElementById("net-providers").innerHTML = w.by_provider.length
    ? `<table><thead><tr><th>Provider</th><th class="num">Online</th><th class="num">Offline</th></tr></thead><tbody>
        ${w.by_provider.slice(0, 8).map((p) => `<tr><td class="mono">${esc(short(p.provider))}</td>
        <td class="num">${p.online}</td><td class="num">${p.offline}</td></tr>`).join("")}</tbody></table>`
    : emptyState("◎", "No providers yet", "Providers register workers on the ComputeRegistry.");

  const rewards = chain && chain.rewards;
  document.getElementById("net-rewards").innerHTML = rewards && rewards.epochs.length
    ? `<div class="kv"><span>Current epoch</span><span>${rewards.current_epoch}</span></div>
       <table><thead><tr><th>Epoch</th><th class="num">Budget (PHA)</th><th class="num">Providers</th><th>Status</th></tr></thead><tbody>
       ${rewards.epochs.slice(-6).reverse().map((e) => `<tr><td>${e.epoch}</td><td class="num">${tokens(e.budget)}</td>
       <td class="num">${tokens(e.providers)}</td><td>${pill(e.status)}</td></tr>`).join("")}</tbody></table>`
    : emptyState("★", "No reward epochs", chain
      ? "This deployment has no RewardPool yet; epochs show here once one is deployed."
      : "Connect the control plane to a chain (<code>--network-rpc</code>) to see rewards.");

  const vault = chain && chain.vault; const mig = chain && chain.migration;
  let html = "";
  if (vault) {
    html += `<div class="kv"><span>Total staked</span><span>${tokens(vault.total_assets)} PHA</span></div>
      <div class="kv"><span>Share price</span><span>${Number(vault.share_price).toFixed(6)} PHA / vPHA</span></div>
      <div class="kv"><span>APR (last 7 days)</span><span>${vault.apr_bps == null ? "measuring…" : `${(vault.apr_bps / 100).toFixed(2)}%`}</span></div>`;
  }
  if (mig) {
    const pct = mig.committed === "0" ? 0 : Number((BigInt(mig.claimed) * 10000n) / BigInt(mig.committed)) / 100;
    html += `<div class="kv"><span>Migration claimed</span><span>${tokens(mig.claimed)} / ${tokens(mig.committed)} PHA</span></div>
      <div class="meter" title="${pct}%"><i style="width:${pct}%"></i></div>
      <div class="muted small" style="margin-top:6px">${pct.toFixed(2)}% of committed balances claimed</div>`;
  }
  const escrow = chain && chain.escrow;
  if (escrow) {
    const shortest = escrow.shortest_runway;
    html += `<div class="kv"><span>Leases</span><span data-escrow="leases">${escrow.leases.running} running · ${escrow.leases.paused} paused</span></div>
      <div class="kv"><span>Held in escrow</span><span>${tokens(escrow.held)} PHA</span></div>
      <div class="kv"><span>Billed per day</span><span>${tokens(String(BigInt(escrow.burn_per_second) * 86400n))} PHA</span></div>
      <div class="kv"><span>Shortest runway</span><span>${esc(shortest == null ? "—" : `${(shortest / 3600).toFixed(1)} h`)}</span></div>`;
  }
  const attesters = (chain && chain.attesters) || [];
  if (attesters.length) {
    const live = attesters.filter((a) => a.up);
    const seen = live.length ? Math.max(...live.map((a) => a.workers_seen)) : null;
    html += `<div class="kv"><span>Attesters answering</span><span data-attesters="up">${live.length} / ${attesters.length}</span></div>
      <div class="kv"><span>Workers heard this epoch</span><span>${seen == null ? "—" : seen}${live.length ? ` (epoch ${live[0].epoch})` : ""}</span></div>`;
  }
  document.getElementById("net-vault").innerHTML = html ||
    emptyState("⛁", "No chain data", "The vault's APR, migration progress and escrow appear when the control plane reads a deployment.");
}

// ---------- My apps ----------
function signIn() {
  view.innerHTML = `<div class="card signin"><h1>Sign in</h1>
    <p class="sub">Paste an API key. <code>veil cloud login</code> prints one after Sign-In with Ethereum;
    it stays in this browser only.</p>
    <form id="signin-form"><input id="key" autocomplete="off" spellcheck="false" placeholder="veil_…" aria-label="API key">
    <button class="btn" type="submit">Continue</button></form><div id="signin-error"></div></div>`;
  document.getElementById("signin-form").onsubmit = async (e) => {
    e.preventDefault();
    const value = document.getElementById("key").value.trim();
    localStorage.setItem(KEY_STORE, value);
    try { await api("/v1/apps"); renderAccount(); route(); } catch (err) {
      localStorage.removeItem(KEY_STORE);
      document.getElementById("signin-error").innerHTML = errorBox(err);
    }
  };
}

async function appsView() {
  activeTab("apps");
  if (!apiKey()) { signIn(); return; }
  view.innerHTML = `<div class="page-head"><div><h1>My apps</h1>
    <div class="sub">Confidential apps you deployed, as the network runs them.</div></div></div>
    <div id="apps-error"></div><div id="apps" class="apps"></div>`;
  const draw = async () => {
    let apps;
    try { apps = await api("/v1/apps"); } catch (err) {
      if (err.status === 401) { localStorage.removeItem(KEY_STORE); renderAccount(); signIn(); return; }
      document.getElementById("apps-error").innerHTML = errorBox(err); return;
    }
    const box = document.getElementById("apps");
    if (!box) return;
    document.getElementById("apps-error").innerHTML = "";
    box.innerHTML = apps.length ? apps.map((a) => `
      <a class="card app-card" href="#/apps/${esc(a.app_id)}" data-app="${esc(a.app_id)}">
        <div class="top"><span class="name">${esc(a.name)}</span>${pill(a.status)}</div>
        <dl class="meta"><dt>App id</dt><dd class="mono">${esc(short(a.app_id))}</dd>
        <dt>Instance</dt><dd>${esc(a.instance_type)}</dd>
        <dt>Worker</dt><dd class="mono">${esc(short(a.worker))}</dd>
        <dt>Updated</dt><dd>${esc(ago(a.updated_at))}</dd></dl>
        ${a.status === "running" ? "" : `<div class="progress"><i style="width:${a.boot_progress || 0}%"></i></div>`}
      </a>`).join("")
      : `<div class="card" style="grid-column:1/-1">${emptyState("⬡", "No apps yet",
        "Deploy one with <code>veil cloud deploy compose.yaml</code>; it shows up here while it boots.")}</div>`;
  };
  await draw();
  const timer = setInterval(draw, 3000);
  cleanup.push(() => clearInterval(timer));
}

async function appView(appId) {
  activeTab("apps");
  if (!apiKey()) { signIn(); return; }
  let app;
  try { app = await api(`/v1/apps/${appId}`); } catch (err) {
    view.innerHTML = `<a class="crumb" href="#/apps">← My apps</a>` + (err.status === 404
      ? `<div class="card">${emptyState("?", "App not found", "It may have been deleted, or it belongs to another account.")}</div>`
      : errorBox(err));
    return;
  }
  view.innerHTML = `
    <a class="crumb" href="#/apps">← My apps</a>
    <div class="page-head"><div><h1 id="app-name">${esc(app.name)}</h1>
      <div class="sub mono">${esc(app.app_id)}</div></div>
      <div id="app-status">${pill(app.status)}</div></div>
    <div class="grid app">
      <div>
        <div class="card" id="boot-card">
          <div class="kv"><span>Stage</span><span id="app-stage">${esc(app.status_reason || app.status)}</span></div>
          <div class="progress"><i id="app-progress" style="width:${app.status === "running" ? 100 : app.boot_progress || 0}%"></i></div>
        </div>
        <div class="charts" style="margin-top:20px">
          <div class="card chart"><div class="head"><h2>CPU</h2><span class="now" id="cpu-now">—</span></div><canvas id="cpu-chart" data-points="0"></canvas></div>
          <div class="card chart"><div class="head"><h2>Memory</h2><span class="now" id="mem-now">—</span></div><canvas id="mem-chart" data-points="0"></canvas></div>
          <div class="card chart" id="gpu-card" hidden><div class="head"><h2>GPU</h2><span class="now" id="gpu-now">—</span></div><canvas id="gpu-chart" data-points="0"></canvas></div>
        </div>
        <div class="card logs-card">
          <div class="logs-head"><h2>Logs</h2><span class="live" id="logs-live">live</span><div class="chips" id="chips"></div></div>
          <pre class="logs" id="logs"><div class="empty">No log lines yet. They stream here as the app writes them.</div></pre>
        </div>
      </div>
      <div>
        <div class="card"><h2>Attestation</h2><div id="attestation"></div></div>
        <div class="card"><h2>Deployment</h2>
          <div class="kv"><span>Instance</span><span>${esc(app.instance_type)}</span></div>
          <div class="kv"><span>Worker</span><span class="mono" id="app-worker">${esc(short(app.worker))}</span></div>
          <div class="kv"><span>Restarts</span><span id="app-restarts">0</span></div>
          <div class="kv"><span>Ports</span><span class="mono" id="app-ports">${esc(Object.keys(app.ports || {}).join(", ") || "—")}</span></div>
        </div>
        <div class="card"><h2>Cost and runway</h2><div id="billing"></div></div>
      </div>
    </div>`;
  drawBilling(appId);
  const charts = {
    cpu: new Chart(document.getElementById("cpu-chart"), { color: "#6366f1", format: (v) => `${v.toFixed(v < 10 ? 1 : 0)}%` }),
    mem: new Chart(document.getElementById("mem-chart"), { color: "#0ea5e9", format: (v) => bytes(v) }),
    gpu: new Chart(document.getElementById("gpu-chart"), { color: "#10b981", format: (v) => `${v.toFixed(0)}%`, max: 100 }),
  };
  function sample(s) {
    charts.cpu.push(s.t, s.cpu_pct); charts.mem.push(s.t, s.memory_bytes);
    document.getElementById("cpu-now").innerHTML = `${s.cpu_pct.toFixed(1)}<span class="unit">%</span>`;
    document.getElementById("mem-now").textContent = bytes(s.memory_bytes);
    document.getElementById("app-restarts").textContent = s.restarts;
    if (s.gpu_util_pct != null) {
      document.getElementById("gpu-card").hidden = false;
      charts.gpu.push(s.t, s.gpu_util_pct);
      document.getElementById("gpu-now").innerHTML = `${s.gpu_util_pct.toFixed(0)}<span class="unit">% · ${bytes(s.gpu_memory_bytes)}</span>`;
    }
  }
  const since = Math.floor(Date.now() / 1000) - 600;
  cleanup.push(stream(`/v1/apps/${appId}/metrics?follow=1&step=1&since=${since}`, (ev) => {
    if (ev.event === "series") {
      const body = JSON.parse(ev.data);
      body.points.forEach((p) => sample(p));
    } else if (ev.event === "sample") sample(JSON.parse(ev.data));
  }, { resume: false }));

  // logs
  const logs = document.getElementById("logs");
  const services = new Set(); let filter = null;
  function chips() {
    document.getElementById("chips").innerHTML = [null, ...services].map((s) =>
      `<button class="chip ${filter === s ? "on" : ""}" data-svc="${esc(s || "")}">${esc(s || "all")}</button>`).join("");
    document.querySelectorAll(".chip").forEach((b) => { b.onclick = () => {
      filter = b.dataset.svc || null; chips();
      logs.querySelectorAll(".ln").forEach((ln) => { ln.hidden = filter !== null && ln.dataset.svc !== filter; });
    }; });
  }
  chips();
  cleanup.push(stream(`/v1/apps/${appId}/logs?follow=1&tail=200`, (ev) => {
    if (ev.event !== "log") return;
    const stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 30;
    const empty = logs.querySelector(".empty"); if (empty) empty.remove();
    const frag = document.createDocumentFragment();
    for (const l of JSON.parse(ev.data).lines) {
      if (!services.has(l.service)) { services.add(l.service); chips(); }
      const div = document.createElement("div");
      div.className = "ln"; div.dataset.svc = l.service; div.hidden = filter !== null && l.service !== filter;
      div.innerHTML = `<span class="ts">${clock(l.at)}</span><span class="svc">${esc(l.service)}</span>`;
      div.appendChild(document.createTextNode(l.line));
      frag.appendChild(div);
    }
    logs.appendChild(frag);
    while (logs.childElementCount > 2000) logs.firstElementChild.remove();
    if (stick) logs.scrollTop = logs.scrollHeight;
  }));

  // status over the app's event stream
  let lastStatus = app.status;
  drawAttestation(appId);
  cleanup.push(stream(`/v1/apps/${appId}/events`, (ev) => {
    if (ev.event !== "state") return;
    const e = JSON.parse(ev.data);
    const known = ["pending", "scheduled", "pulling", "starting", "running", "stopping", "stopped", "failed", "deleted"];
    if (!known.includes(e.state)) return;
    document.getElementById("app-status").innerHTML = pill(e.state);
    document.getElementById("app-stage").textContent = e.error || e.reason || e.state;
    const progress = e.state === "running" ? 100 : e.boot_progress ?? 0;
    document.getElementById("app-progress").style.width = `${progress}%`;
    if (e.worker) document.getElementById("app-worker").textContent = short(e.worker);
    if (e.ports) document.getElementById("app-ports").textContent = Object.keys(e.ports).join(", ") || "—";
    if (e.state !== lastStatus) { lastStatus = e.state; drawAttestation(appId); }
  }));
}

async function drawAttestation(appId, attempt = 0) {
  const box = document.getElementById("attestation");
  if (!box) return;
  let v;
  try { v = await api(`/v1/apps/${appId}/attestation/verdict`); } catch (err) { box.innerHTML = errorBox(err); return; }
  const titles = {
    verified: "Verified TEE",
    unverified: v.simulated ? "Simulated TEE — not verified" : "Not verified",
    pending: "Waiting for the first quote",
  };
  const why = v.state === "pending" ? "The badge updates once the app runs and its worker sends a quote."
    : v.state === "verified" ? "The quote, its event log and the compose hash satisfy the strict policy."
      : esc((v.reasons || [])[0] || "");
  const hashOk = v.measured_compose_hash && v.measured_compose_hash === v.compose_hash;
  box.innerHTML = `<div class="badge" id="att-badge" data-state="${esc(v.state)}" data-simulated="${v.simulated ? "1" : "0"}">
      <div class="icon">${v.state === "verified" ? "✓" : v.state === "pending" ? "…" : "!"}</div>
      <div><div class="title">${esc(titles[v.state])}</div><div class="why">${why}</div></div></div>
    <dl class="facts">
      <dt>Compose hash</dt><dd id="att-compose" title="${esc(v.compose_hash)}">${esc(short(v.compose_hash, 8))}</dd>
      <dt>Measured</dt><dd class="${hashOk ? "ok" : ""}" title="${esc(v.measured_compose_hash || "")}">${v.measured_compose_hash ? (hashOk ? "matches ✓" : esc(short(v.measured_compose_hash, 8))) : "—"}</dd>
      <dt>OS image</dt><dd title="${esc(v.os_image_hash || "")}">${esc(short(v.os_image_hash, 8))}</dd>
      <dt>TCB status</dt><dd>${esc(v.tcb_status || "—")}</dd>
      <dt>Worker</dt><dd>${esc(short(v.worker))}</dd>
    </dl>`;
  if (v.state === "pending" && attempt < 60) setTimeout(() => drawAttestation(appId, attempt + 1), 2000);
}

async function drawBilling(appId) {
  const box = document.getElementById("billing");
  try {
    const b = await api(`/v1/apps/${appId}/billing`);
    if (!b.billed) {
      box.innerHTML = `<p class="muted small" style="margin:0">${esc(b.reason || "Not billed.")}</p>`;
      return;
    }
    const runway = b.runway_seconds;
    box.innerHTML = `<div class="kv"><span>Rate</span><span>${tokens(String(BigInt(b.rate_wei_per_second) * 3600n))} PHA/h</span></div>
      <div class="kv"><span>Cost so far</span><span>${tokens(b.cost_so_far_wei)} PHA</span></div>
      <div class="kv"><span>Lease balance</span><span>${tokens(b.balance_wei)} PHA</span></div>
      <div class="kv"><span>Runway</span><span>${esc(runway != null ? `${(runway / 3600).toFixed(1)} h` : "—")}</span></div>
      <div class="kv"><span>Lease</span><span>${esc(b.state)}</span></div>`;
  } catch (err) {
    box.innerHTML = err.status === 404
      ? `<p class="muted small" style="margin:0">Billing is not enabled on this control plane; cost and runway show here once it is.</p>`
      : errorBox(err);
  }
}

// ---------- router ----------
function route() {
  cleanup.forEach((stop) => stop()); cleanup = [];
  setConn("idle");
  renderAccount();
  const hash = location.hash || "#/network";
  const parts = hash.slice(2).split("/");
  if (parts[0] === "apps" && parts[1]) appView(parts[1]);
  else if (parts[0] === "apps") appsView();
  else networkView();
}
window.addEventListener("hashchange", route);
route();
