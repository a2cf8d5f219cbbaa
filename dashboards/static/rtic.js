// RTIC live: the analysts' dashboard. Plain JS, no dependencies, nothing from the internet.
// Protocol: docs/contract.md (hello -> subscribe -> subscribed; alert, event, alert_ack, acked,
// snoozed, unsnoozed, error, pong; the page sends `open` when an alert's detail opens, which the
// gateway records in the audit trail). HTTP: /api/audit (supervisors: an alert's audit history)
// and /api/search (analysts and supervisors: history search, with a reason and a reference).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const MAX_DOTS = 500;
const DOT_LIFETIME_MS = 60000;
const MAX_ALERTS = 200;
const REF_LAT = 52.48;
const KX = Math.cos((REF_LAT * Math.PI) / 180);
const SNOOZE_MINUTES = 60;

const state = {
  token: new URLSearchParams(location.search).get("token"),
  ws: null,
  retry: 1000,
  lastAlertId: null,
  alerts: new Map(), // alert_id -> alert
  events: new Map(), // event id -> {kind, event}
  areaNames: new Map(), // area code -> name
  severities: new Set(["critical", "high", "medium", "low"]),
  project: null,
  svg: null,
  layers: {},
  counts: { call: 0, incident: 0, anpr: 0, officer_location: 0, alerts: 0 },
  pingTimer: null,
  snoozePending: false, // a snooze or unsnooze sent from the detail panel, not yet answered
  role: null, // from the gateway's hello
  sub: null,
  auditTimer: null,
  returnFocus: null, // where the keyboard was before a panel opened
};

const SEARCH_ROLES = new Set(["rtic_analyst", "supervisor"]);
const CASE_ROLES = new Set(["officer", "case_officer", "supervisor"]);
const ROLE_WORDS = { rtic_analyst: "RTIC analyst", case_officer: "case officer", officer: "officer", supervisor: "supervisor", citizen: "citizen", system: "system" };
const AUDIT_RELOAD_MS = 2500; // the page's own `open` reaches the audit store within a second or two

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function setStatus(text, cls) {
  const s = $("#status");
  s.textContent = text;
  s.className = "status " + cls;
}

// ---- HTTP: the gateway's API, with this page's token --------------------------------

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const err = new Error(refusal(response.status, data));
    err.status = response.status;
    throw err;
  }
  return data;
}

function refusal(status, data) {
  // Errors are {"error": {"code", "message"}} (older routes: {"error": "message"}).
  const e = data && data.error;
  const message = typeof e === "string" ? e : e && e.message;
  if (status === 401) return "Your token was refused (invalid or expired). Open the page with a new token.";
  if (status === 403) return "Your role may not do this.";
  return message || `The gateway answered ${status}.`;
}

function dateTimeOf(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const today = new Date().toDateString() === d.toDateString();
  return today ? timeOf(iso) : d.toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false });
}

function words(code) {
  return String(code || "").replace(/_/g, " ");
}

// ---- map -------------------------------------------------------------------------

function eachRing(geometry, fn) {
  const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  for (const poly of polys) for (const ring of poly) fn(ring);
}

function buildProjection(features) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const f of features) {
    eachRing(f.geometry, (ring) => {
      for (const [lon, lat] of ring) {
        const x = lon * KX, y = -lat;
        if (x < minX) minX = x; if (x > maxX) maxX = x;
        if (y < minY) minY = y; if (y > maxY) maxY = y;
      }
    });
  }
  const scale = 1000 / Math.max(maxX - minX, maxY - minY);
  const pad = 20;
  return {
    point: (lon, lat) => [pad + (lon * KX - minX) * scale, pad + (-lat - minY) * scale],
    width: (maxX - minX) * scale + 2 * pad,
    height: (maxY - minY) * scale + 2 * pad,
    metresPerUnit: 111250 / scale,
  };
}

function pathFor(geometry, project) {
  const parts = [];
  eachRing(geometry, (ring) => {
    parts.push(ring.map(([lon, lat], i) => {
      const [x, y] = project.point(lon, lat);
      return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    }).join("") + "Z");
  });
  return parts.join("");
}

