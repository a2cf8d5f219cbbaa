// RTIC live: the analysts' dashboard. Plain JS, no dependencies, nothing from the internet.
// Protocol: docs/contract.md (hello -> subscribe -> subscribed; alert, event, alert_ack, acked,
// snoozed, unsnoozed, error, pong; the page sends `open` when an alert's detail opens, which the
// gateway records in the audit trail and answers with `working` frames: who else has it open).
// The desk's part (analysts, supervisors): `incidents`/`incident` and `officers`/`officer` frames
// feed the incident queue and the map; `assign` -> `assigned`; `verify` -> `verify_ack`, then a
// `verification` frame marks the plate check for everyone. HTTP: /api/audit (an alert's audit
// history), /api/search (history search, with a reason and a reference),
// /api/incidents/{id}/candidates (the assign picker), /api/officers/workload (supervisors),
// /api/desk/stats (the charts, drawn here as SVG). /api/config may name map tiles.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const MAX_DOTS = 500;
const DOT_LIFETIME_MS = 60000;
const MAX_ALERTS = 200;
const REF_LAT = 52.48;
const KX = Math.cos((REF_LAT * Math.PI) / 180);
const SNOOZE_MINUTES = 60;
const STAFF_SESSION = "rtic.staff.token"; // sessionStorage: the desk and the cases page (same tab)

const state = {
  token: null, // from the link's ticket, or this tab's session (session.js)
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
  selectedKey: null, // the alert row (an alert or a situation) whose detail is open
  working: new Map(), // alert id -> [{sub, role, since}] (the gateway's `working` frames)
  incidents: new Map(), // incident id -> incident (`incidents` / `incident` frames)
  officers: new Map(), // officer id -> officer (`officers` / `officer` frames)
  assignFor: null, // the incident the assign picker is open for
  stats: null,
  returnFocus: null, // where the keyboard was before a panel opened
};

const PANELS = ["detail", "search", "assign", "charts", "workload"];
const SEARCH_ROLES = new Set(["rtic_analyst", "supervisor"]);
const CASE_ROLES = new Set(["officer", "case_officer", "supervisor"]);
const ROLE_WORDS = { rtic_analyst: "RTIC analyst", case_officer: "case officer", officer: "officer", supervisor: "supervisor", citizen: "citizen", system: "system" };
const AUDIT_READERS = new Set(["rtic_analyst", "supervisor"]); // an alert's audit history
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
  if (status === 401) return "Your session was refused (invalid or expired). Open the page with a new link.";
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
  for (const name of ["tiles", "wards", "districts", "labels", "events", "officers", "alerts"]) {
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
  if (config.map_tile_url) {
    svg.classList.add("tiled");
    drawTiles(config.map_tile_url, districts, project, layers.tiles);
  }
  state.svg = svg;
  state.layers = layers;
  for (const o of state.officers.values()) onOfficer(o, false);
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

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };

