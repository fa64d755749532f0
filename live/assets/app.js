// The live view: it listens to api/events and draws each pipeline's graph
// as SVG. Hand-written, no library, nothing fetched but this server's own
// URLs (relative to the page, so the handler may be mounted on any path).
"use strict";

const W = 210, H = 132, GX = 64, GY = 22, PAD = 14;
const sections = new Map(); // pipeline name -> its elements
let controls = { stop: false, limit: false };

function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function num(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

function rate(r) {
  if (r >= 100) return num(Math.round(r)) + "/s";
  if (r >= 10) return r.toFixed(1) + "/s";
  return r.toFixed(2) + "/s";
}

function dur(s) {
  if (s <= 0) return "–";
  if (s < 1e-6) return (s * 1e9).toFixed(0) + "ns";
  if (s < 1e-3) return (s * 1e6).toFixed(s < 1e-5 ? 1 : 0) + "µs";
  if (s < 1) return (s * 1e3).toFixed(s < 1e-2 ? 1 : 0) + "ms";
  return s.toFixed(2) + "s";
}

// layout places each stage in the column after its deepest input (inputs
// are always built before the stages they feed).
function layout(p) {
  const depth = [], rows = [], pos = [];
  const inputs = p.stages.map(() => []);
  for (const e of p.edges) inputs[e.to - 1].push(e.from - 1);
  p.stages.forEach((s, i) => {
    depth[i] = inputs[i].length ? Math.max(...inputs[i].map(j => depth[j] + 1)) : 0;
    const r = rows[depth[i]] = (rows[depth[i]] || 0) + 1;
    pos[i] = { x: PAD + depth[i] * (W + GX), y: PAD + (r - 1) * (H + GY) };
  });
  const cols = rows.length, maxRows = Math.max(1, ...rows.map(r => r || 0));
  return { pos, width: PAD * 2 + cols * W + Math.max(0, cols - 1) * GX, height: PAD * 2 + maxRows * H + (maxRows - 1) * GY };
}

// spark draws a stage's rate over the last minute: the x axis spans the
// history kept (at most 60 s, less for a younger pipeline), the y axis 0 to
// its highest rate.
function spark(s, at, x, y, w, h, now) {
  let out = `<rect class="sparkbg" x="${x}" y="${y}" width="${w}" height="${h}" rx="2"/>`;
  const from = Math.max(now - 60000, at.length ? at[0] - 1000 : now - 60000), span = Math.max(1000, now - from);
  const max = Math.max(1e-9, ...s.history);
  const pts = [];
  s.history.forEach((v, k) => {
    if (at[k] < from) return;
    pts.push(`${(x + w * (at[k] - from) / span).toFixed(1)},${(y + h - 1 - (h - 4) * v / max).toFixed(1)}`);
  });
  if (pts.length) {
    out += `<polyline class="spark" points="${pts.join(" ")}"/>`;
    const [lx, ly] = pts[pts.length - 1].split(",");
    out += `<circle class="sparkdot" cx="${lx}" cy="${ly}" r="2"/>`;
  }
  const last = at.length ? `last ${Math.round(span / 1000)}s` : "last minute";
  return out + `<text class="sub axis" x="${x + 3}" y="${y + 10}">rate, ${last} · max ${rate(Math.max(0, ...s.history))}</text>`;
}

function graph(p, now) {
  const { pos, width, height } = layout(p);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`;
  for (const e of p.edges) {
    const a = pos[e.from - 1], b = pos[e.to - 1];
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    const fill = e.cap > 0 ? e.len / e.cap : 0;
    const color = fill >= 0.9 ? "#d9480f" : fill >= 0.5 ? "#f59f00" : "#868e96";
    svg += `<g class="edge" data-from="${e.from}" data-to="${e.to}" data-len="${e.len}" data-cap="${e.cap}">` +
      `<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" stroke="${color}" stroke-width="${(1.5 + 5 * fill).toFixed(1)}"/>` +
      `<text x="${mx}" y="${(y1 + y2) / 2 - 6}" text-anchor="middle">${e.len}/${e.cap}</text></g>`;
  }
  p.stages.forEach((s, i) => {
    const { x, y } = pos[i];
    const cls = "node" + (s.bottleneck ? " bottleneck" : "");
    const workers = s.workers === 1 ? "1 worker" : s.workers + " workers";
    let g = `<g class="${cls}" data-index="${s.index}" data-name="${esc(s.name)}" data-kind="${esc(s.kind)}" data-workers="${s.workers}"` +
      ` data-in="${s.in}" data-out="${s.out}" data-dropped="${s.dropped}" data-errors="${s.errors}" data-busy="${s.busy}"` +
      ` data-rate="${s.rate}" data-bottleneck="${s.bottleneck}">` +
      `<rect class="box" x="${x}" y="${y}" width="${W}" height="${H}" rx="6"/>` +
      `<text class="title" x="${x + 8}" y="${y + 16}">${esc(s.name)}</text>` +
      `<text class="sub" x="${x + 8}" y="${y + 30}">${esc(s.kind)} · ${workers}${s.busy ? " · busy " + s.busy : ""}${s.limit ? " · limit " + s.limit : ""}</text>` +
      `<text x="${x + 8}" y="${y + 45}">in ${num(s.in)} · out ${num(s.out)} · ${rate(s.rate)}</text>` +
      `<text x="${x + 8}" y="${y + 59}"${s.errors || s.dropped ? ' class="warn"' : ""}>dropped ${num(s.dropped)} · errors ${num(s.errors)} · retries ${num(s.retries)}</text>` +
      `<text class="sub" x="${x + 8}" y="${y + 73}">${s.latencyCount ? "p50 " + dur(s.p50) + " · p99 " + dur(s.p99) + " · " : ""}util ${Math.round(100 * s.utilization)}%</text>`;
    if (s.bottleneck) g += `<text class="badge" x="${x + W - 8}" y="${y + 16}" text-anchor="end">◆ bottleneck</text>`;
    if (s.unread) g += `<text class="warn" x="${x + W - 8}" y="${y + 30}" text-anchor="end">⚠ unread</text>`;
    g += spark(s, p.historyAt, x + 8, y + 82, W - 16, H - 90, now);
    svg += g + "</g>";
  });
  return svg + "</svg>";
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r.json();
}

