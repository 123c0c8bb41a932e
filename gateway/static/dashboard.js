// reliq dashboard: a client of the /admin JSON API only (docs/http-api.md). No build step.
"use strict";

const REFRESH_MS = 2000;
const S = { token: sessionStorage.getItem("reliq.token") || "", paused: false, timer: null,
  selected: new Set(), view: null, busy: false, again: false, gen: 0, open: new Set(), inv: null };

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;

function dur(ms) {
  if (ms == null) return "—";
  ms = Math.max(0, Math.round(ms));
  if (ms < 1000) return ms + "ms";
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return m ? `${m}m ${sec}s` : `${sec}s`;
}
const ago = (at, now) => (at == null ? "—" : dur(now - at) + " ago");
const until = (at, now) => (at == null ? "—" : at >= now ? "in " + dur(at - now) : dur(now - at) + " ago");
const badge = (state) => `<span class="badge state-${esc(state)}">${esc(state)}</span>`;
const invLink = (id) => (id ? `<a class="mono" href="#/i/${enc(id)}">${esc(id)}</a>` : "—");
const owner = (name, alive) => (name == null ? "—" : `<span class="mono">${esc(name)}</span> ` +
  (alive ? '<span class="badge alive">alive</span>' : '<span class="badge dead" data-dead="1">dead</span>'));

class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

async function api(path, method = "GET", json = undefined, withHeaders = false) {
  const headers = { Accept: "application/json" };
  if (S.token) headers.Authorization = "Bearer " + S.token;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const body = json === undefined ? undefined : JSON.stringify(json);
  const r = await fetch(path, { method, headers, body, credentials: "omit" });
  const doc = await r.json().catch(() => null);
  if (r.status === 401) { $("#auth").hidden = false; throw new ApiError(401, "a token is needed"); }
  if (!r.ok) throw new ApiError(r.status, (doc && (doc.detail || doc.title)) || r.statusText);
  return withHeaders ? { doc, headers: r.headers } : doc;
}

function flash(msg, isError = false) {
  const el = $("#flash");
  el.textContent = msg; el.hidden = false; el.className = isError ? "error" : "";
  clearTimeout(flash.t); flash.t = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
}

async function act(path, what, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  try {
    const res = await api(path, "POST");
    if (res.status === "owner_alive") flash(`${what}: refused, its owner is alive and holds a valid lease (to stop live work, use cancel)`, true);
    else flash(`${what}: ${res.redriven ? `redriven ${res.redriven.length}, ${res.remaining} remaining` : res.status || "done"}`);
  } catch (e) { flash(`${what} failed: ${e.message}`, true); }
  await refresh();
}

// ---- routing ---------------------------------------------------------------------------------
function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "s" && parts[2] === "pending") return { view: pending, service: parts[1], params, key: path };
  if (parts[0] === "s" && parts[2] === "parked") return { view: parked, service: parts[1], params, key: path };
  if (parts[0] === "s" && parts[2] === "suspended") return { view: suspended, service: parts[1], params, key: path };
  if (parts[0] === "s" && parts[2] === "schedules") return { view: schedules, service: parts[1], params, key: path };
  if (parts[0] === "s" && parts[2] === "flow") return { view: flowView, service: parts[1], params, key: path };
  if (parts[0] === "i") return { view: invocation, id: parts[1], params, key: path };
  if (parts[0] === "audit") return { view: audit, params, key: path };
  return { view: overview, params, key: "/" };
}

function setHash(path, params) {
  const q = new URLSearchParams([...params].filter(([, v]) => v !== "" && v != null)).toString();
  location.hash = "#" + path + (q ? "?" + q : "");
}

