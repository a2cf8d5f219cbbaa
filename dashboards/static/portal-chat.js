// The portal's webchat: fills #chat once a session exists (sessionStorage
// "rtic.portal.token" / "rtic.portal.case_ref", or the "rtic:session" event; see
// portal.html). Opens its own /ws with the citizen's token: the conversation's history
// on open (and after a reload), messages both ways, and each message's delivery state.
// Messages not yet delivered are kept in sessionStorage and sent again (same id: the
// gateway stores and shows each once).
"use strict";

(() => {
  const PENDING_KEY = "rtic.portal.chat.pending";
  const section = document.getElementById("chat");
  if (!section) return;
  const chat = { token: null, caseRef: null, ws: null, retry: 1000, messages: [], stopped: true };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function pending() {
    try {
      const all = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "{}");
      return all && typeof all === "object" ? all : {};
    } catch (err) {
      return {};
    }
  }

  function savePending(all) {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(all));
  }

  const sheet = el("link", { rel: "stylesheet", href: "/static/portal-chat.css" });
  const title = el("h2", { id: "chat-title" }, "Talk to us");
  const note = el("p", { class: "chat-note" }, "Send a message and a contact handler will answer here. This is not for emergencies: if you are in danger now, call 999.");
  const state = el("p", { class: "chat-state", role: "status", "aria-live": "polite" }, "");
  const list = el("ol", { class: "chat-messages", "aria-label": "Messages" });
  const box = el("textarea", { id: "chat-text", rows: "3", maxlength: "2000", required: "" });
  const form = el("form", { class: "chat-form" }, el("label", { for: "chat-text" }, "Your message"), box, el("button", { type: "submit" }, "Send message"));

  const STATE_WORDS = { sending: "Sending…", delivered: "Delivered", failed: "Not sent yet: we will try again" };

  function render() {
    list.replaceChildren();
    for (const m of chat.messages) {
      const who = m.mine ? "You" : m.from && m.from.name ? m.from.name : "Police";
      const time = m.at ? new Date(m.at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "";
      const item = el("li", { class: m.mine ? "mine" : "" }, el("span", { class: "who" }, `${who} ${time}`), el("span", { class: "text" }, m.text));
      if (m.mine) item.append(el("span", { class: `state ${m.state || ""}` }, STATE_WORDS[m.state] || ""));
      item.dataset.messageId = m.message_id;
      list.append(item);
    }
    list.scrollTop = list.scrollHeight;
  }

  function upsert(m) {
    const known = chat.messages.find((x) => x.message_id === m.message_id);
    if (known) Object.assign(known, m);
    else chat.messages.push(m);
    render();
  }

  function send(msg) {
    if (chat.ws && chat.ws.readyState === WebSocket.OPEN) chat.ws.send(JSON.stringify(msg));
  }

  function sendPending() {
    const all = pending()[chat.caseRef] || {};
    for (const [id, text] of Object.entries(all)) send({ type: "chat", message_id: id, text });
  }

  function fromFrame(f) {
    return { message_id: f.message_id, from: f.from, text: f.text, at: f.at, mine: f.from && f.from.role === "citizen", state: "delivered" };
  }

  function onFrame(f) {
    switch (f.type) {
      case "hello":
        chat.retry = 1000;
        send({ type: "chat_open" });
        break;
      case "chat_history": {
        chat.messages = f.messages.map(fromFrame);
        const waiting = pending()[chat.caseRef] || {};
        for (const [id, text] of Object.entries(waiting)) {
          if (!chat.messages.some((m) => m.message_id === id)) chat.messages.push({ message_id: id, text, mine: true, state: "sending" });
        }
        state.textContent = chatWords(f.chat);
        render();
        sendPending();
        break;
      }
      case "chat_message":
        upsert(fromFrame(f));
        break;
      case "chat_delivered": {
        const all = pending();
        if (all[chat.caseRef]) delete all[chat.caseRef][f.message_id];
        savePending(all);
        upsert({ message_id: f.message_id, state: "delivered", at: f.at });
        break;
      }
      case "chat_status":
        state.textContent = chatWords(f);
        break;
      case "error":
        if (f.message_id) upsert({ message_id: f.message_id, state: "failed" });
        else state.textContent = f.code === "not_found" ? "The chat is not available for this case." : "Something went wrong with the chat.";
        break;
      default:
        break;
    }
  }

  function chatWords(c) {
    if (!c) return "Nobody is chatting yet: send a message to start.";
    if (c.status === "taken") return `${c.handler || "A contact handler"} is with you.`;
    if (c.status === "closed") return "The chat has ended. Send a message to start a new one.";
    return "Waiting for a contact handler to answer. Please stay on this page.";
  }

  function connect() {
    if (chat.stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`, ["rtic", `rtic.bearer.${chat.token}`]);
    chat.ws = ws;
    ws.addEventListener("message", (e) => {
      try {
        onFrame(JSON.parse(e.data));
      } catch (err) {
        console.warn("bad frame", err);
      }
    });
    ws.addEventListener("close", (e) => {
      if (chat.stopped || chat.ws !== ws) return;
      if (e.code === 1008) {
        state.textContent = "Your session has ended. Open your case again to chat.";
        return;
      }
      state.textContent = "Connection lost: reconnecting…";
      setTimeout(connect, chat.retry);
      chat.retry = Math.min(chat.retry * 2, 15000);
    });
  }

  function start(token, caseRef) {
    if (!token || !caseRef) return;
    if (chat.token === token && !chat.stopped) return;
    stop();
    Object.assign(chat, { token, caseRef, messages: [], stopped: false });
    if (!sheet.isConnected) document.head.append(sheet);
    section.replaceChildren(title, note, state, list, form);
    section.hidden = false;
    state.textContent = "Connecting…";
    render();
    connect();
  }

  function stop() {
    chat.stopped = true;
    if (chat.ws) chat.ws.close();
    chat.ws = null;
    section.hidden = true;
    section.replaceChildren();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text || !chat.caseRef) return;
    const id = newId();
    const all = pending();
    all[chat.caseRef] = { ...(all[chat.caseRef] || {}), [id]: text };
    savePending(all);
    upsert({ message_id: id, text, at: new Date().toISOString(), mine: true, state: "sending" });
    send({ type: "chat", message_id: id, text });
    box.value = "";
  });

  document.addEventListener("rtic:session", (e) => start(e.detail && e.detail.token, e.detail && e.detail.caseRef));
  document.addEventListener("rtic:signout", stop);
  start(sessionStorage.getItem("rtic.portal.token"), sessionStorage.getItem("rtic.portal.case_ref"));
})();