function onAlert(alert) {
  const known = state.alerts.get(alert.alert_id);
  if (known) {
    // Shown once, even if redelivered or resumed; a newer version (more hits) replaces it.
    if ((alert.version || 1) <= (known.version || 1)) return;
    alert._ack = known._ack;
    alert._verification = known._verification;
    const marker = document.querySelector(`.alert-marker[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
    if (marker) marker.remove();
  } else {
    state.counts.alerts += 1;
  }
  state.alerts.set(alert.alert_id, alert);
  state.lastAlertId = alert.alert_id;
  $("#count-alerts").textContent = state.counts.alerts;
  $("#no-alerts").hidden = true;
  while (state.alerts.size > MAX_ALERTS) {
    const oldest = state.alerts.keys().next().value;
    state.alerts.delete(oldest);
  }
  renderAlerts();
  if (state.project && alert.location) {
    const [x, y] = state.project.point(alert.location.lon, alert.location.lat);
    const g = svgEl("g", { class: "alert-marker sev-" + alert.severity + (alert._ack ? " acked" : ""), "data-alert-id": alert.alert_id });
    g.append(svgEl("circle", { class: "pulse", cx: x.toFixed(1), cy: y.toFixed(1), r: 6 }));
    const core = svgEl("circle", { class: "core", cx: x.toFixed(1), cy: y.toFixed(1), r: 6 });
    core.addEventListener("click", () => showAlert(alert.alert_id));
    g.append(core);
    state.layers.alerts.append(g);
    while (state.layers.alerts.childElementCount > MAX_ALERTS) state.layers.alerts.firstElementChild.remove();
  }
  // An open detail of this alert (or its situation) shows the newer version.
  const open = $("#detail-body").dataset.alertKey;
  if (!$("#detail").hidden && open && open === situationKey(alert)) showAlert(alert.alert_id, false);
}

function situationKey(a) {
  // Alerts of one place and hour carry the same details.situation: one row on the desk.
  const s = a.details && a.details.situation;
  return typeof s === "string" && s ? "situation:" + s : "alert:" + a.alert_id;
}

function bySeverityThenAge(x, y) {
  // Most severe first; within a severity, the newest first.
  const r = (SEVERITY_RANK[x.severity] ?? 9) - (SEVERITY_RANK[y.severity] ?? 9);
  return r || Date.parse(y.created_at) - Date.parse(x.created_at);
}

function alertGroups() {
  const groups = new Map();
  for (const a of state.alerts.values()) {
    const key = situationKey(a);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  return [...groups.entries()].map(([key, alerts]) => {
    alerts.sort(bySeverityThenAge);
    return { key, alerts, primary: alerts[0] };
  }).sort((g, h) => bySeverityThenAge(g.primary, h.primary));
}

function alertState(a) {
  const parts = [];
  if (a._verification) parts.push(a._verification.outcome === "verified" ? `verified by ${a._verification.by}` : `not a match (${a._verification.by})`);
  else if (a.details && a.details.verification && a.details.verification.state === "pending") parts.push("plate to check");
  if (a._ack) parts.push(`${a._ack.action} by ${a._ack.by}`);
  return parts.join(" · ");
}

function alertItem(group) {
  const a = group.primary;
  const n = group.alerts.length;
  const li = el("li", { class: "alert" + (state.severities.has(a.severity) ? "" : " hidden") + (a._ack ? " acked" : ""),
      "data-alert-id": a.alert_id, "data-severity": a.severity, "data-key": group.key, "data-count": String(n), tabIndex: 0 },
    el("div", { class: "meta" },
      el("span", { class: "sev sev-" + a.severity }, a.severity),
      el("span", {}, timeOf(a.created_at)),
      el("span", {}, areaLabel(a)),
      el("span", { class: "state" }, alertState(a))),
    el("div", { class: "title" }, a.title),
    n > 1 ? el("div", { class: "situation" }, `One situation: ${n} alerts`) : null,
    el("div", { class: "summary" }, n > 1 ? group.alerts.slice(1).map((x) => x.title).join(" · ") : a.summary));
  if (group.key === state.selectedKey) li.classList.add("selected");
  if (group.key.startsWith("situation:")) li.dataset.situation = group.key.slice(10);
  li.addEventListener("click", () => showAlert(a.alert_id));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showAlert(a.alert_id); }
  });
  return li;
}

function renderAlerts() {
  const list = $("#alerts");
  const focusedKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  const items = alertGroups().map(alertItem);
  list.replaceChildren(...items);
  if (focusedKey) {
    const again = list.querySelector(`li.alert[data-key="${CSS.escape(focusedKey)}"]`);
    if (again) again.focus();
  }
  $("#no-alerts").hidden = items.length > 0;
}

function onAck(ack) {
  const marker = document.querySelector(`.alert-marker[data-alert-id="${CSS.escape(ack.alert_id)}"]`);
  if (marker) marker.classList.add("acked");
  const alert = state.alerts.get(ack.alert_id);
  if (!alert) return;
  alert._ack = ack;
  renderAlerts();
}

function onVerification(v) {
  // The plate check's outcome, whoever made it: every screen that shows the alert marks it.
  const alert = state.alerts.get(v.alert_id);
  if (!alert) return;
  alert._verification = v;
  renderAlerts();
  const open = $("#detail-body").dataset.alertKey;
  if (!$("#detail").hidden && open === situationKey(alert)) showAlert(alert.alert_id, false);
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
  for (const other of ["#search", "#assign", "#charts", "#workload"]) closePanel($(other), false);
  const body = $("#detail-body");
  body.replaceChildren(...children.filter((c) => c != null));
  const panel = $("#detail");
  if (panel.hidden) state.returnFocus = document.activeElement;
  panel.hidden = false;
}

function closePanel(panel, restoreFocus = true) {
  if (panel.hidden) return;
  panel.hidden = true;
  if (panel.id === "detail") clearTimeout(state.auditTimer);
  if (panel.id === "assign") state.assignFor = null;
  const back = state.returnFocus;
  state.returnFocus = null;
  if (restoreFocus && back && back.isConnected && typeof back.focus === "function") back.focus();
}

function alertFacts(a) {
  const d = a.details || {};
  return dl([
    ["Rule", a.rule_id],
    ["Plate read", d.vrm_read], ["Plate listed", d.vrm_listed], ["Match", d.match], ["Reason", d.reason],
    ["Camera", d.camera_id], ["Confidence", d.confidence],
    ["Matched on", d.matched_on], ["Count", d.count], ["Recent calls", (d.recent_call_ids || []).join(", ")],
    ["Calls this hour", d.observed], ["Expected", d.expected], ["Probability", d.p_value], // demand_anomaly
    ["Source events", (a.source_event_ids || []).join(", ")],
    ["Location", a.location && `${a.location.address ? a.location.address + " · " : ""}${a.location.lat.toFixed(5)}, ${a.location.lon.toFixed(5)}`],
    ["For", [...(a.audience?.roles || []), ...(a.audience?.officers || [])].join(", ")],
    ["Alert id", a.alert_id],
  ]);
}

function showAlert(id, announce = true) {
  const a = state.alerts.get(id);
  if (!a) return;
  const key = situationKey(a);
  const group = alertGroups().find((g) => g.key === key) || { alerts: [a], primary: a };
  state.selectedKey = key;
  document.querySelectorAll("li.alert.selected").forEach((n) => n.classList.remove("selected"));
  const li = document.querySelector(`li.alert[data-key="${CSS.escape(key)}"]`);
  if (li) li.classList.add("selected");
  const d = a.details || {};
  const children = [
    el("h3", {}, a.title),
    el("div", { class: "meta" }, el("span", { class: "sev sev-" + a.severity }, a.severity), " ", timeOf(a.created_at), " · ", areaLabel(a)),
    el("p", {}, a.summary),
    d.why ? el("div", { class: "why" }, d.why) : null,
  ];
  if (group.alerts.length > 1) children.push(situationSection(group, a));
  children.push(...verificationSection(a));
  children.push(el("h4", {}, "Facts"), alertFacts(a));
  if (a._ack) children.push(el("p", { class: "state" }, `${a._ack.action} by ${a._ack.by} at ${timeOf(a._ack.at)}`));
  const actions = el("div", { class: "actions" });
  for (const action of ["ack", "assign", "dismiss"]) {
    const b = el("button", { class: action, "data-action": action }, action === "ack" ? "Acknowledge" : action[0].toUpperCase() + action.slice(1));
    b.addEventListener("click", () => send({ type: "ack", alert_id: a.alert_id, action }));
    actions.append(b);
  }
  children.push(actions);
  children.push(...snoozeControls(a));
  children.push(presencePane(a.alert_id));
  const audits = AUDIT_READERS.has(state.role);
  if (audits) children.push(auditPane(a.alert_id));
  openDetail(children);
  $("#detail-body").dataset.alertKey = key;
  $("#detail-body").dataset.alertId = a.alert_id;
  showPresence(a.alert_id);
  if (!announce) {
    if (audits) loadAudit(a.alert_id);
    return;
  }
  // Opening an alert's detail is an act the audit trail records (who saw what, when), and
  // tells the others who have the alert that this person is working it.
  send({ type: "open", alert_id: a.alert_id });
  if (audits) {
    loadAudit(a.alert_id);
    state.auditTimer = setTimeout(() => loadAudit(a.alert_id), AUDIT_RELOAD_MS);
  }
}

function situationSection(group, shown) {
  const items = group.alerts.map((x) => {
    const li = el("li", { "data-alert-id": x.alert_id },
      el("span", { class: "sev sev-" + x.severity }, x.severity), " ",
      el("b", {}, x.title), ` · ${timeOf(x.created_at)}`,
      el("div", { class: "summary" }, x.summary));
    if (x.alert_id !== shown.alert_id) {
      const b = el("button", { type: "button", class: "link", "data-action": "show-alert" }, "Show this alert");
      b.addEventListener("click", () => showAlert(x.alert_id));
      li.append(b);
    }
    return li;
  });
  return el("section", { class: "situation-list", "aria-labelledby": "situation-title" },
    el("h4", { id: "situation-title" }, `One situation: ${group.alerts.length} alerts`),
    el("ol", {}, ...items));
}

// ---- verify before action: the plate check ----------------------------------------------

const MATCH_WORDS = { exact: "exact match" };

function verificationSection(a) {
  const v = a.details && a.details.verification;
  if (!v) return [];
  const out = [el("h4", { id: "check-title" }, "Check the plate")];
  out.push(dl([
    ["Plate read", v.read_vrm], ["Plate listed", v.listed_vrm],
    ["Match", MATCH_WORDS[v.match] || (v.match ? `misread: ${words(v.match)}` : null)],
    ["Camera", v.camera_id], ["Confidence", typeof v.confidence === "number" ? `${Math.round(v.confidence * 100)}%` : null],
  ]));
  if (v.image_url && /^(https?:)?\//.test(v.image_url)) out.push(el("p", {}, el("a", { href: v.image_url, target: "_blank", rel: "noopener" }, "The camera's image")));
  const done = a._verification || (v.state !== "pending" ? { outcome: v.state, by: a.details.verified_by } : null);
  if (done) {
    const what = done.outcome === "verified" ? "Verified" : done.outcome === "not_a_match" ? "Not a match" : words(done.outcome);
    out.push(el("p", { class: "verified-state", id: "verify-state", role: "status", "data-outcome": done.outcome },
      `${what}${done.by ? " by " + done.by : ""}${done.at ? " at " + timeOf(done.at) : ""}.`));
    return out;
  }
  const box = el("div", { class: "actions verify" });
  for (const [outcome, label] of [["verified", "Verify"], ["not_a_match", "Not a match"]]) {
    const b = el("button", { type: "button", class: outcome, "data-action": outcome }, label);
    b.addEventListener("click", () => {
      box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
      $("#verify-state").textContent = "Sending…";
      send({ type: "verify", alert_id: a.alert_id, outcome });
    });
    box.append(b);
  }
  out.push(box, el("p", { id: "verify-state", class: "verify-state", role: "status" }, "Check the read plate against the listed one before anyone acts."));
  return out;
}

function onVerifyAck(m) {
  const out = $("#verify-state");
  if (out && $("#detail-body").dataset.alertId === m.alert_id) {
    out.textContent = `Sent: ${m.outcome === "verified" ? "verified" : "not a match"}. Waiting for the engine…`;
  }
}

// ---- presence: who else is working the alert ---------------------------------------------

function presencePane(alertId) {
  return el("section", { class: "presence", id: "presence", "aria-labelledby": "presence-title", "data-alert-id": alertId },
    el("h4", { id: "presence-title" }, "Working this alert"),
    el("p", { id: "presence-list", class: "presence-list", role: "status" }, "Only you, as far as the gateway knows."));
}

function onWorking(m) {
  state.working.set(m.alert_id, m.people || []);
  showPresence(m.alert_id);
}

function showPresence(alertId) {
  const pane = $("#presence");
  if (!pane || pane.dataset.alertId !== alertId) return;
  const others = (state.working.get(alertId) || []).filter((p) => p.sub !== state.sub);
  const out = $("#presence-list");
  if (!others.length) { out.replaceChildren("Only you, as far as the gateway knows."); return; }
  out.replaceChildren(...others.flatMap((p, i) => [i ? ", " : "", el("b", { class: "person", "data-sub": p.sub }, p.sub),
    ` (${ROLE_WORDS[p.role] || words(p.role)}, since ${timeOf(p.since)})`]), " also has it open.");
}

// ---- an alert's audit history (analysts and supervisors) ------------------------------------------

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

// What this screen missed after the last alert it saw (or since a little before it, if the
// gateway no longer holds that one), never the alerts it already shows (`seen`).
function resume() {
  const last = state.alerts.get(state.lastAlertId);
  const msg = { type: "resume", last_alert_id: state.lastAlertId, seen: {} };
  for (const a of state.alerts.values()) msg.seen[a.alert_id] = a.version || 1;
  const lastAt = last ? Date.parse(last.created_at) : NaN;
  if (Number.isFinite(lastAt)) msg.since = new Date(lastAt - 5 * 60 * 1000).toISOString();
  send(msg);
}

function onError(m) {
  if (m.code === "not_ready") { // a gateway just started: resume again in a moment
    const ws = state.ws;
    setTimeout(() => { if (ws === state.ws && state.lastAlertId) resume(); }, (m.retry_after_s || 2) * 1000);
    return;
  }
  setStatus(`live · error: ${m.message}`, "live");
  const out = $("#snooze-state");
  if (state.snoozePending && out) out.replaceChildren(`Not snoozed: ${m.message}`);
  state.snoozePending = false;
  if (state.pendingAssign && !$("#assign").hidden) {
    $("#assign-state").textContent = `Not assigned: ${m.message}`;
    $("#assign-list").querySelectorAll("button").forEach((x) => { x.disabled = false; });
  }
  state.pendingAssign = null;
  const verify = $("#verify-state");
  if (verify && verify.textContent === "Sending…") {
    verify.textContent = `Not sent: ${m.message}`;
    document.querySelectorAll("#detail .actions.verify button").forEach((x) => { x.disabled = false; });
  }
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

// ---- the incident queue: open incidents by grade and age, the promise counting down -----

const STATUS_WORDS = { open: "Unassigned", assigned: "Assigned", en_route: "En route", arrived: "Arrived", closed: "Closed" };

function onIncidents(list) {
  state.incidents.clear();
  for (const inc of list || []) if (inc && inc.incident_id) state.incidents.set(inc.incident_id, inc);
  renderQueue();
}

function onIncident(inc) {
  if (!inc || !inc.incident_id) return;
  state.incidents.set(inc.incident_id, inc);
  renderQueue();
  if (state.assignFor === inc.incident_id) showAssignState(inc);
}

function needsUnit(inc) {
  return inc.status === "open" && (!inc.units || !inc.units.length);
}

function queueOrder(x, y) {
  // Unassigned grade 1 and 2 first; then by grade; then the oldest first.
  const urgent = (i) => (needsUnit(i) && (i.grade === 1 || i.grade === 2) ? 0 : 1);
  return urgent(x) - urgent(y) || (x.grade || 9) - (y.grade || 9) || Date.parse(x.opened_at) - Date.parse(y.opened_at);
}

function clock(ms) {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function ageWords(iso) {
  const ms = Date.now() - Date.parse(iso);
  if (!(ms >= 0)) return "";
  const min = Math.floor(ms / 60000);
  return min < 1 ? "just now" : min < 60 ? `${min} min ago` : `${Math.floor(min / 60)} h ${min % 60} min ago`;
}

function promiseText(inc) {
  // The attendance promise: time left to attend, or how late; met once someone arrived.
  const p = inc.promise;
  if (!p || !p.due_at) return { text: "no attendance target", cls: "none" };
  if (inc.arrived_at) {
    const late = Date.parse(inc.arrived_at) - Date.parse(p.due_at);
    return late > 0 ? { text: `attended ${clock(late)} late`, cls: "late" } : { text: "attended in time", cls: "met" };
  }
  const left = Date.parse(p.due_at) - Date.now();
  return left >= 0 ? { text: `attend within ${clock(left)}`, cls: left < 5 * 60000 ? "soon" : "ok" } : { text: `overdue by ${clock(left)}`, cls: "late" };
}

function officerName(id) {
  const o = state.officers.get(id);
  return o && o.callsign ? `${o.callsign} (${id})` : id;
}

function queueItem(inc) {
  const promise = promiseText(inc);
  const assign = el("button", { type: "button", class: "assign", "data-action": "assign-incident",
    "aria-label": `Assign incident ${inc.incident_id}` }, needsUnit(inc) ? "Assign" : "Assign another");
  assign.addEventListener("click", (e) => { e.stopPropagation(); openAssign(inc.incident_id); });
  const units = (inc.units || []).map(officerName).join(", ");
  const li = el("li", { class: `incident grade-${inc.grade || "x"} status-${inc.status}`, "data-incident-id": inc.incident_id,
      "data-status": inc.status, "data-grade": String(inc.grade || "") },
    el("div", { class: "meta" },
      el("span", { class: "grade" }, `Grade ${inc.grade || "?"}`),
      el("span", { class: "status" }, STATUS_WORDS[inc.status] || words(inc.status)),
      el("span", { class: "age", "data-opened": inc.opened_at }, ageWords(inc.opened_at))),
    el("div", { class: "title" }, `${words(inc.category) || "incident"} · ${inc.location?.address || inc.incident_id}`),
    el("div", { class: "promise " + promise.cls, "data-incident-id": inc.incident_id }, promise.text),
    units ? el("div", { class: "units" }, `Units: ${units}`) : null,
    inc.status === "closed" ? null : assign);
  return li;
}

function renderQueue() {
  const open = [...state.incidents.values()].filter((i) => i.status !== "closed").sort(queueOrder);
  const list = $("#queue");
  list.replaceChildren(...open.map(queueItem));
  const waiting = open.filter(needsUnit).length;
  $("#queue-count").textContent = `${open.length} open, ${waiting} unassigned`;
  $("#no-incidents").hidden = open.length > 0;
}

function tickQueue() {
  // Every second: the promises count down and the ages grow, without rebuilding the list.
  for (const node of document.querySelectorAll("#queue .promise")) {
    const inc = state.incidents.get(node.dataset.incidentId);
    if (!inc) continue;
    const p = promiseText(inc);
    node.textContent = p.text;
    node.className = "promise " + p.cls;
  }
  for (const node of document.querySelectorAll("#queue .age")) node.textContent = ageWords(node.dataset.opened);
}

// ---- assign: the nearest available officers, from the candidates API ---------------------

async function openAssign(incidentId) {
  const inc = state.incidents.get(incidentId);
  if (!inc) return;
  state.assignFor = incidentId;
  const panel = $("#assign");
  if (!$("#detail").hidden) closePanel($("#detail"), false);
  closePanel($("#search"), false);
  if (panel.hidden) state.returnFocus = document.activeElement;
  $("#assign-title").textContent = `Assign grade ${inc.grade || "?"} ${words(inc.category)}`;
  $("#assign-where").textContent = `${inc.location?.address || ""} (${inc.incident_id})`;
  $("#assign-state").textContent = "Finding the nearest available officers…";
  $("#assign-list").replaceChildren();
  panel.hidden = false;
  $("#assign-title").focus();
  let found;
  try {
    found = await api(`/api/incidents/${encodeURIComponent(incidentId)}/candidates?limit=5`);
  } catch (err) {
    $("#assign-state").textContent = `Could not find officers: ${err.message}`;
    return;
  }
  if (state.assignFor !== incidentId) return;
  const candidates = Array.isArray(found) ? found : (found && found.candidates) || [];
  $("#assign-state").textContent = candidates.length
    ? "Nearest first. Distance is straight-line; travel time is rough (30 km/h in town)."
    : "No available officer has a recent position.";
  $("#assign-list").replaceChildren(...candidates.map((c) => candidateItem(incidentId, c)));
}

function distanceWords(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

function candidateItem(incidentId, c) {
  const name = c.callsign ? `${c.callsign} (${c.officer_id})` : c.officer_id;
  const travel = typeof c.travel_minutes === "number" ? `about ${Math.max(1, Math.round(c.travel_minutes))} min` : "";
  const b = el("button", { type: "button", class: "candidate", "data-officer-id": c.officer_id,
    "aria-label": `Assign ${name}: ${distanceWords(c.distance_m)}, ${travel}` },
    el("b", {}, name), el("span", {}, ` ${distanceWords(c.distance_m)} · ${travel} · ${words(c.status)}`),
    c.at ? el("span", { class: "fix" }, ` · position ${ageWords(c.at)}`) : null);
  b.addEventListener("click", () => {
    const assignId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    state.pendingAssign = { assignId, incidentId, officerId: c.officer_id };
    $("#assign-list").querySelectorAll("button").forEach((x) => { x.disabled = true; });
    $("#assign-state").textContent = `Assigning ${name}…`;
    send({ type: "assign", assign_id: assignId, incident_id: incidentId, officer_id: c.officer_id });
  });
  return el("li", {}, b);
}

function onAssigned(m) {
  if (state.assignFor !== m.incident_id) return;
  $("#assign-state").textContent = `Assigned ${officerName(m.officer_id)}. Their page has the job.`;
  state.pendingAssign = null;
}

function showAssignState(inc) {
  if (inc.status === "closed") $("#assign-state").textContent = "This incident is closed.";
}

// ---- officers on the map ---------------------------------------------------------------

function onOfficers(list) {
  state.officers.clear();
  if (state.layers.officers) state.layers.officers.replaceChildren();
  for (const o of list || []) onOfficer(o, false);
  renderQueue();
}

function onOfficer(o, rerender = true) {
  if (!o || !o.officer_id) return;
  state.officers.set(o.officer_id, o);
  if (state.project && state.layers.officers && typeof o.lat === "number" && typeof o.lon === "number") {
    let g = state.layers.officers.querySelector(`g[data-officer-id="${CSS.escape(o.officer_id)}"]`);
    if (!g) {
      g = svgEl("g", { class: "officer", "data-officer-id": o.officer_id });
      g.append(svgEl("rect", { width: 9, height: 9, rx: 2 }), svgEl("title"));
      state.layers.officers.append(g);
    }
    const [x, y] = state.project.point(o.lon, o.lat);
    g.setAttribute("class", `officer status-${o.status || "unknown"}`);
    g.setAttribute("data-status", o.status || "");
    g.firstChild.setAttribute("x", (x - 4.5).toFixed(1));
    g.firstChild.setAttribute("y", (y - 4.5).toFixed(1));
    g.lastChild.textContent = `${o.callsign || o.officer_id}: ${words(o.status)}${(o.jobs || []).length ? ", " + o.jobs.length + " job(s)" : ""}, at ${timeOf(o.at)}`;
  }
  if (rerender && state.incidents.size) renderQueue();
}

// ---- supervisors: workload per officer in their areas -----------------------------------

async function openWorkload() {
  const panel = openSidePanel("#workload");
  $("#workload-state").textContent = "Loading…";
  let data;
  try {
    data = await api("/api/officers/workload");
  } catch (err) {
    $("#workload-state").textContent = `Could not load the workload: ${err.message}`;
    return;
  }
  if (panel.hidden) return;
  const rows = Array.isArray(data) ? data : (data && (data.officers || data.workload)) || [];
  $("#workload-state").textContent = rows.length ? `${rows.length} officers in your areas.` : "No officers in your areas yet.";
  const num = (r, ...keys) => { for (const k of keys) if (r[k] != null) return Array.isArray(r[k]) ? r[k].length : r[k]; return ""; };
  $("#workload-rows").replaceChildren(...rows.map((r) => el("tr", { "data-officer-id": r.officer_id },
    el("th", { scope: "row" }, r.callsign ? `${r.callsign} (${r.officer_id})` : r.officer_id),
    el("td", {}, words(r.status)),
    el("td", { class: "n" }, String(num(r, "open_jobs", "jobs"))),
    el("td", { class: "n" }, String(num(r, "jobs_today"))),
    el("td", {}, (r.last_ping || r.last_ping_at || r.at) ? ageWords(r.last_ping || r.last_ping_at || r.at) : "never"))));
}

function openSidePanel(sel) {
  for (const other of ["#detail", "#search", "#assign", "#charts", "#workload"]) if (other !== sel) closePanel($(other), false);
  const panel = $(sel);
  if (panel.hidden) state.returnFocus = document.activeElement;
  panel.hidden = false;
  panel.querySelector("h3").focus();
  return panel;
}

// ---- charts: the desk's own SVG, from /api/desk/stats -----------------------------------

const GRADE_COLOURS = { 1: "#ff4d4f", 2: "#ff8c3a", 3: "#f2c94c", 4: "#7fb3d5", ungraded: "#8fa1b3" };
const PALETTE = ["#4ea1ff", "#b28cff", "#3ddc97", "#ffb547", "#ff6fa8", "#7fd4e6", "#c9d36a", "#8fa1b3"];
const SEV_COLOURS = { critical: "#ff4d4f", high: "#ff8c3a", medium: "#f2c94c", low: "#7fb3d5" };

async function openCharts() {
  const panel = openSidePanel("#charts");
  $("#charts-state").textContent = "Loading…";
  try {
    state.stats = await api("/api/desk/stats");
  } catch (err) {
    $("#charts-state").textContent = `Could not load the figures: ${err.message}`;
    return;
  }
  if (panel.hidden) return;
  drawCharts(state.stats);
}

function topSeries(series, n) {
  // The n largest series by total, the rest summed as "other".
  const entries = Object.entries(series || {}).map(([k, v]) => [k, v, v.reduce((a, b) => a + b, 0)]).sort((a, b) => b[2] - a[2]);
  const top = entries.slice(0, n).map(([k, v]) => [k, v]);
  if (entries.length > n) {
    const rest = entries.slice(n).reduce((acc, [, v]) => acc.map((x, i) => x + v[i]), new Array(entries[0][1].length).fill(0));
    top.push(["other", rest]);
  }
  return top;
}

function stackedBars(id, label, hours, series, colourOf) {
  // One bar per hour, stacked by series; a legend underneath. Own SVG, no library.
  const W = 440, H = 150, left = 28, bottom = 18, top = 8;
  const totals = hours.map((_, i) => series.reduce((a, [, v]) => a + (v[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const bw = (W - left - 4) / hours.length;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart", id });
  const t = svgEl("title"); t.textContent = label; svg.append(t);
  for (const f of [0, 0.5, 1]) {
    const y = top + (H - top - bottom) * (1 - f);
    svg.append(svgEl("line", { x1: left, x2: W, y1: y.toFixed(1), y2: y.toFixed(1), class: "grid" }));
    const tx = svgEl("text", { x: left - 4, y: (y + 3).toFixed(1), class: "axis", "text-anchor": "end" });
    tx.textContent = String(Math.round(max * f));
    svg.append(tx);
  }
  hours.forEach((h, i) => {
    let y = H - bottom;
    series.forEach(([name, v], k) => {
      const n = v[i] || 0;
      if (!n) return;
      const hgt = ((H - top - bottom) * n) / max;
      y -= hgt;
      const r = svgEl("rect", { x: (left + i * bw + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 2).toFixed(1),
        height: hgt.toFixed(1), fill: colourOf(name, k), "data-series": name, "data-hour": h, "data-count": String(n) });
      const rt = svgEl("title"); rt.textContent = `${timeOf(h).slice(0, 5)}: ${n} ${words(name)}`; r.append(rt);
      svg.append(r);
    });
    if (i % 6 === 0 || i === hours.length - 1) {
      const tx = svgEl("text", { x: (left + i * bw + bw / 2).toFixed(1), y: H - 4, class: "axis", "text-anchor": "middle" });
      tx.textContent = timeOf(h).slice(0, 5);
      svg.append(tx);
    }
  });
  const swatch = (colour) => {
    const box = svgEl("svg", { viewBox: "0 0 10 10", class: "swatch", "aria-hidden": "true" });
    box.append(svgEl("rect", { width: 10, height: 10, rx: 2, fill: colour }));
    return box;
  };
  const legend = el("ul", { class: "legend-list" }, ...series.map(([name, v], k) => el("li", { "data-series": name },
    swatch(colourOf(name, k)), ` ${words(name)} (${v.reduce((a, b) => a + b, 0)})`)));
  return [svg, legend];
}

function ageBars(bands) {
  const W = 440, rowH = 22, left = 100;
  const max = Math.max(1, ...bands.map((b) => b.count));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${bands.length * rowH + 4}`, role: "img", "aria-label": "Open alerts by age", class: "chart", id: "chart-ages" });
  const t = svgEl("title"); t.textContent = "Open alerts by age"; svg.append(t);
  bands.forEach((b, i) => {
    const y = i * rowH + 2;
    const label = svgEl("text", { x: left - 6, y: y + 14, class: "axis", "text-anchor": "end" });
    label.textContent = b.label;
    svg.append(label);
    let x = left;
    for (const sev of ["critical", "high", "medium", "low", ...Object.keys(b.by_severity || {}).filter((s) => !(s in SEV_COLOURS))]) {
      const n = (b.by_severity || {})[sev] || 0;
      if (!n) continue;
      const w = ((W - left - 40) * n) / max;
      const r = svgEl("rect", { x: x.toFixed(1), y, width: w.toFixed(1), height: rowH - 6, fill: SEV_COLOURS[sev] || "#8fa1b3",
        "data-band": b.label, "data-severity": sev, "data-count": String(n) });
      const rt = svgEl("title"); rt.textContent = `${n} ${sev}`; r.append(rt);
      svg.append(r);
      x += w;
    }
    const n = svgEl("text", { x: (x + 4).toFixed(1), y: y + 14, class: "axis", "data-band-count": b.label });
    n.textContent = String(b.count);
    svg.append(n);
  });
  return svg;
}

