// The citizen portal: report a crime online, keep the receipt, track the case live, give a
// witness statement. Plain script, nothing from another origin: the map is the force's
// district boundaries from /api/boundaries drawn as SVG, with a pin.
//
// HTTP: POST /api/portal/reports -> {case_ref, secret, token, call_id, notice};
//       POST /api/portal/session {case_ref, secret} -> {token} | 401;
//       GET /api/cases/{ref} -> {case_ref, status, pending, timeline, next_contact};
//       GET|POST /api/cases/{ref}/statements.
// Websocket /ws (the token in the subprotocol "rtic.bearer.<token>", beside "rtic"): hello -> subscribe {cases: [ref]} -> subscribed; case_update frames
// for the case make the page read the case again (timeline and next-contact estimate).
// The session is kept in sessionStorage "rtic.portal.token" / "rtic.portal.case_ref" and
// told to the other portal scripts with the document event "rtic:session" ({token, caseRef});
// "rtic:signout" ends it (portal.html's comment).
"use strict";

(() => {
  const TOKEN_KEY = "rtic.portal.token";
  const REF_KEY = "rtic.portal.case_ref";
  const REFRESH_MS = 60000; // the estimate follows demand: read the case again each minute
  const REF_LAT = 52.48;
  const KX = Math.cos((REF_LAT * Math.PI) / 180);

  const CATEGORIES = [
    ["burglary", "Burglary (someone got into a home, shed or building)"],
    ["theft", "Theft (something was stolen)"],
    ["vehicle_crime", "Vehicle crime (a car, van or bike stolen or broken into)"],
    ["criminal_damage", "Damage to property"],
    ["assault", "Assault (someone was attacked)"],
    ["robbery", "Robbery (something taken with force or threats)"],
    ["asb", "Anti-social behaviour"],
    ["harassment", "Harassment"],
    ["hate_crime", "Hate crime or hate incident"],
    ["fraud", "Fraud or a scam"],
    ["domestic_abuse", "Domestic abuse"],
    ["stalking", "Stalking"],
    ["sexual_offence", "Sexual offence"],
    ["concern_for_safety", "Worried about someone's safety"],
    ["missing_person", "A missing person"],
    ["traffic", "A road traffic matter"],
    ["suspicious_vehicle", "A suspicious vehicle"],
    ["other", "Something else"],
  ];
  const STATUS_WORDS = {
    received: "Received: we have your report",
    assessed: "Assessed: waiting for an officer",
    under_investigation: "An officer is working on it",
    closed: "Closed",
  };
  const RELATIONS = [
    ["victim", "It happened to me"],
    ["witness", "I saw or heard it"],
    ["reporting for someone else", "I am reporting for someone else"],
    ["other", "Other"],
  ];
  const EMERGENCY = "If a crime is happening now, or someone is in danger or hurt, call 999.";

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    caseRef: sessionStorage.getItem(REF_KEY),
    ws: null,
    retry: 1000,
    refresh: null,
    pin: null, // {lat, lon}
    map: null,
    statements: [],
  };

  // ---- small helpers -----------------------------------------------------------------

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function svgEl(tag, attrs = {}) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    return d.toLocaleString("en-GB", {
      weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", hour12: false,
    });
  }

  function localInputToIso(value) {
    if (!value) return null;
    const d = new Date(value); // a datetime-local value is the device's local time
    return isNaN(d) ? null : d.toISOString();
  }

  function nowForInput() {
    const d = new Date();
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 16);
  }

  async function api(method, path, body, token) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    } catch {
      return { ok: false, status: 0, data: { error: { message: "We could not reach the police service. Check your connection and try again." } } };
    }
    let data = {};
    try { data = await response.json(); } catch { /* an empty or non-JSON answer */ }
    return { ok: response.ok, status: response.status, data };
  }

  function problem(result) {
    if (result.status === 429) return `Too many tries. ${result.data.error?.message || ""}`.trim();
    const message = result.data.error?.message || "Something went wrong. Please try again.";
    return message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? "" : ".");
  }

  function field(label, control, hint) {
    const id = control.id;
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) control.setAttribute("aria-describedby", hintId);
    return el("div", { class: "field" },
      el("label", { for: id, text: label }),
      hint ? el("p", { class: "hint", id: hintId, text: hint }) : null,
      control);
  }

  function show(view, focus = true) {
    for (const id of ["report", "receipt", "track"]) $(`#${id}`).hidden = id !== view;
    for (const b of document.querySelectorAll("#portal-nav button")) {
      b.setAttribute("aria-current", b.dataset.view === view || (view === "receipt" && b.dataset.view === "report") ? "page" : "false");
    }
    const heading = $(`#${view} h2`);
    if (heading && focus) heading.focus();
  }

  // ---- the page's parts ------------------------------------------------------------------

  function build() {
    const app = $("#app");
    const anchor = $("#evidence");
    const nav = el("nav", { id: "portal-nav", "aria-label": "Portal" },
      el("button", { type: "button", "data-view": "report", onclick: () => show("report"), text: "Report a crime" }),
      el("button", { type: "button", "data-view": "track", onclick: () => show("track"), text: "Track my case" }));
    const banner = el("p", { class: "emergency", role: "note" }, el("strong", { text: "Emergency? " }), EMERGENCY);
    app.insertBefore(banner, anchor);
    app.insertBefore(nav, anchor);
    app.insertBefore(buildReport(), anchor);
    app.insertBefore(buildReceipt(), anchor);
    app.insertBefore(buildTrack(), anchor);
  }

  function buildReport() {
    const category = el("select", { id: "r-category", name: "category", required: true },
      el("option", { value: "", text: "Choose one" }),
      CATEGORIES.map(([v, t]) => el("option", { value: v, text: t })));
    const description = el("textarea", { id: "r-description", name: "description", rows: "5", required: true, maxlength: "4000" });
    const occurred = el("input", { id: "r-occurred", name: "occurred_at", type: "datetime-local", max: nowForInput() });
    const address = el("input", { id: "r-address", name: "address", type: "text", autocomplete: "street-address", maxlength: "300" });
    const name = el("input", { id: "r-name", name: "name", type: "text", autocomplete: "name", required: true, maxlength: "200" });
    const phone = el("input", { id: "r-phone", name: "phone", type: "tel", autocomplete: "tel", inputmode: "tel" });
    const email = el("input", { id: "r-email", name: "email", type: "email", autocomplete: "email" });
    const area = el("select", { id: "r-area", "aria-describedby": "r-where-hint" }, el("option", { value: "", text: "Or choose the area" }));
    const mapBox = el("div", { id: "r-map", class: "map" });
    const pinText = el("p", { id: "r-pin", class: "pin-text", "aria-live": "polite", text: "No place chosen yet." });
    const locate = el("button", { type: "button", id: "r-locate", class: "secondary", onclick: useMyLocation, text: "Use my location" });
    const errors = el("div", { id: "r-errors", class: "errors", role: "alert" });
    const form = el("form", { id: "report-form", novalidate: true, onsubmit: submitReport },
      el("p", { text: "Tell us about a crime or a concern that is not an emergency. It takes about five minutes." }),
      field("What happened?", category),
      field("Describe what happened", description, "What you saw or heard, what was taken or damaged, and anything that could help."),
      el("fieldset", {},
        el("legend", { text: "Where did it happen?" }),
        el("p", { class: "hint", id: "r-where-hint", text: "Tap the map to put a pin where it happened, use your location, or choose the area." }),
        mapBox, pinText, locate, area,
        field("Address or place (if you know it)", address)),
      field("When did it happen? (if you know)", occurred),
      el("fieldset", {},
        el("legend", { text: "About you" }),
        field("Your name", name),
        field("Phone number", phone, "Give a phone number or an email address, or both, so we can contact you."),
        field("Email address", email)),
      errors,
      el("button", { type: "submit", id: "r-submit", text: "Send report" }));
    drawMap(mapBox, area);
    return el("section", { id: "report", "aria-labelledby": "report-title" },
      el("h2", { id: "report-title", tabindex: "-1", text: "Report a crime" }), form);
  }

  function buildReceipt() {
    return el("section", { id: "receipt", "aria-labelledby": "receipt-title", hidden: true },
      el("h2", { id: "receipt-title", tabindex: "-1", text: "Your report has been sent" }),
      el("div", { class: "receipt-box" },
        el("p", { text: "Your case reference" }),
        el("p", { id: "receipt-ref", class: "code" }),
        el("p", { text: "Your secret" }),
        el("p", { id: "receipt-secret", class: "code" })),
      el("p", { class: "keep" }, el("strong", { text: "Keep this. " }),
        "Write down or save the reference and the secret now: we show the secret only once, and you need both to follow your case."),
      el("p", { id: "receipt-notice", class: "emergency", role: "note", text: EMERGENCY }),
      el("button", { type: "button", id: "receipt-track", onclick: () => { show("track"); }, text: "Follow my case" }));
  }

  function buildTrack() {
    const ref = el("input", { id: "t-ref", name: "case_ref", type: "text", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", required: true });
    const secret = el("input", { id: "t-secret", name: "secret", type: "text", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", required: true });
    const signIn = el("form", { id: "track-form", novalidate: true, onsubmit: submitSession },
      field("Case reference", ref, "For example WM-2026-0001234."),
      field("Secret", secret, "The four groups of letters and numbers you were given, for example ABCD-EFGH-JKLM-NPQR."),
      el("div", { id: "t-errors", class: "errors", role: "alert" }),
      el("button", { type: "submit", id: "t-submit", text: "Show my case" }));
    const caseView = el("div", { id: "case-view", hidden: true },
      el("p", { class: "case-ref" }, "Case ", el("strong", { id: "c-ref" })),
      el("p", { id: "c-status", class: "status" }),
      el("p", { id: "c-live", class: "live", "aria-live": "polite" }),
      el("div", { id: "c-next", class: "next-contact", "aria-labelledby": "c-next-title" },
        el("h3", { id: "c-next-title", text: "When we will be in touch" }),
        el("p", { id: "c-next-range", class: "range" }),
        el("p", { id: "c-next-basis", class: "basis" })),
      el("h3", { id: "c-timeline-title", text: "What has happened so far" }),
      el("ol", { id: "c-timeline", class: "timeline", "aria-labelledby": "c-timeline-title", reversed: true }),
      buildStatement(),
      el("button", { type: "button", id: "c-signout", class: "secondary", onclick: signOut, text: "Sign out" }));
    return el("section", { id: "track", "aria-labelledby": "track-title", hidden: true },
      el("h2", { id: "track-title", tabindex: "-1", text: "Track my case" }), signIn, caseView);
  }

  function buildStatement() {
    const name = el("input", { id: "s-name", type: "text", autocomplete: "name", required: true, maxlength: "200" });
    const relation = el("select", { id: "s-relation" }, RELATIONS.map(([v, t]) => el("option", { value: v, text: t })));
    const saw = el("textarea", { id: "s-saw", rows: "6", required: true, maxlength: "10000" });
    const from = el("input", { id: "s-when", type: "datetime-local", required: true, max: nowForInput() });
    const where = el("input", { id: "s-where", type: "text", required: true, maxlength: "300" });
    const extra = el("textarea", { id: "s-extra", rows: "3", maxlength: "10000" });
    const declaration = el("input", { id: "s-declaration", type: "checkbox", required: true });
    const form = el("form", { id: "statement-form", novalidate: true, onsubmit: submitStatement },
      el("p", { id: "s-mode", class: "hint", text: "A new statement." }),
      el("fieldset", {}, el("legend", { text: "Who you are" }), field("Your name", name), field("How you know about it", relation)),
      field("What you saw or heard", saw, "In your own words, in the order it happened."),
      field("When it happened", from),
      field("Where it happened", where, "An address or a description of the place."),
      field("Anything else (optional)", extra),
      el("div", { class: "declaration" }, declaration,
        el("label", { for: "s-declaration", text: "This statement is true to the best of my knowledge and belief." })),
      el("div", { id: "s-errors", class: "errors", role: "alert" }),
      el("p", { id: "s-done", class: "done", role: "status" }),
      el("button", { type: "submit", id: "s-submit", text: "Send statement" }),
      el("button", { type: "button", id: "s-new", class: "secondary", hidden: true, onclick: () => resetStatement(), text: "Write a new statement instead" }));
    return el("section", { id: "statement", "aria-labelledby": "statement-title" },
      el("h3", { id: "statement-title", text: "Give a witness statement" }),
      el("ul", { id: "s-list", class: "statements", "aria-label": "Your statements" }),
      form);
  }

  // ---- the map: the force's districts as SVG, a pin ------------------------------------

  function eachRing(geometry, fn) {
    const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    for (const poly of polys) for (const ring of poly) fn(ring);
  }

  async function drawMap(box, areaSelect) {
    let districts;
    try {
      districts = await (await fetch("/api/boundaries?level=district")).json();
    } catch {
      box.append(el("p", { class: "hint", text: "The map could not be loaded: use your location or choose the area." }));
      return;
    }
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const f of districts.features) eachRing(f.geometry, (ring) => {
      for (const [lon, lat] of ring) {
        const x = lon * KX, y = -lat;
        minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
    });
    const pad = 10, scale = 600 / Math.max(maxX - minX, maxY - minY);
    const map = {
      point: (lon, lat) => [pad + (lon * KX - minX) * scale, pad + (-lat - minY) * scale],
      invert: (x, y) => ({ lon: ((x - pad) / scale + minX) / KX, lat: -((y - pad) / scale + minY) }),
      width: (maxX - minX) * scale + 2 * pad,
      height: (maxY - minY) * scale + 2 * pad,
    };
    const svg = svgEl("svg", {
      viewBox: `0 0 ${map.width.toFixed(0)} ${map.height.toFixed(0)}`, role: "img",
      "aria-label": "Map of the force area: tap where it happened",
    });
    for (const f of districts.features) {
      const parts = [];
      eachRing(f.geometry, (ring) => parts.push(ring.map(([lon, lat], i) => {
        const [x, y] = map.point(lon, lat);
        return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      }).join("") + "Z"));
      const path = svgEl("path", { d: parts.join(""), class: "district" });
      const title = svgEl("title");
      title.textContent = f.properties.name;
      path.append(title);
      svg.append(path);
      const b = f.bbox || bboxOf(f.geometry);
      areaSelect.append(el("option", { value: `${(b[1] + b[3]) / 2},${(b[0] + b[2]) / 2}`, text: f.properties.name }));
    }
    const pin = svgEl("g", { class: "pin", visibility: "hidden" });
    pin.append(svgEl("circle", { r: "9" }), svgEl("circle", { r: "3", class: "dot" }));
    svg.append(pin);
    svg.addEventListener("click", (event) => {
      const pt = svg.createSVGPoint();
      pt.x = event.clientX; pt.y = event.clientY;
      const local = pt.matrixTransform(svg.getScreenCTM().inverse());
      const { lat, lon } = map.invert(local.x, local.y);
      setPin(lat, lon, "the map");
    });
    areaSelect.addEventListener("change", () => {
      if (!areaSelect.value) return;
      const [lat, lon] = areaSelect.value.split(",").map(Number);
      setPin(lat, lon, areaSelect.selectedOptions[0].textContent);
    });
    map.svg = svg; map.pinEl = pin;
    state.map = map;
    box.append(svg);
    if (state.pin) setPin(state.pin.lat, state.pin.lon, "before");
  }

  function bboxOf(geometry) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    eachRing(geometry, (ring) => {
      for (const [lon, lat] of ring) {
        b[0] = Math.min(b[0], lon); b[1] = Math.min(b[1], lat); b[2] = Math.max(b[2], lon); b[3] = Math.max(b[3], lat);
      }
    });
    return b;
  }

  function setPin(lat, lon, from) {
    state.pin = { lat: Math.round(lat * 1e6) / 1e6, lon: Math.round(lon * 1e6) / 1e6 };
    if (state.map) {
      const [x, y] = state.map.point(lon, lat);
      state.map.pinEl.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
      state.map.pinEl.setAttribute("visibility", "visible");
    }
    $("#r-pin").textContent = `Place chosen (from ${from}): ${state.pin.lat.toFixed(4)}, ${state.pin.lon.toFixed(4)}.`;
  }

  function useMyLocation() {
    const out = $("#r-pin");
    if (!navigator.geolocation) { out.textContent = "This device cannot tell its location: tap the map instead."; return; }
    out.textContent = "Finding your location…";
    navigator.geolocation.getCurrentPosition(
      (pos) => setPin(pos.coords.latitude, pos.coords.longitude, "your location"),
      () => { out.textContent = "We could not get your location: tap the map or choose the area instead."; },
      { enableHighAccuracy: true, timeout: 10000 });
  }

  // ---- report -----------------------------------------------------------------------------

  async function submitReport(event) {
    event.preventDefault();
    const errors = $("#r-errors");
    const missing = [];
    const value = (id) => $(id).value.trim();
    if (!value("#r-category")) missing.push("what happened");
    if (!value("#r-description")) missing.push("a description");
    if (!state.pin) missing.push("where it happened (tap the map, use your location or choose the area)");
    if (!value("#r-name")) missing.push("your name");
    if (!value("#r-phone") && !value("#r-email")) missing.push("a phone number or an email address");
    if (missing.length) { errors.textContent = `Please give ${missing.join(", ")}.`; return; }
    errors.textContent = "";
    const body = {
      category: value("#r-category"),
      description: value("#r-description"),
      location: { lat: state.pin.lat, lon: state.pin.lon, ...(value("#r-address") ? { address: value("#r-address") } : {}) },
      reporter: { name: value("#r-name") },
    };
    if (value("#r-phone")) body.reporter.phone = value("#r-phone");
    if (value("#r-email")) body.reporter.email = value("#r-email");
    const occurred = localInputToIso($("#r-occurred").value);
    if (occurred) body.occurred_at = occurred;
    const button = $("#r-submit");
    button.disabled = true;
    button.textContent = "Sending…";
    const result = await api("POST", "/api/portal/reports", body);
    button.disabled = false;
    button.textContent = "Send report";
    if (!result.ok) { errors.textContent = problem(result); return; }
    const r = result.data;
    $("#receipt-ref").textContent = r.case_ref;
    $("#receipt-secret").textContent = r.secret;
    if (r.notice) $("#receipt-notice").textContent = r.notice;
    $("#report-form").reset();
    state.pin = null;
    if (state.map) state.map.pinEl.setAttribute("visibility", "hidden");
    $("#r-pin").textContent = "No place chosen yet.";
    startSession(r.token, r.case_ref);
    show("receipt");
  }

  // ---- session ------------------------------------------------------------------------------

  async function submitSession(event) {
    event.preventDefault();
    const errors = $("#t-errors");
    const ref = $("#t-ref").value.trim().toUpperCase();
    const secret = $("#t-secret").value.trim();
    if (!ref || !secret) { errors.textContent = "Please give both your case reference and your secret."; return; }
    errors.textContent = "";
    const result = await api("POST", "/api/portal/session", { case_ref: ref, secret });
    if (!result.ok) {
      errors.textContent = result.status === 401
        ? "That reference and secret do not match a report. Check them and try again."
        : problem(result);
      return;
    }
    $("#track-form").reset();
    startSession(result.data.token, ref);
  }

  function startSession(token, caseRef) {
    state.token = token;
    state.caseRef = caseRef;
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(REF_KEY, caseRef);
    document.dispatchEvent(new CustomEvent("rtic:session", { detail: { token, caseRef } }));
    $("#track-form").hidden = true;
    $("#case-view").hidden = false;
    $("#c-ref").textContent = caseRef;
    loadCase();
    loadStatements();
    connect();
    clearInterval(state.refresh);
    state.refresh = setInterval(loadCase, REFRESH_MS);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REF_KEY);
    state.token = null;
    state.caseRef = null;
    clearInterval(state.refresh);
    if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
    document.dispatchEvent(new CustomEvent("rtic:signout"));
    $("#case-view").hidden = true;
    $("#track-form").hidden = false;
    $("#t-errors").textContent = typeof message === "string" ? message : "";
    show("track");
  }

  // ---- the case -----------------------------------------------------------------------------

  async function loadCase() {
    if (!state.token) return;
    const result = await api("GET", `/api/cases/${encodeURIComponent(state.caseRef)}`, null, state.token);
    if (result.status === 401) { signOut("Your session has ended: give your reference and secret again."); return; }
    if (!result.ok) { $("#c-live").textContent = problem(result); return; }
    renderCase(result.data);
  }

  function renderCase(c) {
    $("#c-status").textContent = `Status: ${STATUS_WORDS[c.status] || c.status}`;
    const list = $("#c-timeline");
    list.replaceChildren(...(c.timeline || []).map((e) => el("li", { "data-kind": e.kind },
      el("time", { datetime: e.at, text: when(e.at) }), el("span", { class: "text", text: e.text }))));
    const next = c.next_contact;
    const range = $("#c-next-range");
    if (next && next.earliest && next.latest) {
      range.textContent = `Estimate: between ${when(next.earliest)} and ${when(next.latest)}.`;
    } else {
      range.textContent = "";
    }
    $("#c-next-basis").textContent = next ? next.basis : "";
  }

  // ---- live ----------------------------------------------------------------------------------

  function connect() {
    if (state.ws) { const old = state.ws; state.ws = null; old.close(); }
    if (!state.token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`, ["rtic", `rtic.bearer.${state.token}`]);
    state.ws = ws;
    ws.onmessage = (msg) => {
      let m;
      try { m = JSON.parse(msg.data); } catch { return; }
      if (m.type === "hello") ws.send(JSON.stringify({ type: "subscribe", cases: [state.caseRef] }));
      else if (m.type === "subscribed") { state.retry = 1000; $("#case-view").dataset.live = "true"; }
      else if (m.type === "case_update" && m.case_ref === state.caseRef) {
        $("#c-live").textContent = m.entry ? `Just now: ${m.entry.text}` : `Just now: ${STATUS_WORDS[m.status] || m.status}`;
        loadCase();
      }
    };
    ws.onclose = (e) => {
      if (state.ws !== ws) return; // replaced or signed out
      $("#case-view").dataset.live = "false";
      if (e.code === 1008) { signOut("Your session has ended: give your reference and secret again."); return; }
      setTimeout(() => { if (state.ws === ws) { connect(); loadCase(); } }, state.retry);
      state.retry = Math.min(state.retry * 2, 15000);
    };
  }

  // ---- statements ----------------------------------------------------------------------------

  async function loadStatements() {
    if (!state.token) return;
    const result = await api("GET", `/api/cases/${encodeURIComponent(state.caseRef)}/statements`, null, state.token);
    if (!result.ok) return;
    state.statements = result.data.statements || [];
    renderStatements();
  }

  function renderStatements() {
    const latest = new Map();
    for (const s of state.statements) latest.set(s.statement_id, s); // versions come in order
    const list = $("#s-list");
    list.replaceChildren(...[...latest.values()].map((s) => el("li", {},
      el("span", { text: `Statement of ${when(state.statements.find((v) => v.statement_id === s.statement_id).at)}, version ${s.version}` }),
      " ",
      s.mine ? el("button", { type: "button", class: "secondary amend", "data-statement": s.statement_id,
        onclick: () => amend(s), text: "Amend this statement" }) : null)));
  }

  function amend(s) {
    const b = s.body;
    $("#statement-form").dataset.statementId = s.statement_id;
    $("#s-name").value = b.who_i_am?.name || "";
    $("#s-relation").value = b.who_i_am?.relation || "witness";
    $("#s-saw").value = b.what_i_saw || "";
    const from = b.when?.from ? new Date(b.when.from) : null;
    if (from) { from.setMinutes(from.getMinutes() - from.getTimezoneOffset()); $("#s-when").value = from.toISOString().slice(0, 16); }
    $("#s-where").value = b.where?.address || "";
    $("#s-extra").value = b.free_text || "";
    $("#s-declaration").checked = false;
    $("#s-done").textContent = "";
    $("#s-mode").textContent = `Amending your statement (it will be version ${s.version + 1}; the earlier versions are kept).`;
    $("#s-submit").textContent = "Send amendment";
    $("#s-new").hidden = false;
    $("#s-saw").focus();
  }

  function resetStatement() {
    const form = $("#statement-form");
    form.reset();
    delete form.dataset.statementId;
    $("#s-mode").textContent = "A new statement.";
    $("#s-submit").textContent = "Send statement";
    $("#s-new").hidden = true;
  }

  async function submitStatement(event) {
    event.preventDefault();
    const errors = $("#s-errors");
    const value = (id) => $(id).value.trim();
    const missing = [];
    if (!value("#s-name")) missing.push("your name");
    if (!value("#s-saw")) missing.push("what you saw or heard");
    if (!value("#s-when")) missing.push("when it happened");
    if (!value("#s-where")) missing.push("where it happened");
    if (missing.length) { errors.textContent = `Please give ${missing.join(", ")}.`; return; }
    if (!$("#s-declaration").checked) { errors.textContent = "Please confirm the declaration: the statement must be true to the best of your knowledge and belief."; return; }
    errors.textContent = "";
    const body = {
      who_i_am: { name: value("#s-name"), relation: $("#s-relation").value },
      what_i_saw: value("#s-saw"),
      when: { from: localInputToIso($("#s-when").value) },
      where: { address: value("#s-where") },
      declaration: true,
    };
    if (value("#s-extra")) body.free_text = value("#s-extra");
    const amends = $("#statement-form").dataset.statementId;
    if (amends) body.statement_id = amends;
    const result = await api("POST", `/api/cases/${encodeURIComponent(state.caseRef)}/statements`, body, state.token);
    if (!result.ok) { errors.textContent = problem(result); return; }
    resetStatement();
    $("#s-done").textContent = result.data.version > 1
      ? `Thank you: your amendment has been saved as version ${result.data.version}.`
      : "Thank you: your statement has been saved.";
    await loadStatements();
  }

  // ---- start ---------------------------------------------------------------------------------

  function main() {
    build();
    if (state.token && state.caseRef) {
      startSession(state.token, state.caseRef);
      show("track", false);
    } else {
      show("report", false);
    }
  }

  // After every script of the page has run, so the others hear the session event.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
