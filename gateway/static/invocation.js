// reliq dashboard, one invocation: its live tree, the promise form, its timeline; and the audit
// log. Loaded after dashboard.js (its helpers), before start.js.
"use strict";

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

