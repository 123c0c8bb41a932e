// reliq dashboard, the views of one service: overview, pending entries, parked, suspended,
// schedules, flow control. Loaded after dashboard.js (its helpers), before start.js.
"use strict";

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