async function drawMap() {
  const [wards, districts, config] = await Promise.all([
    fetch("/api/boundaries?level=ward").then((r) => r.json()),
    fetch("/api/boundaries?level=district").then((r) => r.json()),
    fetch("/api/config").then((r) => r.json()),
  ]);
  $("#attribution").textContent = config.attribution || "";
  const project = buildProjection(districts.features);
  state.project = project;
  const svg = svgEl("svg", { viewBox: `0 0 ${project.width.toFixed(0)} ${project.height.toFixed(0)}`, role: "img",
    "aria-label": "West Midlands force area" });
  const layers = {};
  for (const name of ["wards", "districts", "labels", "events", "alerts"]) {
    layers[name] = svgEl("g", { class: "layer-" + name });
    svg.append(layers[name]);
  }
  for (const f of wards.features) {
    state.areaNames.set(f.properties.code, f.properties.name);
    const p = svgEl("path", { d: pathFor(f.geometry, project), class: "ward" });
    const title = svgEl("title");
    title.textContent = f.properties.name;
    p.append(title);
    layers.wards.append(p);
  }
  for (const f of districts.features) {
    state.areaNames.set(f.properties.code, f.properties.name);
    layers.districts.append(svgEl("path", { d: pathFor(f.geometry, project), class: "district" }));
    const b = bbox(f.geometry);
    const [x, y] = project.point((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
    const label = svgEl("text", { x: x.toFixed(0), y: y.toFixed(0), class: "district-label" });
    label.textContent = f.properties.name;
    layers.labels.append(label);
  }
  state.svg = svg;
  state.layers = layers;
  $("#map").prepend(svg);
  $("#map-message").textContent = "";
}

function bbox(geometry) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  let best = null, bestArea = -1;
  const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  for (const poly of polys) {
    const r = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [lon, lat] of poly[0]) {
      r[0] = Math.min(r[0], lon); r[1] = Math.min(r[1], lat); r[2] = Math.max(r[2], lon); r[3] = Math.max(r[3], lat);
    }
    const area = (r[2] - r[0]) * (r[3] - r[1]);
    if (area > bestArea) { bestArea = area; best = r; }
  }
  return best || b;
}

function position(kind, event) {
  if (kind === "call" || kind === "incident") return event.location ? [event.location.lat, event.location.lon] : null;
  if (typeof event.lat === "number" && typeof event.lon === "number") return [event.lat, event.lon];
  return null;
}

function eventId(kind, e) {
  return e.call_id || e.read_id || (e.incident_id && `${e.incident_id}:${e.event}`) || e.officer_id || "";
}

// ---- live feed -------------------------------------------------------------------

function onEvent(kind, event) {
  if (kind in state.counts) {
    state.counts[kind] += 1;
    const c = $("#count-" + kind);
    if (c) c.textContent = state.counts[kind];
  }
  if (!state.project) return;
  const pos = position(kind, event);
  if (!pos) return;
  const id = eventId(kind, event);
  state.events.set(id, { kind, event });
  const [x, y] = state.project.point(pos[1], pos[0]);
  const dot = svgEl("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: kind === "incident" ? 4.5 : 3.2,
    class: "event-dot kind-" + kind, "data-kind": kind, "data-id": id });
  dot.addEventListener("click", () => showEvent(id));
  const layer = state.layers.events;
  layer.append(dot);
  while (layer.childElementCount > MAX_DOTS) {
    const old = layer.firstElementChild;
    state.events.delete(old.getAttribute("data-id"));
    old.remove();
  }
  setTimeout(() => {
    if (dot.isConnected) { state.events.delete(id); dot.remove(); }
  }, DOT_LIFETIME_MS * 3);
}

function areaLabel(alert) {
  const names = (alert.area || []).map((c) => state.areaNames.get(c)).filter(Boolean);
  return names.slice(0, 2).join(", ") || (alert.area && alert.area.length ? alert.area[0] : "outside force area");
}

function timeOf(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString("en-GB", { hour12: false });
}

