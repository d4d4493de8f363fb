{% load static %}// Lägesbild's service worker: the app opens without network, and reports made then wait on the device
// (capture-queue.js) until it is back. Served from /sw.js so that its scope is the whole site.
//
// What it keeps, and why no more:
// - the scripts, styles and icons the map needs (fetched from the network first, so a new version is used at
//   once, and kept for when there is none);
// - the map page of each forum visited, and the forum's categories, organisations and places, so that the
//   report form works offline;
// - never deviations, photos, comments or anything else a member's organisation may see but others not: a
//   device can be lost or shared. Signing out removes the pages kept.
const STATIC = "lagesbild-static-v1";
const PAGES = "lagesbild-pages-v1";
const SHELL = [
  "{% static 'lagesbild/app.css' %}", "{% static 'lagesbild/map.css' %}", "{% static 'lagesbild/nav.js' %}",
  "{% static 'lagesbild/map.js' %}", "{% static 'lagesbild/capture-queue.js' %}",
  "{% static 'lagesbild/basemap.js' %}", "{% static 'lagesbild/map-search.js' %}",
  "{% static 'lagesbild/favicon.svg' %}", "{% static 'lagesbild/icons/icon-192.png' %}",
  "{% static 'vendor/maplibre-gl/maplibre-gl-csp.js' %}", "{% static 'vendor/maplibre-gl/maplibre-gl.css' %}",
  "{% static 'vendor/maplibre-gl/maplibre-gl-csp-worker.js' %}", "{% static 'vendor/pmtiles/pmtiles.js' %}",
  "{% static 'vendor/protomaps-basemaps/basemaps.js' %}",
];
const STATIC_PREFIX = "{% get_static_prefix %}";
const MAP_PAGE = /^\/f\/[^/]+\/$/;
// The forum's own description, categories, organisations and places: what every member sees alike.
const FORUM_DATA = /^\/api\/forums\/[^/]+(\/categories|\/organisations|\/places)?$/;
const LOGOUT = "{% url 'account_logout' %}";
const LAST_MAP = "/__last-map-page__";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(STATIC).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== STATIC && name !== PAGES) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// A page that opened before this worker took over asks for itself and its forum's data to be kept.
self.addEventListener("message", (event) => {
  if (event.data?.type !== "keep-page") return;
  const url = new URL(event.data.url, self.location.origin);
  if (url.origin !== self.location.origin || !MAP_PAGE.test(url.pathname)) return;
  const api = `/api/forums${url.pathname.slice(2, -1)}`;
  event.waitUntil(Promise.all([url.pathname, api, `${api}/categories`, `${api}/organisations`, `${api}/places`]
    .map((path) => fromNetwork(new Request(path, { credentials: "same-origin" }), PAGES).catch(() => null))));
});

async function fromNetwork(request, cacheName) {
  const response = await fetch(request);
  // Only a whole, successful answer is kept: a sign-in page (a redirect) never replaces the map.
  if (response.ok && !response.redirected && response.type === "basic") {
    const url = new URL(request.url);
    const cache = await caches.open(cacheName);
    await cache.put(url.pathname, response.clone());
    if (MAP_PAGE.test(url.pathname)) await cache.put(LAST_MAP, response.clone());
  }
  return response;
}

async function fromCache(request, cacheName) {
  const url = new URL(request.url);
  const cache = await caches.open(cacheName);
  return (await cache.match(url.pathname)) || (url.pathname === "/" ? cache.match(LAST_MAP) : undefined);
}

async function networkFirst(request, cacheName, fallback) {
  try {
    return await fromNetwork(request, cacheName);
  } catch (error) {
    const kept = await fromCache(request, cacheName);
    if (kept) return kept;
    if (fallback) return fallback();
    throw error;
  }
}

function offlinePage() {
  return new Response(
    "<!doctype html><html lang=sv><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
    "<title>Lägesbild</title><h1>Inget nät</h1><p>Sidan har inte öppnats på den här enheten förut. " +
    "Försök igen när nätet är tillbaka.</p><p lang=en>No network, and this page was not opened on this " +
    "device before.</p>", { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // basemap tiles and the like: the browser's own cache
  if (request.method === "POST" && url.pathname === LOGOUT) {
    // What this person opened leaves the device with them (their reports waiting to be sent stay, for them).
    event.waitUntil(caches.delete(PAGES));
    return;
  }
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    if (MAP_PAGE.test(url.pathname) || url.pathname === "/") {
      event.respondWith(networkFirst(request, PAGES, offlinePage));
    }
    return;
  }
  if (url.pathname.startsWith(STATIC_PREFIX)) {
    event.respondWith(networkFirst(request, STATIC));
  } else if (FORUM_DATA.test(url.pathname)) {
    event.respondWith(networkFirst(request, PAGES));
  }
});
