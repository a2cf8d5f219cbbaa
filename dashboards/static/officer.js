// RTIC officer: an officer's phone page. Plain JS, no dependencies, nothing from the internet.
// Protocol (docs/contract.md): hello -> subscribe {radius_m, position} -> subscribed (and `jobs`),
// then resume {last_alert_id, since, seen} (what this phone saw, kept in localStorage). Frames in:
// alert, jobs, job, verification, acked, verify_ack, job_update_ack, position_ack, resumed, pong,
// error. Messages out: ack, verify, job_update (each with an update_id made here, kept in
// IndexedDB until its job_update_ack: sent once when the socket is back), position, ping.
// The service worker (/officer-sw.js) keeps the page and its files for use with no network.
"use strict";

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const SEVERITY_WORDS = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };
const STATUS_WORDS = { open: "Not yet assigned", assigned: "Assigned to you", en_route: "En route",
  arrived: "Arrived", closed: "Closed" };
const EVENT_WORDS = { en_route: "En route", arrived: "Arrived", updated: "Log", closed: "Close job" };
const RESULTS = ["Advice given", "Report taken (crime recorded)", "Arrest made", "No offence disclosed",
  "Unable to locate", "Referred to another agency", "Other (see details)"];
const COMPASS = ["north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west"];
// Replies that answer the page's messages in the order sent (job updates are answered when
// written, later, by their update_id: job_update_ack, or an error naming the update_id).
// A resume is not one of them: a gateway that has just started answers it only once it has
// read its recent alerts (`resumed`, or `error` `not_ready`: sent again after retry_after_s).
const REPLIES = new Set(["subscribed", "pong", "acked", "verify_ack", "position_ack",
  "error", "opened"]);
