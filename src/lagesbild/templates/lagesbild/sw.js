{% load static %}// Lägesbild's service worker: the app opens without network, and reports made then wait on the device
// (capture-queue.js) until it is back. Served from /sw.js so that its scope is the whole site.
//
// What it keeps, and why no more:
// - the scripts, styles and icons the map needs (fetched from the network first, so a new version is used at
//   once, and kept for when there is none);
// - the map page of each forum visited, and the forum's categories, organisations and places, so that the
//   report form works offline;
// - never deviations, photos, comments or anything else a member's organisation may see but others not: a
//   device can be lost or shared. Signing out, or a sign-in page (a session that ran out), removes the pages
//   kept, and they are not served once older than MAX_AGE.
// - basemap tiles of a forum's area, when the member asks to keep them and the operator allows it
//   (LAGESBILD_TILE_OFFLINE_ZOOM): public map pictures, but they say where someone works, so they are
//   forgotten with the pages.
// The caches are named after this version of the app's files, so a new release never runs an old page.
const VERSION = "{{ version }}";
const STATIC = `lagesbild-static-${VERSION}`;
const PAGES = `lagesbild-pages-${VERSION}`;
const MAX_AGE = 12 * 3600 * 1000; // a working day or a night's round; after that, open it online again
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
const MAP_PAGE = /^\/f\/[A-Za-z0-9_-]+\/$/;
// The forum's own description, categories, organisations and places: what every member sees alike.
const FORUM_DATA = /^\/api\/forums\/[A-Za-z0-9_-]+(\/categories|\/organisations|\/places)?$/;
const LOGOUT = "{% url 'account_logout' %}";
const ACCOUNT = "/konto/"; // sign-in, sign-out, two-factor: whoever comes next is not the one whose pages are kept
const LAST_MAP = "/__last-map-page__";
const TILES = "lagesbild-tiles"; // not versioned: a new release keeps the map a member saved
// The tile host whose tiles a member may keep (the page fetches and keeps them; this worker only serves them).
const TILE_ORIGIN = "{{ tile_origin }}" ? new URL("{{ tile_origin }}").origin : "";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(STATIC).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      // Kept tiles go too when the operator no longer allows keeping them.
      if (name !== STATIC && name !== PAGES && (name !== TILES || !TILE_ORIGIN)) await caches.delete(name);
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

// Raised whenever the kept pages are forgotten, so that an answer still on its way then is not kept after all.
let forgotten = 0;
async function forgetPages() {
  forgotten += 1;
  await caches.delete(PAGES);
  await caches.delete(TILES);
}

async function fromNetwork(request, cacheName) {
  const before = forgotten;
  const response = await fetch(request);
  const url = new URL(request.url);
  if (cacheName === PAGES && (response.status === 401 || response.status === 403)) {
    await forgetPages(); // signed out, or someone else now: nothing of the last person's stays
    return response;
  }
  // Only a whole, successful answer is kept: a sign-in page (a redirect) never replaces the map.
  if (response.ok && !response.redirected && response.type === "basic" && before === forgotten) {
    const cache = await caches.open(cacheName);
    const kept = new Response(await response.clone().blob(), {
      status: response.status, headers: [...response.headers, ["X-Kept-At", String(Date.now())]],
    });
    if (before !== forgotten) return response;
    await cache.put(url.pathname, kept.clone());
    if (MAP_PAGE.test(url.pathname)) await cache.put(LAST_MAP, kept);
  }
  return response;
}

async function fromCache(request, cacheName) {
  const url = new URL(request.url);
  const cache = await caches.open(cacheName);
  const kept = (await cache.match(url.pathname)) || (url.pathname === "/" ? await cache.match(LAST_MAP) : undefined);
  if (kept && cacheName === PAGES && Date.now() - Number(kept.headers.get("X-Kept-At") || 0) > MAX_AGE) {
    return undefined;
  }
  return kept;
}

async function networkFirst(request, cacheName, fallback) {
  try {
    const response = await fromNetwork(request, cacheName);
    // A proxy's "bad gateway" while the app is down: the kept page serves better.
    if (response.status >= 502 && response.status <= 504) return (await fromCache(request, cacheName)) || response;
    return response;
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
    "device before.</p><p><a href='/'>Lägesbild</a></p>",
    { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    // A kept basemap tile, when the network cannot give it; anything else from elsewhere is the browser's.
    if (TILE_ORIGIN && url.origin === TILE_ORIGIN && request.method === "GET") {
      event.respondWith(fetch(request).catch(async (error) => {
        const kept = await (await caches.open(TILES)).match(request.url, { ignoreVary: true });
        if (kept) return kept;
        throw error;
      }));
    }
    return;
  }
  if (url.pathname.startsWith(ACCOUNT) && (request.mode === "navigate" || url.pathname === LOGOUT)) {
    // Signing out, a session that ran out (its sign-in page), someone else signing in: what the last person
    // opened leaves the device with them. (Their reports waiting to be sent stay, for them alone.)
    event.waitUntil(forgetPages());
    return;
  }
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    if (MAP_PAGE.test(url.pathname) || url.pathname === "/") {
      event.respondWith(networkFirst(request, PAGES, offlinePage));
    } else {
      // Any other page: the network, or a plain "no network" page rather than the browser's error.
      event.respondWith(fetch(request).catch(offlinePage));
    }
    return;
  }
  if (url.pathname.startsWith(STATIC_PREFIX)) {
    event.respondWith(networkFirst(request, STATIC));
  } else if (FORUM_DATA.test(url.pathname)) {
    event.respondWith(networkFirst(request, PAGES));
  }
});
