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

// ---- overview --------------------------------------------------------------------------------
function chart(minutes) {
  if (!minutes || !minutes.length) return "";
  const w = 100 / minutes.length, max = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed + m.retried));
  const bars = minutes.map((m, i) => {
    let y = 56, out = "";
    for (const [k, cls] of [["succeeded", "s"], ["retried", "r"], ["failed", "f"]]) {
      const h = (m[k] / max) * 52; y -= h;
      if (h > 0) out += `<rect class="${cls}" x="${i * w + 0.5}%" y="${y}" width="${w - 1}%" height="${h}"><title>${k} ${m[k]}</title></rect>`;
    }
    return out;
  }).join("");
  const tot = (k) => minutes.reduce((a, m) => a + m[k], 0);
  return `<svg class="chart" preserveAspectRatio="none">${bars}</svg><div class="legend">last ${minutes.length} min:
    ${tot("succeeded")} succeeded · ${tot("retried")} retried · ${tot("failed")} failed (parked)</div>`;
}

// the input schema in force per handler (GET /services); two or more during a rolling deploy
function schemas(handlers) {
  const names = Object.keys(handlers || {}).sort();
  if (!names.length) return "";
  const one = (n) => {
    const h = handlers[n], vs = h.versions || [];
    if (vs.length < 2) return `<span class="handler">${esc(n)}${h.schema_version ? ` <code>${esc(h.schema_version)}</code>` : ""}</span>`;
    const who = (v) => `<code>${esc(v.version)}</code> (${v.consumers.map(esc).join(", ") || "registry"})`;
    return `<span class="handler rolling" data-handler="${esc(n)}">${esc(n)} <span class="badge warn">${vs.length} schemas in force</span>
      current ${who(vs[0])}; also accepted: ${vs.slice(1).map(who).join(", ")}</span>`;
  };
  return `<div class="schemas">handlers: ${names.map(one).join(" · ")}</div>`;
}

async function overview() {
  const [d, cat] = await Promise.all([api("/admin/services"), api("/services").catch(() => ({ services: {} }))]);
  durBadge(d.durability);
  if (!d.services.length) return '<p class="muted">No services registered yet: start a worker.</p>';
  return '<div class="cards">' + d.services.map((s) => {
    const dead = s.consumers.filter((c) => !c.alive), deadHolding = dead.filter((c) => c.pending > 0);
    const o = s.oldest_pending, svc = enc(s.service);
    const alarm = deadHolding.length || s.parked > 0 || s.lost > 0;
    const stat = (label, v, href, bad) => `<div class="stat${bad ? " bad" : ""}">${href ? `<a href="${href}">` : ""}
      <b>${esc(v)}</b>${label}${href ? "</a>" : ""}</div>`;
    const lay = s.layout || { partitions: 1, high: 1 }, many = lay.high > 1;
    const held = (c) => (many && c.partitions && c.partitions.length ? ` <span class="muted">in ${c.partitions.map((p) => "p" + p).join(", ")}</span>` : "");
    const rows = s.consumers.map((c) => `<tr class="${c.alive ? "" : "dead-owner"}"><td>${owner(c.name, c.alive)}</td>
      <td>${c.pending}${held(c)}</td><td>${dur(c.idle_ms)}</td><td>${c.inflight ?? "—"}${c.concurrency ? " / " + c.concurrency : ""}</td>
      <td>${c.processed ?? "—"}</td></tr>`).join("");
    const layBadge = many ? `<span class="badge layout" title="new work goes to ${lay.partitions}; ${lay.high} may hold work">${lay.partitions} partitions${
      lay.high > lay.partitions ? ` (${lay.high} draining)` : ""}</span>` : "";
    return `<section class="card${alarm ? " alarm" : ""}${many ? " parted" : ""}" data-service="${esc(s.service)}">
      <h2>${esc(s.service)} ${layBadge} ${deadHolding.length ? `<span class="badge bad">${deadHolding.length} dead consumer(s) hold work</span>` : ""}</h2>
      <div class="stats">
        ${stat("in stream", s.stream_length)}${stat("never delivered", s.lag ?? "—")}
        ${stat("pending", s.pending, `#/s/${svc}/pending`, deadHolding.length)}
        ${stat("oldest pending idle", o ? dur(o.idle_ms) : "—", o ? `#/s/${svc}/pending` : null)}
        ${stat("delayed", s.delayed)}${stat("suspended", s.suspended ?? 0, `#/s/${svc}/suspended`)}
        ${stat("parked", s.parked, `#/s/${svc}/parked`, s.parked > 0)}
        ${stat("archived", s.archived, `#/s/${svc}/parked?archived=true`)}${stat("lost entries", s.lost, null, s.lost > 0)}
        ${stat("schedules", "⏱", `#/s/${svc}/schedules`)}
      </div>${schemas(cat.services[s.service])}${chart(s.minutes)}${many ? partitionTable(s) : ""}
      <table><thead><tr><th>consumer (${s.consumers_total})</th><th>pending</th><th>idle</th><th>in flight</th><th>processed</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="5" class="muted">no consumers</td></tr>'}</tbody></table></section>`;
  }).join("") + "</div>";
}

