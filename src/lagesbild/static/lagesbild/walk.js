// A safety walk's page: the map of its route (the numbered stops, the planned line through them, the walked
// track), a click on the map to place a new stop, and recording the walked track with the phone's position.
//
// The track's points are kept in localStorage until the server has them, so a stretch without network, or
// a reload, loses nothing; the server ignores points it already has, so sending a batch again is harmless.
/* global maplibregl */
import { FONT, baseStyle } from "./basemap.js";

const config = JSON.parse(document.getElementById("walk-config").textContent);
const t = JSON.parse(document.getElementById("walk-strings").textContent);
const $ = (selector) => document.querySelector(selector);
const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
const QUEUE_KEY = `${config.queueKey}:track`;
const RECORDING_KEY = `${config.queueKey}:recording`;
const LAST_KEY = `${config.queueKey}:last`;
const BATCH = 500;
const SEND_AT = 50;
const SEND_EVERY_MS = 15000;
const MIN_METRES = 8; // a new point once the phone has moved this far,
const MIN_SECONDS = 30; // or this long has passed

maplibregl.setWorkerUrl(config.workerUrl);
const map = new maplibregl.Map({ container: "walk-map", style: baseStyle(config.basemap, config.language),
                                 center: [18.07, 59.33], zoom: 12 });
window.lagesbildWalkMap = map; // for the browser tests
const lines = config.track; // one line per phone that recorded, as saved
const mine = []; // this phone's points since the page opened

function lineFeature(coordinates) {
  return { type: "Feature", geometry: { type: "LineString", coordinates }, properties: {} };
}

function collection(features) {
  return { type: "FeatureCollection", features };
}

function trackData() {
  return collection([...lines, mine].filter((line) => line.length > 1).map(lineFeature));
}

function stopFeatures() {
  return config.stops.map((s) => ({ type: "Feature", geometry: { type: "Point", coordinates: [s.lon, s.lat] },
                                    properties: { label: String(s.number), name: s.name } }));
}