function onAlert(alert) {
  const known = state.alerts.get(alert.alert_id);
  if (known) {
    // Shown once, even if redelivered or resumed; a newer version (more hits) replaces it.
    if ((alert.version || 1) <= (known.version || 1)) return;
    const old = document.querySelector(`li.alert[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
    if (old) old.remove();
    const marker = document.querySelector(`.alert-marker[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
    if (marker) marker.remove();
    state.alerts.delete(alert.alert_id);
    state.counts.alerts -= 1;
  }
  state.alerts.set(alert.alert_id, alert);
  state.lastAlertId = alert.alert_id;
  state.counts.alerts += 1;
  $("#count-alerts").textContent = state.counts.alerts;
  $("#no-alerts").hidden = true;
  const li = el("li", { class: "alert" + (state.severities.has(alert.severity) ? "" : " hidden"),
      "data-alert-id": alert.alert_id, "data-severity": alert.severity, tabIndex: 0 },
    el("div", { class: "meta" },
      el("span", { class: "sev sev-" + alert.severity }, alert.severity),
      el("span", {}, timeOf(alert.created_at)),
      el("span", {}, areaLabel(alert)),
      el("span", { class: "state" })),
    el("div", { class: "title" }, alert.title),
    el("div", { class: "summary" }, alert.summary));
  li.addEventListener("click", () => showAlert(alert.alert_id));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showAlert(alert.alert_id); }
  });
  const list = $("#alerts");
  list.prepend(li);
  while (list.childElementCount > MAX_ALERTS) {
    const old = list.lastElementChild;
    state.alerts.delete(old.getAttribute("data-alert-id"));
    old.remove();
  }
  if (state.project && alert.location) {
    const [x, y] = state.project.point(alert.location.lon, alert.location.lat);
    const g = svgEl("g", { class: "alert-marker sev-" + alert.severity, "data-alert-id": alert.alert_id });
    g.append(svgEl("circle", { class: "pulse", cx: x.toFixed(1), cy: y.toFixed(1), r: 6 }));
    const core = svgEl("circle", { class: "core", cx: x.toFixed(1), cy: y.toFixed(1), r: 6 });
    core.addEventListener("click", () => showAlert(alert.alert_id));
    g.append(core);
    state.layers.alerts.append(g);
    while (state.layers.alerts.childElementCount > MAX_ALERTS) state.layers.alerts.firstElementChild.remove();
  }
}

function onAck(ack) {
  const li = document.querySelector(`li.alert[data-alert-id="${CSS.escape(ack.alert_id)}"]`);
  if (li) {
    li.classList.add("acked");
    li.querySelector(".state").textContent = `${ack.action} by ${ack.by}`;
  }
  const marker = document.querySelector(`.alert-marker[data-alert-id="${CSS.escape(ack.alert_id)}"]`);
  if (marker) marker.classList.add("acked");
  const alert = state.alerts.get(ack.alert_id);
  if (alert) alert._ack = ack;
}

// ---- detail panel ----------------------------------------------------------------

function dl(pairs) {
  const list = el("dl");
  for (const [k, v] of pairs) {
    if (v == null || v === "" || (Array.isArray(v) && !v.length)) continue;
    list.append(el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : v));
  }
  return list;
}