const RESUME_OVERLAP_MS = 5 * 60 * 1000; // `since` reaches this far before the last alert seen
const MAX_SEEN = 1000; // alerts named in a resume's `seen`
const MAX_INFLIGHT_UPDATES = 10; // job updates sent and not yet answered (push/wslimits.py)
const JOB_RETRY_MS = 3000; // after "unavailable" or "in_progress": the update is sent again
const MAX_ALERTS = 100;
const ALERT_KEEP_MS = 12 * 3600 * 1000;
const CLOSED_KEEP_MS = 3600 * 1000;
const POSITION_EVERY_MS = 60000;
const POSITION_MOVE_M = 50;
const RESUBSCRIBE_MOVE_M = 200;
const PING_EVERY_MS = 20000;
const SILENT_CLOSE_MS = 50000; // nothing heard for this long (pongs included): the socket is dead
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 8000;
const FIRST_VISIT_LOOKBACK_MS = 2 * 3600 * 1000;

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function words(code) {
  const text = String(code || "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function clockOf(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
}

function since(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.floor(m / 60)} h ${m % 60} min ago`;
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // a page served without TLS, not on localhost
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- where I am: distance and direction --------------------------------------------

function distanceM(a, b) {
  const R = 6371008.8, rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

function bearing(a, b) {
  const rad = Math.PI / 180;
  const y = Math.sin((b.lon - a.lon) * rad) * Math.cos(b.lat * rad);
  const x = Math.cos(a.lat * rad) * Math.sin(b.lat * rad) - Math.sin(a.lat * rad) * Math.cos(b.lat * rad) * Math.cos((b.lon - a.lon) * rad);
  return (Math.atan2(y, x) / rad + 360) % 360;
}

function fromMe(loc) {
  if (!loc || typeof loc.lat !== "number") return "";
  const me = state.here || state.lastPing;
  if (!me) return "Distance unknown: allow this page to use your location.";
  const d = distanceM(me, loc);
  const basis = state.here ? "" : " (from your last position sent)";
  if (d < 30) return `Here: within 30 m of you${basis}`;
  const far = d < 1000 ? `${Math.round(d / 10) * 10} m` : `${(d / 1000).toFixed(1)} km`;
  return `${far} ${COMPASS[Math.round(bearing(me, loc) / 45) % 8]} of you${basis}`;
}

// ---- state and what this phone keeps ------------------------------------------------

function tokenSubject(token) {
  // Only to keep each officer's things apart on a shared phone; the gateway checks the token.
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4))).sub || "unknown";
  } catch {
    return "unknown";
  }
}


const state = {
  token: null,
  sub: null,
  role: null,
  ws: null,
  ready: false, // subscribed on the current socket
  retry: RETRY_MIN_MS,
  retryTimer: null,
  heardAt: 0,
  refused: false,
  alerts: new Map(), // alert_id -> alert (with _acked, _verification, _said)
  jobs: new Map(), // incident_id -> incident
  lastAlertId: null,
  here: null, // {lat, lon, accuracy, at} from the browser
  lastPing: null, // the last position this phone sent
  sentPosition: null, // {lat, lon, ms}
  subscribedAt: null, // the position the current subscription names
  status: "available",
  share: true,
  radius: 2000,
  pending: [], // what each request sent on this socket was, in order: replies come in order
  inflight: new Set(), // update ids sent on this socket, not yet acknowledged
  outbox: [], // job updates kept in IndexedDB, oldest first
  refusedUpdates: new Map(), // incident_id -> message
  unsupported: new Set(), // message types this gateway does not take
};

function key(name) {
  return `rtic.officer.${state.sub}.${name}`;
}

function load(name, fallback) {
  try {
    const raw = localStorage.getItem(key(name));
    return raw == null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function save(name, value) {
  try {
    localStorage.setItem(key(name), JSON.stringify(value));
  } catch {
    // Storage full or refused: the page still works, it only forgets on reload.
  }
}

function keepAlerts() {
  const cutoff = Date.now() - ALERT_KEEP_MS;
  const kept = [...state.alerts.values()]
    .filter((a) => Date.parse(a.created_at) > cutoff)
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at))
    .slice(0, MAX_ALERTS);
  if (kept.length < state.alerts.size) {
    state.alerts = new Map(kept.map((a) => [a.alert_id, a]));
  }
  save("alerts", kept);
}

function keepJobs() {
  save("jobs", [...state.jobs.values()]);
}

// ---- the outbox: job updates in IndexedDB until the gateway acknowledges them ---------

let dbPromise = null;

function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const open = indexedDB.open("rtic-officer", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("outbox", { keyPath: "update_id" });
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  return dbPromise;
}

async function store(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction("outbox", mode);
    const request = fn(tx.objectStore("outbox"));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

async function loadOutbox() {
  const all = (await store("readonly", (s) => s.getAll())) || [];
  state.outbox = all.filter((u) => u.sub === state.sub).sort((a, b) => a.seq - b.seq);
}

async function jobUpdate(job, event, extra = {}) {
  const update = {
    update_id: uuid(),
    incident_id: job.incident_id,
    event,
    at: new Date().toISOString(),
    ...extra,
    sub: state.sub,
    seq: Date.now() + Math.random(),
  };
  try {
    await store("readwrite", (s) => s.put(update)); // kept before it is sent: never lost
  } catch (err) {
    say(`Could not keep the update on this phone (${err}); it is sent now only.`);
  }
  state.outbox.push(update);
  state.refusedUpdates.delete(job.incident_id);
  renderJob(job.incident_id);
  showOutbox();
  flush();
}

async function dropUpdate(updateId) {
  state.inflight.delete(updateId);
  const i = state.outbox.findIndex((u) => u.update_id === updateId);
  const update = i >= 0 ? state.outbox.splice(i, 1)[0] : null;
  try {
    await store("readwrite", (s) => s.delete(updateId));
  } catch {
    // Left in IndexedDB: sent again next time, and the gateway says duplicate.
  }
  showOutbox();
  return update;
}

function flush() {
  if (!state.ready || state.unsupported.has("job_update")) return;
  for (const u of state.outbox) {
    // A few at a time (more as each is answered): the gateway limits messages per second.
    if (state.inflight.size >= MAX_INFLIGHT_UPDATES) break;
    if (state.inflight.has(u.update_id)) continue;
    state.inflight.add(u.update_id);
    const msg = { type: "job_update", update_id: u.update_id, incident_id: u.incident_id, event: u.event, at: u.at };
    if (u.note) msg.note = u.note;
    if (u.result) msg.result = u.result;
    send(msg); // answered by its update_id, not in order

  }
  showOutbox();
}

function showOutbox() {
  const box = $("#outbox");
  const n = state.outbox.length;
  const what = `${n} update${n === 1 ? "" : "s"} waiting to send`;
  box.hidden = n === 0;
  if (!n) box.textContent = "";
  else if (!navigator.onLine || !state.ready) box.textContent = `${what}: kept on this phone, sent when the signal returns.`;
  else if (state.unsupported.has("job_update")) box.textContent = `${what}: this gateway does not take job updates yet.`;
  else box.textContent = `${what}: sending…`;
  box.dataset.waiting = String(n);
}

// ---- the socket ---------------------------------------------------------------------

function setLink(text, kind) {
  const link = $("#link");
  link.textContent = text;
  link.dataset.state = kind;
}

function say(text) {
  const m = $("#message");
  m.textContent = text || "";
  m.hidden = !text;
}

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

function request(msg, ref = null) {
  // Every message this page sends gets exactly one reply, in order (or an error frame).
  if (!send(msg)) return false;
  state.pending.push({ type: msg.type, ref });
  return true;
}

function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  if (state.refused) return;
  if (!navigator.onLine) {
    offline();
    return;
  }
  if (state.ws && state.ws.readyState <= WebSocket.OPEN) return;
  const ws = RticSession.socket(state.token);
  state.ws = ws;
  state.ready = false;
  state.unsupported.clear(); // maybe a newer gateway
  state.pending = [];
  state.inflight.clear();
  state.heardAt = Date.now();
  setLink("Connecting…", "connecting");
  ws.onmessage = (msg) => {
    if (ws !== state.ws) return;
    state.heardAt = Date.now();
    let m;
    try { m = JSON.parse(msg.data); } catch { return; }
    const asked = REPLIES.has(m.type) && !("update_id" in m) && m.code !== "not_ready"
      ? state.pending.shift() : null;
    onFrame(m, asked);
  };
  ws.onclose = (e) => {
    if (ws !== state.ws) return;
    state.ws = null;
    state.ready = false;
    state.pending = [];
    state.inflight.clear();
    showOutbox();
    if (e.code === 1008) {
      state.refused = true;
      setLink("Your link was refused (expired or withdrawn). Ask the RTIC for a new officer's link.", "refused");
      return;
    }
    if (!navigator.onLine) {
      offline();
      return;
    }
    const wait = Math.round(state.retry * (0.8 + Math.random() * 0.4));
    setLink(`No connection to the RTIC: trying again in ${Math.max(1, Math.round(wait / 1000))} s.`, "reconnecting");
    state.retryTimer = setTimeout(connect, wait);
    state.retry = Math.min(state.retry * 2, RETRY_MAX_MS);
  };
}

function offline() {
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close(1000, "offline");
  }
  state.ready = false;
  state.pending = [];
  state.inflight.clear();
  setLink("You are offline. Alerts will resume when the signal returns.", "offline");
  showOutbox();
}

function subscribe() {
  const msg = { type: "subscribe", radius_m: state.radius };
  const me = state.here || state.lastPing;
  if (me) msg.position = { lat: me.lat, lon: me.lon };
  state.subscribedAt = me ? { lat: me.lat, lon: me.lon } : null;
  request(msg, me ? "near" : null);
}

function onFrame(m, asked) {
  switch (m.type) {
    case "hello":
      state.role = m.role;
      $("#who").textContent = `${m.sub} · ${m.role === "officer" ? "officer" : words(m.role)}`;
      if (m.role !== "officer" && m.role !== "supervisor") {
        say(`This page is for officers; your link is for a ${words(m.role).toLowerCase()}.`);
      }
      subscribe();
      break;
    case "subscribed":
      // Whether alerts near me are on: the subscription names where I am.
      $("#link").dataset.near = asked && asked.ref === "near" ? "yes" : "no";
      if (!state.ready) {
        state.ready = true;
        state.retry = RETRY_MIN_MS;
        setLink("Online: alerts and jobs are live.", "live");
        resume();
        flush();
        sendPosition(true);
      }
      // The position came while that subscription was on its way: ask again with it.
      if (!(asked && asked.ref === "near") && (state.here || state.lastPing)) subscribe();
      break;
    case "alert": onAlert(m); break;
    case "acked": onAcked(m); break;
    case "verify_ack": onVerifyAck(m); break;
    case "verification": onVerification(m); break;
    case "jobs": onJobs(m.jobs || []); break;
    case "job": onJob(m); break;
    case "job_update_ack": onJobUpdateAck(m); break;
    case "position_ack":
      $("#where").textContent = `Position sent at ${clockOf(m.at || new Date().toISOString())}.`;
      break;
    case "error": onError(m, asked); break;
    default: break;
  }
}

function onJobUpdateError(m) {
  if (m.code === "unavailable" || m.code === "in_progress" || m.code === "unsupported") {
    // Not refused: kept, and sent again in a moment.
    state.inflight.delete(m.update_id);
    if (m.code === "unsupported") state.unsupported.add("job_update");
    else setTimeout(flush, JOB_RETRY_MS);
    showOutbox();
    return;
  }
  // Refused for good (not my job, or a bad update): keeping it would send it forever.
  dropUpdate(m.update_id).then((u) => {
    if (!u) return;
    state.refusedUpdates.set(u.incident_id, `${EVENT_WORDS[u.event] || words(u.event)} not accepted: ${m.message}`);
    renderJob(u.incident_id);
    flush();
  });
}

// What this phone missed: after the last alert it saw (or since a little before it), never
// the alerts it already has (`seen`, with their versions).
function resume() {
  const last = state.lastAlertId ? state.alerts.get(state.lastAlertId) : null;
  const lastAt = last ? Date.parse(last.created_at) : NaN;
  const since = Number.isFinite(lastAt) ? lastAt - RESUME_OVERLAP_MS : Date.now() - FIRST_VISIT_LOOKBACK_MS;
  const seen = {};
  for (const a of [...state.alerts.values()].slice(-MAX_SEEN)) seen[a.alert_id] = a.version || 1;
  const msg = { type: "resume", since: new Date(since).toISOString(), seen };
  if (state.lastAlertId) msg.last_alert_id = state.lastAlertId;
  send(msg);
}

function onError(m, asked) {
  if (m.code === "not_ready") {
    const ws = state.ws;
    setTimeout(() => { if (ws && ws === state.ws && state.ready) resume(); }, (m.retry_after_s || 2) * 1000);
    return;
  }
  if (typeof m.update_id === "string") {
    onJobUpdateError(m);
    return;
  }
  const what = asked ? asked.type : "";
  if (m.code === "unsupported" && what) {
    state.unsupported.add(what);
    if (what === "job_update") {
      state.inflight.clear();
      showOutbox();
    } else if (what === "position") {
      $("#where").textContent = "This gateway does not take positions yet.";
    } else {
      say(`This gateway does not take ${words(what).toLowerCase()} yet.`);
    }
    return;
  }
  if (what === "ack" || what === "verify") {
    const a = state.alerts.get(asked.ref);
    if (a) {
      a._said = `Not sent: ${m.message}`;
      renderAlert(a.alert_id);
    }
    return;
  }
  if (what === "position") {
    $("#where").textContent = `Position not taken: ${m.message}`;
    return;
  }
  if (what !== "ping" && what !== "resume") say(`The RTIC refused a message: ${m.message}`);
}

// ---- alerts -------------------------------------------------------------------------

function onAlert(m) {
  const { type, ...alert } = m;
  if (typeof alert.alert_id !== "string") return;
  const known = state.alerts.get(alert.alert_id);
  state.lastAlertId = alert.alert_id;
  save("lastAlertId", state.lastAlertId);
  if (known && (alert.version || 1) <= (known.version || 1)) return; // shown once
  if (known) {
    for (const k of ["_acked", "_verification", "_said"]) if (known[k]) alert[k] = known[k];
  }
  alert._received = Date.now();
  state.alerts.set(alert.alert_id, alert);
  keepAlerts();
  renderAlert(alert.alert_id);
  orderAlerts();
}

function onAcked(m) {
  const a = state.alerts.get(m.alert_id);
  if (!a) return;
  a._acked = new Date().toISOString();
  a._said = null;
  keepAlerts();
  renderAlert(a.alert_id);
}

function onVerifyAck(m) {
  const a = state.alerts.get(m.alert_id);
  if (!a) return;
  a._verification = a._verification || { outcome: m.outcome, by: state.sub, at: new Date().toISOString(), mine: true };
  a._said = null;
  keepAlerts();
  renderAlert(a.alert_id);
}

function onVerification(m) {
  const a = state.alerts.get(m.alert_id);
  if (!a) return;
  a._verification = { outcome: m.outcome, by: m.by, role: m.role, at: m.at, mine: m.by === state.sub };
  keepAlerts();
  renderAlert(a.alert_id);
}

function alertOrder(a, b) {
  const s = (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9);
  return s || Date.parse(b.created_at) - Date.parse(a.created_at);
}

function orderAlerts() {
  const list = $("#alerts");
  const sorted = [...state.alerts.values()].sort(alertOrder);
  // Append in order: each append moves the node to the end, so the result is sorted.
  for (const a of sorted) {
    const node = list.querySelector(`li[data-alert-id="${CSS.escape(a.alert_id)}"]`);
    if (node) list.append(node);
  }
  for (const node of [...list.children]) {
    if (!state.alerts.has(node.dataset.alertId)) node.remove();
  }
  $("#no-alerts").hidden = state.alerts.size > 0;
  $("#alert-count").textContent = state.alerts.size ? `(${state.alerts.size})` : "";
}

function markerList(markers) {
  if (!Array.isArray(markers) || !markers.length) return null;
  const names = [...new Set(markers.map((m) => words(typeof m === "string" ? m : m.marker)))].filter(Boolean);
  if (!names.length) return null;
  return el("p", { class: "markers" }, el("strong", {}, "Warning markers: "), names.join(", "));
}

function webLink(raw) {
  // A link to show (never fetched by the page): web addresses only, no script: or data: URLs.
  if (typeof raw !== "string" || !raw) return null;
  try {
    const url = new URL(raw, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function plateCheck(a) {
  const v = (a.details || {}).verification;
  if (!v || typeof v !== "object") return null;
  const rows = [
    ["Read plate", v.read_vrm, "plate"],
    ["Listed plate", v.listed_vrm, "plate"],
    ["Match", v.match === "exact" ? "Exact" : v.match ? `Misread: ${words(v.match).toLowerCase()}` : null],
    ["Camera", v.camera_id],
    ["Confidence", typeof v.confidence === "number" ? `${Math.round(v.confidence * 100)} %` : v.confidence == null ? "Not given" : v.confidence],
  ];
  const dl = el("dl", { class: "plate-check" });
  for (const [k, val, cls] of rows) {
    if (val == null || val === "") continue;
    dl.append(el("dt", {}, k), el("dd", { class: cls || null }, val));
  }
  const image = webLink(v.image_url);
  if (image) {
    dl.append(el("dt", {}, "Image"), el("dd", {}, el("a", { href: image, target: "_blank", rel: "noopener noreferrer" }, "Open the plate image")));
  }
  const box = el("div", { class: "verify" }, dl);
  const decided = a._verification;
  if (decided) {
    const outcome = decided.outcome === "verified" ? "Verified" : "Not a match";
    const by = decided.mine ? "by you" : `by ${decided.by}`;
    box.append(el("p", { class: `decided decided-${decided.outcome}`, "data-outcome": decided.outcome },
      `${outcome} ${by}${decided.at ? ` at ${clockOf(decided.at)}` : ""}.`));
  } else if (v.state === "pending") {
    box.append(el("p", { class: "ask" }, "Compare the two plates, then:"));
    const yes = el("button", { type: "button", class: "primary" }, "Verify");
    const no = el("button", { type: "button" }, "Not a match");
    yes.addEventListener("click", () => verify(a, "verified"));
    no.addEventListener("click", () => verify(a, "not_a_match"));
    box.append(el("div", { class: "actions" }, yes, no));
  } else if (v.state === "verified") {
    box.append(el("p", { class: "decided decided-verified" },
      `Plate verified${(a.details || {}).verified_by ? ` by ${a.details.verified_by}` : ""}.`));
  }
  return box;
}

function verify(a, outcome) {
  if (!request({ type: "verify", alert_id: a.alert_id, outcome }, a.alert_id)) {
    a._said = "You are offline: try again when the signal returns.";
  } else {
    a._said = "Sending…";
  }
  renderAlert(a.alert_id);
}

function acknowledge(a) {
  if (!request({ type: "ack", alert_id: a.alert_id, action: "ack" }, a.alert_id)) {
    a._said = "You are offline: try again when the signal returns.";
  } else {
    a._said = "Sending…";
  }
  renderAlert(a.alert_id);
}

function alertCard(a) {
  const d = a.details || {};
  const li = el("li", { class: "card alert", "data-alert-id": a.alert_id,
    "data-severity": a.severity, "data-received-at": String(a._received || ""),
    "aria-labelledby": `t-${a.alert_id}` });
  const parts = [
    el("div", { class: "meta" },
      el("span", { class: `sev sev-${a.severity}` }, SEVERITY_WORDS[a.severity] || words(a.severity)),
      el("time", { class: "since", dateTime: a.created_at, "data-at": a.created_at }, since(a.created_at))),
    el("h3", { id: `t-${a.alert_id}` }, a.title),
    el("p", { class: "summary" }, a.summary),
    d.why ? el("p", { class: "why" }, d.why) : null,
    markerList(d.markers),
    a.location ? el("p", { class: "distance" }, fromMe(a.location)) : null,
    plateCheck(a)];
  li.append(...parts.filter(Boolean));
  const actions = el("div", { class: "actions" });
  if (a._acked) {
    actions.append(el("p", { class: "done" }, `Acknowledged at ${clockOf(a._acked)}.`));
  } else {
    const ack = el("button", { type: "button" }, "Acknowledge");
    ack.addEventListener("click", () => acknowledge(a));
    actions.append(ack);
  }
  li.append(actions);
  if (a._said) li.append(el("p", { class: "said", role: "status" }, a._said));
  return li;
}

function renderAlert(alertId) {
  const a = state.alerts.get(alertId);
  const list = $("#alerts");
  const old = list.querySelector(`li[data-alert-id="${CSS.escape(alertId)}"]`);
  if (!a) {
    if (old) old.remove();
    return;
  }
  const hadFocus = old && old.contains(document.activeElement) ? document.activeElement.textContent : null;
  const card = alertCard(a);
  if (old) old.replaceWith(card);
  else list.append(card);
  if (hadFocus) {
    const again = [...card.querySelectorAll("button")].find((b) => b.textContent === hadFocus);
    (again || card.querySelector("h3")).focus?.();
  }
}

// ---- jobs ---------------------------------------------------------------------------

function onJobs(jobs) {
  const mine = new Map();
  for (const job of jobs) if (job && job.incident_id) mine.set(job.incident_id, job);
  for (const id of state.jobs.keys()) if (!mine.has(id)) removeJobCard(id);
  state.jobs = mine;
  keepJobs();
  for (const id of mine.keys()) renderJob(id);
  orderJobs();
}

function onJob(m) {
  const job = m.job || {};
  if (!job.incident_id) return;
  const mineStill = !Array.isArray(job.units) || job.units.includes(state.sub);
  if (m.unassigned || !mineStill) {
    state.jobs.delete(job.incident_id);
    removeJobCard(job.incident_id);
    say(`Job ${job.incident_id} is no longer yours.`);
  } else {
    state.jobs.set(job.incident_id, job);
    renderJob(job.incident_id);
  }
  keepJobs();
  orderJobs();
}

async function onJobUpdateAck(m) {
  const u = await dropUpdate(m.update_id);
  if (u) renderJob(u.incident_id);
  flush(); // the next of the outbox, if any waited
}

function waitingFor(incidentId) {
  return state.outbox.filter((u) => u.incident_id === incidentId);
}

function shownStatus(job) {
  let status = job.status;
  for (const u of waitingFor(job.incident_id)) {
    if (u.event === "en_route" || u.event === "arrived" || u.event === "closed") status = u.event;
  }
  return status;
}

function promiseText(job, status, now = Date.now()) {
  const p = job.promise;
  if (!p || !p.due_at) return null;
  const due = Date.parse(p.due_at);
  const target = p.target_minutes ? `Attend within ${p.target_minutes} min` : "Attend";
  if (job.arrived_at || status === "arrived" || status === "closed") {
    const at = job.arrived_at ? Date.parse(job.arrived_at) : null;
    if (at == null) return { text: `${target}: you have arrived.`, late: false };
    const late = at > due;
    return { text: `${target}: arrived at ${clockOf(job.arrived_at)}${late ? `, ${Math.ceil((at - due) / 60000)} min late` : ", in time"}.`, late };
  }
  const left = Math.round((due - now) / 1000);
  const mmss = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  return left >= 0
    ? { text: `${target}: ${mmss(left)} left`, late: false }
    : { text: `${target}: ${mmss(-left)} over`, late: true };
}

function historyLines(h) {
  if (!h || typeof h !== "object") return [];
  if (typeof h === "string") return [h];
  const lines = [];
  if (typeof h.summary === "string") lines.push(h.summary);
  const count = (x) => (typeof x === "number" ? x : x && typeof x.count === "number" ? x.count : null);
  const said = [
    ["calls_at_address", "call", "at this address"],
    ["incidents_at_address", "incident", "at this address"],
    ["calls_by_person", "call", "by this caller"],
  ];
  for (const [k, noun, where] of said) {
    const n = count(h[k]);
    if (n != null) lines.push(`${n} ${noun}${n === 1 ? "" : "s"} ${where} in 28 days`);
  }
  for (const k of ["nearby", "calls_nearby", "incidents_nearby"]) {
    const n = count(h[k]);
    const noun = k === "incidents_nearby" ? "incident" : "call";
    const near = h[k] && h[k].radius_m ? `within ${h[k].radius_m} m` : "nearby";
    if (n != null) lines.push(`${n} ${noun}${n === 1 ? "" : "s"} ${near} in 28 days`);
  }
  for (const [k, v] of Object.entries(h)) {
    if (said.some(([s]) => s === k) || ["summary", "nearby", "calls_nearby", "incidents_nearby", "markers", "trail", "hotlist"].includes(k)) continue;
    if (typeof v === "number" || typeof v === "string") lines.push(`${words(k)}: ${v}`);
  }
  return lines;
}

function jobInfo(job) {
  const status = shownStatus(job);
  const loc = job.location || {};
  const info = el("div", { class: "job-info" });
  info.append(
    el("div", { class: "meta" },
      el("span", { class: `grade grade-${job.grade}` }, `Grade ${job.grade ?? "?"}`),
      el("span", { class: `job-status status-${status}`, "data-status": status }, STATUS_WORDS[status] || words(status))),
    el("h3", { id: `j-${job.incident_id}` }, `${words(job.category || "incident")}`, el("span", { class: "ref" }, ` ${job.incident_id}`)));
  const promise = promiseText(job, status);
  if (promise) info.append(el("p", { class: `promise${promise.late ? " late" : ""}`, "data-due": job.promise.due_at }, promise.text));
  info.append(el("p", { class: "address" }, loc.address || (typeof loc.lat === "number" ? `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : "No address given")));
  if (typeof loc.lat === "number") info.append(el("p", { class: "distance" }, fromMe(loc)));
  const markers = markerList(job.markers);
  if (markers) info.append(markers);
  const history = historyLines(job.history);
  if (history.length) info.append(el("ul", { class: "history", "aria-label": "History" }, ...history.map((t) => el("li", {}, t))));
  if (job.result) info.append(el("p", { class: "result" }, `Result: ${job.result}`));
  const log = job.log || [];
  const waiting = waitingFor(job.incident_id);
  if (log.length || waiting.length) {
    const ul = el("ul", { class: "log", "aria-label": "Log" });
    for (const entry of log) {
      ul.append(el("li", { "data-update-id": entry.update_id || "" },
        el("time", { dateTime: entry.at }, clockOf(entry.at)), ` ${entry.by ? entry.by + ": " : ""}${entry.text || ""}`));
    }
    for (const u of waiting) {
      ul.append(el("li", { class: "waiting", "data-update-id": u.update_id },
        el("time", { dateTime: u.at }, clockOf(u.at)), ` ${EVENT_WORDS[u.event]}${u.note ? ": " + u.note : ""}${u.result ? " (" + u.result + ")" : ""} — waiting to send`));
    }
    info.append(el("h4", {}, "Log"), ul);
  }
  const refused = state.refusedUpdates.get(job.incident_id);
  if (refused) info.append(el("p", { class: "said", role: "status" }, refused));
  return info;
}

