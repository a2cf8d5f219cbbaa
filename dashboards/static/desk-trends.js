// The desk's trends panel: the last 24 hours against the same hours of the four weeks before.
// Loaded after rtic.js (one line in rtic.html) and built on its helpers ($, el, svgEl, api,
// words, timeOf, dateTimeOf, closePanel, state). Reads GET /api/desk/trends?level=district|ward
// (analysts, supervisors; docs/contract.md), draws its own SVG. No inline script or style.
"use strict";

const TRENDS_OTHER_PANELS = ["#detail", "#search", "#assign", "#charts", "#workload"];
const TRENDS_REFRESH_MS = 60000;
const trends = { level: "district", data: null, timer: null };

function trendsButton() {
  const button = el("button", { id: "trends-open", class: "tool", type: "button", hidden: true }, "Trends");
  const charts = $("#charts-open");
  charts.after(button);
  // Shown to whoever may open the charts (analysts, supervisors): rtic.js decides that.
  const follow = () => { button.hidden = charts.hidden; };
  new MutationObserver(follow).observe(charts, { attributes: true, attributeFilter: ["hidden"] });
  follow();
  button.addEventListener("click", openTrends);
}

function trendsPanel() {
  const levelButton = (level, label) => {
    const b = el("button", { class: "chip level", type: "button", "data-level": level,
      "aria-pressed": String(level === trends.level) }, label);
    b.addEventListener("click", () => { trends.level = level; loadTrends(); });
    return b;
  };
  const panel = el("section", { id: "trends", class: "panel wide trends", hidden: true, "aria-labelledby": "trends-title" },
    el("button", { id: "trends-close", class: "close", type: "button", "aria-label": "Close trends" }, "×"),
    el("h3", { id: "trends-title", tabIndex: -1 }, "Demand: the last 24 hours against the usual"),
    el("div", { class: "trend-levels", role: "group", "aria-label": "Areas by" },
      levelButton("district", "Districts"), levelButton("ward", "Wards")),
    el("p", { id: "trends-state", class: "hint", role: "status" }),
    el("div", { id: "trends-body" }),
    el("button", { id: "trends-refresh", class: "primary", type: "button" }, "Refresh trends"));
  $("main").append(panel);
  $("#trends-close").addEventListener("click", closeTrends);
  $("#trends-refresh").addEventListener("click", loadTrends);
  // Another panel opening (rtic.js) closes this one: one panel at a time, as elsewhere.
  for (const sel of TRENDS_OTHER_PANELS) {
    const other = $(sel);
    new MutationObserver(() => { if (!other.hidden) closeTrends(false); })
      .observe(other, { attributes: true, attributeFilter: ["hidden"] });
  }
}

function openTrends() {
  for (const sel of TRENDS_OTHER_PANELS) closePanel($(sel), false);
  const panel = $("#trends");
  if (panel.hidden) state.returnFocus = document.activeElement;
  panel.hidden = false;
  $("#trends-title").focus();
  loadTrends();
  clearInterval(trends.timer);
  trends.timer = setInterval(() => { if (!panel.hidden) loadTrends(); }, TRENDS_REFRESH_MS);
}

function closeTrends(restoreFocus = true) {
  clearInterval(trends.timer);
  closePanel($("#trends"), restoreFocus);
}

async function loadTrends() {
  for (const b of document.querySelectorAll("#trends .level")) b.setAttribute("aria-pressed", String(b.dataset.level === trends.level));
  $("#trends-state").textContent = "Loading…";
  try {
    trends.data = await api(`/api/desk/trends?level=${trends.level}`);
  } catch (err) {
    $("#trends-state").textContent = `Could not load the trends: ${err.message}`;
    return;
  }
  if ($("#trends").hidden) return;
  drawTrends(trends.data);
}