function enrichmentSections(enrichment) {
  const out = [];
  if (!enrichment) return out;
  const areas = enrichment.areas || {};
  out.push(el("h4", {}, "Place"));
  out.push(dl([
    ["District", areas.district && `${areas.district.name} (${areas.district.code})`],
    ["Ward", areas.ward && `${areas.ward.name} (${areas.ward.code})`],
    ["LSOA", areas.lsoa && `${areas.lsoa.name} (${areas.lsoa.code})`],
    ["In force area", enrichment.in_force_area === false ? "no" : null],
    ...Object.entries(enrichment.nearby_places || {}).map(([kind, p]) => [`Nearest ${kind}`, `${p.name}, ${Math.round(p.distance_m)} m`]),
  ]));
  const h = enrichment.history || {};
  const historyPairs = [];
  for (const hit of h.hotlist || []) historyPairs.push(["Hotlist", `${hit.vrm}: ${hit.reason} (${hit.match === "exact" ? "exact" : "misread"})`]);
  // `nearby` holds the event's own kind: calls near a call, incidents near an incident.
  const own = enrichment.kind === "incident" ? "Incidents" : "Calls";
  const within = (label, n) => {
    if (!n) return;
    const cats = Object.entries(n.by_category || {}).map(([c, k]) => `${k} ${c.replace(/_/g, " ")}`).join(", ");
    historyPairs.push([`${label} within ${n.radius_m} m`, n.count ? `${n.count} in 28 days: ${cats}` : "none in 28 days"]);
  };
  if (h.calls_at_address) historyPairs.push(["Calls at address", `${h.calls_at_address.count} in 28 days`]);
  if (h.incidents_at_address) historyPairs.push(["Incidents at address", `${h.incidents_at_address.count} in 28 days`]);
  within(own, h.nearby);
  within("Calls", h.calls_nearby);
  within("Incidents", h.incidents_nearby);
  for (const r of h.trail || []) historyPairs.push(["Seen before", `${r.camera_id} at ${timeOf(r.at)}`]);
  if (h.calls_by_person) historyPairs.push(["Calls by caller", `${h.calls_by_person.count} in 28 days`]);
  for (const m of h.markers || []) historyPairs.push(["Warning marker", `${m.marker}${m.person_id ? " (person " + m.person_id + ")" : ""}${m.address ? " (address)" : ""}`]);
  if (historyPairs.length) { out.push(el("h4", {}, "History")); out.push(dl(historyPairs)); }
  const units = enrichment.nearest_units || [];
  if (units.length) {
    out.push(el("h4", {}, "Nearest available units"));
    out.push(dl(units.map((u) => [u.callsign || u.officer_id, `${Math.round(u.distance_m)} m, fix ${Math.round(u.fix_age_s)} s old${u.stale ? " (stale)" : ""}`])));
  }
  if (enrichment.partial) out.push(el("p", { class: "partial" }, "Partial enrichment: " + enrichment.partial.reason));
  out.push(el("p", { class: "meta" }, `Reference ${enrichment.reference_version || "?"}`));
  return out;
}

function openDetail(children) {
  clearTimeout(state.auditTimer);
  closePanel($("#search"), false);
  const body = $("#detail-body");
  body.replaceChildren(...children);
  const panel = $("#detail");
  if (panel.hidden) state.returnFocus = document.activeElement;
  panel.hidden = false;
}

function closePanel(panel, restoreFocus = true) {
  if (panel.hidden) return;
  panel.hidden = true;
  if (panel.id === "detail") clearTimeout(state.auditTimer);
  const back = state.returnFocus;
  state.returnFocus = null;
  if (restoreFocus && back && back.isConnected && typeof back.focus === "function") back.focus();
}

function showAlert(id) {
  const a = state.alerts.get(id);
  if (!a) return;
  document.querySelectorAll("li.alert.selected").forEach((n) => n.classList.remove("selected"));
  const li = document.querySelector(`li.alert[data-alert-id="${CSS.escape(id)}"]`);
  if (li) li.classList.add("selected");
  const d = a.details || {};
  const children = [
    el("h3", {}, a.title),
    el("div", { class: "meta" }, el("span", { class: "sev sev-" + a.severity }, a.severity), " ", timeOf(a.created_at), " · ", areaLabel(a)),
    el("p", {}, a.summary),
    d.why ? el("div", { class: "why" }, d.why) : null,
    el("h4", {}, "Facts"),
    dl([
      ["Rule", a.rule_id],
      ["Plate read", d.vrm_read], ["Plate listed", d.vrm_listed], ["Match", d.match], ["Reason", d.reason],
      ["Camera", d.camera_id], ["Confidence", d.confidence],
      ["Matched on", d.matched_on], ["Count", d.count], ["Recent calls", (d.recent_call_ids || []).join(", ")],
      ["Source events", (a.source_event_ids || []).join(", ")],
      ["Location", a.location && `${a.location.address ? a.location.address + " · " : ""}${a.location.lat.toFixed(5)}, ${a.location.lon.toFixed(5)}`],
      ["For", [...(a.audience?.roles || []), ...(a.audience?.officers || [])].join(", ")],
      ["Alert id", a.alert_id],
    ]),
  ];
  if (a._ack) children.push(el("p", { class: "state" }, `${a._ack.action} by ${a._ack.by} at ${timeOf(a._ack.at)}`));
  const actions = el("div", { class: "actions" });
  for (const action of ["ack", "assign", "dismiss"]) {
    const b = el("button", { class: action, "data-action": action }, action === "ack" ? "Acknowledge" : action[0].toUpperCase() + action.slice(1));
    b.addEventListener("click", () => send({ type: "ack", alert_id: a.alert_id, action }));
    actions.append(b);
  }
  children.push(actions);
  children.push(...snoozeControls(a));
  if (state.role === "supervisor") children.push(auditPane(a.alert_id));
  openDetail(children);
  // Opening an alert's detail is an act the audit trail records (who saw what, when).
  send({ type: "open", alert_id: a.alert_id });
  if (state.role === "supervisor") {
    loadAudit(a.alert_id);
    state.auditTimer = setTimeout(() => loadAudit(a.alert_id), AUDIT_RELOAD_MS);
  }
}

