// The modgate operator console: a page served by the admin listener that drives the admin API
// with the admin token the operator signs in with (kept in this tab's sessionStorage only).
// Everything shown is set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { view: "review", items: [], selected: -1, apps: [], lastRates: null };

function token() { return sessionStorage.getItem("modgate.token") || ""; }
function reviewer() { return localStorage.getItem("modgate.reviewer") || ""; }

function say(message, isError) {
  const s = $("status");
  s.textContent = message;
  s.className = isError ? "error" : "";
}

// One admin API call; throws an Error with the API's own message on a non-2xx answer.
async function api(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + token() };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload });
  const text = await resp.text();
  let data = text;
  try { data = JSON.parse(text); } catch (_) { /* CSV or plain text */ }
  if (resp.status === 401) { signOut("The admin token was refused; sign in again."); }
  if (!resp.ok) {
    const msg = data && data.error ? data.error : resp.status + " " + resp.statusText;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

function cell(text, cls) { return el("td", { textContent: String(text ?? ""), className: cls || "" }); }

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function fillSelect(select, values, withAll) {
  const keep = select.value;
  select.replaceChildren();
  if (withAll) select.append(el("option", { value: "", textContent: "all apps" }));
  for (const v of values) select.append(el("option", { value: v, textContent: v }));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

async function loadApps() {
  state.apps = (await api("GET", "/admin/apps")).map((a) => a.appid);
  fillSelect($("review-app"), state.apps, true);
  fillSelect($("kw-app"), state.apps, false);
  fillSelect($("risk-app"), state.apps, false);
  fillSelect($("bank-scope"), ["global", ...state.apps], false);
}

// ---- sign in and navigation ----

function signOut(message) {
  sessionStorage.removeItem("modgate.token");
  $("nav").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "login";
  say(message || "Signed out.", Boolean(message));
  $("token").value = "";
  $("token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  sessionStorage.setItem("modgate.token", $("token").value.trim());
  localStorage.setItem("modgate.reviewer", $("reviewer").value.trim());
  try {
    await loadApps();
  } catch (e) {
    if (e.status !== 401) say("Could not reach the admin API: " + e.message, true);
    return;
  }
  $("token").value = "";
  $("nav").hidden = false;
  say("Signed in as " + reviewer() + ".");
  show("review");
}

const loaders = {
  review: loadReview, keywords: loadKeywords, banks: loadBank, risk: loadRisk,
  usage: loadUsage, jobs: async () => $("job-id").focus(),
};

async function show(view) {
  state.view = view;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== view;
  for (const b of document.querySelectorAll("nav button[data-view]")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  try { await loaders[view](); } catch (e) { say(e.message, true); }
}

// ---- review queue ----

function preview(item) {
  if (item.content.kind === "text") return item.content.fields.map((f) => f[1]).join(" / ");
  return item.content.media_type + " " + item.content.url;
}

function itemState(item) {
  if (item.decision) return "decided: " + item.decision.outcome + " by " + item.decision.reviewer;
  if (item.claim && item.claim.until_ms > Date.now()) return "claimed by " + item.claim.reviewer;
  return "pending";
}

async function loadReview() {
  const q = new URLSearchParams();
  if ($("review-app").value) q.set("appid", $("review-app").value);
  if ($("review-state").value) q.set("state", $("review-state").value);
  if ($("review-label").value.trim()) q.set("label", $("review-label").value.trim());
  q.set("limit", "200");
  const data = await api("GET", "/admin/review/items?" + q);
  state.items = data.items;
  const body = $("review-items").tBodies[0];
  body.replaceChildren();
  data.items.forEach((item, i) => {
    const tr = el("tr", { tabIndex: 0 });
    tr.dataset.id = item.id;
    tr.append(cell(ago(item.created_ms)), cell(item.appid), cell(item.reason),
      cell(item.suggest + " " + item.label, item.suggest), cell(item.hits.join(", ")),
      cell(preview(item), "content"), cell(itemState(item)));
    tr.addEventListener("click", () => select(i));
    body.append(tr);
  });
  say(data.total + " item(s)" + (data.total > data.items.length ? ", showing the oldest " + data.items.length : "") + ".");
  select(Math.min(Math.max(state.selected, 0), data.items.length - 1));
}

function select(i) {
  state.selected = i;
  const rows = $("review-items").tBodies[0].rows;
  for (let r = 0; r < rows.length; r++) rows[r].setAttribute("aria-selected", String(r === i));
  const detail = $("review-detail");
  const item = state.items[i];
  if (!item) { detail.replaceChildren(el("p", { className: "hint", textContent: "Nothing to review here." })); return; }
  if (rows[i] && document.activeElement && document.activeElement.tagName === "TR") rows[i].focus();
  const parts = [
    el("h3", { textContent: item.suggest + " · " + item.label + " · " + item.appid }),
    el("p", { className: "hint", textContent: "trace_id " + item.id + " · openid " + (item.openid || "-") + " · scene " + item.scene + " · " + ago(item.created_ms) }),
  ];
  if (item.content.kind === "text") {
    for (const [name, text] of item.content.fields) {
      parts.push(el("div", null, el("strong", { textContent: name }), el("div", { className: "text", textContent: text })));
    }
  } else {
    parts.push(el("p", null, "URL ", el("a", { href: item.content.url, textContent: item.content.url, rel: "noreferrer noopener", target: "_blank" })));
    parts.push(el("p", { textContent: "hash " + (item.content.hash || "(none)") }));
    parts.push(el("pre", { textContent: JSON.stringify(item.content.analysis, null, 2) }));
  }
  parts.push(el("p", null, "hits: ", ...item.hits.map((h) => el("span", { className: "tag", textContent: h }))));
  parts.push(el("p", { textContent: itemState(item) + (item.decision && item.decision.reason ? " — " + item.decision.reason : "") + (item.decision && item.decision.feedback ? " (" + item.decision.feedback + ")" : "") }));
  if (!item.decision) {
    const reason = el("input", { id: "decide-reason", placeholder: "reason" });
    const feedback = el("input", { id: "decide-feedback", type: "checkbox" });
    const keyword = el("input", { id: "decide-keyword", placeholder: item.hits[0] || "keyword", size: 12 });
    parts.push(el("div", { className: "row" },
      el("label", null, "Reason", reason),
      el("label", null, "Feed back to the table/bank", feedback),
      item.content.kind === "text" ? el("label", null, "Keyword", keyword) : ""));
    parts.push(el("div", { className: "actions" },
      el("button", { type: "button", id: "act-claim", textContent: "Claim (c)", onclick: () => act("claim") }),
      el("button", { type: "button", id: "act-release", textContent: "Release (u)", onclick: () => act("release") }),
      el("button", { type: "button", id: "act-risky", className: "risky", textContent: "Confirm risky (r)", onclick: () => decide("risky") }),
      el("button", { type: "button", id: "act-pass", className: "pass", textContent: "Confirm pass (p)", onclick: () => decide("pass") })));
  }
  detail.replaceChildren(...parts);
}

async function act(action) {
  const item = state.items[state.selected];
  if (!item) return;
  try {
    await api("POST", "/admin/review/items/" + encodeURIComponent(item.id) + "/" + action, { reviewer: reviewer() });
    await loadReview();
    say(action === "claim" ? "Claimed." : "Released.");
  } catch (e) { say(e.message, true); }
}

async function decide(outcome) {
  const item = state.items[state.selected];
  if (!item || item.decision) return;
  const body = { reviewer: reviewer(), outcome, reason: ($("decide-reason") || {}).value || "" };
  if ($("decide-feedback") && $("decide-feedback").checked) {
    body.feedback = true;
    const kw = ($("decide-keyword") || {}).value;
    if (kw && kw.trim()) body.keyword = kw.trim();
  }
  try {
    const done = await api("POST", "/admin/review/items/" + encodeURIComponent(item.id) + "/decision", body);
    await loadReview();
    say("Decided " + outcome + (done.decision.feedback ? "; " + done.decision.feedback : "") + ".");
  } catch (e) { say(e.message, true); }
}

// ---- keyword tables ----

async function loadKeywords() {
  const appid = $("kw-app").value;
  const body = $("kw-table").tBodies[0];
  body.replaceChildren();
  if (!appid) return;
  const entries = await api("GET", "/admin/apps/" + encodeURIComponent(appid) + "/keywords");
  for (const e of entries) {
    const del = el("button", { type: "button", textContent: "Delete", onclick: async () => {
      try {
        await api("DELETE", "/admin/apps/" + encodeURIComponent(appid) + "/keywords/" + encodeURIComponent(e.keyword));
        await loadKeywords();
        say("Deleted " + e.keyword + ".");
      } catch (err) { say(err.message, true); }
    } });
    del.setAttribute("aria-label", "Delete " + e.keyword);
    body.append(el("tr", null, cell(e.keyword), cell(e.label), cell(e.level), cell(e.suggest, e.suggest), el("td", null, del)));
  }
  say(entries.length + " keyword(s) in " + appid + "'s table.");
}

async function addKeyword(ev) {
  ev.preventDefault();
  const appid = $("kw-app").value;
  const entry = { keyword: $("kw-word").value.trim(), label: Number($("kw-label").value), level: Number($("kw-level").value), suggest: $("kw-suggest").value };
  try {
    await api("POST", "/admin/apps/" + encodeURIComponent(appid) + "/keywords", [entry]);
    $("kw-word").value = "";
    await loadKeywords();
    say("Added " + entry.keyword + ".");
  } catch (e) { say(e.message, true); }
}

async function importKeywords(ev) {
  ev.preventDefault();
  const appid = $("kw-app").value;
  const text = $("kw-text").value.trim();
  const type = text.startsWith("[") || text.startsWith("{") ? "application/json" : "text/csv";
  try {
    const done = await api("PUT", "/admin/apps/" + encodeURIComponent(appid) + "/keywords", text, type);
    await loadKeywords();
    say("Table replaced: " + done.count + " keyword(s).");
  } catch (e) { say(e.message, true); }
}

async function exportKeywords() {
  const appid = $("kw-app").value;
  try {
    const csv = await api("GET", "/admin/apps/" + encodeURIComponent(appid) + "/keywords?format=csv");
    const a = el("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" })), download: appid + "-keywords.csv" });
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (e) { say(e.message, true); }
}

// ---- hash banks ----

async function loadBank() {
  const scope = $("bank-scope").value;
  const body = $("bank-table").tBodies[0];
  body.replaceChildren();
  if (!scope) return;
  const entries = await api("GET", "/admin/banks/" + encodeURIComponent(scope));
  for (const e of entries) {
    const del = el("button", { type: "button", textContent: "Delete", onclick: async () => {
      try {
        await api("DELETE", "/admin/banks/" + encodeURIComponent(scope) + "/" + e.hash);
        await loadBank();
      } catch (err) { say(err.message, true); }
    } });
    body.append(el("tr", null, cell(e.hash), cell(e.kind), cell(e.label), cell(e.suggest, e.suggest), cell(e.note), el("td", null, del)));
  }
  say(entries.length + " entr" + (entries.length === 1 ? "y" : "ies") + " in the " + scope + " bank.");
}

async function addBank(ev) {
  ev.preventDefault();
  try {
    await api("POST", "/admin/banks/" + encodeURIComponent($("bank-scope").value), $("bank-text").value);
    $("bank-text").value = "";
    await loadBank();
  } catch (e) { say(e.message, true); }
}

// ---- risk lists ----

async function loadRisk() {
  const appid = $("risk-app").value;
  const body = $("risk-table").tBodies[0];
  body.replaceChildren();
  if (!appid) return;
  const entries = await api("GET", "/admin/apps/" + encodeURIComponent(appid) + "/risk-lists");
  for (const e of entries) {
    const del = el("button", { type: "button", textContent: "Delete", onclick: async () => {
      try {
        await api("DELETE", "/admin/apps/" + encodeURIComponent(appid) + "/risk-lists/" + e.type + "/" + encodeURIComponent(e.value));
        await loadRisk();
      } catch (err) { say(err.message, true); }
    } });
    body.append(el("tr", null, cell(e.list), cell(e.type), cell(e.value), cell(e.rank), cell(e.note), el("td", null, del)));
  }
  say(entries.length + " list entr" + (entries.length === 1 ? "y." : "ies."));
}

async function addRisk(ev) {
  ev.preventDefault();
  const appid = $("risk-app").value;
  const entry = { list: $("risk-list").value, type: $("risk-type").value, value: $("risk-value").value.trim() };
  if ($("risk-note").value.trim()) entry.note = $("risk-note").value.trim();
  try {
    await api("POST", "/admin/apps/" + encodeURIComponent(appid) + "/risk-lists", [entry]);
    $("risk-value").value = "";
    await loadRisk();
  } catch (e) { say(e.message, true); }
}

// ---- usage and rates ----

function parseRequests(text) {
  // modgate_api_requests_total{api="msg_sec_check",errcode="0"} 42
  const by = {};
  for (const line of text.split("\n")) {
    const m = /^modgate_api_requests_total\{api="([^"]+)",errcode="(-?\d+)"\} (\S+)$/.exec(line);
    if (!m) continue;
    const r = by[m[1]] || (by[m[1]] = { all: 0, errors: 0 });
    r.all += Number(m[3]);
    if (m[2] !== "0") r.errors += Number(m[3]);
  }
  return by;
}

