// Portal: "What happens next" (the #whatif section of portal.html; no session needed).
// The citizen picks a kind of crime and their situation (victim or witness; reported or
// not yet; hurt or not) and sees the usual steps, how crimes of that kind ended (shares
// from real police open data, GET /api/portal/outcomes, with its period, force and
// source, and what the figures do not mean) and the support there is.
// Plain JS, nothing from elsewhere.
"use strict";

(() => {
  const section = document.getElementById("whatif");
  if (!section) return;

  const TIPS = {
    "vehicle-crime": "Tell your insurer: they will ask for your crime reference.",
    burglary: "If you can, leave things as they are until police have been: they may find fingerprints or other traces.",
    "bicycle-theft": "The frame number (under the pedals) and a photo of the bike help us match it if it is found.",
    "theft-from-the-person": "If a phone or bank card was taken, call your bank and network now to block them.",
    robbery: "If a phone or bank card was taken, call your bank and network now to block them.",
    shoplifting: "The shop usually reports it and keeps the CCTV: ask them how long they keep it.",
    "criminal-damage-and-arson": "Take photos of the damage before it is repaired: your insurer and we may need them.",
    "violence-and-sexual-offences": "Keep any messages, photos of injuries and the names of anyone who saw it.",
    "public-order": "Note what was said or done, when, and who saw it.",
    drugs: "You can also tell Crimestoppers anonymously on 0800 555 111.",
    "possession-of-weapons": "If you see a weapon now, call 999.",
  };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const number = (n) => n.toLocaleString("en-GB");
  const tel = (digits, shown) => el("a", { href: `tel:${digits}`, text: shown });

  function radios(name, legend, options) {
    return el(
      "fieldset",
      { class: "wi-choice" },
      el("legend", { text: legend }),
      options.map(([value, label], i) =>
        el(
          "label",
          { class: "wi-radio" },
          el("input", { type: "radio", name, value, checked: i === 0 }),
          ` ${label}`,
        ),
      ),
    );
  }

  const select = el("select", { id: "whatif-category", name: "category" });
  const form = el(
    "form",
    { id: "whatif-form" },
    el("label", { for: "whatif-category", text: "What kind of crime?" }),
    select,
    radios("role", "Are you", [["victim", "the victim"], ["witness", "a witness"]]),
    radios("reported", "Has it been reported to the police?", [["no", "Not yet"], ["yes", "Yes"]]),
    radios("injured", "Was anyone hurt?", [["no", "No"], ["yes", "Yes"]]),
  );
  const result = el("div", { id: "whatif-result", "aria-live": "polite" });
  section.replaceChildren(
    el("h2", { id: "whatif-title", text: "What happens next" }),
    el("p", {
      text: "Choose the kind of crime and your situation to see the usual steps, how crimes like it have ended, and who can help.",
    }),
    form,
    result,
  );

  const cache = new Map();
  let index = null;

  async function getJSON(url) {
    if (cache.has(url)) return cache.get(url);
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(String(answer.status));
    const body = await answer.json();
    cache.set(url, body);
    return body;
  }

  function choice() {
    const data = new FormData(form);
    return {
      category: data.get("category"),
      victim: data.get("role") === "victim",
      reported: data.get("reported") === "yes",
      injured: data.get("injured") === "yes",
    };
  }

  // ---- the usual steps --------------------------------------------------------------------

  function urgent(c) {
    const box = el("div", { class: "wi-urgent", id: "whatif-urgent" });
    if (c.injured) {
      box.append(
        el("p", {}, el("strong", { text: "If someone is badly hurt or in danger now, call " }), tel("999", "999"), "."),
        el("p", {}, "For an injury that is not an emergency, call NHS ", tel("111", "111"), " or go to a walk-in centre. Tell the staff how it happened: their notes can help later."),
      );
    } else {
      box.append(el("p", {}, "If it is happening now, or someone is in danger, call ", tel("999", "999"), "."));
    }
    return box;
  }

  function steps(c, label) {
    const list = [];
    if (!c.reported) {
      list.push(
        c.victim
          ? "Report it: on this page (you get a case reference and a secret to follow it), or call 101."
          : "Tell us what you saw: report it on this page, or call 101. You can also tell Crimestoppers anonymously on 0800 555 111.",
      );
    }
    list.push(
      c.reported
        ? "We have recorded it under your case reference. Keep the reference: you need it to follow the case and to talk to us."
        : "We record the crime and give it a reference.",
      "We assess it: how serious and urgent it is, and whether there are leads such as CCTV, witnesses or traces left behind.",
    );
    if (c.victim) {
      list.push(
        "An officer may call you, visit, or ask you for a statement. You can send photos, videos or documents on this page once you have your case open.",
        "If a suspect is found, they may be charged and go to court, be cautioned, or be dealt with in another way. You should be told when this happens.",
        "If no suspect can be found, the investigation is closed. It can be opened again if new evidence turns up.",
      );
    } else {
      list.push(
        "We may ask you for a witness statement: what you saw, when and where. You can give one on this page once your case is open.",
        "If the case goes to court you may be asked to give evidence. The Witness Service can help you before and on the day.",
      );
    }
    const tip = TIPS[c.category];
    return el(
      "section",
      { class: "wi-block", "aria-labelledby": "whatif-steps-title" },
      el("h3", { id: "whatif-steps-title", text: `What usually happens: ${label.toLowerCase()}` }),
      el("ol", { id: "whatif-steps" }, list.map((text) => el("li", { text }))),
      tip ? el("p", { class: "wi-tip", text: `Tip: ${tip}` }) : null,
    );
  }

  // ---- how crimes like it ended ------------------------------------------------------------

  function outcomes(data) {
    const o = data.outcome;
    const groups = o.groups.filter((g) => g.count > 0);
    const rows = groups.map((g) =>
      el(
        "li",
        { class: "wi-share", "data-group": g.group },
        el("span", { class: "wi-share-label", text: g.label }),
        el("meter", { min: "0", max: "100", value: String(g.share), "aria-label": `${g.label}: ${g.share}%` }),
        el("span", { class: "wi-share-figure", text: `${g.share}% (${number(g.count)})` }),
      ),
    );
    const all = el(
      "details",
      { class: "wi-all" },
      el("summary", { text: "Every recorded outcome" }),
      el(
        "table",
        { id: "whatif-outcomes-table" },
        el("caption", { text: `Last recorded outcome of ${o.label.toLowerCase()} crimes` }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Outcome" }), el("th", { scope: "col", text: "Crimes" }), el("th", { scope: "col", text: "Share" }))),
        el(
          "tbody",
          {},
          o.outcomes.map((row) =>
            el("tr", {}, el("td", { text: row.outcome }), el("td", { text: number(row.count) }), el("td", { text: `${row.share}%` })),
          ),
        ),
      ),
    );
    const forces = data.forces.join(", ");
    const recorded = o.recorded && o.recorded.offences_by_force
      ? el("p", {
          class: "wi-scale",
          text: `For scale: in ${o.recorded.year} police in ${Object.entries(o.recorded.offences_by_force)
            .map(([force, n]) => `${force} recorded ${number(n)}`)
            .join(" and ")} crimes of this kind.`,
        })
      : null;
    return el(
      "section",
      { class: "wi-block", "aria-labelledby": "whatif-outcomes-title" },
      el("h3", { id: "whatif-outcomes-title", text: "How crimes like this have ended" }),
      el("p", {
        id: "whatif-basis",
        text: `Of ${number(o.with_outcome)} crimes of the kind "${o.label}" recorded by ${forces} in ${data.period}, this is how they ended:`,
      }),
      el("ul", { id: "whatif-shares", class: "wi-shares" }, rows),
      all,
      recorded,
      el(
        "p",
        { class: "wi-source", id: "whatif-source" },
        `Source: ${data.source}. ${data.attribution} Period: ${data.period}.`,
      ),
      el("h4", { text: "What these figures do not mean" }),
      el("ul", { id: "whatif-caveats" }, data.caveats.map((text) => el("li", { text }))),
    );
  }

  // ---- support ---------------------------------------------------------------------------

  function support(c) {
    const items = [];
    if (c.victim) {
      items.push(
        el("li", {}, el("strong", { text: "Your rights (the Victims' Code): " }), "to be told what is happening with your case and when a suspect is arrested, charged or released; to be referred to support; to say how the crime affected you (a Victim Personal Statement); to be told the outcome, and to ask for a review if no one is charged."),
        el("li", {}, el("strong", { text: "Victim Support: " }), "free and confidential, whether or not you report it. Call ", tel("08081689111", "08 08 16 89 111"), " (24 hours a day)."),
      );
    } else {
      items.push(
        el("li", {}, el("strong", { text: "The Witness Service (Citizens Advice): " }), "free help if you are asked to give evidence in court. Call ", tel("03003321000", "0300 332 1000"), "."),
        el("li", {}, el("strong", { text: "Victim Support: " }), "also helps witnesses upset by what they saw. Call ", tel("08081689111", "08 08 16 89 111"), "."),
      );
    }
    if (c.injured) {
      items.push(el("li", {}, el("strong", { text: "Health: " }), "NHS ", tel("111", "111"), " for advice on an injury; ", tel("999", "999"), " if a life is at risk."));
    }
    items.push(el("li", {}, el("strong", { text: "Police: " }), tel("999", "999"), " in an emergency; ", tel("101", "101"), " for anything else."));
    return el(
      "section",
      { class: "wi-block", "aria-labelledby": "whatif-support-title" },
      el("h3", { id: "whatif-support-title", text: "Help and support" }),
      el("ul", { id: "whatif-support" }, items),
    );
  }

  // ---- putting it together ---------------------------------------------------------------

  async function show() {
    const c = choice();
    if (!c.category) return;
    const label = select.selectedOptions[0] ? select.selectedOptions[0].textContent : c.category;
    let figures;
    try {
      figures = outcomes(await getJSON(`/api/portal/outcomes?category=${encodeURIComponent(c.category)}`));
    } catch (exc) {
      figures = el("p", { class: "wi-error", role: "alert", text: "The figures could not be loaded just now." });
    }
    result.replaceChildren(urgent(c), steps(c, label), figures, support(c));
  }

  async function start() {
    try {
      index = await getJSON("/api/portal/outcomes");
    } catch (exc) {
      result.replaceChildren(el("p", { class: "wi-error", role: "alert", text: "This section could not be loaded just now." }));
      return;
    }
    const sorted = index.categories.slice().sort((a, b) => a.label.localeCompare(b.label));
    select.replaceChildren(
      el("option", { value: "", text: "Choose…" }),
      ...sorted.map((c) => el("option", { value: c.category, text: c.label })),
    );
    form.addEventListener("change", show);
  }

  start();
})();
