// RTIC cases: case officers, officers and supervisors see their cases and open one (its
// timeline newest first, evidence and linked records), kept live by `case_update` frames.
// Plain JS, no dependencies, nothing from the internet.
// HTTP: GET /api/cases (the cases this token may see, newest first), GET /api/cases/{ref}
// (one case: {case, timeline, links, evidence}; 404 for a case this token may not see),
// GET /api/evidence/{id} (an item's metadata with its storage location; the gateway audits it).
// Websocket /ws: hello -> subscribe -> subscribed; case_update {case_ref, status, at, entry?, link?}.
"use strict";

const STATUS_WORDS = {
  received: "Received",
  assessed: "Assessed, waiting for an officer",
  under_investigation: "Under investigation",
  closed: "Closed",
};
const ENTRY_WORDS = {
  received: "Received",
  assessed: "Assessed",
  officer_assigned: "Officer assigned",
  visit_booked: "Visit booked",
  officer_en_route: "Officer on the way",
  officer_attended: "Officer attended",
  statement_taken: "Statement taken",
  evidence_received: "Evidence received",
  suspect_identified: "Suspect identified",
  update: "Update",
  alert_raised: "Alert raised",
  outcome: "Outcome",
  closed: "Closed",
};
const EVIDENCE_WORDS = {
  body_worn_video: "Body-worn video",
  photo: "Photo",
  cctv: "CCTV",
  document: "Document",
  audio: "Audio",
  other: "Other",
};
const LINK_WORDS = { call: "Call", incident: "Incident", alert: "Alert", evidence: "Evidence", statement: "Statement" };
const ROLE_WORDS = { rtic_analyst: "RTIC analyst", case_officer: "case officer", officer: "officer", supervisor: "supervisor", citizen: "citizen" };
const LIST_TITLES = { supervisor: "Cases in my areas", case_officer: "My cases", officer: "My cases" };