async function loadUsage() {
  const body = $("usage-table").tBodies[0];
  body.replaceChildren();
  for (const appid of state.apps) {
    const u = await api("GET", "/admin/apps/" + encodeURIComponent(appid) + "/usage");
    body.append(el("tr", null, cell(appid), cell(u.msg_sec_check.used_today), cell(u.msg_sec_check.daily_limit),
      cell(u.msg_sec_check.per_minute), cell(u.media_check_async.used_today), cell(u.media_check_async.daily_limit),
      cell(u.review_pending)));
  }
  const resp = await fetch("/metrics");
  const now = { at: Date.now(), by: parseRequests(await resp.text()) };
  const rates = $("rates-table").tBodies[0];
  rates.replaceChildren();
  const prev = state.lastRates;
  for (const apiName of Object.keys(now.by).sort()) {
    let rate = "…", errors = "…";
    if (prev && prev.by[apiName] && now.at > prev.at) {
      const secs = (now.at - prev.at) / 1000;
      rate = ((now.by[apiName].all - prev.by[apiName].all) / secs).toFixed(1);
      errors = ((now.by[apiName].errors - prev.by[apiName].errors) / secs).toFixed(1);
    }
    rates.append(el("tr", null, cell(apiName), cell(rate), cell(errors)));
  }
  state.lastRates = now;
  say(prev ? "Rates over the last " + ((now.at - prev.at) / 1000).toFixed(0) + " s." : "Refresh again for rates.");
}

