// The contact handler's webchat page: the queue (waiting time counting up, the case's
// context), taking a chat, the conversation with each reply's delivery state, turning
// the chat into a call, ending it. Everything goes over /ws (docs/contract.md, "Webchat").
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  token: null, // from the link's ticket, or this tab's session (session.js)
  ws: null,
  retry: 1000,
  queue: [],
  current: null, // the case_ref of the conversation shown
  messages: [], // of the current conversation: {message_id, from, text, at, mine, state}
  pending: new Map(), // message_id -> {case_ref, text}: sent, not yet delivered
};

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

function setStatus(text, kind) {
  const status = $("#status");
  status.textContent = text;
  status.className = `status ${kind || ""}`;
}

function showAlert(text) {
  const alert = $("#alert");
  alert.textContent = text;
  alert.hidden = !text;
}

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

function waited(since) {
  if (!since) return "";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

const STATUS_WORDS = { received: "received", assessed: "assessed", under_investigation: "under investigation", closed: "closed" };

function contextWords(c) {
  if (!c) return "Case details not loaded yet";
  const parts = [];
  parts.push(c.category ? c.category.replace(/_/g, " ") : "category not known yet");
  if (c.grade) parts.push(`grade ${c.grade}`);
  parts.push(`case ${STATUS_WORDS[c.status] || c.status || "received"}`);
  return parts.join(" · ");
}

// ---- the queue ---------------------------------------------------------------------

function renderQueue() {
  const list = $("#queue");
  list.replaceChildren();
  $("#queue-empty").hidden = state.queue.length > 0;
  for (const chat of state.queue) {
    const item = el("li", { class: [chat.escalated ? "escalated" : "", chat.case_ref === state.current ? "current" : ""].join(" ").trim() });
    item.dataset.caseRef = chat.case_ref;
    item.append(el("span", { class: "ref" }, chat.case_ref), " ");
    if (chat.escalated) item.append(el("span", { class: "flag" }, "Escalated: waiting too long"), " ");
    item.append(el("p", { class: "muted" }, chat.mine ? "With you" : "Waiting for a handler"));
    if (chat.waiting_since) {
      const wait = el("p", { class: "wait" }, "Waiting ", el("span", { "data-since": chat.waiting_since }, waited(chat.waiting_since)));
      item.append(wait);
    }
    item.append(el("p", { class: "muted" }, contextWords(chat.case)));
    if (chat.last_text) item.append(el("p", { class: "last" }, `“${chat.last_text}”`));
    const button = chat.mine
      ? el("button", { type: "button", "aria-label": `Open the chat of case ${chat.case_ref}` }, "Open")
      : el("button", { type: "button", "aria-label": `Take the chat of case ${chat.case_ref}` }, "Take chat");
    button.addEventListener("click", () => (chat.mine ? openChat(chat.case_ref) : send({ type: "chat_take", case_ref: chat.case_ref })));
    item.append(button);
    list.append(item);
  }
  const current = state.queue.find((c) => c.case_ref === state.current);
  if (current) $("#case-context").textContent = contextWords(current.case);
}

function tick() {
  for (const span of document.querySelectorAll("[data-since]")) span.textContent = waited(span.dataset.since);
}

// ---- the conversation --------------------------------------------------------------

function openChat(caseRef) {
  state.current = caseRef;
  state.messages = [];
  $("#conversation").hidden = false;
  $("#conversation-title").textContent = `Conversation: case ${caseRef}`;
  $("#chat-state").textContent = "Loading the conversation…";
  renderMessages();
  renderQueue();
  send({ type: "chat_open", case_ref: caseRef });
}

const STATE_WORDS = { sending: "Sending…", delivered: "Delivered", failed: "Not saved yet: sending again" };

function renderMessages() {
  const list = $("#messages");
  list.replaceChildren();
  for (const m of state.messages) {
    const who = m.mine ? "You" : m.from && m.from.name ? m.from.name : "Citizen";
    const time = m.at ? new Date(m.at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "";
    const item = el("li", { class: m.mine ? "mine" : "" }, el("span", { class: "who" }, `${who} ${time}`), el("span", { class: "text" }, m.text));
    if (m.mine) item.append(el("span", { class: `state ${m.state || ""}` }, STATE_WORDS[m.state] || ""));
    item.dataset.messageId = m.message_id;
    list.append(item);
  }
  list.scrollTop = list.scrollHeight;
}

function upsertMessage(m) {
  const known = state.messages.find((x) => x.message_id === m.message_id);
  if (known) Object.assign(known, m);
  else state.messages.push(m);
  renderMessages();
}

function fromFrame(f) {
  return { message_id: f.message_id, from: f.from, text: f.text, at: f.at, mine: f.from && f.from.role === "contact_handler", state: "delivered" };
}

function sendReply(event) {
  event.preventDefault();
  const box = $("#reply-text");
  const text = box.value.trim();
  if (!text || !state.current) return;
  const id = newId();
  state.pending.set(id, { case_ref: state.current, text });
  upsertMessage({ message_id: id, text, at: new Date().toISOString(), mine: true, state: "sending" });
  send({ type: "chat", message_id: id, case_ref: state.current, text });
  box.value = "";
}

function resendPending() {
  for (const [id, p] of state.pending) send({ type: "chat", message_id: id, case_ref: p.case_ref, text: p.text });
}

function makeCall(event) {
  event.preventDefault();
  if (!state.current) return;
  const msg = { type: "chat_to_call", case_ref: state.current, category: $("#call-category").value };
  const grade = $("#call-grade").value;
  if (grade) msg.grade = Number(grade);
  const address = $("#call-address").value.trim();
  // Without coordinates the gateway puts the force's centre and says so (docs/contract.md).
  if (address) msg.location = { lat: 52.48, lon: -1.89, address };
  send(msg);
  $("#chat-state").textContent = "Making the call…";
}

function closeChat() {
  if (state.current) send({ type: "chat_close", case_ref: state.current });
}

// ---- frames ------------------------------------------------------------------------

const ERROR_WORDS = {
  not_found: "That chat is not yours or no longer exists.",
  taken: "Another handler has already taken that chat.",
  forbidden: "This token may not use the webchat (it needs the contact_handler role).",
  chat_not_saved: "A reply was not saved: it will be sent again.",
  call_not_sent: "The call was not made: try again.",
};

function onFrame(f) {
  switch (f.type) {
    case "hello":
      setStatus("Connected", "ok");
      state.retry = 1000;
      send({ type: "chat_open" });
      if (state.current) send({ type: "chat_open", case_ref: state.current });
      break;
    case "chat_queue":
      state.queue = f.chats;
      renderQueue();
      break;
    case "chat_taken":
      openChat(f.case_ref);
      break;
    case "chat_history":
      if (f.case_ref !== state.current) break;
      state.messages = f.messages.map(fromFrame);
      for (const [id, p] of state.pending) {
        if (p.case_ref === f.case_ref && !state.messages.some((m) => m.message_id === id)) state.messages.push({ message_id: id, text: p.text, mine: true, state: "sending" });
      }
      $("#chat-state").textContent = f.chat ? "" : "This chat has ended.";
      renderMessages();
      resendPending();
      break;
    case "chat_message":
      if (f.case_ref === state.current) upsertMessage(fromFrame(f));
      break;
    case "chat_delivered":
      state.pending.delete(f.message_id);
      if (f.case_ref === state.current) upsertMessage({ message_id: f.message_id, state: "delivered", at: f.at });
      break;
    case "chat_status":
      if (f.case_ref === state.current && f.status === "closed") $("#chat-state").textContent = "This chat has ended.";
      break;
    case "chat_closed":
      if (f.case_ref === state.current) {
        state.current = null;
        $("#conversation").hidden = true;
        setStatus(`Chat of case ${f.case_ref} ended`, "ok");
      }
      break;
    case "chat_calling":
      $("#chat-state").textContent = `Making call ${f.call_id}…`;
      break;
    case "chat_called":
      $("#chat-state").textContent = `Call ${f.call_id} made for case ${f.case_ref}.`;
      break;
    case "chat_escalated":
      showAlert(`Case ${f.case_ref}: the person has waited too long for a reply.`);
      break;
    case "error":
      if (f.code === "chat_not_saved" && f.message_id) upsertMessage({ message_id: f.message_id, state: "failed" });
      showAlert(ERROR_WORDS[f.code] || f.message || "Something went wrong.");
      break;
    default:
      break;
  }
}

function connect() {
  const ws = RticSession.socket(state.token);
  state.ws = ws;
  ws.addEventListener("message", (e) => {
    try {
      onFrame(JSON.parse(e.data));
    } catch (err) {
      console.warn("bad frame", err);
    }
  });
  ws.addEventListener("close", (e) => {
    if (e.code === 1008) {
      setStatus("Disconnected: the session was refused or has expired. Open the page with a new link.", "bad");
      return;
    }
    setStatus("Disconnected: reconnecting…", "bad");
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  });
}

async function start() {
  $("#reply").addEventListener("submit", sendReply);
  $("#call-form").addEventListener("submit", makeCall);
  $("#close-chat").addEventListener("click", closeChat);
  const session = await RticSession.take("rtic.handler.token");
  state.token = session.token;
  if (!state.token) {
    setStatus(session.refused ? "Link refused" : "No token", "bad");
    showAlert(`${session.refused || "This page needs a link."} Print a new one with: rtic token --link --role contact_handler --sub YOUR-ID`);
    return;
  }
  setInterval(tick, 1000);
  connect();
}

start();
