// Portal: "Send us evidence" (the #evidence section of portal.html). Shown while a
// citizen session exists (sessionStorage "rtic.portal.token" / "rtic.portal.case_ref",
// the "rtic:session" event; "rtic:signout" hides it). Plain JS, nothing from elsewhere.
// HTTP: GET /api/portal/evidence-rules (types and size limits, shown before an upload),
// POST /api/cases/{ref}/evidence (multipart "file" + "description"; XMLHttpRequest for
// the progress bar), GET /api/cases/{ref}/evidence (what I sent),
// GET /api/evidence/{id}/content (a copy, fetched with the token, saved from a blob).
"use strict";

(() => {
  const section = document.getElementById("evidence");
  if (!section) return;
  const TOKEN_KEY = "rtic.portal.token";
  const CASE_KEY = "rtic.portal.case_ref";
  const KIND_WORDS = { photo: "Photo", video: "Video", audio: "Audio", document: "Document" };
  const state = { token: null, caseRef: null, rules: null, busy: false, xhr: null };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function size(n) {
    if (n >= 1024 * 1024) {
      const mb = n / (1024 * 1024);
      return `${mb >= 10 ? Math.round(mb) : mb.toFixed(1)} MB`;
    }
    return `${Math.max(1, Math.round(n / 1024))} KB`;
  }

  // ---- the section -------------------------------------------------------------------

  const title = el("h2", { id: "evidence-title", text: "Send us photos, videos or documents" });
  const intro = el("p", {
    text: "If you have photos, video, sound recordings or documents about what happened, send them here. Only the people working on your case can see them.",
  });
  const rulesList = el("ul", { class: "ev-rules", id: "evidence-rules" });
  const fileInput = el("input", {
    type: "file",
    id: "evidence-file",
    name: "file",
    accept: "image/*,video/*,audio/*,application/pdf,text/plain",
    "aria-describedby": "evidence-rules evidence-check",
  });
  const check = el("p", { id: "evidence-check", class: "ev-check", "aria-live": "polite" });
  const description = el("textarea", {
    id: "evidence-description",
    name: "description",
    rows: "2",
    maxlength: "500",
  });
  const send = el("button", { type: "submit", id: "evidence-send", text: "Upload" });
  const cancel = el("button", {
    type: "button",
    id: "evidence-cancel",
    class: "ev-secondary",
    text: "Stop upload",
    hidden: true,
  });
  const progress = el("progress", {
    id: "evidence-progress",
    max: "100",
    value: "0",
    hidden: true,
    "aria-label": "Upload progress",
  });
  const status = el("p", { id: "evidence-status", role: "status", class: "ev-status" });
  const error = el("p", { id: "evidence-error", role: "alert", class: "ev-error" });
  const form = el(
    "form",
    { id: "evidence-form", novalidate: true },
    el("label", { for: "evidence-file", text: "Choose a file" }),
    fileInput,
    check,
    el("label", { for: "evidence-description", text: "What is it? (optional)" }),
    description,
    el("div", { class: "ev-actions" }, send, cancel),
    progress,
    status,
    error,
  );
  const listTitle = el("h3", { id: "evidence-list-title", text: "What you have sent" });
  const list = el("ul", { id: "evidence-list", class: "ev-list", "aria-labelledby": "evidence-list-title" });
  const empty = el("p", { id: "evidence-empty", text: "Nothing yet." });
  section.replaceChildren(
    title,
    intro,
    el("h3", { text: "What you can send" }),
    rulesList,
    form,
    listTitle,
    empty,
    list,
  );

  // ---- the rules, before any upload -------------------------------------------------------

  async function loadRules() {
    try {
      const answer = await fetch("/api/portal/evidence-rules");
      if (!answer.ok) throw new Error(String(answer.status));
      state.rules = await answer.json();
    } catch (exc) {
      rulesList.replaceChildren(el("li", { text: "The upload rules could not be loaded. You can still try to send a file." }));
      return;
    }
    rulesList.replaceChildren(
      ...state.rules.families.map((f) =>
        el("li", {
          "data-family": f.family,
          text: `${f.plural}: up to ${f.max_words} (${f.types.map((t) => t.name).join(", ")})`,
        }),
      ),
    );
    checkChosen();
  }

  function familyOf(file) {
    const t = (file.type || "").toLowerCase();
    if (t.startsWith("image/")) return "image";
    if (t.startsWith("video/")) return "video";
    if (t.startsWith("audio/")) return "audio";
    if (t === "application/pdf") return "document";
    if (t.startsWith("text/")) return "text";
    return null;
  }

  // The gateway decides from the file's bytes; this only saves sending what is too big.
  function checkChosen() {
    const file = fileInput.files && fileInput.files[0];
    error.textContent = "";
    if (!file) {
      check.textContent = "";
      return true;
    }
    if (file.size === 0) {
      check.textContent = `${file.name} is empty.`;
      return false;
    }
    const families = state.rules ? state.rules.families : [];
    const family = families.find((f) => f.family === familyOf(file));
    const largest = families.reduce((m, f) => Math.max(m, f.max_bytes), 0);
    const limit = family ? family.max_bytes : largest;
    if (limit && file.size > limit) {
      const what = family ? family.plural.toLowerCase() : "files";
      check.textContent = `${file.name} is ${size(file.size)}: ${what} can be at most ${size(limit)}. Please choose a smaller file.`;
      return false;
    }
    check.textContent = `${file.name}, ${size(file.size)}.`;
    return true;
  }

  // ---- uploading ---------------------------------------------------------------------------

  function refusal(xhr) {
    let message = "";
    try {
      message = JSON.parse(xhr.responseText).error.message;
    } catch (exc) {
      message = "";
    }
    if (xhr.status === 413) return `Too large: ${message || "this file is over the limit"}.`;
    if (xhr.status === 415) return `We cannot take this kind of file: ${message}.`;
    if (xhr.status === 429) return `Too many uploads for now: ${message || "please wait a little and try again"}.`;
    if (xhr.status === 401) return "Your session has ended. Open your case again with its reference and secret.";
    if (xhr.status === 404) return "We could not find your case. Open it again with its reference and secret.";
    if (xhr.status === 400) return `The file could not be used: ${message}.`;
    if (xhr.status === 0) return "The upload stopped: check your connection and try again.";
    return `The upload did not work (${xhr.status}). Please try again later.`;
  }

  function busy(on) {
    state.busy = on;
    send.disabled = on;
    fileInput.disabled = on;
    cancel.hidden = !on;
    progress.hidden = !on;
    section.setAttribute("aria-busy", on ? "true" : "false");
  }

  function upload(event) {
    event.preventDefault();
    if (state.busy || !state.token) return;
    const file = fileInput.files && fileInput.files[0];
    error.textContent = "";
    status.textContent = "";
    if (!file) {
      error.textContent = "Choose a file first.";
      fileInput.focus();
      return;
    }
    if (!checkChosen()) {
      error.textContent = check.textContent;
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    if (description.value.trim()) body.append("description", description.value.trim());
    const xhr = new XMLHttpRequest();
    state.xhr = xhr;
    xhr.open("POST", `/api/cases/${encodeURIComponent(state.caseRef)}/evidence`);
    xhr.setRequestHeader("Authorization", `Bearer ${state.token}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      progress.value = percent;
      status.textContent = `Sending ${file.name}: ${percent}%`;
    });
    xhr.addEventListener("load", () => {
      busy(false);
      if (xhr.status === 201) {
        const got = JSON.parse(xhr.responseText);
        status.textContent = got.duplicate
          ? `We already had ${file.name}: nothing more to do.`
          : `Received ${file.name} (${size(got.bytes)}). It is now with your case.`;
        form.reset();
        check.textContent = "";
        loadList();
      } else {
        status.textContent = "";
        error.textContent = refusal(xhr);
      }
    });
    xhr.addEventListener("error", () => {
      busy(false);
      status.textContent = "";
      error.textContent = refusal(xhr);
    });
    xhr.addEventListener("abort", () => {
      busy(false);
      status.textContent = "Upload stopped. Nothing was sent.";
    });
    progress.value = 0;
    busy(true);
    status.textContent = `Sending ${file.name}…`;
    xhr.send(body);
  }

  // ---- what I sent ---------------------------------------------------------------------------

  async function saveCopy(item, button) {
    button.disabled = true;
    try {
      const answer = await fetch(`/api/evidence/${encodeURIComponent(item.evidence_id)}/content`, {
        headers: { Authorization: `Bearer ${state.token}` },
      });
      if (!answer.ok) throw new Error(String(answer.status));
      const url = URL.createObjectURL(await answer.blob());
      const a = el("a", { href: url, download: item.filename || "evidence" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (exc) {
      error.textContent = "The copy could not be fetched. Please try again.";
    } finally {
      button.disabled = false;
    }
  }

  async function loadList() {
    if (!state.token) return;
    let items = [];
    try {
      const answer = await fetch(`/api/cases/${encodeURIComponent(state.caseRef)}/evidence`, {
        headers: { Authorization: `Bearer ${state.token}` },
      });
      if (!answer.ok) throw new Error(String(answer.status));
      items = (await answer.json()).evidence;
    } catch (exc) {
      empty.textContent = "Your uploads could not be listed just now.";
      empty.hidden = false;
      return;
    }
    empty.textContent = "Nothing yet.";
    empty.hidden = items.length > 0;
    list.replaceChildren(
      ...items
        .slice()
        .reverse()
        .map((item) => {
          const name = item.filename || `${KIND_WORDS[item.kind] || "File"}`;
          const when = new Date(item.captured_at).toLocaleString("en-GB", {
            dateStyle: "medium",
            timeStyle: "short",
          });
          const button = el("button", {
            type: "button",
            class: "ev-secondary",
            text: "Save a copy",
            "aria-label": `Save a copy of ${name}`,
          });
          button.addEventListener("click", () => saveCopy(item, button));
          return el(
            "li",
            { class: "ev-item", "data-evidence-id": item.evidence_id },
            el("span", { class: "ev-name", text: name }),
            el("span", {
              class: "ev-meta",
              text: `${KIND_WORDS[item.kind] || "File"} · ${size(item.bytes || 0)} · sent ${when}`,
            }),
            item.description ? el("span", { class: "ev-desc", text: item.description }) : null,
            button,
          );
        }),
    );
  }

  // ---- the session ---------------------------------------------------------------------------

  function open(token, caseRef) {
    if (!token || !caseRef) return;
    state.token = token;
    state.caseRef = caseRef;
    section.hidden = false;
    if (!state.rules) loadRules();
    loadList();
  }

  function close() {
    if (state.xhr) state.xhr.abort();
    state.token = state.caseRef = null;
    section.hidden = true;
    list.replaceChildren();
    status.textContent = error.textContent = "";
  }

  fileInput.addEventListener("change", checkChosen);
  form.addEventListener("submit", upload);
  cancel.addEventListener("click", () => state.xhr && state.xhr.abort());
  document.addEventListener("rtic:session", (e) => open(e.detail.token, e.detail.caseRef));
  document.addEventListener("rtic:signout", close);
  open(sessionStorage.getItem(TOKEN_KEY), sessionStorage.getItem(CASE_KEY));
})();