function drawCharts(stats) {
  const hours = stats.hours || [];
  const sum = (series) => Object.values(series || {}).reduce((a, v) => a + v.reduce((x, y) => x + y, 0), 0);
  const calls = sum(stats.calls.by_grade);
  const grades = Object.entries(stats.calls.by_grade || {}).sort(([a], [b]) => a.localeCompare(b));
  const parts = [
    el("h4", {}, `Calls by grade, per hour (${calls} in 24 hours)`),
    ...stackedBars("chart-grades", "Calls by grade per hour, last 24 hours", hours, grades, (g) => GRADE_COLOURS[g] || "#8fa1b3"),
    el("h4", {}, "Calls by category, per hour"),
    ...stackedBars("chart-categories", "Calls by category per hour, last 24 hours", hours, topSeries(stats.calls.by_category, 6), (_, k) => PALETTE[k % PALETTE.length]),
    el("h4", {}, "ANPR hits and plate checks, per hour"),
    ...stackedBars("chart-anpr", "ANPR hits, verified and not a match, per hour", hours,
      [["hits", stats.anpr.hits], ["verified", stats.anpr.verified], ["not_a_match", stats.anpr.not_a_match]],
      (name) => ({ hits: "#b28cff", verified: "#3ddc97", not_a_match: "#ff8c3a" })[name]),
    el("h4", {}, `Open alerts by age (${stats.open_alerts.total} open)`),
    ageBars(stats.open_alerts.by_age || []),
  ];
  $("#charts-body").replaceChildren(...parts);
  const seeded = Object.entries(stats.seeded || {}).map(([k, v]) => `${k}s: ${v}`).join("; ");
  $("#charts-state").textContent = `Counted by this gateway since ${dateTimeOf(stats.since)}${seeded ? "; re-read after its start: " + seeded : ""}. Updated ${timeOf(stats.generated_at)}.`;
}