function sumKnown(values) {
  const known = values.filter((v) => v !== null && v !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
}

function round1(x) {
  return x === null || x === undefined ? "–" : (Math.round(x * 10) / 10).toString();
}

// Bars: the last 24 hours; line: the baseline (mean of the same hour in earlier weeks).
function trendChart(id, label, hours, row, { W = 520, H = 120, axis = true } = {}) {
  const left = axis ? 28 : 2, bottom = axis ? 16 : 2, top = 6;
  const recent = row.last_24h, base = row.baseline;
  const max = Math.max(1, ...recent, ...base.filter((b) => b !== null));
  const bw = (W - left - 2) / hours.length;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart trend", id });
  const t = svgEl("title"); t.textContent = label; svg.append(t);
  if (axis) {
    for (const f of [0, 0.5, 1]) {
      const gy = y(max * f);
      svg.append(svgEl("line", { x1: left, x2: W, y1: gy.toFixed(1), y2: gy.toFixed(1), class: "grid" }));
      const tx = svgEl("text", { x: left - 4, y: (gy + 3).toFixed(1), class: "axis", "text-anchor": "end" });
      tx.textContent = String(Math.round(max * f));
      svg.append(tx);
    }
  }
  hours.forEach((h, i) => {
    const n = recent[i] || 0;
    const above = base[i] !== null && n > base[i];
    const r = svgEl("rect", { x: (left + i * bw + 1).toFixed(1), y: y(n).toFixed(1), width: Math.max(1, bw - 2).toFixed(1),
      height: (y(0) - y(n)).toFixed(1), class: "now" + (above ? " above" : ""), "data-hour": h, "data-count": String(n),
      "data-baseline": base[i] === null ? "" : String(base[i]) });
    const rt = svgEl("title");
    rt.textContent = `${timeOf(h).slice(0, 5)}: ${n}` + (base[i] === null ? " (no earlier weeks)" : ` (usual ${round1(base[i])})`);
    r.append(rt);
    svg.append(r);
    if (axis && (i % 6 === 0 || i === hours.length - 1)) {
      const tx = svgEl("text", { x: (left + i * bw + bw / 2).toFixed(1), y: H - 3, class: "axis", "text-anchor": "middle" });
      tx.textContent = timeOf(h).slice(0, 5);
      svg.append(tx);
    }
  });
  // The baseline as a stepped line, broken where no earlier week was observed.
  let d = "";
  base.forEach((b, i) => {
    if (b === null) return;
    const x0 = left + i * bw, x1 = x0 + bw;
    d += `${i === 0 || base[i - 1] === null ? "M" : "L"}${x0.toFixed(1)},${y(b).toFixed(1)}L${x1.toFixed(1)},${y(b).toFixed(1)}`;
  });
  if (d) svg.append(svgEl("path", { d, class: "baseline" }));
  return svg;
}

function areaName(code) {
  return state.areaNames.get(code) || code;
}

function areaRow(a, hours) {
  const usual = a.baseline_total;
  const ratio = usual ? a.total / usual : null;
  const badge = ratio === null ? "no baseline yet" : ratio >= 1 ? `${round1(ratio)}× usual` : `${Math.round(ratio * 100)} % of usual`;
  const name = areaName(a.code);
  return el("li", { class: "trend-area" + (ratio !== null && ratio >= 1.5 ? " high" : ""), "data-code": a.code,
      "data-total": String(a.total), "data-baseline-total": usual === null ? "" : String(usual) },
    el("div", { class: "trend-area-head" },
      el("span", { class: "trend-name" }, name),
      el("span", { class: "trend-figures" }, `${a.total} calls · usual ${round1(usual)}`),
      el("span", { class: "trend-badge" }, badge)),
    trendChart(`trend-${a.code}`, `Calls per hour in ${name}, last 24 hours, against the usual`, hours, a, { H: 44, axis: false }));
}

function attendTable(attend) {
  const mins = (s) => (s === null || s === undefined ? "–" : `${Math.round(s / 60)} min`);
  return el("table", { class: "trend-attend" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Grade"), el("th", { scope: "col" }, "Last 24 hours"), el("th", { scope: "col" }, "Usual"))),
    el("tbody", {}, ...Object.entries(attend).map(([g, v]) => el("tr", { "data-grade": g },
      el("th", { scope: "row" }, `Grade ${g}`), el("td", {}, mins(v.last_24h_mean_s)), el("td", {}, mins(v.baseline_mean_s))))));
}

function drawTrends(data) {
  const hours = data.hours || [];
  const weeks = Math.max(0, ...(data.weeks || [0]));
  const calls = data.calls;
  const usual = sumKnown(calls.baseline);
  const levelWord = data.level === "ward" ? "wards" : "districts";
  const parts = [
    el("h4", {}, `Calls, force-wide: ${calls.total} in 24 hours` + (usual === null ? "" : `, usual ${round1(usual)}`)),
    trendChart("trend-force", "Calls per hour across the force, last 24 hours, against the usual", hours, calls),
    el("p", { class: "trend-key" }, el("span", { class: "key-now" }, "bars: last 24 hours"), " ",
      el("span", { class: "key-base" }, "line: usual (mean of the same hour 1 to 4 weeks before)")),
    el("h4", {}, `${levelWord[0].toUpperCase() + levelWord.slice(1)} most above their usual (${data.areas.length} of ${data.area_count})`),
    data.areas.length
      ? el("ol", { id: "trend-areas", class: "trend-areas" }, ...data.areas.map((a) => areaRow(a, hours)))
      : el("p", { class: "empty" }, "No calls counted in the last 24 hours or the weeks before."),
    el("h4", {}, `New incidents: ${data.incidents.total} in 24 hours` + (sumKnown(data.incidents.baseline) === null ? "" : `, usual ${round1(sumKnown(data.incidents.baseline))}`)),
    el("h4", {}, "Time to attend (created to arrived), mean"),
    attendTable(data.attend_by_grade || {}),
    el("h4", {}, "ANPR hotlist hits by camera, 24 hours"),
    (data.anpr_hits_by_camera || []).length
      ? el("ul", { class: "trend-cameras" }, ...data.anpr_hits_by_camera.map((c) => el("li", { "data-camera": c.camera },
        `${c.camera}: ${c.total}` + (c.baseline_total === null ? "" : ` (usual ${round1(c.baseline_total)})`))))
      : el("p", { class: "empty" }, "No hotlist hits."),
  ];
  $("#trends-body").replaceChildren(...parts);
  const since = data.observed_since ? `Counting since ${dateTimeOf(data.observed_since)}.` : "Nothing counted yet.";
  const base = weeks
    ? `Usual: the same hours of up to ${weeks} earlier week${weeks > 1 ? "s" : ""}.`
    : "No earlier weeks counted yet: the usual appears after a week of counting (or replay a month of calls: docs/analytics.md).";
  $("#trends-state").textContent = `${since} ${base} Updated ${timeOf(data.generated_at)}.`;
}

trendsButton();
trendsPanel();
