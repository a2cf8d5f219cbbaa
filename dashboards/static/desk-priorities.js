// Patrol priorities on the desk (analysts, supervisors). GET /api/desk/priorities every
// 30 seconds: the areas (LSOAs) where victim-reported crime is most expected over the next
// period, outlined on the map with their rank, and a panel that lists each one with the
// recent calls behind it (ids whole). The gateway fits them (push/priorities.py); what the
// model uses and its risks: docs/analytics.md.
// Built on rtic.js's page globals: state, api, el, svgEl, $, pathFor, openSidePanel,
// closePanel, dateTimeOf, words. Plain JS, nothing from the internet.
"use strict";

(() => {
  const REFRESH_MS = 30000;
  const ROLES = new Set(["rtic_analyst", "supervisor"]);
  const OTHER_PANELS = ["#detail", "#search", "#assign", "#charts", "#workload"];
  const mine = { data: null, shapes: null, timer: null, layer: null, started: false };

  function button() {
    return $("#priorities-open");
  }

  function setup() {
    const open = el("button", { id: "priorities-open", class: "tool", type: "button", hidden: true }, "Patrol priorities");
    $("#tools").prepend(open);
    const panel = el("section", { id: "priorities", class: "panel", hidden: true, "aria-labelledby": "priorities-title" },
      el("button", { id: "priorities-close", class: "close", type: "button", "aria-label": "Close patrol priorities" }, "×"),
      el("h3", { id: "priorities-title", tabIndex: -1 }, "Patrol priorities"),
      el("p", { class: "hint" },
        "Where victim-reported crime is most expected next, from the engine's recent calls. " +
        "A guide to where a patrol may prevent harm, not a judgement of anyone who lives there."),
      el("p", { id: "priorities-state", class: "hint", role: "status", "aria-live": "polite" }),
      el("ol", { id: "priorities-list", class: "priorities" }),
      el("button", { id: "priorities-refresh", class: "primary", type: "button" }, "Refresh priorities"));
    document.querySelector("main").append(panel);
    open.addEventListener("click", openPanel);
    $("#priorities-close").addEventListener("click", () => closePanel(panel));
    $("#priorities-refresh").addEventListener("click", load);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePanel(panel); });
    // Another panel opening closes this one (they share the same place on the page).
    const watch = new MutationObserver(() => {
      if (OTHER_PANELS.some((sel) => $(sel) && !$(sel).hidden)) closePanel(panel, false);
    });
    for (const sel of OTHER_PANELS) if ($(sel)) watch.observe($(sel), { attributes: true, attributeFilter: ["hidden"] });
  }

  function openPanel() {
    const panel = $("#priorities");
    for (const sel of OTHER_PANELS) closePanel($(sel), false);
    if (panel.hidden) state.returnFocus = document.activeElement;
    panel.hidden = false;
    $("#priorities-title").focus();
    load();
  }

  function start() {
    // Once the gateway said who we are and the map is drawn: only the desk's roles.
    if (mine.started || !state.role) return;
    mine.started = true;
    if (!ROLES.has(state.role)) return;
    button().hidden = false;
    load();
    mine.timer = setInterval(load, REFRESH_MS);
  }

  async function shapes() {
    if (mine.shapes) return mine.shapes;
    const found = new Map();
    try {
      const geo = await fetch("/api/boundaries?level=lsoa").then((r) => r.json());
      for (const f of geo.features || []) found.set(f.properties.code, f.geometry);
    } catch {
      // Without boundaries each priority is drawn as a ring at its centre.
    }
    mine.shapes = found;
    return found;
  }

  async function load() {
    let data;
    try {
      data = await api("/api/desk/priorities");
    } catch (err) {
      $("#priorities-state").textContent = `Could not load the priorities: ${err.message}`;
      return;
    }
    mine.data = data;
    await shapes();
    draw();
    list();
  }

  function periodWords(current) {
    const hours = current.model && current.model.period_hours;
    const days = (new Date(current.window.end) - new Date(current.window.start)) / 86400000;
    const next = hours ? (hours === 24 ? "the next 24 hours" : `the next ${hours} hours`) : "the next period";
    return `${next}, from ${current.events_used} calls of the last ${Math.round(days)} days (${current.categories.map(words).join(", ")})`;
  }

  function draw() {
    if (!state.svg || !state.project) return;
    if (!mine.layer) {
      mine.layer = svgEl("g", { class: "layer-priorities" });
      state.svg.insertBefore(mine.layer, state.layers.events || null);
    }
    const current = mine.data && mine.data.current;
    const items = current ? current.priorities : [];
    const nodes = [];
    for (const p of items) {
      const g = svgEl("g", { class: "priority", "data-area": p.area_code, "data-rank": String(p.rank) });
      const shape = mine.shapes && mine.shapes.get(p.area_code);
      const [x, y] = state.project.point(p.lon, p.lat);
      if (shape) g.append(svgEl("path", { d: pathFor(shape, state.project), class: "priority-area" }));
      else g.append(svgEl("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 9, class: "priority-area" }));
      const label = svgEl("text", { x: x.toFixed(1), y: (y + 4).toFixed(1), class: "priority-rank" });
      label.textContent = String(p.rank);
      g.append(label);
      const title = svgEl("title");
      title.textContent = `Priority ${p.rank}: ${p.area_name} (${p.area_code}), ${p.score.toFixed(2)} expected`;
      g.append(title);
      g.addEventListener("click", () => { openPanel(); focusItem(p.area_code); });
      nodes.push(g);
    }
    mine.layer.replaceChildren(...nodes.reverse()); // rank 1 drawn last, on top
  }

  function focusItem(code) {
    const item = document.querySelector(`#priorities-list li[data-area="${CSS.escape(code)}"]`);
    if (item) { item.scrollIntoView({ block: "nearest" }); item.focus(); }
  }

  function reasonText(r) {
    const where = r.relation === "same_area" ? "in this area" : `nearby (${r.area_code})`;
    return `${words(r.category)}, ${dateTimeOf(r.at)}, ${where}`;
  }

  function list() {
    const data = mine.data;
    const current = data && data.current;
    $("#priorities-state").textContent = current
      ? `For ${periodWords(current)}. Updated ${dateTimeOf(current.generated_at)}.`
      : `No priorities yet (${data ? data.state : "not loaded"}).`;
    const items = current ? current.priorities : [];
    $("#priorities-list").replaceChildren(...items.map((p) => el("li", { class: "priority-item", "data-area": p.area_code, tabIndex: -1 },
      el("div", { class: "priority-head" },
        el("b", {}, `${p.rank}. ${p.area_name}`), " ",
        el("span", { class: "code" }, p.area_code)),
      el("p", { class: "priority-score" },
        `${p.score.toFixed(2)} expected: usual level ${p.background.toFixed(2)}, ` +
        `recent repeats ${p.repeat.toFixed(2)}, nearby ${p.near.toFixed(2)}; ` +
        `${p.events_in_area} call${p.events_in_area === 1 ? "" : "s"} here in the window.`),
      p.why.length ? el("h4", {}, "Why: the calls behind it") : null,
      p.why.length ? el("ul", { class: "priority-why" }, ...p.why.map((r) => el("li", { "data-event-id": r.event_id },
        el("span", { class: "event-id" }, r.event_id), " ", reasonText(r)))) : null)));
  }

  setup();
  const ready = setInterval(() => {
    if (state.role && state.svg) { clearInterval(ready); start(); }
  }, 200);
})();