// ---- optional map tiles (the operator's tile server; CSP allows its origin only) --------

const TILE_ZOOM = 10;

function tileBounds(x, y, z) {
  const n = 2 ** z;
  const lon = (i) => (i / n) * 360 - 180;
  const lat = (j) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * j) / n))) * 180) / Math.PI;
  return { west: lon(x), east: lon(x + 1), north: lat(y), south: lat(y + 1) };
}

function drawTiles(template, districts, project, layer) {
  let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
  for (const f of districts.features) eachRing(f.geometry, (ring) => {
    for (const [lon, lat] of ring) {
      minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
      minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    }
  });
  const z = TILE_ZOOM, n = 2 ** z;
  const tx = (lon) => Math.floor(((lon + 180) / 360) * n);
  const ty = (lat) => Math.floor(((1 - Math.asinh(Math.tan((lat * Math.PI) / 180)) / Math.PI) / 2) * n);
  for (let x = tx(minLon); x <= tx(maxLon); x++) {
    for (let y = ty(maxLat); y <= ty(minLat); y++) {
      const b = tileBounds(x, y, z);
      const [x0, y0] = project.point(b.west, b.north);
      const [x1, y1] = project.point(b.east, b.south);
      const href = template.replace("{z}", z).replace("{x}", x).replace("{y}", y);
      layer.append(svgEl("image", { href, x: x0.toFixed(1), y: y0.toFixed(1), width: (x1 - x0).toFixed(1),
        height: (y1 - y0).toFixed(1), preserveAspectRatio: "none", class: "tile" }));
    }
  }
}