function jobControls(job) {
  const id = job.incident_id;
  const box = el("div", { class: "job-controls" });
  const enRoute = el("button", { type: "button", class: "primary", "data-act": "en_route" }, "En route");
  const arrived = el("button", { type: "button", class: "primary", "data-act": "arrived" }, "Arrived");
  enRoute.addEventListener("click", () => jobUpdate(state.jobs.get(id) || job, "en_route"));
  arrived.addEventListener("click", () => jobUpdate(state.jobs.get(id) || job, "arrived"));
  const logId = `log-${id}`;
  const logText = el("textarea", { id: logId, rows: 2, maxLength: 4000, class: "log-text" });
  const addLog = el("button", { type: "button", "data-act": "log" }, "Add log");
  const logSaid = el("p", { class: "hint", role: "status" });
  addLog.addEventListener("click", () => {
    const note = logText.value.trim();
    if (!note) {
      logSaid.textContent = "Write the log entry first.";
      logText.focus();
      return;
    }
    logSaid.textContent = "";
    logText.value = "";
    jobUpdate(state.jobs.get(id) || job, "updated", { note });
  });
  const resultToggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": `result-${id}`, "data-act": "result" }, "Result");
  const panel = el("div", { id: `result-${id}`, class: "result-panel", hidden: true });
  const outcome = el("select", { id: `outcome-${id}` },
    el("option", { value: "" }, "Choose…"), ...RESULTS.map((r) => el("option", { value: r }, r)));
  const details = el("textarea", { id: `details-${id}`, rows: 2, maxLength: 3000 });
  const close = el("button", { type: "button", class: "primary", "data-act": "close" }, "Close job");
  const closeSaid = el("p", { class: "hint", role: "status" });
  resultToggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    resultToggle.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) outcome.focus();
  });
  close.addEventListener("click", () => {
    if (!outcome.value) {
      closeSaid.textContent = "Choose a result first.";
      outcome.focus();
      return;
    }
    const extra = { result: outcome.value };
    if (details.value.trim()) extra.note = details.value.trim();
    closeSaid.textContent = "";
    panel.hidden = true;
    resultToggle.setAttribute("aria-expanded", "false");
    jobUpdate(state.jobs.get(id) || job, "closed", extra);
  });
  panel.append(
    el("label", { for: `outcome-${id}` }, "Outcome"), outcome,
    el("label", { for: `details-${id}` }, "Result details"), details,
    el("div", { class: "actions" }, close), closeSaid);
  box.append(
    el("div", { class: "actions" }, enRoute, arrived),
    el("label", { for: logId }, "Log entry"), logText,
    el("div", { class: "actions" }, addLog, resultToggle), logSaid, panel);
  return box;
}

