// The modgate operator console: a page served by the admin listener that drives the admin API
// with the token the operator signs in with (kept in this tab's sessionStorage only).
// Everything shown is set with textContent, never parsed as HTML; media files are shown from
// blobs the admin listener serves, never fetched from the URL a client submitted.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const VIEWS = ["review", "audit", "apps", "keywords", "banks", "risk", "usage", "jobs"];
const state = {
  view: "review", me: null, apps: [],
  items: [], selected: -1, chosen: new Set(), offset: 0, total: 0,
  auditOffset: 0, auditTotal: 0,
  jobs: [], usageApp: "", lastRates: null, preview: null,
};

function token() { return sessionStorage.getItem("modgate.token") || ""; }
function typedName() { return localStorage.getItem("modgate.reviewer") || ""; }
// Who review actions are recorded under: a named token's holder, else the name typed in.
function reviewer() { return (state.me && state.me.name) || typedName(); }
function isAdmin() { return Boolean(state.me && state.me.role === "admin"); }

function say(message, isError) {
  const s = $("status");
  s.textContent = message;
  s.className = isError ? "error" : "";
}

// One admin API call; answers the Response, or throws an Error carrying the API's own message
// (and, for an invalid app, its errors by field).
async function call(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + token() };
  let payload;
  if (body !== undefined) {
    if (body instanceof Blob) {
      payload = body;
      headers["Content-Type"] = contentType || body.type || "application/octet-stream";
    } else {
      headers["Content-Type"] = contentType || "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
  }
  const resp = await fetch(path, { method, headers, body: payload });
  if (resp.status === 401) signOut("The admin token was refused; sign in again.");
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch (_) { /* not JSON */ }
    const err = new Error(data && data.error ? data.error : resp.status + " " + resp.statusText);
    err.status = resp.status;
    err.fields = (data && data.errors) || [];
    throw err;
  }
  return resp;
}