// ---- socket ----------------------------------------------------------------------

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

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
        state.sub = m.sub;
        $("#who").textContent = `${m.sub} · ${ROLE_WORDS[m.role] || words(m.role)}`;
        showTools(m.role);
        send({ type: "subscribe", events: true });
        break;
      case "subscribed":
        setStatus("live", "live");
        state.retry = 1000;
        if (state.lastAlertId) resume();
        break;
      case "alert": onAlert(m); break;
      case "event": onEvent(m.kind, m.event); break;
      case "alert_ack": onAck(m); break;
      case "acked": setStatus(`live · ${m.action} sent`, "live"); break;
      case "snoozed": onSnoozed(m); break;
      case "unsnoozed": onUnsnoozed(m); break;
      case "error": onError(m); break;
      case "working": onWorking(m); break;
      case "verification": onVerification(m); break;
      case "verify_ack": onVerifyAck(m); break;
      case "incidents": onIncidents(m.incidents); break;
      case "incident": onIncident(m.incident); break;
      case "officers": onOfficers(m.officers); break;
      case "officer": onOfficer(m.officer); break;
      case "assigned": onAssigned(m); break;
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
  for (const name of PANELS) $(`#${name}-close`).addEventListener("click", () => closePanel($(`#${name}`)));
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    for (const name of PANELS) closePanel($(`#${name}`));
  });
  $("#charts-open").addEventListener("click", openCharts);
  $("#charts-refresh").addEventListener("click", openCharts);
  $("#workload-open").addEventListener("click", openWorkload);
}