function renderJob(incidentId) {
  const job = state.jobs.get(incidentId);
  if (!job) return;
  const list = $("#jobs");
  let card = list.querySelector(`li[data-incident-id="${CSS.escape(incidentId)}"]`);
  if (!card) {
    card = el("li", { class: "card job", "data-incident-id": incidentId, "aria-labelledby": `j-${incidentId}` });
    card.append(el("div", { class: "job-info" }), jobControls(job));
    list.append(card);
  }
  // The info is redrawn; the controls stay, so what the officer is typing is kept.
  const status = shownStatus(job);
  card.dataset.status = status;
  card.querySelector(".job-info").replaceWith(jobInfo(job));
  const controls = card.querySelector(".job-controls");
  controls.hidden = status === "closed";
  $("[data-act='en_route']", controls).disabled = status === "en_route" || status === "arrived";
  $("[data-act='arrived']", controls).disabled = status === "arrived";
}

function removeJobCard(incidentId) {
  const card = $("#jobs").querySelector(`li[data-incident-id="${CSS.escape(incidentId)}"]`);
  if (card) card.remove();
}

function orderJobs() {
  const now = Date.now();
  for (const [id, job] of state.jobs) {
    if (job.status === "closed" && job.closed_at && now - Date.parse(job.closed_at) > CLOSED_KEEP_MS) {
      state.jobs.delete(id);
      removeJobCard(id);
    }
  }
  const list = $("#jobs");
  const open = (j) => (shownStatus(j) === "closed" ? 1 : 0);
  const due = (j) => (j.promise && j.promise.due_at ? Date.parse(j.promise.due_at) : Infinity);
  const sorted = [...state.jobs.values()].sort((a, b) => open(a) - open(b) || (a.grade ?? 9) - (b.grade ?? 9) || due(a) - due(b));
  for (const j of sorted) {
    const node = list.querySelector(`li[data-incident-id="${CSS.escape(j.incident_id)}"]`);
    if (node && !node.contains(document.activeElement)) list.append(node); // moving blurs
  }
  const n = [...state.jobs.values()].filter((j) => shownStatus(j) !== "closed").length;
  $("#no-jobs").hidden = state.jobs.size > 0;
  $("#job-count").textContent = n ? `(${n} open)` : "";
}