function partitionTable(s) {
  const svc = enc(s.service), sum = (ms, k) => ms.reduce((a, m) => a + m[k], 0);
  const rows = (s.partitions || []).map((p) => {
    const dead = p.consumers.filter((c) => !c.alive), o = p.oldest_pending, q = `?partition=${p.partition}`;
    const holders = p.consumers.map((c) => `${owner(c.name, c.alive)} ×${c.pending}`).join("<br>") || "—";
    return `<tr data-partition="${p.partition}" class="${dead.length ? "dead-owner" : ""}">
      <td><a href="#/s/${svc}/pending${q}">p${p.partition}</a></td><td>${p.stream_length}</td><td>${p.lag ?? "—"}</td>
      <td><a href="#/s/${svc}/pending${q}">${p.pending}</a></td><td>${o ? dur(o.idle_ms) : "—"}</td><td>${p.delayed}</td>
      <td><a href="#/s/${svc}/parked${q}">${p.parked}</a></td><td>${p.lost}</td><td class="holders">${holders}</td>
      <td>${sum(p.minutes, "succeeded")}/${sum(p.minutes, "retried")}/${sum(p.minutes, "failed")}</td></tr>`;
  }).join("");
  return `<div class="parts"><table><thead><tr><th>part.</th><th title="in stream">stream</th><th title="never delivered">lag</th>
    <th>pending</th><th title="oldest pending idle">oldest</th><th>delayed</th><th>parked</th><th>lost</th><th>held by</th>
    <th title="last 15 min: succeeded / retried / failed">15 min ok/re/fail</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

// ---- pending entries -------------------------------------------------------------------------
pending.frame = (r) => {
  const p = r.params, v = (k) => esc(p.get(k) || "");
  return `<h1>Pending entries · ${esc(r.service)}${p.get("partition") ? ` · partition ${v("partition")}` : ""}</h1>
  <form class="filters" id="filters">
    <label>consumer <input name="consumer" value="${v("consumer")}" placeholder="any"></label>
    <label>min idle (s) <input name="min_idle_s" value="${v("min_idle_s")}" size="6" inputmode="numeric"></label>
    <label>handler <input name="handler" value="${v("handler")}" placeholder="any"></label>
    <label>partition <input name="partition" value="${v("partition")}" size="4" inputmode="numeric" placeholder="all"></label>
    <label>page size <input name="limit" value="${v("limit") || 50}" size="4" inputmode="numeric"></label>
    <button type="submit">filter</button> <a href="#/s/${enc(r.service)}/pending">clear</a>
  </form>`;
};
pending.bind = (r) => {
  $("#filters").onsubmit = (ev) => {
    ev.preventDefault();
    setHash(`/s/${enc(r.service)}/pending`, new FormData(ev.target));
  };
};
async function pending(r) {
  const p = r.params, q = new URLSearchParams();
  for (const k of ["consumer", "handler", "cursor", "limit", "partition"]) if (p.get(k)) q.set(k, p.get(k));
  if (p.get("min_idle_s")) q.set("min_idle_ms", String(Math.round(parseFloat(p.get("min_idle_s")) * 1000)));
  const d = await api(`/admin/services/${enc(r.service)}/pending?${q}`);
  const now = d.now;
  const rows = d.items.map((e) => {
    const eta = e.reclaim_in_ms == null ? "owner renews it" : e.reclaim_in_ms === 0 ? "reclaimable now"
      : "reclaimed in " + dur(e.reclaim_in_ms);
    const id = e.invocation_id;
    return `<tr class="${e.owner_alive ? "" : "dead-owner"}" data-invocation="${esc(id || "")}" data-partition="${e.partition}">
      <td>p${e.partition}</td><td class="mono">${esc(e.entry_id)}</td><td>${e.lost ? '<span class="badge bad">entry lost</span>' : invLink(id)}</td>
      <td>${esc(e.handler ?? "—")}</td><td>${e.state ? badge(e.state) : "—"}</td><td>${owner(e.owner, e.owner_alive)}</td>
      <td>idle ${dur(e.idle_ms)}</td><td>${e.deliveries}</td><td>${e.attempt ?? "—"}</td><td>${e.epoch ?? "—"}</td>
      <td>${e.lease_until ? "lease ends " + until(e.lease_until, now) : "—"}<br><span class="muted">${eta}</span></td>
      <td>${esc(e.step ?? "—")}</td>
      <td>${id ? `${e.owner_alive ? `<button data-act="release" data-force="1" data-id="${esc(id)}" title="its owner is alive: this
        restarts running work">force release</button>` : `<button data-act="release" data-id="${esc(id)}" title="make it reclaimable now">release</button>`}
        <button class="danger" data-act="cancel" data-id="${esc(id)}">cancel</button>` : ""}</td></tr>`;
  }).join("");
  const where = d.partition != null ? ` in partition ${d.partition} of ${d.partitions}` : d.partitions > 1 ? ` in ${d.partitions} partitions` : "";
  return `${pager(d, r, `${d.total} pending in total${where}`)}<table><thead><tr><th>part.</th><th>entry</th><th>invocation</th><th>handler</th><th>state</th><th>owner</th>
    <th>idle</th><th>deliveries</th><th>attempt</th><th>epoch</th><th>lease / reclaim</th><th>step</th><th></th></tr></thead>
    <tbody>${rows || '<tr><td colspan="13" class="muted">nothing pending</td></tr>'}</tbody></table>`;
}
pending.after = (r) => { bindPager(r); bindRowActions(); };