function section(name) {
  let s = sections.get(name);
  if (s) return s;
  const el = document.createElement("section");
  el.className = "pipeline";
  el.dataset.pipeline = name;
  el.innerHTML = `<div class="phead"><h2></h2><span class="status"></span><span class="result"></span>` +
    `<button class="danger" data-action="stop" hidden>Stop (drain)</button><span class="msg"></span></div><div class="graph"></div>`;
  el.querySelector("h2").textContent = name;
  const btn = el.querySelector("button");
  let armed = 0;
  btn.addEventListener("click", async () => {
    if (!armed) { // the first click arms, the second stops
      btn.classList.add("armed"); btn.textContent = "Click again to stop";
      armed = setTimeout(() => { armed = 0; btn.classList.remove("armed"); btn.textContent = "Stop (drain)"; }, 5000);
      return;
    }
    clearTimeout(armed); armed = 0; btn.disabled = true; btn.classList.remove("armed"); btn.textContent = "Stopping…";
    try { await post("api/pipelines/" + encodeURIComponent(name) + "/stop", ""); el.querySelector(".msg").textContent = ""; }
    catch (e) { el.querySelector(".msg").textContent = e.message; btn.disabled = false; btn.textContent = "Stop (drain)"; }
  });
  document.getElementById("pipelines").appendChild(el);
  s = { el, status: el.querySelector(".status"), result: el.querySelector(".result"), btn, graph: el.querySelector(".graph") };
  sections.set(name, s);
  return s;
}

const limiterRows = new Map();
function limiterRow(l) {
  let r = limiterRows.get(l.name);
  if (r) return r;
  const el = document.createElement("div");
  el.className = "limiter";
  el.dataset.limiter = l.name;
  el.innerHTML = `<b></b><span class="vals"></span>` + (controls.limit
    ? `<input type="number" min="1" step="1" aria-label="new limit"><button data-action="set-limit">Set limit</button><span class="msg"></span>` : "");
  el.querySelector("b").textContent = l.name;
  const btn = el.querySelector("button");
  if (btn) btn.addEventListener("click", async () => {
    const msg = el.querySelector(".msg");
    try { const res = await post("api/limiters/" + encodeURIComponent(l.name) + "/limit", "limit=" + encodeURIComponent(el.querySelector("input").value)); msg.textContent = "limit now " + res.limit; msg.style.color = "var(--ok)"; }
    catch (e) { msg.textContent = e.message; msg.style.color = ""; }
  });
  document.getElementById("limiter-rows").appendChild(el);
  r = { el, vals: el.querySelector(".vals") };
  limiterRows.set(l.name, r);
  return r;
}

function render(st) {
  controls = st.controls;
  const now = Date.parse(st.time);
  document.getElementById("empty").hidden = st.pipelines.length > 0;
  for (const p of st.pipelines) {
    const s = section(p.name);
    s.el.dataset.status = p.status;
    s.status.textContent = p.status;
    s.status.className = "status " + p.status + (p.ended && p.result !== "nil" ? " failed" : "");
    s.result.textContent = p.ended ? "result: " + p.result : "";
    s.btn.hidden = !controls.stop || p.ended;
    s.graph.innerHTML = graph(p, now);
  }
  document.getElementById("limiters").hidden = st.limiters.length === 0;
  for (const l of st.limiters) {
    const r = limiterRow(l);
    r.el.dataset.limit = l.limit;
    r.vals.textContent = `limit ${l.limit} · in flight ${l.inFlight} · waiting ${l.waiting}`;
  }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("api/events");
  es.addEventListener("state", ev => { conn.textContent = "live"; conn.className = "conn live"; render(JSON.parse(ev.data)); });
  es.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; };
}

connect();