// ---- position and status --------------------------------------------------------------

function sendPosition(force = false) {
  const me = state.here;
  if (!state.share || !me || !state.ready || state.unsupported.has("position")) return;
  const last = state.sentPosition;
  const moved = last ? distanceM(last, me) : Infinity;
  if (!force && last && moved < POSITION_MOVE_M && Date.now() - last.ms < POSITION_EVERY_MS) return;
  const msg = { type: "position", lat: me.lat, lon: me.lon, at: new Date().toISOString(), status: state.status };
  if (typeof me.accuracy === "number" && isFinite(me.accuracy)) msg.accuracy_m = Math.min(100000, me.accuracy);
  if (request(msg)) {
    state.sentPosition = { lat: me.lat, lon: me.lon, ms: Date.now() };
    state.lastPing = { lat: me.lat, lon: me.lon, at: msg.at };
    save("lastPing", state.lastPing);
  }
}

function onPlace(pos) {
  state.here = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy, at: Date.now() };
  $("#where").dataset.fix = "here";
  $("#where").textContent = state.share ? "Your position is shared with the RTIC." : "Your position is used on this phone only.";
  sendPosition();
  const sub = state.subscribedAt;
  if (state.ready && (!sub || distanceM(sub, state.here) > RESUBSCRIBE_MOVE_M)) subscribe();
  refreshDistances();
}