// ---- jobs ----

async function lookUpJob(ev) {
  ev.preventDefault();
  try {
    const job = await api("GET", "/admin/media/" + encodeURIComponent($("job-id").value.trim()));
    $("job-out").textContent = JSON.stringify(job, null, 2);
    say("Job " + job.state + ".");
  } catch (e) { $("job-out").textContent = ""; say(e.message, true); }
}

// ---- keyboard ----

function onKey(ev) {
  if (!token() || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target.tagName;
  if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT") return;
  const views = ["review", "keywords", "banks", "risk", "usage", "jobs"];
  if (/^[1-6]$/.test(ev.key)) { show(views[Number(ev.key) - 1]); return; }
  if (state.view !== "review") return;
  const keys = {
    j: () => select(Math.min(state.selected + 1, state.items.length - 1)),
    k: () => select(Math.max(state.selected - 1, 0)),
    c: () => act("claim"), u: () => act("release"),
    r: () => decide("risky"), p: () => decide("pass"),
  };
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("reviewer").value = reviewer();
  $("signout").addEventListener("click", () => signOut());
  for (const b of document.querySelectorAll("nav button[data-view]")) b.addEventListener("click", () => show(b.dataset.view));
  $("review-filter").addEventListener("submit", (e) => { e.preventDefault(); loadReview().catch((err) => say(err.message, true)); });
  $("kw-app").addEventListener("change", () => loadKeywords().catch((e) => say(e.message, true)));
  $("kw-add").addEventListener("submit", addKeyword);
  $("kw-import").addEventListener("submit", importKeywords);
  $("kw-export").addEventListener("click", exportKeywords);
  $("bank-scope").addEventListener("change", () => loadBank().catch((e) => say(e.message, true)));
  $("bank-add").addEventListener("submit", addBank);
  $("risk-app").addEventListener("change", () => loadRisk().catch((e) => say(e.message, true)));
  $("risk-add").addEventListener("submit", addRisk);
  $("usage-refresh").addEventListener("click", () => loadUsage().catch((e) => say(e.message, true)));
  $("job-form").addEventListener("submit", lookUpJob);
  document.addEventListener("keydown", onKey);
  if (token()) {
    loadApps().then(() => { $("nav").hidden = false; show("review"); }).catch(() => signOut());
  }
});