function bindRowActions() {
  document.querySelectorAll("#data button[data-act]").forEach((b) => {
    b.onclick = () => {
      const { act: a, id, force } = b.dataset;
      const sure = a === "cancel" ? `Cancel ${id}?` : a === "discard" ? `Discard ${id} to the archive?` : force ? `The owner of ${id} `
        + "is alive and may still be running it. Releasing starts the handler again on another worker: what ran before its "
        + "first journaled step runs twice, and a crash is counted. To stop live work, use cancel. Release anyway?" : null;
      act(`/admin/invocations/${enc(id)}/${a}${force ? "?force=true" : ""}`, `${a} ${id}`, sure);
    };
  });
}

// ---- parked ----------------------------------------------------------------------------------
parked.frame = (r) => {
  const archived = r.params.get("archived") === "true", svc = enc(r.service);
  const part = r.params.get("partition") || "";
  return `<h1>${archived ? "Archive (discarded)" : "Parked"} · ${esc(r.service)}${part ? ` · partition ${esc(part)}` : ""}</h1>
  <p class="muted">${archived ? `Discarded invocations, recoverable by redrive until their record expires.
    <a href="#/s/${svc}/parked">show parked</a>` : `Invocations that failed for good: attempts exhausted, a terminal
    error, invalid input or a crash loop. <a href="#/s/${svc}/parked?archived=true">show archive</a>`}</p>
  <form class="filters" id="filters"><label>handler <input name="handler" value="${esc(r.params.get("handler") || "")}"
    placeholder="any"></label><label>partition <input name="partition" value="${esc(part)}" size="4"
    inputmode="numeric" placeholder="all"></label><input type="hidden" name="archived" value="${archived ? "true" : ""}">
    <button type="submit">filter</button></form>
  <div class="actions"><button id="redrive-selected" class="primary">redrive selected</button>
    <button id="redrive-all">redrive all${r.params.get("handler") ? " of this handler" : ""}</button></div>`;
};
parked.bind = (r) => {
  const svc = enc(r.service), archived = r.params.get("archived") === "true";
  $("#filters").onsubmit = (ev) => { ev.preventDefault(); setHash(`/s/${svc}/parked`, new FormData(ev.target)); };
  $("#redrive-selected").onclick = async (ev) => {
    const b = ev.currentTarget, ids = [...S.selected];
    if (!ids.length) { flash("select invocations first", true); return; }
    if (b.disabled || !window.confirm(`Redrive ${ids.length} selected invocation(s)?`)) return;
    b.disabled = true; S.selected.clear(); // a second click redrives nothing twice
    try { for (const id of ids) await act(`/admin/invocations/${enc(id)}/redrive`, `redrive ${id}`); } finally { b.disabled = false; }
  };
  $("#redrive-all").onclick = async (ev) => {
    const b = ev.currentTarget;
    if (b.disabled) return;
    const q = new URLSearchParams({ limit: "500" });
    for (const k of ["handler", "partition"]) if (r.params.get(k)) q.set(k, r.params.get(k));
    if (archived) q.set("archived", "true");
    b.disabled = true;
    try { await act(`/admin/services/${svc}/parked/redrive?${q}`, "bulk redrive", "Redrive every matching invocation (up to 500)?"); }
    finally { b.disabled = false; }
  };
};
async function parked(r) {
  const q = pass(r, new URLSearchParams({ limit: "200" }), ["handler", "archived", "partition", "cursor", "limit"]);
  const d = await api(`/admin/services/${enc(r.service)}/parked?${q}`), h = r.params.get("handler");
  const what = d.archived ? "archived" : "parked", of = h ? ` of handler ${esc(h)}` : "";
  const rows = d.items.map((p) => `<tr data-invocation="${esc(p.invocation_id)}" data-partition="${p.partition}">
    <td><input type="checkbox" data-select="${esc(p.invocation_id)}" ${S.selected.has(p.invocation_id) ? "checked" : ""}></td>
    <td>p${p.partition}</td><td>${invLink(p.invocation_id)}</td><td>${esc(p.handler ?? "—")}</td>
    <td><span class="badge bad">${esc(p.reason ?? (p.expired ? "expired" : "—"))}</span></td>
    <td>${p.error ? `<b>${esc(p.error.type)}</b>: ${esc(p.error.message)}` : "—"}</td>
    <td>${p.attempt ?? "—"}</td><td>${p.crashes ?? "—"}</td><td>${ago(p.parked_at, d.now)}</td>
    <td><button data-act="redrive" data-id="${esc(p.invocation_id)}">redrive</button>
      ${d.archived ? "" : `<button class="danger" data-act="discard" data-id="${esc(p.invocation_id)}">discard</button>`}</td></tr>`).join("");
  const none = d.next_cursor ? `none${of} on this page: see the next page` : `nothing ${what}${of}${r.params.get("cursor") ? " on this page" : ""}`;
  return `${pager(d, r, `${d.total} ${what} in total${h ? ` (every handler); showing handler ${esc(h)}` : ""}, newest first`)}
    <table><thead><tr><th></th><th>part.</th><th>invocation</th><th>handler</th><th>reason</th><th>last error</th><th>attempts</th>
    <th>crashes</th><th>parked</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="10" class="muted">${none}</td></tr>`}</tbody></table>`;
}
parked.after = (r) => {
  bindPager(r);
  document.querySelectorAll("#data input[data-select]").forEach((c) => {
    c.onchange = () => (c.checked ? S.selected.add(c.dataset.select) : S.selected.delete(c.dataset.select));
  });
  bindRowActions();
};

// ---- suspended -------------------------------------------------------------------------------
const waitText = (w) => {
  const what = w.kind === "child" ? `child ${invLink(w.target)}` : w.kind === "promise" ? `promise <b>${esc(w.target)}</b>`
    : `timer ${w.due ? "due " + new Date(w.due).toLocaleString() : esc(w.target)}`;
  return `<span class="wait" data-wait="${esc(w.kind)}:${esc(w.target)}">${what}${w.state ? " " + badge(w.state) : ' <span class="muted">waiting</span>'}</span>`;
};
suspended.frame = (r) => `<h1>Suspended · ${esc(r.service)}</h1><p class="muted">Invocations waiting for children, timers or
  promises without holding a worker. A promise is resolved from the invocation's page (or <code>POST /invocations/{id}/promises/{name}</code>).</p>`;