map.on("load", () => {
  if (config.area) {
    map.addSource("area", { type: "geojson", data: config.area });
    map.addLayer({ id: "area-line", type: "line", source: "area",
                   paint: { "line-color": "#14213d", "line-width": 2, "line-dasharray": [3, 2] } });
  }
  const route = config.stops.map((s) => [s.lon, s.lat]);
  // The track under the planned route, which stays visible, dashed, where the group kept to it.
  map.addSource("track", { type: "geojson", data: trackData() });
  map.addLayer({ id: "track", type: "line", source: "track", paint: { "line-color": "#0f766e", "line-width": 4 } });
  map.addSource("route", { type: "geojson", data: collection(route.length > 1 ? [lineFeature(route)] : []) });
  map.addLayer({ id: "route", type: "line", source: "route",
                 paint: { "line-color": "#1d4ed8", "line-width": 3, "line-dasharray": [2, 1.5] } });
  map.addSource("stops", { type: "geojson", data: collection(stopFeatures()) });
  map.addLayer({ id: "stops", type: "circle", source: "stops", paint: {
    "circle-radius": 10, "circle-color": "#a12d11", "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } });
  if (config.basemap) {
    map.addLayer({ id: "stop-numbers", type: "symbol", source: "stops",
                   layout: { "text-field": ["get", "label"], "text-font": FONT, "text-size": 12,
                             "text-allow-overlap": true },
                   paint: { "text-color": "#ffffff" } });
  }
  map.addSource("new-stop", { type: "geojson", data: collection([]) });
  map.addLayer({ id: "new-stop", type: "circle", source: "new-stop", paint: {
    "circle-radius": 7, "circle-color": "#ffffff", "circle-stroke-color": "#a12d11", "circle-stroke-width": 3 } });
  const points = [...route, ...lines.flat()];
  if (points.length) {
    const bounds = points.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(points[0], points[0]));
    map.fitBounds(bounds, { padding: 40, maxZoom: 16, duration: 0 });
  } else if (config.area) {
    const ring = config.area.type === "MultiPolygon" ? config.area.coordinates.flat(2) : config.area.coordinates.flat();
    map.fitBounds(ring.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(ring[0], ring[0])),
                  { padding: 20, duration: 0 });
  }
  document.body.classList.add("walk-map-ready");
});

// --- Placing a stop -------------------------------------------------------------------------------------

map.on("click", (event) => {
  const lon = $("#stop-lon");
  const lat = $("#stop-lat");
  if (!config.mayRun || !lon || !lat) return;
  lon.value = event.lngLat.lng.toFixed(6);
  lat.value = event.lngLat.lat.toFixed(6);
  map.getSource("new-stop")?.setData(collection([{ type: "Feature", properties: {},
    geometry: { type: "Point", coordinates: [Number(lon.value), Number(lat.value)] } }]));
  $("#stop-status").textContent = t.stopChosen;
  $("#stop-name").focus();
});

// --- Recording the track --------------------------------------------------------------------------------

const recorder = $("#track-recorder");
const LOCK = `${config.queueKey}:recorder`; // one recording tab per walk and member on a device
const QUEUE_LOCK = `${config.queueKey}:queue`; // tabs change the shared queue one at a time
const RETRY_FIRST_MS = 5000;
const RETRY_MAX_MS = 60000;
const REQUEST_TIMEOUT_MS = 20000;
let watch = null;
let releaseLock = null;
let lockWait = null; // aborts a request for the recording lock still waiting
let sending = false;
let timer = null;
let lastSent = 0;
let retryDelay = RETRY_FIRST_MS;

const pointKey = (point) => point.join(",");

function read(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

const queued = () => read(QUEUE_KEY, []);

function keep(points) {
  if (points.length) localStorage.setItem(QUEUE_KEY, JSON.stringify(points));
  else localStorage.removeItem(QUEUE_KEY);
}

// A read-change-write of the queue, under a lock where the browser has them, so that another tab's change
// in between is not lost.
function changeQueue(change) {
  const run = () => keep(change(queued()));
  return navigator.locks ? navigator.locks.request(QUEUE_LOCK, run) : Promise.resolve(run());
}

function status(text) {
  const line = $("#track-status");
  if (line) line.textContent = text;
}

function metres(a, b) {
  const k = Math.cos((a[1] * Math.PI) / 180) * 111320;
  return Math.hypot((a[0] - b[0]) * k, (a[1] - b[1]) * 110540);
}

function drawTrack() {
  map.getSource("track")?.setData(trackData());
}

// Points are sent at most every SEND_EVERY_MS, or once SEND_AT are waiting: a request per GPS fix would
// cost the phone's battery and data. The first point after a pause goes at once, so the member sees it saved.
// After a failure the next try waits longer each time (5 s, doubling to a minute).
function schedule(wait = Math.max(0, lastSent + SEND_EVERY_MS - Date.now())) {
  if (timer === null) timer = setTimeout(() => { timer = null; flush(); }, wait);
}

async function onPosition(position) {
  const point = [Number(position.coords.longitude.toFixed(6)), Number(position.coords.latitude.toFixed(6)),
                 Math.round(position.timestamp / 100) / 10];
  const last = read(LAST_KEY, null); // the last point kept, sent or not
  if (last && metres(last, point) < MIN_METRES && point[2] - last[2] < MIN_SECONDS) return;
  localStorage.setItem(LAST_KEY, JSON.stringify(point));
  await changeQueue((points) => [...points, point]);
  mine.push([point[0], point[1]]);
  drawTrack();
  if (timer !== null && retryDelay > RETRY_FIRST_MS) return; // waiting out a failure: the retry takes it
  if (queued().length >= SEND_AT || Date.now() - lastSent >= SEND_EVERY_MS) flush();
  else schedule();
}

function onPositionError(error) {
  status(format(t.noPosition, { reason: error.message || String(error.code) }));
}

// Sends what waits, a batch at a time. Only the points sent leave the queue (others may have joined it
// meanwhile). Returns whether the queue is empty; `why` says what stopped it otherwise.
async function flush() {
  if (sending) return { done: false, why: "busy" };
  sending = true;
  clearTimeout(timer);
  timer = null;
  try {
    while (queued().length) {
      const batch = queued().slice(0, BATCH);
      const sent = new Set(batch.map(pointKey));
      let response;
      try {
        response = await fetch(config.trackUrl, {
          method: "POST", credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          headers: { "Content-Type": "application/json", Accept: "application/json",
                     "X-CSRFToken": document.querySelector("input[name=csrfmiddlewaretoken]").value },
          body: JSON.stringify({ points: batch }),
        });
      } catch {
        response = null; // no network, or no answer in time
      }
      const body = response ? await response.json().catch(() => ({})) : {};
      const code = body.error ? body.error.code : "";
      if (response && response.ok) {
        lastSent = Date.now();
        retryDelay = RETRY_FIRST_MS;
        await changeQueue((points) => points.filter((point) => !sent.has(pointKey(point))));
        status(format(t.saved, { count: body.total }) + (body.ignored ? " " + format(t.ignored, { count: body.ignored }) : "")
               + (watch !== null ? " " + t.recording : ""));
        continue;
      }
      if (response && (response.status === 401 || code === "csrf")) {
        status(t.signIn); // the points wait; the page reloaded after signing in sends them
        return { done: false, why: "signIn" };
      }
      if (response && response.status === 403) {
        setRecording(false);
        status(format(t.forbidden, { reason: body.error ? body.error.message : "" }));
        return { done: false, why: "forbidden" };
      }
      if (!response || response.status >= 500 || [408, 429].includes(response.status)) {
        status(format(t.waiting, { count: queued().length }));
        schedule(retryDelay);
        retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
        return { done: false, why: "network" };
      }
      // Refused for good (the walk ended long ago, the track is full): these points will never be taken,
      // so they leave the queue, and the member is told why.
      await changeQueue((points) => points.filter((point) => !sent.has(pointKey(point))));
      if (response.status === 413) {
        setRecording(false);
        status(format(t.forbidden, { reason: body.error ? body.error.message : response.status }));
      } else {
        status(format(t.refused, { reason: body.error ? body.error.message : response.status }));
      }
    }
    return { done: true, why: "" };
  } finally {
    sending = false;
  }
}

function startWatching() {
  watch = navigator.geolocation.watchPosition(onPosition, onPositionError,
                                              { enableHighAccuracy: true, maximumAge: 5000, timeout: 60000 });
  localStorage.setItem(RECORDING_KEY, "1");
  status(t.recording);
}

function showRecording(on) {
  if (!recorder) return;
  $("#track-start").hidden = on;
  $("#track-stop").hidden = !on;
}

function setRecording(on) {
  if (on && !navigator.geolocation) {
    status(t.noGeolocation);
    return;
  }
  if (on) {
    if (watch !== null || lockWait !== null) return; // already recording, or waiting to
    showRecording(true);
    if (!navigator.locks) {
      startWatching();
      return;
    }
    // Another tab may hold the recording: wait for it to stop (or close), then take over.
    lockWait = new AbortController();
    let granted = false;
    navigator.locks.request(LOCK, { signal: lockWait.signal }, () => {
      granted = true;
      lockWait = null;
      startWatching();
      return new Promise((resolve) => { releaseLock = resolve; }); // held until recording stops
    }).catch(() => {}); // aborted: the member stopped before the lock came
    setTimeout(() => { if (!granted && lockWait !== null) status(t.otherTab); }, 300);
    return;
  }
  if (lockWait !== null) lockWait.abort();
  lockWait = null;
  if (watch !== null) {
    navigator.geolocation.clearWatch(watch);
    localStorage.removeItem(RECORDING_KEY); // only the recording tab says recording has stopped
  }
  watch = null;
  if (releaseLock) releaseLock();
  releaseLock = null;
  showRecording(false);
}

if (recorder) {
  $("#track-start").addEventListener("click", () => setRecording(true));
  $("#track-stop").addEventListener("click", () => {
    setRecording(false);
    localStorage.removeItem(RECORDING_KEY);
    status(t.stopped);
    flush();
  });
  // A reload in the middle of the walk goes on recording.
  if (localStorage.getItem(RECORDING_KEY)) setRecording(true);
}
window.addEventListener("online", () => {
  retryDelay = RETRY_FIRST_MS;
  flush();
});
// Points kept from before (a reload without network, or after signing in again): send them.
if (queued().length && config.mayRun) flush();

// Ending the walk sends what still waits first, so that the track is whole; without network it waits.
const endForm = $("#walk-end")?.closest("form");
endForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#walk-end");
  if (button.disabled || !window.confirm(t.confirmEnd)) return;
  button.disabled = true; // one ending at a time
  try {
    status(t.sending);
    while (sending) await new Promise((resolve) => { setTimeout(resolve, 200); });
    const result = await flush();
    if (!result.done) {
      status(result.why === "network" ? t.endWaiting : result.why === "signIn" ? t.signIn : t.endRefused);
      return;
    }
    setRecording(false);
    localStorage.removeItem(RECORDING_KEY);
    localStorage.removeItem(LAST_KEY);
    endForm.submit();
  } finally {
    button.disabled = false;
  }
});