function onNoPlace(err) {
  state.here = null;
  $("#where").dataset.fix = "none";
  $("#where").textContent = err && err.code === 1
    ? "Location is not allowed: alerts near you use your last position sent, and distances are not shown."
    : "Your location is not available right now.";
}

function watchPlace() {
  if (!("geolocation" in navigator)) {
    onNoPlace(null);
    return;
  }
  navigator.geolocation.watchPosition(onPlace, onNoPlace, { enableHighAccuracy: true, maximumAge: 15000, timeout: 30000 });
}

function refreshDistances() {
  for (const node of document.querySelectorAll("#alerts li[data-alert-id]")) {
    const a = state.alerts.get(node.dataset.alertId);
    const p = node.querySelector(".distance");
    if (a && p) p.textContent = fromMe(a.location);
  }
  for (const node of document.querySelectorAll("#jobs li[data-incident-id]")) {
    const j = state.jobs.get(node.dataset.incidentId);
    const p = node.querySelector(".distance");
    if (j && p) p.textContent = fromMe(j.location);
  }
}

function setupControls() {
  for (const radio of document.querySelectorAll("input[name='status']")) {
    radio.checked = radio.value === state.status;
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      state.status = radio.value;
      save("status", state.status);
      sendPosition(true);
    });
  }
  const share = $("#share");
  share.checked = state.share;
  share.addEventListener("change", () => {
    state.share = share.checked;
    save("share", state.share);
    $("#where").textContent = state.share ? "Your position is shared with the RTIC." : "Your position is not shared.";
    sendPosition(true);
  });
  const radius = $("#radius");
  radius.value = String(state.radius);
  radius.addEventListener("change", () => {
    state.radius = Number(radius.value) || 2000;
    save("radius", state.radius);
    if (state.ready) subscribe();
  });
  window.addEventListener("offline", offline);
  window.addEventListener("online", () => {
    state.retry = RETRY_MIN_MS;
    connect();
  });
}