// ---- tools: history search (analysts, supervisors), the cases page (case roles) ---------

function showTools(role) {
  $("#search-open").hidden = !SEARCH_ROLES.has(role);
  $("#charts-open").hidden = !SEARCH_ROLES.has(role);
  $("#workload-open").hidden = role !== "supervisor";
  $("#queue-section").hidden = !SEARCH_ROLES.has(role);
  document.querySelector("main").classList.toggle("no-queue", !SEARCH_ROLES.has(role));
  const cases = $("#cases-link");
  cases.hidden = !CASE_ROLES.has(role);
  cases.href = "/cases"; // the same tab keeps the session
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
  for (const other of ["#detail", "#assign", "#charts", "#workload"]) closePanel($(other), false);
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
    const link = el("a", { href: `/cases#${encodeURIComponent(item.case_ref)}` }, item.case_ref);
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
  const session = await RticSession.take(STAFF_SESSION);
  state.token = session.token;
  if (!state.token) {
    setStatus(session.refused ? "link refused" : "no token", "error");
    $("#map-message").textContent = `${session.refused || "This page needs a link."} Print a new one with: rtic token --link --role rtic_analyst --sub YOUR-NAME`;
    return;
  }
  try {
    await drawMap();
  } catch (err) {
    $("#map-message").textContent = "Could not load the map: " + err;
  }
  connect();
  state.pingTimer = setInterval(() => send({ type: "ping" }), 20000);
  setInterval(tickQueue, 1000);
}

main();