const state = {
  token: null, // from the link's ticket, or this tab's session (session.js)
  ws: null,
  retry: 1000,
  connectedBefore: false,
  role: null,
  cases: new Map(), // case_ref -> case row
  open: null, // the open case: {case, timeline, links, evidence}
  openRef: null,
  listLoaded: false,
  changed: new Set(), // cases changed live since the user last opened them
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function words(code) {
  const text = String(code || "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function when(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

function newestFirst(a, b) {
  // Times as the gateway sends them (ISO 8601); compared as instants, not as text.
  return (Date.parse(b) || 0) - (Date.parse(a) || 0);
}

function setStatus(text, cls) {
  const s = $("#status");
  s.textContent = text;
  s.className = "status " + cls;
}

// ---- HTTP ------------------------------------------------------------------------

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const e = data && data.error;
    const err = new Error((typeof e === "string" ? e : e && e.message) || `the gateway answered ${response.status}`);
    err.status = response.status;
    throw err;
  }
  return data;
}

function refusal(err, what) {
  if (err.status === 401) return "Your session was refused (invalid or expired). Open the page with a new link.";
  if (err.status === 403) return "This page is for case officers, officers and supervisors.";
  if (err.status === 404) return `There is no ${what} that you may see.`;
  return `Could not load ${what}: ${err.message}.`;
}

// ---- the list of cases -------------------------------------------------------------

async function loadList() {
  let rows;
  try {
    rows = (await api("/api/cases")).cases || [];
  } catch (err) {
    $("#list-message").textContent = refusal(err, "your cases");
    return;
  }
  state.cases = new Map(rows.map((row) => [row.case_ref, row]));
  state.listLoaded = true;
  renderList();
}

function renderList() {
  if (!state.listLoaded) return; // loading, or refused: the message says which
  const needle = $("#filter").value.trim().toLowerCase();
  const showClosed = $("#show-closed").checked;
  const rows = [...state.cases.values()]
    .filter((c) => showClosed || c.status !== "closed" || c.case_ref === state.openRef)
    .filter((c) => !needle || [c.case_ref, c.address, words(c.category), c.officer_in_charge]
      .some((v) => v && String(v).toLowerCase().includes(needle)))
    .sort((a, b) => newestFirst(a.updated_at || "", b.updated_at || ""));
  $("#case-list").replaceChildren(...rows.map(caseItem));
  const closed = [...state.cases.values()].filter((c) => c.status === "closed").length;
  let message = "";
  if (!state.cases.size) message = "No cases yet.";
  else if (!rows.length) message = "No case matches.";
  else message = `${rows.length} case${rows.length === 1 ? "" : "s"}, latest change first${!showClosed && closed ? ` (${closed} closed hidden)` : ""}.`;
  $("#list-message").textContent = message;
}

function caseItem(c) {
  const link = el("a", { href: "#" + encodeURIComponent(c.case_ref), class: "case-link",
      "aria-current": c.case_ref === state.openRef ? "true" : null },
    el("span", { class: "ref" }, c.case_ref),
    el("span", { class: "badge status-" + c.status }, STATUS_WORDS[c.status] || words(c.status)),
    el("span", { class: "line" }, [words(c.category), c.grade ? `grade ${c.grade}` : null].filter(Boolean).join(", ")),
    c.address ? el("span", { class: "line muted" }, c.address) : null,
    el("span", { class: "line muted" }, [c.officer_in_charge ? `Officer in charge: ${c.officer_in_charge}` : "No officer in charge yet",
      c.updated_at ? `changed ${when(c.updated_at)}` : null].filter(Boolean).join(" · ")));
  if (state.changed.has(c.case_ref)) link.append(el("span", { class: "line changed-note" }, "New update"));
  return el("li", { class: "case-item" + (state.changed.has(c.case_ref) ? " changed" : ""), "data-case-ref": c.case_ref }, link);
}

// ---- one case ----------------------------------------------------------------------

function route() {
  const ref = decodeURIComponent(location.hash.slice(1));
  if (ref) openCase(ref);
  else closeCase();
}

async function openCase(ref) {
  const previous = state.openRef;
  state.openRef = ref;
  state.changed.delete(ref);
  document.body.classList.add("case-open");
  $("#case").hidden = false;
  $("#case-placeholder").hidden = true;
  if (previous !== ref) {
    state.open = null;
    $("#case-title").textContent = ref;
    $("#case-status").textContent = "";
    $("#case-summary").textContent = "Loading…";
    for (const id of ["#case-facts", "#timeline", "#evidence", "#links"]) $(id).replaceChildren();
    $("#case-live").textContent = "";
    $("#case").scrollTop = 0;
    window.scrollTo(0, 0);
    $("#case-title").focus();
  }
  renderList();
  let view;
  try {
    view = await api(`/api/cases/${encodeURIComponent(ref)}`);
  } catch (err) {
    if (state.openRef === ref) $("#case-summary").textContent = refusal(err, `case ${ref}`);
    return;
  }
  if (state.openRef !== ref) return; // the user opened another case meanwhile
  state.open = normalise(view);
  renderCase();
}

function normalise(view) {
  // Staff get {case, timeline, links, evidence}; a citizen's answer is flat.
  const c = view.case || { case_ref: view.case_ref, status: view.status };
  return { case: c, timeline: view.timeline || [], links: view.links || [], evidence: view.evidence || [] };
}

function closeCase() {
  const was = state.openRef;
  state.openRef = null;
  state.open = null;
  document.body.classList.remove("case-open");
  $("#case").hidden = true;
  $("#case-placeholder").hidden = false;
  renderList();
  if (was) {
    const link = document.querySelector(`li[data-case-ref="${CSS.escape(was)}"] a`);
    if (link) link.focus();
  }
}

function renderCase() {
  const { case: c, timeline, links, evidence } = state.open;
  $("#case-title").textContent = c.case_ref;
  const badge = $("#case-status");
  badge.textContent = STATUS_WORDS[c.status] || words(c.status);
  badge.className = "badge status-" + c.status;
  $("#case-summary").textContent = [c.category && words(c.category), c.grade ? `grade ${c.grade}` : null,
    c.opened_at ? `opened ${when(c.opened_at)}` : null].filter(Boolean).join(", ");
  const reporter = c.reporter || {};
  $("#case-facts").replaceChildren(...facts([
    ["Officer in charge", c.officer_in_charge || "none yet"],
    ["Attending", (c.attending || []).join(", ")],
    ["Address", c.address],
    ["Reported by", [reporter.name, reporter.phone, reporter.email].filter(Boolean).join(", ")],
    ["Area codes", (c.area || []).join(", ")],
    ["Last change", c.updated_at && when(c.updated_at)],
    ["Closed", c.closed_at && when(c.closed_at)],
  ]));
  const entries = timeline.map((e, i) => [e, i]).sort(([a, i], [b, j]) => newestFirst(a.at, b.at) || j - i);
  $("#timeline").replaceChildren(...(entries.length ? entries.map(([e]) => timelineItem(e)) : [el("li", { class: "muted" }, "Nothing yet.")]));
  $("#evidence").replaceChildren(...(evidence.length ? evidence.map(evidenceItem) : [el("li", { class: "muted" }, "No evidence yet.")]));
  $("#links").replaceChildren(...(links.length ? links.map(linkItem) : [el("li", { class: "muted" }, "None.")]));
}

function facts(pairs) {
  const out = [];
  for (const [k, v] of pairs) {
    if (v == null || v === "") continue;
    out.push(el("dt", {}, k), el("dd", {}, v));
  }
  return out;
}

function timelineItem(e) {
  return el("li", { class: "entry" + (e.citizen_visible === false ? " staff-only" : ""), "data-entry-id": e.entry_id, "data-kind": e.kind },
    el("div", { class: "entry-head" },
      el("time", { dateTime: e.at }, when(e.at)),
      el("span", { class: "kind" }, ENTRY_WORDS[e.kind] || words(e.kind)),
      e.citizen_visible === false ? el("span", { class: "tag" }, "staff only") : null),
    el("div", { class: "text" }, e.text),
    e.staff_note ? el("div", { class: "note" }, `Staff note: ${e.staff_note}`) : null,
    e.source ? el("div", { class: "source" }, `From ${sourceWords(e.source)}`) : null);
}

function sourceWords(source) {
  const i = source.indexOf(":");
  return i < 0 ? source : `${(LINK_WORDS[source.slice(0, i)] || words(source.slice(0, i))).toLowerCase()} ${source.slice(i + 1)}`;
}

function evidenceItem(item) {
  const name = item.filename || item.description || item.evidence_id;
  const size = typeof item.bytes === "number" ? sizeWords(item.bytes) : null;
  const where = el("div", { class: "where", role: "status" });
  const button = el("button", { type: "button", class: "small", "data-evidence-id": item.evidence_id,
    "aria-label": `Show where ${name} is stored` }, "Show where it is stored");
  button.addEventListener("click", async () => {
    where.textContent = "Loading…";
    try {
      const meta = await api(`/api/evidence/${encodeURIComponent(item.evidence_id)}`);
      const data = meta.evidence || meta;
      where.textContent = `Stored at ${data.storage_uri}. Your access is recorded.`;
    } catch (err) {
      where.textContent = refusal(err, "such evidence");
    }
  });
  return el("li", { class: "evidence-item", "data-evidence-id": item.evidence_id },
    el("div", { class: "entry-head" }, el("span", { class: "kind" }, EVIDENCE_WORDS[item.kind] || words(item.kind)), el("span", {}, name)),
    el("div", { class: "muted" }, [`captured by ${item.captured_by}`, when(item.captured_at), size, item.content_type].filter(Boolean).join(" · ")),
    item.description && item.description !== name ? el("div", {}, item.description) : null,
    el("div", { class: "muted checksum", title: item.sha256 }, `SHA-256 ${String(item.sha256 || "").slice(0, 16)}…`),
    button, where);
}

function sizeWords(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function linkItem(link) {
  return el("li", { "data-link-kind": link.kind }, el("span", { class: "kind" }, LINK_WORDS[link.kind] || words(link.kind)), " ", link.id);
}

// ---- live: case_update frames --------------------------------------------------------

function onCaseUpdate(m) {
  const ref = m.case_ref;
  const known = state.cases.get(ref);
  const row = { ...(known || { case_ref: ref, opened_at: m.at, area: [] }) };
  if (m.status) row.status = m.status;
  for (const key of ["category", "grade", "officer_in_charge", "area"]) if (m[key] !== undefined) row[key] = m[key];
  if (m.at && (!row.updated_at || m.at > row.updated_at)) row.updated_at = m.at;
  state.cases.set(ref, row);
  if (ref !== state.openRef) state.changed.add(ref);
  renderList();
  if (!state.open || state.open.case.case_ref !== ref) return;
  const open = state.open;
  open.case = { ...open.case, ...row };
  if (m.entry && !open.timeline.some((e) => e.entry_id === m.entry.entry_id)) open.timeline.push(m.entry);
  if (m.link && !open.links.some((l) => l.kind === m.link.kind && l.id === m.link.id)) {
    open.links.push(m.link);
    if (m.link.kind === "evidence") {
      openCase(ref); // the frame names the item; its metadata comes with the case
      return;
    }
  }
  renderCase();
  $("#case-live").textContent = m.entry ? `Just now: ${m.entry.text}` : `Just now: ${STATUS_WORDS[row.status] || words(row.status)}`;
}

// ---- socket ----------------------------------------------------------------------

function connect() {
  const ws = RticSession.socket(state.token);
  state.ws = ws;
  setStatus("connecting", "connecting");
  ws.onmessage = (msg) => {
    let m;
    try { m = JSON.parse(msg.data); } catch { return; }
    switch (m.type) {
      case "hello":
        state.role = m.role;
        $("#who").textContent = `${m.sub} · ${ROLE_WORDS[m.role] || m.role}`;
        $("#list-title").textContent = LIST_TITLES[m.role] || "Cases";
        ws.send(JSON.stringify({ type: "subscribe" }));
        break;
      case "subscribed":
        setStatus("live", "live");
        state.retry = 1000;
        if (state.connectedBefore) {
          // Updates may have been missed while the socket was down: read the cases again.
          loadList();
          if (state.openRef) openCase(state.openRef);
        }
        state.connectedBefore = true;
        break;
      case "case_update": onCaseUpdate(m); break;
      default: break;
    }
  };
  ws.onclose = (e) => {
    setStatus(e.code === 1008 ? "disconnected: token refused or expired" : "disconnected: reconnecting", "disconnected");
    if (e.code === 1008) return;
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 10000);
  };
  ws.onerror = () => setStatus("disconnected: reconnecting", "disconnected");
}

async function main() {
  $("#filter").addEventListener("input", renderList);
  $("#show-closed").addEventListener("change", renderList);
  window.addEventListener("hashchange", route);
  const session = await RticSession.take("rtic.staff.token"); // shared with the desk (same tab)
  state.token = session.token;
  if (!state.token) {
    setStatus(session.refused ? "link refused" : "no token", "error");
    $("#list-message").textContent = `${session.refused || "This page needs a link."} Print a new one with: rtic token --link --role case_officer --sub YOUR-NAME`;
    return;
  }
  loadList();
  route();
  connect();
  setInterval(() => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "ping" }));
  }, 20000);
}

main();
