// RTIC officer: the service worker (served as /officer-sw.js, scope /officer). It keeps the
// officer's page and its files so the page opens with no network after the first visit.
// The page and its files: from the network when it answers (and kept), else from the cache.
// Nothing else is touched (the API and the socket always go to the network).
"use strict";

const CACHE = "rtic-officer-v2";
const PAGE = "/officer";
const FILES = [
  PAGE,
  "/static/session.js",
  "/static/officer.js",
  "/static/officer.css",
  "/static/officer.webmanifest",
  "/static/officer-icon.svg",
  "/static/officer-icon-192.png",
  "/static/officer-icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("rtic-officer-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !FILES.includes(url.pathname)) return;
  // The page is kept without its query (a token in it is never stored).
  const key = url.pathname;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});