// ---- an alert's audit history (supervisors) ------------------------------------------

const AUDIT_WORDS = {
  alert_delivered: "was sent the alert", // the gateway's records name the recipients instead
  alert_opened: "opened the alert",
  alert_ack: "acknowledged the alert",
  alert_assign: "assigned the alert",
  alert_dismiss: "dismissed the alert",
  snooze: "snoozed alerts",
  unsnooze: "lifted a snooze",
  case_viewed: "viewed the case",
  case_listed: "listed cases",
  evidence_downloaded: "opened evidence",
  history_search: "searched history",
  audit_viewed: "read this audit history",
  audit_exported: "exported the audit trail",
  token_revoked: "revoked a token",
};

function auditPane(alertId) {
  const refresh = el("button", { type: "button", class: "audit-refresh", "data-action": "audit-refresh" }, "Refresh audit history");
  refresh.addEventListener("click", () => loadAudit(alertId));
  return el("section", { class: "audit", id: "audit", "aria-labelledby": "audit-title", "data-alert-id": alertId },
    el("h4", { id: "audit-title" }, "Audit history"),
    el("p", { id: "audit-state", class: "audit-state", role: "status" }, "Loading…"),
    el("ol", { id: "audit-list", class: "audit-list" }),
    refresh);
}

async function loadAudit(alertId) {
  const pane = $("#audit");
  if (!pane || pane.dataset.alertId !== alertId) return; // another detail is open now
  const query = new URLSearchParams({ object_type: "alert", object_id: alertId });
  let records;
  try {
    records = (await api(`/api/audit?${query}`)).records || [];
  } catch (err) {
    if (pane.isConnected) $("#audit-state").textContent = `Could not load the audit history: ${err.message}`;
    return;
  }
  if (!pane.isConnected) return;
  // Newest first, as the case timeline reads.
  records.sort((x, y) => Date.parse(y.at) - Date.parse(x.at));
  $("#audit-list").replaceChildren(...records.map(auditItem));
  $("#audit-state").textContent = records.length
    ? `${records.length} record${records.length === 1 ? "" : "s"}, newest first.`
    : "Nothing recorded yet.";
}

const MAX_RECIPIENTS_SHOWN = 20;

function auditItem(r) {
  const recipients = r.action === "alert_delivered" ? (r.detail && r.detail.recipients) : null;
  const li = Array.isArray(recipients) ? deliveryItem(r, recipients) : actItem(r);
  li.className = "audit-item";
  li.dataset.action = r.action;
  if (r.reason || r.reference) {
    li.append(el("div", { class: "why" }, [r.reason && `Reason: ${r.reason}`, r.reference && `Reference: ${r.reference}`].filter(Boolean).join(" · ")));
  }
  return li;
}

function actItem(r) {
  // One person's act: who, in which role, did what, from where.
  const what = AUDIT_WORDS[r.action] || words(r.action);
  return el("li", {},
    el("time", { dateTime: r.at }, dateTimeOf(r.at)), " ",
    el("b", {}, r.actor), ` (${ROLE_WORDS[r.role] || words(r.role)}) ${what}`,
    r.origin ? el("span", { class: "origin" }, ` from ${r.origin}`) : null);
}