function nav(r) {
  const svc = r.service ? enc(r.service) : null;
  const links = [["#/", "overview", r.view === overview], ["#/audit", "audit", r.view === audit]];
  if (svc) links.splice(1, 0, [`#/s/${svc}/pending`, `${esc(r.service)} pending`, r.view === pending],
    [`#/s/${svc}/parked`, `${esc(r.service)} parked`, r.view === parked],
    [`#/s/${svc}/suspended`, `${esc(r.service)} suspended`, r.view === suspended],
    [`#/s/${svc}/schedules`, `${esc(r.service)} schedules`, r.view === schedules],
    [`#/s/${svc}/flow`, `${esc(r.service)} flow`, r.view === flowView]);
  $("#nav").innerHTML = links.map(([h, t, on]) => `<a href="${h}" class="${on ? "active" : ""}">${t}</a>`).join("");
}

async function render(full) {
  const r = route();
  S.gen++; // a refresh in flight is for the page before: its answer is dropped (refresh())
  if (full) session();
  if (full || !S.view || S.view.key !== r.key || S.view.query !== r.params.toString()) {
    S.selected.clear(); // selected rows are rows on the screen: other filters show others
    if (!S.view || S.view.key !== r.key) window.scrollTo(0, 0);
    S.view = { key: r.key, query: r.params.toString() };
    nav(r);
    $("#main").innerHTML = (r.view.frame ? r.view.frame(r) : "") + '<div id="data"><p class="muted">loading…</p></div>'
      + (r.view.tail ? r.view.tail(r) : ""); // the tail outlives refreshes (forms, the expanded tree)
    if (r.view.bind) r.view.bind(r);
  }
  await refresh();
}

// tick: the 2 s timer's call, skipped while one runs; any other call runs after the one in flight
async function refresh(tick = false) {
  if (S.busy) { S.again ||= !tick; return; }
  S.busy = true;
  const r = route(), gen = S.gen;
  try {
    const html = await r.view(r);
    if (gen !== S.gen) return; // navigated meanwhile: not this page's data
    const data = $("#data");
    if (data) data.innerHTML = html;
    if (r.view.after) r.view.after(r);
    $("#live").className = "live" + (S.paused ? " paused" : "");
    $("#live").textContent = S.paused ? "paused" : "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    if (gen !== S.gen) return;
    $("#live").className = "live error"; $("#live").textContent = "error";
    const data = $("#data");
    if (data && e instanceof ApiError) data.innerHTML = `<p class="badge bad">${esc(e.status)} ${esc(e.message)}</p>`;
  } finally {
    S.busy = false;
    if (S.again) { S.again = false; refresh(); }
  }
}

// once per token: the caller's scope (a read token sees no action buttons) and the durability badge
async function session() {
  const me = await api("/admin/whoami").catch(() => null);
  document.body.dataset.scope = me ? me.scope : "operator"; // unknown: the server decides (403)
  const ready = await fetch("/readyz", { credentials: "omit" }).then((x) => x.json()).catch(() => null);
  if (ready && ready.server) durBadge(ready.server);
}
function durBadge(dur_) {
  const db = $("#durability");
  db.textContent = "durability " + ((dur_ && dur_.level) || "?");
  db.className = "badge " + (dur_ && dur_.level === "fsync" ? "ok" : dur_ && dur_.level === "none" ? "bad" : "warn");
}
// paging by next_cursor (the cursor rides in the hash: a reload keeps the page)
const pager = (d, r, text) => `<div class="pager"><span class="muted">${text}</span>
  <button id="first" ${r.params.get("cursor") ? "" : "disabled"}>first page</button>
  <button id="next" ${d.next_cursor ? "" : "disabled"} data-cursor="${esc(d.next_cursor || "")}">next page</button></div>`;
function bindPager(r) {
  const go = (cursor) => { const p = new URLSearchParams(r.params); p.set("cursor", cursor); setHash(r.key, p); };
  $("#next")?.addEventListener("click", (ev) => go(ev.target.dataset.cursor));
  $("#first")?.addEventListener("click", () => go(""));
}
const pass = (r, q, keys) => { for (const k of keys) if (r.params.get(k)) q.set(k, r.params.get(k)); return q; };