async function api(method, path, body, contentType) {
  const text = await (await call(method, path, body, contentType)).text();
  try { return JSON.parse(text); } catch (_) { return text; }
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

function cell(text, cls) { return el("td", { textContent: String(text ?? ""), className: cls || "" }); }
const enc = encodeURIComponent;

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

function when(ms) { return new Date(ms).toLocaleString(); }

function fillSelect(select, values, allLabel) {
  const keep = select.value;
  select.replaceChildren();
  if (allLabel) select.append(el("option", { value: "", textContent: allLabel }));
  for (const v of values) select.append(el("option", { value: v, textContent: v }));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

async function loadApps() {
  state.apps = (await api("GET", "/admin/apps")).map((a) => a.appid);
  fillSelect($("review-app"), state.apps, "all apps");
  fillSelect($("audit-app"), state.apps, "all apps");
  fillSelect($("kw-app"), state.apps);
  fillSelect($("risk-app"), state.apps);
  fillSelect($("bank-scope"), ["global", ...state.apps]);
}

function pagerText(offset, shown, total) {
  if (total === 0) return "nothing matches";
  return (offset + 1) + "–" + (offset + shown) + " of " + total;
}

// A button that runs `fn` and says what went wrong.
function button(label, fn, props) {
  return el("button", Object.assign({ type: "button", textContent: label, onclick: async () => {
    try { await fn(); } catch (e) { say(e.message, true); }
  } }, props || {}));
}

// ---- sign in and navigation ----

function signOut(message) {
  sessionStorage.removeItem("modgate.token");
  state.me = null;
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("whoami").textContent = "";
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "login";
  say(message || "Signed out.", Boolean(message));
  $("token").value = "";
  $("token").focus();
}

// Asks the API who the token names and sets the page up for that role.
async function begin() {
  state.me = await api("GET", "/admin/whoami");
  if (!state.me.name && !typedName()) {
    sessionStorage.removeItem("modgate.token");
    state.me = null;
    throw new Error("The shared admin token names no one: enter your name to sign in with it.");
  }
  document.body.dataset.role = state.me.role;
  $("whoami").textContent = reviewer() + " · " + state.me.role + (state.me.name ? "" : " (shared token)");
  await loadApps();
  $("nav").hidden = false;
  $("signout").hidden = false;
}

async function signIn(ev) {
  ev.preventDefault();
  sessionStorage.setItem("modgate.token", $("token").value.trim());
  localStorage.setItem("modgate.reviewer", $("reviewer").value.trim());
  try {
    await begin();
  } catch (e) {
    if (e.status !== 401) say(e.status ? "Could not reach the admin API: " + e.message : e.message, true);
    return;
  }
  $("token").value = "";
  say("Signed in as " + reviewer() + ".");
  show("review");
}

const loaders = {
  review: loadReview, audit: loadAudit, apps: loadAppList, keywords: loadKeywords,
  banks: loadBank, risk: loadRisk, usage: loadUsage, jobs: loadJobs,
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

function reviewQuery() {
  const q = new URLSearchParams();
  const set = (name, value) => { if (value) q.set(name, value); };
  set("q", $("review-q").value.trim());
  set("appid", $("review-app").value);
  set("state", $("review-state").value);
  set("kind", $("review-kind").value);
  set("reason", $("review-reason").value);
  set("label", $("review-label").value.trim());
  q.set("offset", String(state.offset));
  q.set("limit", String(PAGE));
  return q;
}

async function loadReview() {
  const data = await api("GET", "/admin/review/items?" + reviewQuery());
  if (data.items.length === 0 && state.offset > 0 && data.total > 0) {
    // The page emptied (items decided elsewhere): show the last one there is.
    state.offset = Math.floor((data.total - 1) / PAGE) * PAGE;
    return loadReview();
  }
  state.items = data.items;
  state.total = data.total;
  const present = new Set(data.items.map((i) => i.id));
  for (const id of [...state.chosen]) if (!present.has(id)) state.chosen.delete(id);
  const body = $("review-items").tBodies[0];
  body.replaceChildren();
  data.items.forEach((item, i) => {
    const tr = el("tr", { tabIndex: 0 });
    tr.dataset.id = item.id;
    const box = el("input", { type: "checkbox", checked: state.chosen.has(item.id), className: "choose" });
    box.setAttribute("aria-label", "Select " + item.id);
    box.addEventListener("click", (ev) => { ev.stopPropagation(); choose(item.id, box.checked); });
    tr.append(el("td", null, box), cell(ago(item.created_ms)), cell(item.appid), cell(item.reason),
      cell(item.suggest + " " + item.label, item.suggest), cell(item.hits.join(", ")),
      cell(preview(item), "content"), cell(itemState(item)));
    tr.addEventListener("click", () => select(i));
    body.append(tr);
  });
  $("review-page").textContent = pagerText(state.offset, data.items.length, data.total);
  $("review-prev").disabled = state.offset === 0;
  $("review-next").disabled = state.offset + data.items.length >= data.total;
  showChosen();
  say(data.total + " item(s) match.");
  select(Math.min(Math.max(state.selected, 0), data.items.length - 1));
}

function page(step) {
  const next = state.offset + step * PAGE;
  if (next < 0 || next >= Math.max(state.total, 1)) return;
  state.offset = next;
  state.selected = 0;
  loadReview().catch((e) => say(e.message, true));
}

function choose(id, on) {
  if (on) state.chosen.add(id); else state.chosen.delete(id);
  showChosen();
}

function showChosen() {
  const n = state.chosen.size;
  $("bulk-count").textContent = n + " selected";
  for (const b of ["bulk-claim", "bulk-release", "bulk-risky", "bulk-pass"]) $(b).disabled = n === 0;
  for (const box of document.querySelectorAll("#review-items tbody input.choose")) {
    box.checked = state.chosen.has(box.closest("tr").dataset.id);
  }
  $("review-all").checked = state.items.length > 0 && state.items.every((i) => state.chosen.has(i.id));
}

async function bulk(action) {
  const ids = [...state.chosen];
  if (ids.length === 0) return;
  const body = { ids, action, reason: $("bulk-reason").value.trim() };
  if (!state.me.name) body.reviewer = reviewer();
  const done = await api("POST", "/admin/review/bulk", body);
  state.chosen.clear();
  await loadReview();
  const failures = done.results.filter((r) => !r.ok).map((r) => r.id + ": " + r.error);
  say(action + ": " + done.done + " done" + (done.failed ? ", " + done.failed + " not (" + failures.join("; ") + ")" : "") + ".", done.failed > 0);
}

function releasePreview() {
  if (state.preview) URL.revokeObjectURL(state.preview);
  state.preview = null;
}

// The file of a media item, through the admin listener.
async function showMedia(item, into) {
  releasePreview();
  into.replaceChildren(el("p", { className: "hint", textContent: "Loading the file…" }));
  try {
    const resp = await call("GET", "/admin/review/items/" + enc(item.id) + "/media");
    const blob = await resp.blob();
    if (state.items[state.selected] !== item) return;
    state.preview = URL.createObjectURL(blob);
    const media = blob.type.startsWith("audio/")
      ? el("audio", { controls: true, src: state.preview, id: "review-media" })
      : el("img", { src: state.preview, alt: "the submitted image", id: "review-media" });
    into.replaceChildren(media);
  } catch (e) {
    into.replaceChildren(el("p", { className: "error", textContent: "No preview: " + e.message }));
  }
}

function select(i) {
  state.selected = i;
  const rows = $("review-items").tBodies[0].rows;
  for (let r = 0; r < rows.length; r++) rows[r].setAttribute("aria-selected", String(r === i));
  const detail = $("review-detail");
  const item = state.items[i];
  if (!item) { releasePreview(); detail.replaceChildren(el("p", { className: "hint", textContent: "Nothing to review here." })); return; }
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
    const box = el("div", { className: "preview", id: "review-preview" });
    parts.push(box);
    parts.push(el("p", { className: "hint", textContent: "URL " + item.content.url }));
    parts.push(el("p", { textContent: "hash " + (item.content.hash || "(none)") }));
    parts.push(button("Job record", () => { show("jobs"); return lookUp(item.id); }, { id: "act-job" }));
    parts.push(el("pre", { textContent: JSON.stringify(item.content.analysis, null, 2) }));
    showMedia(item, box);
  }
  parts.push(el("p", null, "hits: ", ...item.hits.map((h) => el("span", { className: "tag", textContent: h }))));
  parts.push(el("p", { textContent: itemState(item) + (item.decision && item.decision.reason ? " — " + item.decision.reason : "") + (item.decision && item.decision.feedback ? " (" + item.decision.feedback + ")" : "") }));
  if (!item.decision) {
    const reason = el("input", { id: "decide-reason", placeholder: "reason", maxLength: 500 });
    const feedback = el("input", { id: "decide-feedback", type: "checkbox" });
    const keyword = el("input", { id: "decide-keyword", placeholder: item.hits[0] || "keyword", size: 12 });
    parts.push(el("div", { className: "row" },
      el("label", null, "Reason", reason),
      isAdmin() ? el("label", null, "Feed back to the table/bank", feedback) : "",
      isAdmin() && item.content.kind === "text" ? el("label", null, "Keyword", keyword) : ""));
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
    await api("POST", "/admin/review/items/" + enc(item.id) + "/" + action, { reviewer: reviewer() });
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
    const done = await api("POST", "/admin/review/items/" + enc(item.id) + "/decision", body);
    await loadReview();
    say("Decided " + outcome + (done.decision.feedback ? "; " + done.decision.feedback : "") + ".");
  } catch (e) { say(e.message, true); }
}

// ---- audit log ----

async function loadAudit() {
  const q = new URLSearchParams();
  const set = (name, value) => { if (value) q.set(name, value); };
  set("appid", $("audit-app").value);
  set("reviewer", $("audit-reviewer").value.trim());
  set("outcome", $("audit-outcome").value);
  set("kind", $("audit-kind").value);
  const ms = (input) => (input.value ? String(new Date(input.value).getTime()) : "");
  set("since_ms", ms($("audit-since")));
  set("until_ms", ms($("audit-until")));
  q.set("offset", String(state.auditOffset));
  q.set("limit", String(PAGE));
  const resp = await call("GET", "/admin/review/audit?" + q);
  state.auditTotal = Number(resp.headers.get("X-Total-Count") || "0");
  const entries = await resp.json();
  const body = $("audit-table").tBodies[0];
  body.replaceChildren();
  for (const e of entries) {
    body.append(el("tr", null, cell(when(e.decided_ms)), cell(e.appid), cell(e.kind), cell(e.outcome, e.outcome),
      cell(e.reviewer), cell(e.reason), cell(duration(e.age_ms)), cell(e.feedback || ""), cell(e.id)));
  }
  $("audit-page").textContent = pagerText(state.auditOffset, entries.length, state.auditTotal);
  $("audit-prev").disabled = state.auditOffset === 0;
  $("audit-next").disabled = state.auditOffset + entries.length >= state.auditTotal;
  say(state.auditTotal + " decision(s) match.");
}

function auditPage(step) {
  const next = state.auditOffset + step * PAGE;
  if (next < 0 || next >= Math.max(state.auditTotal, 1)) return;
  state.auditOffset = next;
  loadAudit().catch((e) => say(e.message, true));
}

// ---- apps ----

const APP_FIELDS = [
  { key: "appid", label: "appid", hint: "wx and 16 hex digits" },
  { key: "secret", label: "Secret", type: "password", hint: "32 letters or digits" },
  { key: "original_id", label: "Original id (gh_…)" },
  { key: "push_url", label: "Push URL", hint: "where media verdicts are pushed" },
  { key: "push_token", label: "Push token", type: "password" },
  { key: "push_format", label: "Push format", options: ["", "json", "xml"] },
  { key: "push_mode", label: "Push mode", options: ["", "plain", "aes", "compat"] },
  { key: "encoding_aes_key", label: "EncodingAESKey", type: "password" },
  { key: "text_per_minute", label: "Text checks per minute", number: true },
  { key: "text_per_day", label: "Text checks per day", number: true },
  { key: "media_per_minute", label: "Media checks per minute", number: true },
  { key: "media_per_day", label: "Media checks per day", number: true },
  { key: "image_per_minute", label: "Image checks per minute", number: true },
  { key: "image_per_day", label: "Image checks per day", number: true },
  { key: "visit_check", label: "Visit check", options: ["", "report", "off"] },
];

function buildAppForm() {
  const box = $("app-fields");
  box.replaceChildren();
  for (const f of APP_FIELDS) {
    const input = f.options
      ? el("select", { id: "app-" + f.key }, ...f.options.map((o) => el("option", { value: o, textContent: o || "(default)" })))
      : el("input", { id: "app-" + f.key, type: f.type || "text", inputMode: f.number ? "numeric" : "text", autocomplete: "off", placeholder: f.hint || "" });
    const error = el("span", { className: "field-error", id: "app-" + f.key + "-error" });
    input.setAttribute("aria-describedby", error.id);
    box.append(el("label", { className: "field" }, f.label, input, error));
  }
}

function clearFieldErrors() {
  for (const f of APP_FIELDS) {
    $("app-" + f.key + "-error").textContent = "";
    $("app-" + f.key).removeAttribute("aria-invalid");
  }
}

function editApp(app) {
  clearFieldErrors();
  $("app-form-title").textContent = app ? "App " + app.appid : "New app";
  for (const f of APP_FIELDS) {
    const v = app ? app[f.key] : undefined;
    $("app-" + f.key).value = v === undefined || v === null ? "" : String(v);
  }
  $("app-appid").readOnly = Boolean(app);
  $("app-form").dataset.editing = app ? app.appid : "";
}

async function loadAppList() {
  const apps = await api("GET", "/admin/apps");
  const body = $("apps-table").tBodies[0];
  body.replaceChildren();
  for (const a of apps) {
    const tr = el("tr", { tabIndex: 0 }, cell(a.appid), cell(a.has_push_url ? "yes" : "no"));
    tr.dataset.appid = a.appid;
    tr.addEventListener("click", async () => {
      try { editApp(await api("GET", "/admin/apps/" + enc(a.appid))); } catch (e) { say(e.message, true); }
    });
    body.append(tr);
  }
  say(apps.length + " app(s).");
}

async function saveApp(ev) {
  ev.preventDefault();
  clearFieldErrors();
  const body = {};
  for (const f of APP_FIELDS) {
    const raw = $("app-" + f.key).value.trim();
    if (raw === "") continue;
    body[f.key] = f.number && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  const appid = $("app-form").dataset.editing || body.appid || "";
  if (!appid) {
    $("app-appid-error").textContent = "is required";
    $("app-appid").setAttribute("aria-invalid", "true");
    say("The app needs an appid.", true);
    return;
  }
  try {
    const saved = await api("PUT", "/admin/apps/" + enc(appid), body);
    await loadApps();
    await loadAppList();
    editApp(saved);
    say("Saved " + appid + ".");
  } catch (e) {
    let marked = 0;
    for (const fe of e.fields) {
      const key = fe.key.replace(/^app\./, "");
      const out = $("app-" + key + "-error");
      if (!out) continue;
      out.textContent = fe.message;
      $("app-" + key).setAttribute("aria-invalid", "true");
      marked++;
    }
    say(marked ? "Not saved: " + marked + " field(s) to fix." : e.message, true);
  }
}

// ---- keyword tables ----

async function loadKeywords() {
  const appid = $("kw-app").value;
  const body = $("kw-table").tBodies[0];
  body.replaceChildren();
  if (!appid) return;
  const entries = await api("GET", "/admin/apps/" + enc(appid) + "/keywords");
  for (const e of entries) {
    const del = button("Delete", async () => {
      await api("DELETE", "/admin/apps/" + enc(appid) + "/keywords/" + enc(e.keyword));
      await loadKeywords();
      say("Deleted " + e.keyword + ".");
    }, { className: "admin-only" });
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
    await api("POST", "/admin/apps/" + enc(appid) + "/keywords", [entry]);
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
    const done = await api("PUT", "/admin/apps/" + enc(appid) + "/keywords", text, type);
    await loadKeywords();
    say("Table replaced: " + done.count + " keyword(s).");
  } catch (e) { say(e.message, true); }
}

async function exportKeywords() {
  const appid = $("kw-app").value;
  try {
    const csv = await api("GET", "/admin/apps/" + enc(appid) + "/keywords?format=csv");
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
  const entries = await api("GET", "/admin/banks/" + enc(scope));
  for (const e of entries) {
    const del = button("Delete", async () => {
      await api("DELETE", "/admin/banks/" + enc(scope) + "/" + e.hash);
      await loadBank();
    }, { className: "admin-only" });
    body.append(el("tr", null, cell(e.hash), cell(e.kind), cell(e.label), cell(e.suggest, e.suggest), cell(e.note), el("td", null, del)));
  }
  say(entries.length + " entr" + (entries.length === 1 ? "y" : "ies") + " in the " + scope + " bank.");
}

// Each file is one upload: the gateway hashes it (PDQ for an image, SHA-256 for audio).
async function uploadBank(ev) {
  ev.preventDefault();
  const scope = $("bank-scope").value;
  const files = [...$("bank-files").files];
  const q = new URLSearchParams({ label: $("bank-label").value, suggest: $("bank-suggest").value });
  if ($("bank-note").value.trim()) q.set("note", $("bank-note").value.trim());
  const failed = [];
  let added = 0;
  for (const f of files) {
    try {
      await api("POST", "/admin/banks/" + enc(scope) + "?" + q, f);
      added++;
    } catch (e) { failed.push(f.name + ": " + e.message); }
  }
  $("bank-files").value = "";
  await loadBank();
  say("Uploaded " + added + " of " + files.length + " file(s)" + (failed.length ? "; " + failed.join("; ") : "") + ".", failed.length > 0);
}

async function addBank(ev) {
  ev.preventDefault();
  try {
    await api("POST", "/admin/banks/" + enc($("bank-scope").value), $("bank-text").value);
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
  const entries = await api("GET", "/admin/apps/" + enc(appid) + "/risk-lists");
  for (const e of entries) {
    const del = button("Delete", async () => {
      await api("DELETE", "/admin/apps/" + enc(appid) + "/risk-lists/" + e.type + "/" + enc(e.value));
      await loadRisk();
    }, { className: "admin-only" });
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
    await api("POST", "/admin/apps/" + enc(appid) + "/risk-lists", [entry]);
    $("risk-value").value = "";
    await loadRisk();
  } catch (e) { say(e.message, true); }
}

// ---- usage ----

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A line chart of `series` ({name, cls, values}) over steps from `startMs`, `stepSecs` apart.
function chart(series, startMs, stepSecs) {
  const W = 640, H = 220, L = 44, R = 10, T = 12, B = 28;
  const n = series[0].values.length;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => L + (i * (W - L - R)) / Math.max(1, n - 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const total = (s) => s.values.reduce((a, b) => a + b, 0);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", width: "100%" });
  root.append(svg("title", {}, series.map((s) => s.name + " " + total(s)).join(", ")));
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(max * frac);
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  const label = (i) => {
    const d = new Date(startMs + i * stepSecs * 1000);
    return d.toTimeString().slice(0, 5);
  };
  for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
    root.append(svg("text", { x: x(i), y: H - 8, "text-anchor": "middle", class: "axis" }, label(i)));
  }
  for (const s of series) {
    const points = s.values.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    root.append(svg("polyline", { points, class: "line " + s.cls }));
  }
  const legend = el("p", { className: "legend" }, ...series.map((s) => el("span", { className: "key " + s.cls, textContent: s.name + " " + total(s) })));
  return [root, legend];
}

async function loadUsage() {
  const span = $("usage-span").value;
  const data = await api("GET", "/admin/usage?span=" + span);
  const body = $("usage-table").tBodies[0];
  body.replaceChildren();
  for (const a of data.apps) {
    const tr = el("tr", { tabIndex: 0 }, cell(a.appid), cell(a.checks), cell(a.pass, "pass"), cell(a.review, "review"), cell(a.risky, "risky"), cell(a.refused));
    tr.dataset.appid = a.appid;
    tr.setAttribute("aria-selected", String(a.appid === state.usageApp));
    tr.addEventListener("click", () => { state.usageApp = a.appid; loadUsage().catch((e) => say(e.message, true)); });
    body.append(tr);
  }
  if (!state.usageApp && data.apps.length) state.usageApp = data.apps[0].appid;
  if (state.usageApp) await usageOf(state.usageApp, span);
  await loadRates();
  say(data.apps.length + " app(s) with traffic in the last " + span + ".");
}

async function usageOf(appid, span) {
  const h = await api("GET", "/admin/usage/" + enc(appid) + "?span=" + span);
  const sum = (kind) => h.msg_sec_check[kind].map((v, i) => v + h.img_sec_check[kind][i] + h.media_check_async[kind][i]);
  $("usage-title").textContent = appid + " · per " + (h.step_secs === 60 ? "minute" : "hour");
  $("usage-chart").replaceChildren(...chart([
    { name: "pass", cls: "pass", values: sum("pass") },
    { name: "review", cls: "review", values: sum("review") },
    { name: "risky", cls: "risky", values: sum("risky") },
    { name: "refused", cls: "refused", values: h.refused },
  ], h.start_ms, h.step_secs));
  const u = await api("GET", "/admin/apps/" + enc(appid) + "/usage");
  const quota = $("quota-table").tBodies[0];
  quota.replaceChildren();
  for (const name of ["msg_sec_check", "media_check_async", "img_sec_check", "visit_report", "risk_rank"]) {
    const q = u[name];
    quota.append(el("tr", null, cell(name), cell(q.used_today), cell(q.daily_limit), cell(q.per_minute)));
  }
  quota.append(el("tr", null, cell("undecided reviews"), cell(u.review_pending), cell(""), cell("")));
}

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

async function loadRates() {
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
}

// ---- media jobs ----

async function loadJobs() {
  const jobState = $("jobs-state").value;
  const jobs = await api("GET", "/admin/media?state=" + jobState + "&limit=200");
  state.jobs = jobs;
  const body = $("jobs-table").tBodies[0];
  body.replaceChildren();
  for (const j of jobs) {
    const retry = j.state === "dead"
      ? button("Retry", async () => {
        await api("POST", "/admin/media/" + enc(j.trace_id) + "/retry");
        await loadJobs();
        say("Job " + j.trace_id + " is pushed again.");
      }, { className: "admin-only" })
      : "";
    if (retry) retry.setAttribute("aria-label", "Retry " + j.trace_id);
    const tr = el("tr", { tabIndex: 0 }, cell(ago(j.created_ms)), cell(j.appid), cell(j.media_type),
      cell(j.attempts), cell(j.last_error || "", "content"), el("td", null, retry));
    tr.dataset.id = j.trace_id;
    tr.addEventListener("click", () => renderJob(j));
    body.append(tr);
  }
  say(jobs.length + " " + jobState + " job(s)" + (jobs.length === 200 ? " (the oldest 200)" : "") + ".");
}

function renderJob(job) {
  const v = job.verdict;
  const parts = [
    el("h3", { textContent: job.state + " · " + job.appid + " · " + job.media_type }),
    el("p", { className: "hint", textContent: "trace_id " + job.trace_id + " · created " + when(job.created_ms) + " · " + job.attempts + " push attempt(s)" }),
    el("p", { className: "hint", textContent: "URL " + job.media_url }),
  ];
  if (job.last_error) parts.push(el("p", { className: "error", textContent: "last error: " + job.last_error }));
  if (v) {
    parts.push(el("p", null, "verdict: ", el("strong", { className: v.result.suggest, textContent: v.result.suggest + " " + v.result.label })));
    if (v.strategies && v.strategies.length) {
      const t = el("table", { className: "list", id: "job-strategies" },
        el("thead", null, el("tr", null, ...["strategy", "outcome", "ms", "note"].map((h) => el("th", { textContent: h })))));
      const tb = el("tbody");
      for (const s of v.strategies) tb.append(el("tr", null, cell(s.strategy), cell(s.outcome), cell(s.ms.toFixed(1)), cell(s.note || "")));
      t.append(tb);
      parts.push(el("h4", { textContent: "Strategies" }), t);
    }
    const text = (v.media && v.media.text) || [];
    parts.push(el("h4", { textContent: "Recognised text" }));
    parts.push(text.length ? el("div", { className: "text", id: "job-text", textContent: text.join("\n") }) : el("p", { className: "hint", textContent: "none" }));
    parts.push(el("details", null, el("summary", { textContent: "The verdict as pushed" }), el("pre", { textContent: JSON.stringify(v, null, 2) })));
  }
  $("job-detail").replaceChildren(...parts);
}

async function lookUp(id) {
  try {
    const job = await api("GET", "/admin/media/" + enc(id));
    $("job-id").value = id;
    renderJob(job);
    say("Job " + job.state + ".");
  } catch (e) {
    $("job-detail").replaceChildren();
    say(e.message, true);
  }
}

// ---- keyboard ----

function onKey(ev) {
  if (!token() || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target.tagName;
  if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT") return;
  if (/^[1-8]$/.test(ev.key)) { show(VIEWS[Number(ev.key) - 1]); return; }
  if (state.view !== "review") return;
  const keys = {
    j: () => select(Math.min(state.selected + 1, state.items.length - 1)),
    k: () => select(Math.max(state.selected - 1, 0)),
    x: () => { const i = state.items[state.selected]; if (i) choose(i.id, !state.chosen.has(i.id)); },
    n: () => page(1), b: () => page(-1),
    c: () => act("claim"), u: () => act("release"),
    r: () => decide("risky"), p: () => decide("pass"),
  };
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
}

const safely = (fn) => () => fn().catch((e) => say(e.message, true));
const submit = (id, fn) => $(id).addEventListener("submit", (e) => { e.preventDefault(); fn().catch((err) => say(err.message, true)); });

document.addEventListener("DOMContentLoaded", () => {
  buildAppForm();
  $("login-form").addEventListener("submit", signIn);
  $("reviewer").value = typedName();
  $("signout").addEventListener("click", () => signOut());
  for (const b of document.querySelectorAll("nav button[data-view]")) b.addEventListener("click", () => show(b.dataset.view));
  submit("review-filter", () => { state.offset = 0; state.selected = 0; return loadReview(); });
  $("review-prev").addEventListener("click", () => page(-1));
  $("review-next").addEventListener("click", () => page(1));
  $("review-all").addEventListener("change", () => {
    const on = $("review-all").checked;
    for (const i of state.items) choose(i.id, on);
  });
  for (const action of ["claim", "release", "risky", "pass"]) {
    $("bulk-" + action).addEventListener("click", safely(() => bulk(action)));
  }
  submit("audit-filter", () => { state.auditOffset = 0; return loadAudit(); });
  $("audit-prev").addEventListener("click", () => auditPage(-1));
  $("audit-next").addEventListener("click", () => auditPage(1));
  $("app-form").addEventListener("submit", saveApp);
  $("app-new").addEventListener("click", () => editApp(null));
  $("kw-app").addEventListener("change", safely(loadKeywords));
  $("kw-add").addEventListener("submit", addKeyword);
  $("kw-import").addEventListener("submit", importKeywords);
  $("kw-export").addEventListener("click", exportKeywords);
  $("bank-scope").addEventListener("change", safely(loadBank));
  $("bank-upload").addEventListener("submit", (e) => uploadBank(e).catch((err) => say(err.message, true)));
  $("bank-add").addEventListener("submit", addBank);
  $("risk-app").addEventListener("change", safely(loadRisk));
  $("risk-add").addEventListener("submit", addRisk);
  submit("usage-form", loadUsage);
  $("usage-span").addEventListener("change", safely(loadUsage));
  submit("jobs-filter", loadJobs);
  $("job-form").addEventListener("submit", (e) => { e.preventDefault(); lookUp($("job-id").value.trim()); });
  document.addEventListener("keydown", onKey);
  if (token()) {
    begin().then(() => show("review")).catch(() => signOut());
  }
});