function deliveryItem(r, recipients) {
  // The gateway records one delivery per alert version, naming every screen it reached.
  const version = r.detail.version > 1 ? ` (version ${r.detail.version})` : "";
  const li = el("li", {}, el("time", { dateTime: r.at }, dateTimeOf(r.at)), ` Sent${version} to `);
  recipients.slice(0, MAX_RECIPIENTS_SHOWN).forEach((x, i) => {
    if (i) li.append(", ");
    li.append(el("b", { class: "recipient" }, x.sub), ` (${ROLE_WORDS[x.role] || words(x.role)})`,
      x.origin ? el("span", { class: "origin" }, ` at ${x.origin}`) : null);
  });
  if (recipients.length > MAX_RECIPIENTS_SHOWN) li.append(` and ${recipients.length - MAX_RECIPIENTS_SHOWN} more`);
  return li;
}

// ---- snoozes: hold back a rule's alerts for an area or a plate for a while -------------

function alertPlate(a) {
  const d = a.details || {};
  return d.vrm || d.vrm_listed || d.vrm_read || null;
}

function snoozeArea(a) {
  // The ward (area codes come district, ward, LSOA): narrow enough to keep other places live.
  const codes = a.area || [];
  return codes.length > 1 ? codes[1] : codes[0] || null;
}

function snoozeControls(a) {
  const area = snoozeArea(a);
  const plate = alertPlate(a);
  if (!area && !plate) return [];
  const box = el("div", { class: "actions snooze" });
  const rule = a.rule_id.replace(/_/g, " ");
  if (area) {
    const name = state.areaNames.get(area) || area;
    const b = el("button", { class: "snooze-area", "data-action": "snooze-area", title: `No ${rule} alerts in ${name} for an hour` },
      `Snooze ${rule} in ${name} 1 h`);
    b.addEventListener("click", () => sendSnooze({ type: "snooze", rule_id: a.rule_id, area, minutes: SNOOZE_MINUTES }));
    box.append(b);
  }
  if (plate) {
    const b = el("button", { class: "snooze-plate", "data-action": "snooze-plate", title: `No ${rule} alerts for ${plate} for an hour` },
      `Snooze ${plate} 1 h`);
    b.addEventListener("click", () => sendSnooze({ type: "snooze", rule_id: a.rule_id, vrm: plate, minutes: SNOOZE_MINUTES }));
    box.append(b);
  }
  return [el("h4", {}, "Snooze"), box, el("p", { id: "snooze-state", class: "snooze-state", role: "status" })];
}

function sendSnooze(msg) {
  state.snoozePending = true;
  const out = $("#snooze-state");
  if (out) out.replaceChildren("Sending…");
  send(msg);
}

function onSnoozed(m) {
  state.snoozePending = false;
  setStatus(`live · snoozed until ${timeOf(m.until)}`, "live");
  const out = $("#snooze-state");
  if (!out) return;
  const what = m.vrm ? m.vrm : state.areaNames.get(m.area) || m.area;
  const undo = el("button", { class: "unsnooze", "data-action": "unsnooze" }, "Undo");
  undo.addEventListener("click", () => sendSnooze({ type: "unsnooze", snooze_id: m.snooze_id }));
  out.replaceChildren(`Snoozed ${(m.rule_id || "every rule").replace(/_/g, " ")} for ${what} until ${timeOf(m.until)} `, undo);
}

function onUnsnoozed(m) {
  state.snoozePending = false;
  setStatus("live · snooze lifted", "live");
  const out = $("#snooze-state");
  if (out) out.replaceChildren(`Snooze lifted (${m.snooze_id}).`);
}

function onError(m) {
  setStatus(`live · error: ${m.message}`, "live");
  const out = $("#snooze-state");
  if (state.snoozePending && out) out.replaceChildren(`Not snoozed: ${m.message}`);
  state.snoozePending = false;
}

function showEvent(id) {
  const item = state.events.get(id);
  if (!item) return;
  const { kind, event } = item;
  const title = {
    call: `Call ${event.call_id}: ${(event.category || "").replace(/_/g, " ")}`,
    incident: `Incident ${event.incident_id}: ${event.event}`,
    anpr: `Plate read ${event.vrm} at ${event.camera_id}`,
    officer_location: `Officer ${event.callsign || event.officer_id}`,
  }[kind] || kind;
  const pairs = {
    call: [["Received", timeOf(event.received_at)], ["Channel", event.channel], ["Grade", event.grade], ["Address", event.location?.address], ["Caller", event.caller?.name], ["Description", event.description]],
    incident: [["At", timeOf(event.at)], ["Grade", event.grade], ["Category", event.category], ["Address", event.location?.address], ["Units", (event.units || []).join(", ")]],
    anpr: [["Read at", timeOf(event.read_at)], ["Confidence", event.confidence], ["Direction", event.direction]],
    officer_location: [["At", timeOf(event.at)], ["Status", event.status]],
  }[kind] || [];
  openDetail([el("h3", {}, title), dl(pairs), ...enrichmentSections(event.enrichment)]);
}