async function suspended(r) {
  const q = pass(r, new URLSearchParams({ limit: "200" }), ["partition", "cursor", "limit"]);
  const d = await api(`/admin/services/${enc(r.service)}/suspended?${q}`);
  const rows = d.items.map((i) => `<tr data-invocation="${esc(i.invocation_id)}" data-partition="${i.partition}">
    <td>p${i.partition}</td><td>${invLink(i.invocation_id)}</td><td>${esc(i.handler ?? "—")}</td>
    <td>${ago(i.suspended_at, d.now)}</td><td>${i.suspensions ?? "—"}</td>
    <td>${i.expired ? '<span class="muted">expired</span>' : i.waits.map(waitText).join("<br>") || "—"}</td></tr>`).join("");
  return `${pager(d, r, `${d.total} suspended in total`)}
    <table><thead><tr><th>part.</th><th>invocation</th><th>handler</th><th>suspended</th><th>suspensions</th><th>waits for</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="6" class="muted">nothing suspended${r.params.get("cursor") ? " on this page" : ""}</td></tr>`}</tbody></table>`;
}
suspended.after = bindPager;

// ---- schedules -------------------------------------------------------------------------------
schedules.frame = (r) => `<h1>Schedules · ${esc(r.service)}</h1><p class="muted">Each tick is one invocation whose id
  derives from (schedule, tick time): however many workers run, it is placed once. A paused schedule places no ticks;
  resuming starts from now (ticks that fell in the pause never run). A schedule declared with <code>@svc.cron</code>
  comes back when a worker that declares it starts.</p>`;
async function schedules(r) {
  const svc = enc(r.service), { doc: d, headers } = await api(`/admin/services/${svc}/schedules`, "GET", undefined, true);
  const now = Number(headers.get("Reliq-Now")) || Date.now();
  const rows = d.map((i) => {
    const s = i.schedule, n = esc(s.name), paused = i.paused_since != null;
    const when = s.cron ? `<code>${esc(s.cron)}</code> ${esc(s.tz)}` : `every ${esc(s.every)} s`;
    const btn = (a, label, cls = "") => `<button class="${cls}" data-sched="${a}" data-name="${n}">${label}</button>`;
    return `<tr data-schedule="${n}" data-paused="${paused}"><td><b>${n}</b> <span class="muted">${esc(s.origin)}</span></td>
      <td>${esc(s.handler)}</td><td>${when}</td><td>${esc(s.catch_up)}${s.catch_up === "all" ? " ≤ " + esc(s.max_catch_up) : ""}</td>
      <td class="next" title="${i.next_fire ? new Date(i.next_fire).toISOString() : ""}">${paused ? "—" : until(i.next_fire, now)}</td>
      <td class="last" title="${i.last_tick ? new Date(i.last_tick).toISOString() : ""}">${ago(i.last_tick, now)}</td>
      <td class="outcome">${i.last_state ? badge(i.last_state) : "—"} ${i.last_id ? invLink(i.last_id) : ""}</td>
      <td class="status">${paused ? `<span class="badge warn">paused</span> ${ago(i.paused_since, now)}` : '<span class="badge ok">active</span>'}</td>
      <td>${paused ? btn("resume", "resume", "primary") : btn("pause", "pause")} ${btn("delete", "delete", "danger")}</td></tr>`;
  }).join("");
  return `<table><thead><tr><th>schedule</th><th>handler</th><th>when</th><th>catch-up</th><th>next fire</th><th>last tick</th>
    <th>last outcome</th><th>state</th><th></th></tr></thead>
    <tbody>${rows || '<tr><td colspan="9" class="muted">no schedules</td></tr>'}</tbody></table>`;
}
schedules.after = (r) => {
  document.querySelectorAll("#data button[data-sched]").forEach((b) => {
    b.onclick = async () => {
      const a = b.dataset.sched, name = b.dataset.name, base = `/admin/services/${enc(r.service)}/schedules/${enc(name)}`;
      if (a === "delete" && !window.confirm(`Delete schedule ${name}?`)) return;
      try {
        const res = await api(a === "delete" ? base : `${base}/${a}`, a === "delete" ? "DELETE" : "POST");
        flash(`${a} ${name}: ${res.status}`);
      } catch (e) { flash(`${a} ${name} failed: ${e.message}`, true); }
      await refresh();
    };
  });
};
// ---- flow control: limits in force, the busiest keys, rate buckets, who waits and why ---------
flowView.frame = (r) => `<h1>Flow · ${esc(r.service)}</h1><p class="muted">Per-key concurrency and rate limits
  (the code's, and an operator's override: <code>reliq limits set|clear</code> or <code>POST /admin/services/{s}/limits/{handler}</code>);
  the intake: <code>max_queued</code> in force (<code>reliq limits set SERVICE --max-queued N|none|code</code>) and the backlog per priority level.</p>`;
const spec = (x) => (x ? `<span class="mono">${esc(JSON.stringify(x))}</span>` : "—");
async function flowView(r) {
  const [f, w] = await Promise.all([api(`/admin/services/${enc(r.service)}/limits`),
    api(`/admin/services/${enc(r.service)}/waiting?limit=200`)]);
  const specs = f.handlers.map((h) => `<tr data-handler="${esc(h.handler)}"><td>${esc(h.handler)}</td><td>${esc(h.text)}</td>
    <td>${spec(h.code)}</td><td>${spec(h.override)}</td></tr>`).join("");
  const keys = f.top_keys.map((k) => `<tr data-key="${esc(k.key)}"><td>${esc(k.handler)}</td><td class="mono">${esc(k.key)}</td>
    <td>${k.running}</td><td>${k.waiting}</td><td>p${k.partition}</td></tr>`).join("");
  const buckets = f.buckets.map((b) => `<tr data-bucket="${esc(b.handler)}"><td>${esc(b.handler)}</td><td class="mono">${esc(b.key ?? "—")}</td>
    <td>${b.tokens}</td><td>${until(b.next_free, f.now)}</td><td>p${b.partition}</td></tr>`).join("");
  const waiting = w.items.map((i) => `<tr data-invocation="${esc(i.invocation_id)}"><td>${invLink(i.invocation_id)}</td>
    <td>${esc(i.handler ?? "—")}</td><td>${badge(i.state)}</td><td class="reason">${esc(i.reason ? i.reason.text : "—")}</td></tr>`).join("");
  const none = (n, what) => `<tr><td colspan="${n}" class="muted">${what}</td></tr>`;
  const q = f.intake, cap = q && q.max_queued != null ? `${q.max_queued} (${q.source})` : `none${q && q.source === "override" ? " (override)" : ""}`;
  const intake = q ? `<h2>Intake</h2><table id="flow-intake"><thead><tr><th>max queued</th><th>queued</th><th>high</th><th>normal</th>
    <th>low</th><th>delayed</th></tr></thead><tbody><tr><td class="cap">${esc(cap)}</td><td>${q.queued}</td><td class="high">${q.backlog.high}</td>
    <td class="normal">${q.backlog.normal}</td><td class="low">${q.backlog.low}</td><td>${q.delayed}</td></tr></tbody></table>` : "";
  return `<p class="muted">${f.running} running with a permit · ${f.queued} in key lines · ${w.delayed} delayed${f.drift.length ? ` ·
    <span class="badge bad">partitions ${f.drift.join(", ")} differ (a change under way)</span>` : ""}</p>
    <h2>Limits</h2><table id="flow-specs"><thead><tr><th>handler</th><th>in force</th><th>code</th><th>override</th></tr></thead>
    <tbody>${specs || none(4, "no limits published")}</tbody></table>${intake}
    <h2>Top keys</h2><table id="flow-keys"><thead><tr><th>handler</th><th>key</th><th>running</th><th>waiting</th><th>part.</th></tr></thead>
    <tbody>${keys || none(5, "no key holds or waits")}</tbody></table>
    <h2>Rate buckets</h2><table id="flow-buckets"><thead><tr><th>handler</th><th>key</th><th>tokens</th><th>next free</th><th>part.</th></tr></thead>
    <tbody>${buckets || none(5, "no live bucket")}</tbody></table>
    <h2>Waiting</h2><table id="flow-waiting"><thead><tr><th>invocation</th><th>handler</th><th>state</th><th>why</th></tr></thead>
    <tbody>${waiting || none(4, "nothing waits")}</tbody></table>`;
}

// ---- the live tree (fetched lazily: one level per expanded node) and the promise form ---------
async function treeNode(t, root) {
  const kids = await Promise.all(t.children.map(async (c) => {
    if (c.children_total && S.open.has(c.id)) return treeNode(await api(`/admin/invocations/${enc(c.id)}/tree?depth=1`), false);
    return treeNode(c, false);
  }));
  const open = root || S.open.has(t.id), more = t.children_total > t.children.length;
  const twisty = root || !t.children_total ? '<span class="twisty"></span>'
    : `<button type="button" class="twisty" data-toggle="${esc(t.id)}" title="${open ? "collapse" : "expand"}">${open ? "▾" : "▸"} ${t.children_total}</button>`;
  const waits = t.waits.length ? ` <span class="muted">waits for</span> ${t.waits.map(waitText).join(", ")}` : "";
  const below = kids.join("") + (more && open && kids.length ? `<li class="muted">… ${t.children_total - kids.length} more</li>` : "");
  return `<li data-node="${esc(t.id)}" data-state="${esc(t.state)}">${twisty}${invLink(t.id)} <span class="muted">${esc(t.handler ?? "?")}</span>
    ${badge(t.state)}${waits}${open && below ? `<ul>${below}</ul>` : ""}</li>`;
}
async function drawTree(id) {
  const box = $("#live-tree");
  if (!box) return;
  try {
    box.innerHTML = `<ul class="ftree">${await treeNode(await api(`/admin/invocations/${enc(id)}/tree?depth=1`), true)}</ul>`;
  } catch (e) { box.innerHTML = `<p class="badge bad" id="tree-error">the live tree could not be read: ${esc(e.status ?? "")} ${esc(e.message)}</p>`; return; }
  box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1); // redraws so far (a test waits for one)
  box.querySelectorAll("button[data-toggle]").forEach((b) => {
    b.onclick = () => { const k = b.dataset.toggle; S.open.has(k) ? S.open.delete(k) : S.open.add(k); drawTree(id); };
  });
}
invocation.frame = () => `<section id="promise-box" hidden><h2>Resolve a promise it waits for</h2>
  <form id="promise-form" class="filters"><label>promise <select name="name" id="promise-name"></select></label>
  <label>value (JSON) <input name="value" id="promise-value" value="null" size="40" autocomplete="off"></label>
  <button type="submit" class="primary">resolve</button></form></section>`;
invocation.tail = (r) => `<h2>Live tree</h2><div id="live-tree" data-root="${esc(r.id)}"><p class="muted">loading…</p></div>`;
function promiseForm(r) {
  const d = S.inv, box = $("#promise-box");
  if (!box || !d) return;
  const open = d.invocation.state === "suspended" ? (d.waits || []).filter((w) => w.kind === "promise" && !w.state) : [];
  box.hidden = !open.length;
  const sel = $("#promise-name"), names = open.map((w) => w.target);
  if (sel.dataset.names !== names.join(",")) {
    sel.dataset.names = names.join(",");
    sel.innerHTML = names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
  }
  $("#promise-form").onsubmit = async (ev) => {
    ev.preventDefault();
    let value;
    try { value = JSON.parse($("#promise-value").value); } catch (e) { flash(`value: not JSON (${e.message})`, true); return; }
    const name = sel.value;
    try {
      const res = await api(`/invocations/${enc(r.id)}/promises/${enc(name)}`, "POST", { value });
      flash(`promise ${name}: ${res.status}`);
      $("#promise-value").value = "null"; // the next open promise is not settled with this value by a second click
    } catch (e) { flash(`promise ${name} failed: ${e.message}`, true); }
    await refresh();
  };
}

// ---- one invocation --------------------------------------------------------------------------
const EVENT_TEXT = {
  accepted: (e) => `accepted (${esc(e.detail || "pending")})`, claimed: (e) => `claimed by ${esc(e.actor)} (epoch ${e.epoch})`,
  reclaimed: (e) => `reclaimed by ${esc(e.actor)} (epoch ${e.epoch}): the previous holder died or lost its lease`,
  renewed: (e) => `lease renewed ${e.count ?? 1}× by ${esc(e.actor)}`, step: (e) => `step "${esc(e.detail)}" committed`,
  retry: (e) => `failed; retry scheduled (${esc(e.detail)})`, parked: (e) => `parked: ${esc(e.detail)}`,
  gap: (e) => `… ${e.count} older events not kept …`,
};
async function invocation(r) {
  const d = await api(`/admin/invocations/${enc(r.id)}`);
  S.inv = d;
  const inv = d.invocation, now = d.now || Date.now();
  const fact = (k, v) => `<div><span>${k}</span>${v}</div>`;
  const pe = d.pending_entry;
  const terminal = ["succeeded", "failed", "cancelled"].includes(inv.state);
  const btn = (a, label, cls = "", more = "") => `<button class="${cls}" data-act="${a}" data-id="${esc(inv.id)}"${more}>${label}</button>`;
  const actions = [
    inv.state === "failed" ? btn("redrive", "redrive", "primary") : "",
    d.parked ? btn("discard", "discard to archive", "danger") : "",
    pe && !pe.owner_alive ? btn("release", "release entry now") : "",
    pe && pe.owner_alive ? btn("release", "force release", "", ' data-force="1" title="its owner is alive: this restarts running work"') : "",
    inv.state === "retrying" ? btn("retry-now", "retry now") : "",
    terminal ? "" : btn("cancel", "cancel", "danger"),
  ].join("");
  const timeline = d.timeline.map((e) => `<li class="ev-${esc(e.event)}"><b>${(EVENT_TEXT[e.event] ||
    ((x) => esc(x.event) + (x.actor ? " by " + esc(x.actor) : "") + (x.detail ? ": " + esc(x.detail) : "")))(e)}</b>
    ${e.until ? `<span class="muted">until ${new Date(e.until).toLocaleTimeString()}</span>` : ""}
    <span class="when" title="${new Date(e.at).toISOString()}">${new Date(e.at).toLocaleTimeString()} · ${ago(e.at, now)}</span></li>`).join("");
  const steps = Object.entries(inv.steps || {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="mono">${esc(JSON.stringify(v))}</td></tr>`).join("");
  const node = (n) => `${invLink(n.id)} <span class="muted">${esc(n.service)}.${esc(n.handler ?? "?")}</span> ${badge(n.state)}`;
  const kids = d.children.map((c) => `<li>${node(c)}</li>`).join("");
  const self = `<b>${esc(inv.id)}</b> <span class="muted">${esc(inv.service)}.${esc(inv.handler)}</span> ${badge(inv.state)}`;
  const tree = `<div class="tree">${d.parent ? node(d.parent) + "<ul><li>" : ""}${self}${kids ? `<ul>${kids}</ul>` : ""}${d.parent ? "</li></ul>" : ""}</div>`;
  const err = inv.error ? `<h2>${inv.state === "succeeded" ? "Error of an earlier attempt" : "Error"}</h2><p><b>${esc(inv.error.type)}</b>: ${esc(inv.error.message)}</p>
    ${inv.error.traceback ? `<pre>${esc(inv.error.traceback)}</pre>` : ""}` : "";
  return `<h1 class="mono">${esc(inv.id)} ${badge(inv.state)}${d.parked ? ' <span class="badge bad">parked</span>' : ""}
    ${d.archived ? ' <span class="badge">archived</span>' : ""}</h1>
    <div class="facts">${fact("service · handler", `<a href="#/s/${enc(inv.service)}/pending">${esc(inv.service)}</a> · ${esc(inv.handler)}`)}
      ${fact("attempt", inv.attempt)}${fact("deliveries", inv.deliveries)}${fact("crashes", inv.crashes)}${fact("epoch", inv.epoch)}
      ${fact("owner", pe ? owner(pe.owner, pe.owner_alive) + ` idle ${dur(pe.idle_ms)}` : esc(inv.owner ?? "—"))}
      ${fact("lease", until(inv.lease_until, now))}${fact("next retry", until(inv.next_retry, now))}
      ${fact("created", ago(inv.created, now))}${fact("finished", ago(inv.finished, now))}
      ${fact("reason", esc(inv.reason ?? "—"))}${fact("idempotency key", esc(inv.idempotency_key ?? "—"))}
      ${fact("partition", "p" + (d.partition ?? 0))}${d.wait ? fact("waits", `<span id="wait-reason">${esc(d.wait.text)}</span>`) : ""}</div>
    ${pe && !pe.owner_alive ? `<p class="badge bad" id="hint">its owner ${esc(pe.owner)} is dead: the entry is
      reclaimed when the lease runs out (${until(inv.lease_until, now)}); "release entry now" lets a live worker take it
      at its next reclaim scan</p>` : ""}
    <div class="actions">${actions}</div>
    ${(d.waits || []).length ? `<h2>Waits for</h2><ul class="waits" id="waits">${d.waits.map((w) => `<li>${waitText(w)}</li>`).join("")}</ul>` : ""}
    <h2>Timeline</h2><ol class="timeline" id="timeline">${timeline}</ol>
    <h2>Function tree${d.children_total > d.children.length ? ` <span class="muted" id="children-cut">(first ${d.children.length}
      of ${d.children_total} children)</span>` : ""}</h2>${tree}
    <h2>Steps journal</h2>${steps ? `<table><thead><tr><th>step</th><th>value</th></tr></thead><tbody>${steps}</tbody></table>` : '<p class="muted">no steps</p>'}
    <h2>Input</h2><pre>${esc(JSON.stringify(inv.payload, null, 2))}</pre>
    ${inv.state === "succeeded" ? `<h2>Result</h2><pre>${esc(JSON.stringify(inv.result, null, 2))}</pre>` : ""}${err}`;
}
invocation.after = (r) => {
  bindRowActions();
  promiseForm(r);
  drawTree(r.id);
};

