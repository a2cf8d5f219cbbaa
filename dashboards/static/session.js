// RTIC staff pages' session: how a page gets its bearer token and opens its socket.
// A link carries a login ticket (?ticket=, one use, minutes): the page exchanges it at
// POST /api/session/ticket, keeps the token in sessionStorage (the officer's phone page:
// localStorage, for use with no network) and takes the ticket out of the address bar.
// An old link's ?token= is still taken the same way (the contract allows it), never kept
// in the address bar. The socket carries the token in a subprotocol header
// ("rtic.bearer.<token>" beside "rtic"), never in its URL.
"use strict";

const RticSession = (() => {
  function stripAddress() {
    const params = new URLSearchParams(location.search);
    if (!params.has("ticket") && !params.has("token")) return;
    params.delete("ticket");
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }

  // {token, refused}: the token to use (null: none), and why a ticket was refused (or null).
  async function take(key, storage = sessionStorage) {
    const params = new URLSearchParams(location.search);
    const ticket = params.get("ticket");
    const legacy = params.get("token");
    stripAddress();
    if (ticket) {
      try {
        const response = await fetch("/api/session/ticket", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ ticket }),
        });
        let body = null;
        try { body = await response.json(); } catch { body = null; }
        if (response.ok && body && body.token) {
          storage.setItem(key, body.token);
          return { token: body.token, refused: null };
        }
        const why = (body && body.error && body.error.message) || `the gateway answered ${response.status}`;
        return { token: storage.getItem(key), refused: `This link was refused (${why}).` };
      } catch (err) {
        return { token: storage.getItem(key), refused: `This link could not be checked: ${err}.` };
      }
    }
    if (legacy) {
      storage.setItem(key, legacy);
      return { token: legacy, refused: null };
    }
    return { token: storage.getItem(key), refused: null };
  }

  function socket(token) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return new WebSocket(`${proto}//${location.host}/ws`, ["rtic", `rtic.bearer.${token}`]);
  }

  return { take, socket };
})();