// ---- socket ----------------------------------------------------------------------

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  setStatus("connecting", "connecting");
  ws.onmessage = (msg) => {
    let m;
    try { m = JSON.parse(msg.data); } catch { return; }
    switch (m.type) {
      case "hello":
        state.role = m.role;
        state.sub = m.sub;
        $("#who").textContent = `${m.sub} · ${ROLE_WORDS[m.role] || words(m.role)}`;
        showTools(m.role);
        send({ type: "subscribe", events: true });
        break;
      case "subscribed":
        setStatus("live", "live");
        state.retry = 1000;
        if (state.lastAlertId) send({ type: "resume", last_alert_id: state.lastAlertId });
        break;
      case "alert": onAlert(m); break;
      case "event": onEvent(m.kind, m.event); break;
      case "alert_ack": onAck(m); break;
      case "acked": setStatus(`live · ${m.action} sent`, "live"); break;
      case "snoozed": onSnoozed(m); break;
      case "unsnoozed": onUnsnoozed(m); break;
      case "error": onError(m); break;
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

function setupFilters() {
  for (const chip of document.querySelectorAll("#filters .chip")) {
    chip.addEventListener("click", () => {
      const sev = chip.dataset.severity;
      const on = !state.severities.has(sev);
      if (on) state.severities.add(sev); else state.severities.delete(sev);
      chip.classList.toggle("on", on);
      chip.setAttribute("aria-pressed", String(on));
      for (const li of document.querySelectorAll(`li.alert[data-severity="${sev}"]`)) li.classList.toggle("hidden", !on);
    });
  }
  $("#detail-close").addEventListener("click", () => closePanel($("#detail")));
  $("#search-close").addEventListener("click", () => closePanel($("#search")));
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    closePanel($("#detail"));
    closePanel($("#search"));
  });
}

// ---- tools: history search (analysts, supervisors), the cases page (case roles) ---------

function showTools(role) {
  $("#search-open").hidden = !SEARCH_ROLES.has(role);
  const cases = $("#cases-link");
  cases.hidden = !CASE_ROLES.has(role);
  cases.href = `/cases?token=${encodeURIComponent(state.token)}`;
}

const SEARCH_VALUE_LABELS = { plate: "Plate", person: "Person id", address: "Address" };
const SEARCH_CHECKS = [
  // [field, check, message]: the gateway checks the same and answers 400 otherwise.
  ["value", (v) => v.length > 0, "Say what to search for."],
  ["reason", (v) => v.length >= 10, "Give a reason of at least 10 characters: it goes in the audit record."],
  ["reference", (v) => v.length >= 3, "Give the reference (incident, job, case or operation) of at least 3 characters."],
];

function setupSearch() {
  $("#search-open").addEventListener("click", openSearch);
  $("#search-subject").addEventListener("change", () => {
    $("#search-value-label").textContent = SEARCH_VALUE_LABELS[$("#search-subject").value];
  });
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submitSearch();
  });
}

function openSearch() {
  const panel = $("#search");
  if (!$("#detail").hidden) closePanel($("#detail"), false);
  if (panel.hidden) state.returnFocus = document.activeElement;
  panel.hidden = false;
  $("#search-subject").focus();
}

function checkSearch() {
  const values = {
    subject: $("#search-subject").value,
    value: $("#search-value").value.trim(),
    reason: $("#search-reason").value.trim(),
    reference: $("#search-reference").value.trim(),
  };
  let firstBad = null;
  for (const [field, ok, message] of SEARCH_CHECKS) {
    const input = $(`#search-${field}`);
    const good = ok(values[field]);
    input.setAttribute("aria-invalid", String(!good));
    $(`#search-${field}-error`).textContent = good ? "" : message;
    if (!good && !firstBad) firstBad = input;
  }
  return { values, firstBad };
}