function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("#alerts time.since")) t.textContent = since(t.dataset.at, now);
  for (const node of document.querySelectorAll("#jobs li[data-incident-id]")) {
    const job = state.jobs.get(node.dataset.incidentId);
    const p = node.querySelector(".promise");
    if (!job || !p) continue;
    const promise = promiseText(job, shownStatus(job), now);
    if (promise) {
      p.textContent = promise.text;
      p.classList.toggle("late", promise.late);
    }
  }
  if (state.ws && state.ready && now - state.heardAt > SILENT_CLOSE_MS) state.ws.close(4000, "silent");
}

async function main() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/officer-sw.js", { scope: "/officer" }).catch(() => {
      // Not over HTTPS (or localhost): the page works, but not with no network.
    });
  }
  // localStorage, not sessionStorage: the phone page opens with no network, after a restart.
  const session = await RticSession.take("rtic.officer.token", localStorage);
  state.token = session.token;
  if (session.refused) say(`${session.refused} Ask the RTIC for a new officer's link.`);
  if (!state.token) {
    setLink("No officer's link.", "refused");
    say("This page needs an officer's link: ask the RTIC, or print one with: rtic token --link --role officer --sub YOUR-ID");
    return;
  }
  state.sub = tokenSubject(state.token);
  $("#who").textContent = state.sub;
  state.lastAlertId = load("lastAlertId", null);
  state.lastPing = load("lastPing", null);
  state.status = load("status", "available");
  state.share = load("share", true);
  state.radius = load("radius", 2000);
  setupControls();
  for (const a of load("alerts", [])) if (a && a.alert_id) state.alerts.set(a.alert_id, a);
  for (const j of load("jobs", [])) if (j && j.incident_id) state.jobs.set(j.incident_id, j);
  try {
    await loadOutbox();
  } catch (err) {
    say(`This phone cannot keep updates (${err}): they are sent only while online.`);
  }
  for (const id of state.alerts.keys()) renderAlert(id);
  orderAlerts();
  for (const id of state.jobs.keys()) renderJob(id);
  orderJobs();
  showOutbox();
  watchPlace();
  connect();
  setInterval(tick, 1000);
  setInterval(() => {
    if (state.ready) request({ type: "ping" });
    sendPosition();
  }, PING_EVERY_MS);
}

main();
