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
const QUEUE_KEY = `lagesbild-walk-${config.walk}-track`;
const RECORDING_KEY = `lagesbild-walk-${config.walk}-recording`;
const BATCH = 500;
const RETRY_MS = 15000;
const MIN_METRES = 8; // a new point once the phone has moved this far,
const MIN_SECONDS = 30; // or this long has passed

maplibregl.setWorkerUrl(config.workerUrl);
const map = new maplibregl.Map({ container: "walk-map", style: baseStyle(config.basemap, config.language),
                                 center: [18.07, 59.33], zoom: 12 });
window.lagesbildWalkMap = map; // for the browser tests
const track = config.track.slice();

function lineFeature(coordinates) {
  return { type: "Feature", geometry: { type: "LineString", coordinates }, properties: {} };
}

function collection(features) {
  return { type: "FeatureCollection", features };
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
  map.addSource("track", { type: "geojson", data: collection(track.length > 1 ? [lineFeature(track)] : []) });
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
  const points = [...route, ...track];
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
let watch = null;
let sending = false;
let retry = null;
let saved = 0;

function queued() {
  try {
    return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
  } catch {
    return [];
  }
}

function keep(points) {
  if (points.length) localStorage.setItem(QUEUE_KEY, JSON.stringify(points));
  else localStorage.removeItem(QUEUE_KEY);
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
  const source = map.getSource("track");
  if (source && track.length > 1) source.setData(collection([lineFeature(track)]));
}

function onPosition(position) {
  const point = [Number(position.coords.longitude.toFixed(6)), Number(position.coords.latitude.toFixed(6)),
                 Math.round(position.timestamp / 100) / 10];
  const points = queued();
  const last = points.length ? points[points.length - 1] : null;
  if (last && metres(last, point) < MIN_METRES && point[2] - last[2] < MIN_SECONDS) return;
  points.push(point);
  keep(points);
  track.push([point[0], point[1]]);
  drawTrack();
  flush();
}

function onPositionError(error) {
  status(format(t.noPosition, { reason: error.message || String(error.code) }));
}

async function flush() {
  if (sending) return;
  const points = queued();
  if (!points.length) return;
  sending = true;
  clearTimeout(retry);
  retry = null;
  let more = false;
  const batch = points.slice(0, BATCH);
  try {
    const response = await fetch(config.trackUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRFToken": document.querySelector("input[name=csrfmiddlewaretoken]").value },
      body: JSON.stringify({ points: batch }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      keep(queued().slice(batch.length));
      saved = body.total;
      more = queued().length > 0;
      status(format(t.saved, { count: saved }) + (watch !== null ? " " + t.recording : ""));
    } else if (response.status >= 500 || [401, 403, 408, 429].includes(response.status)) {
      // The server or the session is away for now (a 403 is also a lapsed CSRF token): keep them, try again.
      throw new Error(String(response.status));
    } else {
      // Refused for good (the walk has ended, the points are bad): they will never be taken, so drop them.
      keep(queued().slice(batch.length));
      more = queued().length > 0;
      status(format(t.refused, { reason: body.error ? body.error.message : response.status }));
    }
  } catch {
    status(format(t.waiting, { count: queued().length }));
    retry = setTimeout(flush, RETRY_MS);
  } finally {
    sending = false;
  }
  if (more) await flush();
}

function setRecording(on) {
  if (on && !navigator.geolocation) {
    status(t.noGeolocation);
    return;
  }
  if (on && watch === null) {
    watch = navigator.geolocation.watchPosition(onPosition, onPositionError,
                                                { enableHighAccuracy: true, maximumAge: 5000, timeout: 60000 });
    localStorage.setItem(RECORDING_KEY, "1");
    status(t.recording);
  } else if (!on && watch !== null) {
    navigator.geolocation.clearWatch(watch);
    watch = null;
    localStorage.removeItem(RECORDING_KEY);
    status(t.stopped);
    flush();
  }
  $("#track-start").hidden = on;
  $("#track-stop").hidden = !on;
}

if (recorder) {
  $("#track-start").addEventListener("click", () => setRecording(true));
  $("#track-stop").addEventListener("click", () => setRecording(false));
  // A reload in the middle of the walk goes on recording.
  if (localStorage.getItem(RECORDING_KEY)) setRecording(true);
} else {
  localStorage.removeItem(RECORDING_KEY);
}
window.addEventListener("online", flush);
// Points kept from before (a reload without network, the walk ended meanwhile): send them.
if (queued().length && config.mayRun) flush();
// Ending the walk sends what is still waiting first, so the track is whole.
$("#walk-end")?.closest("form").addEventListener("submit", (event) => {
  if (watch !== null) navigator.geolocation.clearWatch(watch);
  localStorage.removeItem(RECORDING_KEY);
  if (!queued().length) return;
  event.preventDefault();
  const form = event.target;
  flush().finally(() => form.submit());
});