// ---- audit -----------------------------------------------------------------------------------
audit.frame = (r) => `<h1>Audit log</h1><form class="filters" id="filters"><label>service <input name="service"
  value="${esc(r.params.get("service") || "")}" placeholder="any"></label> <button type="submit">filter</button></form>`;
audit.bind = (r) => { $("#filters").onsubmit = (ev) => { ev.preventDefault(); setHash(r.key, new FormData(ev.target)); }; };
audit.after = bindPager;
async function audit(r) {
  const d = await api(`/admin/audit?${pass(r, new URLSearchParams({ limit: "200" }), ["service", "cursor", "limit"])}`);
  const now = d.now || Date.now();
  const rows = d.items.map((a) => `<tr data-partition="${a.partition}"><td title="${new Date(a.at).toISOString()}">${ago(a.at, now)}</td>
    <td>${esc(a.service)} <span class="muted">p${a.partition}</span></td><td>${esc(a.who)}</td>
    <td>${esc(a.action)}</td><td>${a.target && a.target.includes(".") ? invLink(a.target) : esc(a.target)}</td><td>${esc(a.result)}</td></tr>`).join("");
  return `${pager(d, r, "newest first")}<table><thead><tr><th>when</th><th>service · partition</th><th>who</th><th>action</th><th>target</th>
    <th>result</th></tr></thead><tbody>${rows || '<tr><td colspan="6" class="muted">no actions yet</td></tr>'}</tbody></table>`;
}

// ---- start -----------------------------------------------------------------------------------
$("#auth-form").onsubmit = (ev) => {
  ev.preventDefault();
  S.token = $("#token").value.trim();
  sessionStorage.setItem("reliq.token", S.token);
  $("#auth").hidden = true;
  render(true);
};
$("#pause").onclick = () => {
  S.paused = !S.paused;
  $("#pause").textContent = S.paused ? "resume" : "pause";
  refresh();
};
window.addEventListener("hashchange", () => render(false));
S.timer = setInterval(() => { if (!S.paused && !document.hidden) refresh(true); }, REFRESH_MS);
render(true);