async function submitSearch() {
  const { values, firstBad } = checkSearch();
  const out = $("#search-state");
  if (firstBad) {
    out.textContent = "Not searched: the form needs a value, a reason and a reference.";
    firstBad.focus();
    return;
  }
  out.textContent = "Searching…";
  $("#search-submit").disabled = true;
  try {
    const result = await api("/api/search", { method: "POST", body: values });
    showSearchResults(values, result || {});
  } catch (err) {
    out.textContent = `Not searched: ${err.message}`;
    $("#search-results").replaceChildren();
  } finally {
    $("#search-submit").disabled = false;
  }
}

// What each list of results is called, in the order they are shown; lists the gateway adds
// later are shown after these, under their own names.
const RESULT_SECTIONS = [
  ["hotlist", "Hotlist entries"],
  ["linked_incidents", "Open incidents with this vehicle"],
  ["trail", "Plate reads"],
  ["markers", "Warning markers"],
  ["calls", "Calls"],
  ["incidents", "Incidents"],
  ["cases", "Linked cases"],
];
const RESULT_META = new Set(["subject", "value", "reason", "reference", "audit_id", "at", "searched_at"]);

function resultLists(result) {
  // The lists of a result, whether at the top level or under `results`.
  const lists = new Map();
  const take = (obj) => {
    for (const [k, v] of Object.entries(obj || {})) {
      if (RESULT_META.has(k)) continue;
      if (Array.isArray(v)) lists.set(k, v);
      else if (v && typeof v === "object" && k === "results") take(v);
    }
  };
  take(result);
  const known = RESULT_SECTIONS.filter(([k]) => lists.has(k));
  const others = [...lists.keys()].filter((k) => !RESULT_SECTIONS.some(([n]) => n === k)).map((k) => [k, words(k)]);
  return [...known, ...others].map(([k, title]) => [k, title, lists.get(k)]);
}

function showSearchResults(values, result) {
  const sections = resultLists(result);
  const total = sections.reduce((n, [, , items]) => n + items.length, 0);
  $("#search-state").textContent = total
    ? `${total} found for ${values.subject} ${values.value}. This search is recorded.`
    : `Nothing found for ${values.subject} ${values.value}. This search is recorded.`;
  const parts = [];
  for (const [key, title, items] of sections) {
    if (!items.length) continue;
    parts.push(el("h4", {}, `${title} (${items.length})`));
    parts.push(el("ul", { class: "result-list", "data-section": key }, ...items.map((item) => resultItem(key, item))));
  }
  $("#search-results").replaceChildren(...parts);
}

function resultItem(key, item) {
  if (item == null || typeof item !== "object") return el("li", {}, String(item));
  if (key === "cases" && item.case_ref) {
    const link = el("a", { href: `/cases?token=${encodeURIComponent(state.token)}#${encodeURIComponent(item.case_ref)}` }, item.case_ref);
    return el("li", {}, link, ` ${words(item.category)} · ${words(item.status)}${item.address ? " · " + item.address : ""}`);
  }
  const when = item.at || item.read_at || item.received_at || item.created_at;
  const line = [
    when ? dateTimeOf(when) : null,
    key === "calls" || key === "incidents" ? item.id : null, // a hotlist or marker id means nothing to a reader
    item.call_id, item.incident_id, item.vrm, item.reason && words(item.reason),
    item.match && `${item.match} match`, item.marker && words(item.marker), item.camera_id,
    item.event, item.role && words(item.role), item.category && words(item.category),
    item.person_id, item.note, item.location?.address || item.address,
  ].filter((x) => x != null && x !== "");
  return el("li", {}, line.length ? line.join(" · ") : JSON.stringify(item));
}

async function main() {
  setupFilters();
  setupSearch();
  if (!state.token) {
    setStatus("no token", "error");
    $("#map-message").textContent = "This page needs a token: open it as /?token=… (print one with: rtic token --role rtic_analyst --sub YOUR-NAME)";
    return;
  }
  try {
    await drawMap();
  } catch (err) {
    $("#map-message").textContent = "Could not load the map: " + err;
  }
  connect();
  state.pingTimer = setInterval(() => send({ type: "ping" }), 20000);
}

main();
