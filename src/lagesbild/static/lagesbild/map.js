// The situational picture: map, filter, list, detail and report form.
// Plain ES module over the JSON API; MapLibre GL JS (CSP build) is loaded as a global before this.
/* global maplibregl */
import { FONT, baseStyle } from "./basemap.js";
import { setUpSearch } from "./map-search.js";
import * as queue from "./capture-queue.js";

const config = JSON.parse(document.getElementById("lagesbild-config").textContent);
const t = JSON.parse(document.getElementById("lagesbild-strings").textContent);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const LIST_PAGE = 100;

const state = {
  forum: null,
  categories: new Map(), // key -> {key, name, color, parent}
  organisations: new Map(), // id -> {id, name}
  features: [],
  numberMatched: 0,
  listShown: LIST_PAGE,
  picking: false,
  aggregated: false, // the map shows grid counts, not points
  categoryCounts: new Map(),
  editing: null, // the deviation being edited, or null for a new one
  captureKey: null, // the Idempotency-Key of the new report in the form
  detailId: null,
  loadSeq: 0,
  hexagonTiles: null, // the hexagon tiles' URL, for the filter
  hexagonTop: null, // the busiest hexagon in view, which sets the hexagon classes
};

const $ = (selector, root = document) => root.querySelector(selector);
const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
const dateTime = new Intl.DateTimeFormat(config.language === "en" ? "en-GB" : "sv-SE", {
  timeZone: config.timeZone, dateStyle: "medium", timeStyle: "short",
});
const formatTime = (iso) => (iso ? dateTime.format(new Date(iso)) : "");

// The lists and counts last read, by address: the server answers 304 to what the map has already (its ETag),
// so a map panning back and forth fetches nothing again. Kept in memory only: the server lets no browser
// store an answer that holds forum data.
const revalidated = new Map();
const REVALIDATED_KEPT = 40;

async function api(path, options = {}) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken, ...(options.headers || {}) };
  const keeps = !options.method && (path.startsWith("/deviations?") || path.startsWith("/deviations/aggregates?"));
  const kept = keeps ? revalidated.get(path) : undefined;
  if (kept) headers["If-None-Match"] = kept.etag;
  const response = await fetch(config.api + path, { credentials: "same-origin", ...options, headers });
  if (response.status === 204) return null;
  if (response.status === 304 && kept) {
    revalidated.delete(path); // and back at the end: the newest used stay
    revalidated.set(path, kept);
    return kept.body;
  }
  const body = await response.json().catch(() => null);
  const etag = response.headers.get("ETag");
  if (response.ok && etag && keeps) {
    revalidated.set(path, { etag, body });
    if (revalidated.size > REVALIDATED_KEPT) revalidated.delete(revalidated.keys().next().value);
  }
  if (!response.ok) {
    const error = new Error(body?.error?.message || response.statusText);
    error.field = body?.error?.field;
    error.code = body?.error?.code;
    error.status = response.status;
    throw error;
  }
  return body;
}

// --- Map -------------------------------------------------------------------------------------------

maplibregl.setWorkerUrl(config.workerUrl);
const map = new maplibregl.Map({
  container: "map",
  style: baseStyle(config.basemap, config.language),
  center: [18.0, 59.33],
  zoom: 12,
  attributionControl: { compact: true },
  locale: Object.fromEntries(Object.entries(t).filter(([key]) => key.includes("."))),
});
const mapLoaded = new Promise((resolve) => map.once("load", resolve));
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.getCanvas().setAttribute("aria-label", document.getElementById("map").getAttribute("aria-label"));
window.lagesbildMap = map; // for the browser tests and the curious

// Density, not discs: a heat map of the single deviations (not of clusters) that fades in from transparent, and
// spreads wider as the map zooms in, so the same place reads about as warm at every zoom.
const HEAT_PAINT = {
  "heatmap-weight": 1,
  "heatmap-intensity": ["interpolate", ["linear"], ["zoom"], 10, 0.5, 13, 1, 16, 2],
  "heatmap-radius": ["interpolate", ["exponential", 1.5], ["zoom"], 10, 14, 13, 28, 16, 55, 18, 90],
  "heatmap-color": ["interpolate", ["linear"], ["heatmap-density"],
                    0, "rgba(255,255,204,0)", 0.15, "rgba(255,237,160,0.55)", 0.35, "#fed976", 0.55, "#fd8d3c",
                    0.75, "#e31a1c", 1, "#800026"],
  "heatmap-opacity": 0.85,
};
// Five classes for the hexagons, light to dark; the legend says what counts each holds.
const HEX_COLOURS = ["#fff3c4", "#fdcf7f", "#f59d4f", "#d95f27", "#a12d11"];

function categoryColorExpression() {
  const expression = ["match", ["get", "parentCategory"]];
  for (const category of state.categories.values()) {
    if (!category.parent) expression.push(category.key, category.color);
  }
  expression.push("#555555");
  return expression;
}

function addPlaces(places) {
  // The forum's places, outlined under the deviations, so people see where the named places are.
  map.addSource("places", { type: "geojson", data: places });
  map.addLayer({ id: "places-fill", type: "fill", source: "places",
                 paint: { "fill-color": "#1d4ed8", "fill-opacity": 0.06 } }, "clusters");
  map.addLayer({ id: "places-outline", type: "line", source: "places",
                 paint: { "line-color": "#1d4ed8", "line-width": 1.5 } }, "clusters");
}

function addLayers() {
  if (state.forum.area) {
    // The forum's area, so people see where reports are accepted.
    map.addSource("area", { type: "geojson", data: state.forum.area });
    map.addLayer({ id: "area-outline", type: "line", source: "area",
                   paint: { "line-color": "#14213d", "line-width": 2, "line-dasharray": [3, 2] } });
  }
  map.addSource("deviations", {
    type: "geojson",
    data: { type: "FeatureCollection", features: [] },
    cluster: true,
    clusterRadius: 40,
    clusterMaxZoom: 15,
  });
  // Deviations drawn as lines and areas, in their true shape; their anchors are in "deviations" as well, so they
  // take part in clusters and can be clicked where the list marks them.
  map.addSource("deviation-shapes", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "shape-fills", type: "fill", source: "deviation-shapes", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": categoryColorExpression(), "fill-opacity": 0.25 },
  });
  map.addLayer({
    id: "shape-lines", type: "line", source: "deviation-shapes",
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": categoryColorExpression(), "line-width": 4 },
  });
  map.addLayer({
    id: "selected-shape", type: "line", source: "deviation-shapes", filter: ["==", ["get", "id"], -1],
    paint: { "line-color": "#111111", "line-width": 6, "line-opacity": 0.8 },
  });
  // What is being drawn for a new report: its corners, and the line or area between them.
  map.addSource("drawing", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "drawing-fill", type: "fill", source: "drawing", filter: ["==", ["geometry-type"], "Polygon"],
                 paint: { "fill-color": "#b3261e", "fill-opacity": 0.15 } });
  map.addLayer({ id: "drawing-line", type: "line", source: "drawing", filter: ["!=", ["geometry-type"], "Point"],
                 paint: { "line-color": "#b3261e", "line-width": 3, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "drawing-corners", type: "circle", source: "drawing", filter: ["==", ["geometry-type"], "Point"],
                 paint: { "circle-radius": 5, "circle-color": "#b3261e", "circle-stroke-color": "#fff",
                          "circle-stroke-width": 2 } });
  map.addLayer({
    id: "clusters", type: "circle", source: "deviations", filter: ["has", "point_count"],
    paint: {
      "circle-color": "#1d3557",
      "circle-opacity": 0.85,
      "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 50, 23, 200, 28],
      "circle-stroke-width": 2,
      "circle-stroke-color": "#ffffff",
    },
  });
  map.addLayer({
    id: "points", type: "circle", source: "deviations", filter: ["!", ["has", "point_count"]],
    paint: {
      "circle-color": categoryColorExpression(),
      "circle-radius": ["match", ["get", "severity"], "high", 9, "low", 6, 7.5],
      "circle-stroke-width": 2,
      "circle-stroke-color": "#ffffff",
    },
  });
  // Counts on clusters, as map text (Lägesbild serves the glyphs), so they are right at every zoom.
  map.addLayer({
    id: "cluster-counts", type: "symbol", source: "deviations", filter: ["has", "point_count"],
    layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": FONT, "text-size": 13,
              "text-allow-overlap": true },
    paint: { "text-color": "#ffffff" },
  });
  // The heat map and the hexagon layer, shown instead of the points when chosen under "Show as".
  map.addSource("deviations-heat", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "heat", type: "heatmap", source: "deviations-heat", layout: { visibility: "none" }, paint: HEAT_PAINT,
  });
  // Hexagons come as vector tiles of the filter: a tile is built once per change of the forum's data and then
  // only revalidated (304), panning fetches just the new tiles, and a city view is a few tiles of counts
  // instead of one GeoJSON answer with every hexagon's polygon. Past zoom 14 the tiles are drawn larger.
  map.addSource("hexagons", { type: "vector", tiles: [hexagonTiles(filterParams())], maxzoom: 14 });
  map.addLayer({
    id: "hexagon-cells", type: "fill", source: "hexagons", "source-layer": "cells", layout: { visibility: "none" },
    paint: { "fill-opacity": 0.8, "fill-outline-color": "#ffffff", "fill-color": HEX_COLOURS[0] },
  });
  map.addLayer({
    id: "hexagon-counts", type: "symbol", source: "hexagons", "source-layer": "cell-centres", layout: {
      visibility: "none", "text-field": ["to-string", ["get", "count"]], "text-font": FONT,
      "text-size": ["interpolate", ["linear"], ["zoom"], 11, 10, 16, 14] },
    paint: { "text-color": "#1b1f24", "text-halo-width": 0 },
  });
  map.on("idle", classifyHexagons);
  // Past the point limit the map shows counts per grid cell from the server instead.
  map.addSource("aggregates", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "aggregate-cells", type: "circle", source: "aggregates",
    paint: {
      "circle-color": "#14213d",
      "circle-opacity": 0.8,
      "circle-radius": ["interpolate", ["linear"], ["sqrt", ["get", "count"]], 1, 10, 10, 20, 40, 34],
      "circle-stroke-width": 2,
      "circle-stroke-color": "#ffffff",
    },
  });
  map.addLayer({
    id: "aggregate-counts", type: "symbol", source: "aggregates",
    layout: { "text-field": ["case", [">=", ["get", "count"], 1000],
                             ["concat", ["to-string", ["round", ["/", ["get", "count"], 1000]]], "k"],
                             ["to-string", ["get", "count"]]],
              "text-font": FONT, "text-size": 13, "text-allow-overlap": true },
    paint: { "text-color": "#ffffff" },
  });
  // When the view holds too many points, the heat map is drawn from the server's counts instead.
  map.addLayer({
    id: "heat-aggregates", type: "heatmap", source: "aggregates", layout: { visibility: "none" },
    paint: { ...HEAT_PAINT, "heatmap-intensity": 1 },
  });
  map.on("click", "aggregate-cells", (event) => {
    if (state.picking) return;
    map.easeTo({ center: event.features[0].geometry.coordinates, zoom: map.getZoom() + 2 });
  });
  map.addLayer({
    id: "selected", type: "circle", source: "deviations", filter: ["==", ["get", "id"], -1],
    paint: { "circle-radius": 13, "circle-color": "rgba(0,0,0,0)", "circle-stroke-width": 3,
             "circle-stroke-color": "#111111" },
  });

  map.on("click", "clusters", async (event) => {
    if (state.picking) return;
    const feature = event.features[0];
    const zoom = await map.getSource("deviations").getClusterExpansionZoom(feature.properties.cluster_id);
    map.easeTo({ center: feature.geometry.coordinates, zoom });
  });
  map.on("click", "points", (event) => {
    if (state.picking) return;
    openDetail(event.features[0].properties.id);
  });
  for (const layer of ["shape-lines", "shape-fills"]) {
    map.on("click", layer, (event) => {
      if (state.picking || map.queryRenderedFeatures(event.point, { layers: ["points", "clusters"] }).length) return;
      openDetail(event.features[0].properties.id);
    });
  }
  for (const layer of ["clusters", "points", "aggregate-cells", "shape-lines", "shape-fills"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = state.picking ? "crosshair" : ""; });
  }
}

// --- Filter -----------------------------------------------------------------------------------------

const filterForm = $("#filter-form");

function isoDay(date) {
  const parts = new Intl.DateTimeFormat("sv-SE", { timeZone: config.timeZone }).format(date);
  return parts; // sv-SE formats as YYYY-MM-DD
}

function periodRange() {
  const period = filterForm.period.value;
  const now = new Date();
  $("#custom-period").hidden = period !== "custom";
  if (period === "meeting") {
    if (state.forum?.lastMeetingAt) return { from: state.forum.lastMeetingAt };
    return { from: new Date(now - 30 * 864e5).toISOString() };
  }
  if (["7", "30", "90"].includes(period)) return { from: new Date(now - Number(period) * 864e5).toISOString() };
  if (period === "year") return { from: `${isoDay(now).slice(0, 4)}-01-01T00:00:00` };
  if (period === "custom") {
    const range = {};
    if (filterForm.from.value) range.from = `${filterForm.from.value}T00:00:00`;
    if (filterForm.to.value) range.to = `${filterForm.to.value}T23:59:59`;
    return range;
  }
  return {};
}

function filterParams() {
  const params = new URLSearchParams();
  const range = periodRange();
  if (range.from) params.set("from", range.from);
  if (range.to) params.set("to", range.to);
  const checkedParents = new Set(
    [...filterForm.querySelectorAll("input[data-parent-box]:checked")].map((box) => box.value));
  for (const box of filterForm.querySelectorAll("input[name=category]:checked")) {
    if (box.dataset.parent && checkedParents.has(box.dataset.parent)) continue; // the parent covers it
    params.append("category", box.value);
  }
  for (const name of ["organisation", "status"]) {
    for (const box of filterForm.querySelectorAll(`input[name=${name}]:checked`)) params.append(name, box.value);
  }
  const q = filterForm.q.value.trim();
  if (q) params.set("q", q);
  return params;
}

function saveFilterInUrl() {
  const params = new URLSearchParams();
  params.set("period", filterForm.period.value);
  if (filterForm.period.value === "custom") {
    if (filterForm.from.value) params.set("from", filterForm.from.value);
    if (filterForm.to.value) params.set("to", filterForm.to.value);
  }
  for (const name of ["category", "organisation", "status"]) {
    for (const box of filterForm.querySelectorAll(`input[name=${name}]:checked`)) params.append(name, box.value);
  }
  if (filterForm.q.value.trim()) params.set("q", filterForm.q.value.trim());
  history.replaceState(null, "", `${location.pathname}?${params}`);
  // The patterns page opens on the same filter.
  const patterns = $("#nav-patterns");
  if (patterns) patterns.href = `${patterns.dataset.base}?${params}`;
}

function restoreFilterFromUrl() {
  const params = new URLSearchParams(location.search);
  if (params.get("period")) filterForm.period.value = params.get("period");
  if (params.get("from")) filterForm.from.value = params.get("from");
  if (params.get("to")) filterForm.to.value = params.get("to");
  if (params.get("q")) filterForm.q.value = params.get("q");
  for (const name of ["category", "organisation", "status"]) {
    const values = new Set(params.getAll(name));
    for (const box of filterForm.querySelectorAll(`input[name=${name}]`)) box.checked = values.has(box.value);
  }
}

// Saving the view posts the map's address (its filter) and, if asked, the box on screen.
$("#save-view-form")?.addEventListener("submit", () => {
  saveFilterInUrl();
  $("#sv-query").value = location.search.replace(/^\?/, "");
  const bounds = map.getBounds();
  $("#sv-bbox").value = $("#sv-in-view").checked
    ? [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(6)).join(",")
    : "";
});

let filterTimer = null;
filterForm.addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => { saveFilterInUrl(); load(); }, 250);
});
filterForm.addEventListener("change", (event) => {
  if (event.target.matches("input[data-parent-box]")) {
    for (const child of filterForm.querySelectorAll(`input[data-parent="${event.target.value}"]`)) {
      child.checked = event.target.checked;
    }
  }
});
filterForm.addEventListener("reset", () => setTimeout(() => { saveFilterInUrl(); load(); }, 0));

// --- Loading ------------------------------------------------------------------------------------------

function viewBbox() {
  const bounds = map.getBounds();
  const clamp = (value, limit) => Math.max(-limit, Math.min(limit, value));
  return [clamp(bounds.getWest(), 180), clamp(bounds.getSouth(), 90), clamp(bounds.getEast(), 180),
          clamp(bounds.getNorth(), 90)].map((n) => n.toFixed(6)).join(",");
}

function layerChoice() {
  return filterForm.querySelector("input[name=layer]:checked")?.value || "points";
}

function showLayers() {
  const choice = layerChoice();
  const visible = (id, on) => { if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", on ? "visible" : "none"); };
  for (const id of ["clusters", "cluster-counts", "points", "aggregate-cells", "aggregate-counts", "selected"]) {
    visible(id, choice === "points");
  }
  visible("heat", choice === "heat");
  visible("heat-aggregates", choice === "heat");
  visible("hexagon-cells", choice === "hexagons");
  visible("hexagon-counts", choice === "hexagons");
  $("#hexagon-legend").hidden = choice !== "hexagons";
  document.body.dataset.layer = choice;
}

function hexagonTiles(params) {
  // Absolute, since MapLibre's workers fetch the tiles; the filter without the view's box (a tile is its own).
  const query = new URLSearchParams(params);
  query.delete("bbox");
  query.delete("limit");
  query.set("hexagons", "true");
  return `${location.origin}${config.api}/tiles/WebMercatorQuad/{z}/{x}/{y}?${query}`;
}

function showHexagons(params) {
  const url = hexagonTiles(params);
  if (state.hexagonTiles !== url) {
    state.hexagonTiles = url;
    map.getSource("hexagons").setTiles([url]);
    state.hexagonTop = null; // the classes follow the new filter's counts
  }
}

function hexagonClasses(top) {
  // Classes that grow geometrically up to the busiest hexagon (1–3, 4–9, 10–23, ...): counts are skewed, and
  // equal steps would put almost every hexagon in the first class. With few deviations, fewer classes.
  const bounds = [];
  for (let i = 1; i <= HEX_COLOURS.length; i++) {
    const upper = Math.ceil(top ** (i / HEX_COLOURS.length));
    if (!bounds.length || upper > bounds.at(-1)) bounds.push(upper);
  }
  const colourIndex = (i) => Math.round((i / Math.max(1, bounds.length - 1)) * (HEX_COLOURS.length - 1));
  return bounds.map((upper, i) => ({ lower: i ? bounds[i - 1] + 1 : 1, upper, colour: colourIndex(i) }));
}

function classifyHexagons() {
  // The classes are those of the hexagons on screen (a tile knows only its own), worked out once the tiles are
  // drawn: the busiest hexagon in view sets them, and the legend says what each colour holds.
  if (layerChoice() !== "hexagons") return;
  let top = 0;
  for (const feature of map.queryRenderedFeatures({ layers: ["hexagon-cells"] })) {
    top = Math.max(top, feature.properties.count);
  }
  if (top === state.hexagonTop) return;
  state.hexagonTop = top;
  const legend = $("#hexagon-legend-classes");
  if (!top) { // nothing on screen: no classes to explain
    const item = document.createElement("li");
    item.textContent = t.none;
    legend.replaceChildren(item);
    return;
  }
  const classes = hexagonClasses(top);
  const step = (value) => ["step", ["get", "count"], value(classes[0]),
                           ...classes.slice(1).flatMap((c) => [c.lower, value(c)])];
  map.setPaintProperty("hexagon-cells", "fill-color", step((c) => HEX_COLOURS[c.colour]));
  map.setPaintProperty("hexagon-counts", "text-color", step((c) => (c.colour >= 3 ? "#ffffff" : "#1b1f24")));
  legend.replaceChildren();
  for (const { lower, upper, colour } of classes) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = HEX_COLOURS[colour];
    item.append(swatch, lower === upper ? String(upper) : `${lower}–${upper}`);
    legend.append(item);
  }
}

async function load() {
  const seq = ++state.loadSeq;
  showLayers();
  const params = filterParams();
  params.set("bbox", viewBbox());
  document.body.setAttribute("aria-busy", "true");
  try {
    // The count first (read from the forum's pre-aggregated counts, quick at any scale); every point only
    // when there are few enough to draw, otherwise a page of the newest for the list.
    const cells = await api(`/deviations/aggregates?${params}`);
    if (seq !== state.loadSeq) return; // a newer request is on its way
    const few = cells.numberMatched <= config.pointLimit;
    const listParams = new URLSearchParams(params);
    listParams.set("limit", String(few ? config.pointLimit : LIST_PAGE));
    if (!few) listParams.set("count", "false"); // the count is the aggregates' (counting a city costs)
    const collection = await api(`/deviations?${listParams}`);
    if (seq !== state.loadSeq) return;
    listParams.delete("count");
    state.listParams = listParams;
    state.nextCursor = nextCursor(collection);
    const empty = { type: "FeatureCollection", features: [] };
    // The counts place a deviation by its hexagon, the list by its own position: at the box's edge they can
    // differ. When every point was asked for, the list decides.
    state.aggregated = !few || collection.numberMatched > collection.features.length;
    if (state.aggregated) {
      map.getSource("aggregates").setData(cells);
      state.categoryCounts = new Map(Object.entries(cells.categories));
      map.getSource("deviations").setData(empty);
      map.getSource("deviations-heat").setData(empty);
      // Each cell's count is a share of the busiest, and its warmth spreads over about a cell and a half, so
      // neighbouring cells run together into density rather than standing as discs.
      const top = Math.max(1, ...cells.features.map((f) => f.properties.count));
      const cellPixels = map.getCanvas().clientWidth / 32;
      map.setPaintProperty("heat-aggregates", "heatmap-weight", ["/", ["get", "count"], top]);
      map.setPaintProperty("heat-aggregates", "heatmap-radius", Math.max(12, cellPixels * 1.4));
      map.getSource("deviation-shapes").setData(empty);
    } else {
      // A line or area is drawn as itself, and marked at its anchor among the points.
      const drawn = collection.features.filter((f) => f.geometry.type !== "Point");
      const points = { type: "FeatureCollection", features: collection.features.map((f) => (
        f.geometry.type === "Point" ? f : { ...f, geometry: { type: "Point", coordinates: f.properties.anchor } })) };
      map.getSource("aggregates").setData(empty);
      map.getSource("deviations").setData(points);
      map.getSource("deviations-heat").setData(points);
      map.getSource("deviation-shapes").setData({ type: "FeatureCollection", features: drawn });
    }
    showHexagons(params);
    state.features = collection.features;
    state.numberMatched = few ? collection.numberMatched : cells.numberMatched;
    state.listShown = LIST_PAGE;
    renderSummary();
    renderList();
  } catch (error) {
    if (seq === state.loadSeq) $("#summary").textContent = t.loadError;
  } finally {
    if (seq === state.loadSeq) document.body.removeAttribute("aria-busy");
  }
}

function renderSummary() {
  const shown = state.features.length;
  const total = state.numberMatched;
  let text = total === 0 ? t.none : shown < total
    ? format(t.shown, { shown, total }) : format(t.shownAll, { total });
  if (state.aggregated) text += ` ${format(t.aggregated, { shown })}`;
  $("#summary").textContent = text;
  let counts = new Map();
  for (const feature of state.features) {
    const key = feature.properties.parentCategory;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  if (state.aggregated) counts = state.categoryCounts; // the list holds only the newest
  const legend = $("#legend");
  legend.replaceChildren();
  for (const category of state.categories.values()) {
    if (category.parent) continue;
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = category.color;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, `${category.name} `);
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(counts.get(category.key) || 0);
    item.append(count);
    if (!counts.get(category.key)) item.classList.add("empty");
    legend.append(item);
  }
}

function renderList() {
  const list = $("#deviation-list");
  list.replaceChildren();
  for (const feature of state.features.slice(0, state.listShown)) {
    const p = feature.properties;
    const category = state.categories.get(p.category);
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "list-item";
    button.dataset.id = p.id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = state.categories.get(p.parentCategory)?.color || "#555";
    swatch.setAttribute("aria-hidden", "true");
    const title = document.createElement("span");
    title.className = "item-title";
    title.textContent = category ? category.name : p.category;
    const meta = document.createElement("span");
    meta.className = "item-meta";
    const org = state.organisations.get(p.organisation)?.name || "";
    meta.textContent = [formatTime(p.observedAt), p.placeName, org].filter(Boolean).join(" · ");
    button.append(swatch, title, meta);
    button.addEventListener("click", () => openDetail(p.id, { fly: true }));
    item.append(button);
    list.append(item);
  }
  $("#list-more").hidden = state.features.length <= state.listShown && !state.nextCursor;
  // Filter the map down to a group of deviations, then decide one action about all of them.
  const groupLink = $("#group-action");
  if (groupLink) {
    const ids = state.features.map((f) => f.properties.id);
    groupLink.hidden = ids.length === 0 || ids.length > GROUP_LIMIT;
    groupLink.href = `${groupLink.dataset.base}?${ids.map((id) => `deviation=${id}`).join("&")}#new-action`;
  }
}
const GROUP_LIMIT = 100;
function nextCursor(collection) {
  const next = collection.links.find((link) => link.rel === "next");
  return next ? new URL(next.href).searchParams.get("cursor") : null;
}
$("#list-more").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  if (button.getAttribute("aria-disabled") === "true") return; // a page is on its way already
  state.listShown += LIST_PAGE;
  if (state.features.length < state.listShown && state.nextCursor) { // the next page of the newest
    const seq = state.loadSeq;
    const params = new URLSearchParams(state.listParams);
    params.set("limit", String(LIST_PAGE));
    params.set("cursor", state.nextCursor);
    button.setAttribute("aria-disabled", "true");
    try {
      const page = await api(`/deviations?${params}`);
      if (seq !== state.loadSeq) return;
      state.features = state.features.concat(page.features);
      state.nextCursor = nextCursor(page);
      renderSummary();
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }
  renderList();
});

// --- Panel and tabs -----------------------------------------------------------------------------------

const panel = $("#panel");
function showView(name) {
  for (const view of ["list", "filter"]) {
    const tab = $(`#tab-${view}`);
    const selected = view === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#view-${view}`).hidden = !selected;
  }
  $("#view-detail").hidden = name !== "detail";
  if (name !== "detail") {
    state.detailId = null;
    map.setFilter("selected", ["==", ["get", "id"], -1]);
    map.setFilter("selected-shape", ["==", ["get", "id"], -1]);
  }
}
for (const view of ["list", "filter"]) {
  $(`#tab-${view}`).addEventListener("click", () => showView(view));
}
$(".panel-tabs").addEventListener("keydown", (event) => {
  if (!["ArrowLeft", "ArrowRight"].includes(event.key)) return;
  const next = $("#tab-list").getAttribute("aria-selected") === "true" ? "filter" : "list";
  showView(next);
  $(`#tab-${next}`).focus();
});
$("#open-panel").addEventListener("click", () => { panel.classList.add("open"); $("#tab-list").focus(); });
$("#panel-close").addEventListener("click", () => { panel.classList.remove("open"); map.resize(); });

// --- Detail -------------------------------------------------------------------------------------------

async function openDetail(id, { fly = false } = {}) {
  let deviation;
  try {
    deviation = await api(`/deviations/${id}`);
  } catch (error) {
    announce(error.message);
    return;
  }
  state.detailId = id;
  renderDetail(deviation);
  showView("detail");
  panel.classList.add("open");
  map.setFilter("selected", ["==", ["get", "id"], id]);
  map.setFilter("selected-shape", ["==", ["get", "id"], id]);
  if (fly && deviation.shape) {
    map.fitBounds(shapeBounds(deviation.shape), { padding: 60, maxZoom: 17 });
  } else if (fly) {
    map.easeTo({ center: [deviation.lon, deviation.lat], zoom: Math.max(map.getZoom(), 15) });
  }
  $("#view-detail").focus();
}

function renderDetail(d) {
  state.detailVersion = d.version;
  const view = $("#view-detail");
  view.replaceChildren($("#detail-template").content.cloneNode(true));
  const set = (name, text) => { view.querySelector(`[data-field=${name}]`).textContent = text; };
  set("title", d.category.parent ? `${d.category.parent.name}: ${d.category.name}` : d.category.name);
  set("statusLabel", d.statusLabel);
  view.querySelector(".badge").dataset.status = d.status;
  set("severityLabel", d.severityLabel);
  set("observed", d.observedUntil ? `${formatTime(d.observedAt)} – ${formatTime(d.observedUntil)}`
    : formatTime(d.observedAt));
  const place = d.placeName || d.whereabouts || t.noPlaceName;
  set("place", d.shapeSize ? `${place} (${d.shapeSize})` : place);
  set("reportedBy", [d.organisation.name, d.reporter].filter(Boolean).join(", "));
  set("reportedAt", formatTime(d.reportedAt));
  set("visibility", d.visibility === "named"
    ? `${d.visibilityLabel}: ${d.sharedWith.map((o) => o.name).join(", ")}` : d.visibilityLabel);
  set("description", d.description || t.noDescription);
  const own = view.querySelector("[data-field=ownFields]");
  own.replaceChildren();
  for (const field of d.fields.filter((f) => f.value !== null)) {
    const term = document.createElement("dt");
    term.textContent = field.label;
    const value = document.createElement("dd");
    value.textContent = typeof field.value === "boolean" ? (field.value ? t.yes : t.no) : String(field.value);
    own.append(term, value);
  }
  own.hidden = !own.children.length;
  // Where it came from, when not reported by hand: an import (with its batch), a safety walk, a public tip.
  for (const element of view.querySelectorAll("[data-section=source]")) element.hidden = d.source === "manual";
  set("source", d.sourceLabel);
  // Links to the named places it lies in and the actions taken about it.
  for (const [section, field, items, label] of [["places", "places", d.places, (p) => p.name],
    ["actions-taken", "actions", d.actions, (a) => `${a.title} (${a.statusLabel.toLowerCase()})`]]) {
    for (const element of view.querySelectorAll(`[data-section=${section}]`)) element.hidden = items.length === 0;
    const target = view.querySelector(`[data-field=${field}]`);
    items.forEach((item, index) => {
      if (index) target.append(", ");
      const link = document.createElement("a");
      link.href = item.url;
      link.textContent = label(item);
      target.append(link);
    });
  }

  const photos = view.querySelector("[data-field=photos]");
  view.querySelector("[data-section=photos]").hidden = d.photos.length === 0;
  for (const photo of d.photos) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = photo.url;
    link.target = "_blank";
    link.rel = "noopener";
    const image = document.createElement("img");
    image.src = photo.thumbnailUrl;
    image.alt = `${d.category.name}, ${formatTime(d.observedAt)}`;
    image.loading = "lazy";
    link.append(image);
    item.append(link);
    photos.append(item);
  }

  const comments = view.querySelector("[data-field=comments]");
  if (d.comments.length === 0) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = t.noComments;
    comments.append(empty);
  }
  for (const comment of d.comments) {
    const item = document.createElement("li");
    const meta = document.createElement("p");
    meta.className = "comment-meta";
    meta.textContent = [comment.author, comment.organisation, formatTime(comment.createdAt)].filter(Boolean).join(" · ");
    const body = document.createElement("p");
    body.textContent = comment.body;
    item.append(meta, body);
    comments.append(item);
  }

  const history = view.querySelector("[data-field=history]");
  for (const event of d.history) {
    const item = document.createElement("li");
    const who = [event.actor, event.organisation].filter(Boolean).join(", ");
    const fields = ["update", "visibility"].includes(event.action)
      ? Object.keys(event.changes || {}).map((name) => t.fields[name] || name) : [];
    item.textContent = `${formatTime(event.at)}: ${event.actionLabel}${who ? ` (${who})` : ""}${
      fields.length ? `: ${fields.join(", ")}` : ""}`;
    history.append(item);
  }

  view.querySelector("[data-action=back]").addEventListener("click", () => {
    showView("list");
    $(`.list-item[data-id="${d.id}"]`)?.focus();
  });
  const actions = view.querySelector("[data-section=actions]");
  const statusField = view.querySelector("[data-section=status]");
  statusField.hidden = !d.permissions.changeStatus;
  view.querySelector("[data-action=edit]").hidden = !d.permissions.edit;
  view.querySelector("[data-action=withdraw]").hidden = !d.permissions.edit;
  actions.hidden = !d.permissions.edit && !d.permissions.changeStatus;
  // Links to decide an action about this deviation, or to raise it at the next meeting.
  const actionLink = view.querySelector("[data-link=action]");
  if (actionLink) actionLink.href = `${actionLink.dataset.base}?deviation=${d.id}#new-action`;
  const flagLink = view.querySelector("[data-link=flag]");
  if (flagLink) flagLink.href = `${flagLink.dataset.base}?deviation=${d.id}#flag`;
  const statusSelect = view.querySelector("#d-status");
  statusSelect.value = d.status;
  statusSelect.addEventListener("change", async () => {
    try {
      const updated = await api(`/deviations/${d.id}`, {
        method: "PATCH", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ version: d.version, status: statusSelect.value }),
      });
      renderDetail(updated);
      announce(t.statusChanged);
      load();
    } catch (error) {
      statusSelect.value = d.status;
      announce(error.message);
    }
  });
  view.querySelector("[data-action=edit]").addEventListener("click", () => openReportForm(d));
  view.querySelector("[data-action=withdraw]").addEventListener("click", async () => {
    if (!window.confirm(t.confirmWithdraw)) return;
    try {
      await api(`/deviations/${d.id}`, { method: "DELETE" });
      showView("list");
      announce(t.withdrawn);
      load();
    } catch (error) {
      announce(error.message);
    }
  });
  renderPolice(view, d);
  renderHandOff(view, d);
  const commentForm = view.querySelector("[data-section=comment]");
  commentForm.hidden = !d.permissions.comment;
  const commentConfirmation = { key: null };
  commentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errorElement = view.querySelector("#d-comment-error");
    const textarea = commentForm.body;
    try {
      const warnings = view.querySelector("#d-comment-warnings");
      if (!(await confirmedPersonalData({ body: textarea.value }, warnings, commentConfirmation))) {
        textarea.setAttribute("aria-describedby", "d-comment-warnings");
        textarea.focus();
        return;
      }
      await api(`/deviations/${d.id}/comments`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ body: textarea.value }),
      });
      renderDetail(await api(`/deviations/${d.id}`));
      view.querySelector("#d-comment").focus();
    } catch (error) {
      errorElement.textContent = error.message;
      errorElement.hidden = false;
      textarea.setAttribute("aria-invalid", "true");
      textarea.setAttribute("aria-describedby", "d-comment-error");
      textarea.focus();
    }
  });
}

// A translated text with its %(name)s placeholders filled in.
function fill(text, values) {
  return text.replace(/%\((\w+)\)s/g, (_m, name) => values[name] ?? "");
}

// "To report to the police": the mark (who and when) and, once made, the report's reference.
function renderPolice(view, d) {
  const police = d.police;
  let state = t.policeNone;
  if (police.reportReference) {
    state = fill(t.policeReported, { reference: police.reportReference, when: formatTime(police.reportedAt) });
  } else if (police.flaggedAt) {
    state = fill(t.policeFlagged, { organisation: police.flaggedBy || "", when: formatTime(police.flaggedAt) });
  }
  view.querySelector("[data-field=policeState]").textContent = state;
  const flag = view.querySelector("[data-action=police-flag]");
  const unflag = view.querySelector("[data-action=police-unflag]");
  const form = view.querySelector("[data-section=police-report]");
  flag.hidden = !d.permissions.flagForPolice || Boolean(police.flaggedAt);
  unflag.hidden = !d.permissions.flagForPolice || !police.flaggedAt || Boolean(police.reportReference);
  form.hidden = !d.permissions.recordPoliceReport || Boolean(police.reportReference);
  const send = async (body) => {
    const updated = await api(`/deviations/${d.id}/police`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    renderDetail(updated);
    announce(t.policeSaved);
    view.querySelector("#d-police-heading").focus();
  };
  for (const [button, flagged] of [[flag, true], [unflag, false]]) {
    button.addEventListener("click", async () => {
      try { await send({ flagged }); } catch (error) { announce(error.message); }
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.reportReference;
    const errorElement = view.querySelector("#d-police-error");
    try {
      await send({ reportReference: input.value });
    } catch (error) {
      errorElement.textContent = error.message;
      errorElement.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "d-police-help d-police-error");
      input.focus();
    }
  });
}

// A physical defect passed to its owner's fault-report system: its id and status there, or the systems it may
// be sent to.
function renderHandOff(view, d) {
  const section = view.querySelector("[data-section=hand-off]");
  const passed = d.handOff;
  section.hidden = !passed && d.faultSystems.length === 0;
  const state = view.querySelector("[data-field=handOffState]");
  state.textContent = passed ? [
    fill(t.handOffState, { system: passed.system, when: formatTime(passed.handedOffAt),
                           id: passed.externalId || "–", status: passed.statusLabel }),
    passed.statusNotes ? fill(t.handOffNotes, { notes: passed.statusNotes }) : "",
    passed.checkedAt ? fill(t.handOffChecked, { when: formatTime(passed.checkedAt) }) : "",
  ].filter(Boolean).join(" ") : "";
  const buttons = view.querySelector("[data-field=faultSystems]");
  buttons.replaceChildren();
  for (const system of d.faultSystems) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = fill(t.handOffSend, { system: system.name });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const updated = await api(`/deviations/${d.id}/hand-off`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ system: system.id }),
        });
        renderDetail(updated);
        announce(t.handOffSent);
        view.querySelector("#d-hand-off-heading").focus();
      } catch (error) {
        button.disabled = false;
        announce(error.message);
      }
    });
    buttons.append(button);
  }
}

// Confirmations and errors outside the form, in their own live region so the next list refresh
// does not wipe them before anyone has read them.
let noticeTimer = null;
function announce(message) {
  const notice = $("#notice");
  notice.textContent = message;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 8000);
}
// A message the page came with ("You have signed in as ...") leaves the map the same way.
if (!$("#notice").hidden) noticeTimer = setTimeout(() => { $("#notice").hidden = true; }, 8000);

// --- Reporting ----------------------------------------------------------------------------------------

const dialog = $("#report-dialog");
const reportForm = $("#report-form");
let pickMarker = null;

function localInputValue(date) {
  // datetime-local wants the forum's wall-clock time without an offset; the server reads it so.
  const parts = new Intl.DateTimeFormat("sv-SE", {
    timeZone: config.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(date);
  return parts.replace(" ", "T");
}

function startPicking() {
  state.picking = true;
  state.editing = null;
  state.corners = [];
  $("#pick-banner").hidden = false;
  $("#crosshair").hidden = false;
  map.getCanvas().style.cursor = "crosshair";
  panel.classList.remove("open");
  showPickKind();
  $(drawKind() === "point" ? "#pick-centre" : "#draw-add").focus();
}

function stopPicking() {
  state.picking = false;
  $("#pick-banner").hidden = true;
  $("#crosshair").hidden = true;
  map.getCanvas().style.cursor = "";
  map.doubleClickZoom.enable();
}

// --- Drawing a line or an area ---------------------------------------------------------------------------
// A line (a dark footpath) or an area (an overgrown slope) is drawn corner by corner: by clicking the map, or
// with the cross and "Add a corner" from the keyboard. The server works out where it is marked (its anchor).

function drawKind() {
  return $("input[name=pick-kind]:checked")?.value || "point";
}

function drawnShape(corners, kind) {
  if (kind === "line") return { type: "LineString", coordinates: corners };
  return { type: "Polygon", coordinates: [[...corners, corners[0]]] };
}

function showDrawing() {
  const corners = state.corners || [];
  const kind = drawKind();
  const features = corners.map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: c }, properties: {} }));
  if (corners.length >= 2) {
    const geometry = kind === "area" && corners.length >= 3 ? drawnShape(corners, "area")
      : { type: "LineString", coordinates: corners };
    features.push({ type: "Feature", geometry, properties: {} });
  }
  map.getSource("drawing")?.setData({ type: "FeatureCollection", features });
  const needed = kind === "line" ? 2 : 3;
  $("#draw-done").disabled = corners.length < needed;
  $("#draw-undo").disabled = corners.length === 0;
  // The instructions until the first corner, then how many there are (a phone has little map to spare).
  const help = $("#pick-help");
  help.hidden = kind !== "point" && corners.length > 0;
  $("#draw-status").textContent = kind === "point" || !state.picking || corners.length === 0 ? ""
    : format(kind === "line" ? t.cornersLine : t.cornersArea, { count: corners.length });
}

function showPickKind() {
  const drawing = drawKind() !== "point";
  for (const id of ["#pick-centre", "#pick-gps"]) $(id).hidden = drawing;
  for (const id of ["#draw-add", "#draw-undo", "#draw-done"]) $(id).hidden = !drawing;
  const help = $("#pick-help");
  help.textContent = drawing ? help.dataset.draw : help.dataset.point;
  // A double click adds two corners rather than zooming in.
  map.doubleClickZoom[drawing ? "disable" : "enable"]();
  showDrawing();
}

function addCorner(lngLat) {
  const corner = [Number(lngLat.lng.toFixed(7)), Number(lngLat.lat.toFixed(7))];
  const last = state.corners[state.corners.length - 1];
  // A double click, or the cross used twice without moving, is one corner.
  if (last && last[0] === corner[0] && last[1] === corner[1]) return;
  state.corners.push(corner);
  showDrawing();
}

for (const radio of document.querySelectorAll("input[name=pick-kind]")) {
  radio.addEventListener("change", showPickKind);
}
$("#draw-add")?.addEventListener("click", () => addCorner(map.getCenter()));
$("#draw-undo")?.addEventListener("click", () => { state.corners.pop(); showDrawing(); });
$("#draw-done")?.addEventListener("click", () => {
  const kind = drawKind();
  const corners = state.corners;
  stopPicking();
  openOrReturnToForm();
  setShape(drawnShape(corners, kind), corners.length);
  state.drawn = { kind, corners };
});

// "Draw it again" from the form: the form keeps what was typed while the line or area is drawn anew.
function openOrReturnToForm() {
  if (!state.redrawing) {
    openReportForm();
    return;
  }
  state.redrawing = false;
  reportForm.shape.value = "";
  $("#report-redraw-row").hidden = true;
  clearErrors();  // what was refused was the old line or area
  dialog.showModal();
}

$("#report-redraw")?.addEventListener("click", () => {
  const drawn = state.drawn;
  state.redrawing = true;
  dialog.close();
  startPicking();
  document.querySelector(`input[name=pick-kind][value=${drawn.kind}]`).checked = true;
  state.corners = [...drawn.corners];
  showPickKind();
});

function setShape(shape, corners) {
  const points = shape.type === "LineString" ? shape.coordinates : shape.coordinates[0].slice(0, -1);
  reportForm.shape.value = JSON.stringify(shape);
  // The server puts it at its anchor; until then the form holds the corners' middle.
  reportForm.lon.value = (points.reduce((sum, p) => sum + p[0], 0) / points.length).toFixed(6);
  reportForm.lat.value = (points.reduce((sum, p) => sum + p[1], 0) / points.length).toFixed(6);
  $("#report-position").textContent = format(shape.type === "LineString" ? t.lineChosen : t.areaChosen,
                                             { count: corners });
  pickMarker?.remove();
  map.getSource("drawing")?.setData({ type: "FeatureCollection",
                                      features: [{ type: "Feature", geometry: shape, properties: {} }] });
  $("#report-redraw-row").hidden = false;
}

function shapeBounds(shape) {
  const points = shape.type === "LineString" ? shape.coordinates : shape.coordinates.flat();
  return points.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(points[0], points[0]));
}

function setPosition(lon, lat) {
  reportForm.lon.value = lon.toFixed(6);
  reportForm.lat.value = lat.toFixed(6);
  $("#report-position").textContent = format(t.positionChosen, { lat: lat.toFixed(5), lon: lon.toFixed(5) });
  if (!pickMarker) pickMarker = new maplibregl.Marker({ color: "#111111" });
  pickMarker.setLngLat([lon, lat]).addTo(map);
}

function clearErrors() {
  const summary = $("#report-errors");
  summary.hidden = true;
  summary.replaceChildren();
  for (const element of reportForm.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
    element.removeAttribute("aria-describedby");
  }
  for (const element of reportForm.querySelectorAll(".field-error")) element.remove();
}

function showError(message, field, partlySaved = false) {
  const summary = $("#report-errors");
  summary.replaceChildren();
  const detail = document.createElement("p");
  detail.textContent = message;
  if (!partlySaved) {
    const intro = document.createElement("p");
    intro.textContent = t.fixErrors;
    summary.append(intro);
  }
  summary.append(detail);
  summary.hidden = false;
  const name = { lon: "category", lat: "category", shared_with: "shared_with" }[field] || field;
  const input = name ? reportForm.querySelector(`[name="${name}"]:not([type=hidden])`) : null;
  if (input) {
    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `error-${name}`;
    error.textContent = message;
    const container = input.closest(".field, fieldset") || input.parentElement;
    container.append(error);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", error.id);
    input.focus();
  } else {
    summary.tabIndex = -1;
    summary.focus();
  }
}

// The forum's own fields of the chosen category (and its main category), with `values` filled in.
function renderOwnFields(values = {}) {
  const box = $("#r-own-fields");
  box.replaceChildren();
  for (const definition of state.categories.get(reportForm.category.value)?.fields || []) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const id = `r-field-${definition.key}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = definition.label;
    if (definition.required) {
      const required = document.createElement("span");
      required.className = "required";
      required.textContent = ` (${t.required})`;
      label.append(required);
    }
    let input;
    if (definition.kind === "yes_no" || definition.kind === "choice") {
      input = document.createElement("select");
      const options = definition.kind === "yes_no" ? [["ja", t.yes], ["nej", t.no]]
        : definition.choices.map((choice) => [choice, choice]);
      for (const [value, text] of [["", t.notGiven], ...options]) input.append(new Option(text, value));
    } else {
      input = document.createElement("input");
      input.type = "text";
      if (definition.kind === "number") input.inputMode = "decimal"; else input.maxLength = 200;
    }
    input.id = id;
    input.name = `fields.${definition.key}`;
    input.required = definition.required;
    const value = values[definition.key];
    if (value !== undefined && value !== null) {
      input.value = typeof value === "boolean" ? (value ? "ja" : "nej") : String(value);
    }
    wrap.append(label, input);
    box.append(wrap);
  }
}

function ownFieldValues() {
  const values = {};
  for (const input of $("#r-own-fields").querySelectorAll("[name^='fields.']")) {
    if (input.value.trim() !== "") values[input.name.slice("fields.".length)] = input.value;
  }
  return values;
}
reportForm?.category.addEventListener("change", () => renderOwnFields(ownFieldValues()));

function openReportForm(existing = null) {
  state.editing = existing;
  clearErrors();
  reportConfirmation.key = null;
  $("#report-warnings").hidden = true;
  $("#report-submit").textContent = $("#report-submit").dataset.save;
  reportForm.reset();
  reportForm.shape.value = "";  // a hidden field keeps its value through reset()
  $("#report-redraw-row").hidden = true;
  const title = $("#report-title");
  title.textContent = existing ? title.dataset.edit : title.dataset.new;
  const now = localInputValue(new Date());
  reportForm.observed_at.max = now;
  reportForm.observed_until.max = now;
  $("#r-photos-field").hidden = false;
  if (existing) {
    reportForm.category.value = existing.category.key;
    reportForm.observed_at.value = localInputValue(new Date(existing.observedAt));
    reportForm.observed_until.value = existing.observedUntil ? localInputValue(new Date(existing.observedUntil)) : "";
    reportForm.place_name.value = existing.placeName;
    reportForm.description.value = existing.description;
    reportForm.querySelector(`input[name=severity][value=${existing.severity}]`).checked = true;
    reportForm.querySelector(`input[name=visibility][value=${existing.visibility}]`).checked = true;
    const shared = new Set(existing.sharedWith.map((o) => String(o.id)));
    for (const box of reportForm.querySelectorAll("input[name=shared_with]")) box.checked = shared.has(box.value);
    if (existing.shape) {
      $("#report-position").textContent = existing.shapeSize;
      map.getSource("drawing")?.setData({ type: "FeatureCollection",
                                          features: [{ type: "Feature", geometry: existing.shape, properties: {} }] });
      reportForm.lon.value = String(existing.lon);
      reportForm.lat.value = String(existing.lat);
    } else {
      setPosition(existing.lon, existing.lat);
    }
  } else {
    reportForm.observed_at.value = now;
  }
  renderOwnFields(existing ? Object.fromEntries(existing.fields.map((f) => [f.key, f.value])) : {});
  $("#r-shared").hidden = reportForm.visibility.value !== "named";
  dialog.showModal();
  reportForm.category.focus();
}

function closeReportForm() {
  state.captureKey = null;  // the next report is another capture
  dialog.close();
  pickMarker?.remove();
  map.getSource("drawing")?.setData({ type: "FeatureCollection", features: [] });
  state.editing = null;
}

reportForm.addEventListener("change", (event) => {
  if (event.target.name === "visibility") $("#r-shared").hidden = event.target.value !== "named";
});

// Only what the person changed: the form's minute-precision times must not rewrite the stored seconds.
function changedFields(original) {
  const before = {
    category: original.category.key,
    observed_at: localInputValue(new Date(original.observedAt)),
    observed_until: original.observedUntil ? localInputValue(new Date(original.observedUntil)) : "",
    place_name: original.placeName,
    description: original.description,
    severity: original.severity,
    visibility: original.visibility,
    shared_with: original.sharedWith.map((o) => o.id).sort().join(","),
    fields: JSON.stringify(Object.fromEntries(original.fields.filter((f) => f.value !== null)
      .map((f) => [f.key, typeof f.value === "boolean" ? (f.value ? "ja" : "nej") : String(f.value)]))),
  };
  const now = {
    category: reportForm.category.value,
    observed_at: reportForm.observed_at.value,
    observed_until: reportForm.observed_until.value,
    place_name: reportForm.place_name.value,
    description: reportForm.description.value,
    severity: reportForm.severity.value,
    visibility: reportForm.visibility.value,
    shared_with: [...reportForm.querySelectorAll("input[name=shared_with]:checked")].map((b) => Number(b.value))
      .sort().join(","),
    fields: JSON.stringify(ownFieldValues()),
  };
  const body = { version: original.version };
  for (const [name, value] of Object.entries(now)) {
    if (value === before[name]) continue;
    if (name === "shared_with") body.shared_with = value ? value.split(",").map(Number) : [];
    else if (name === "fields") body.fields = JSON.parse(value);
    else if (name === "observed_until") body.observed_until = value || null;
    else body[name] = value;
  }
  return body;
}

// --- Personal data --------------------------------------------------------------------------------------
// Before saving, the server says whether the text looks like it holds personal data. The person sees why,
// and saves again to keep the text as it is (unless the forum refuses such text altogether).

async function personalDataCheck(fields) {
  return api("/personal-data-check", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ fields }),
  });
}

function renderWarnings(container, check) {
  container.replaceChildren();
  const list = document.createElement("ul");
  for (const warning of check.warnings) {
    const item = document.createElement("li");
    item.textContent = warning.message;
    list.append(item);
  }
  const advice = document.createElement("p");
  advice.textContent = check.blocking ? t.privacyBlocked : t.privacyConfirm;
  container.append(list, advice);
  container.hidden = false;
}

// Returns true when saving may go on: nothing found, or the same text was already shown and confirmed.
async function confirmedPersonalData(fields, container, confirmation) {
  const key = JSON.stringify(fields);
  if (confirmation.key === key) return true;
  const check = await personalDataCheck(fields);
  if (check.warnings.length === 0) return true;
  renderWarnings(container, check);
  confirmation.key = check.blocking ? null : key;
  return false;
}

const reportConfirmation = { key: null };

reportForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  if (!reportForm.lon.value) { showError(t.positionMissing, null); return; }
  const submit = $("#report-submit");
  submit.disabled = true;
  try {
    const warnings = $("#report-warnings");
    const texts = { place_name: reportForm.place_name.value, description: reportForm.description.value };
    // Without a network a new report waits on the phone; the server checks its text when it arrives.
    let offline = !state.editing && !navigator.onLine;
    try {
      if (!offline && !(await confirmedPersonalData(texts, warnings, reportConfirmation))) {
        submit.textContent = submit.dataset.anyway;
        warnings.tabIndex = -1;
        warnings.focus();
        return;
      }
    } catch (error) {
      if (error.status || state.editing) throw error;
      offline = true;
    }
    let deviation;
    if (state.editing) {
      const body = changedFields(state.editing);
      deviation = await api(`/deviations/${state.editing.id}`, {
        method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (reportForm.photos.files.length) {
        const photos = new FormData();
        for (const file of reportForm.photos.files) photos.append("photos", file);
        try {
          await api(`/deviations/${deviation.id}/photos`, { method: "POST", body: photos });
        } catch (error) {
          // The changes are saved; only the photos are not. Say exactly that, and stay on the new version.
          state.editing = deviation;
          load();
          showError(`${t.changesSavedPhotosNot} ${error.message}`, error.field, true);
          return;
        }
      }
    } else {
      // The key makes sending it again safe: after a lost answer the server gives the deviation it made. It is
      // the form's, so that pressing Spara again after an error is the same report, not a second one.
      state.captureKey ||= queue.newKey();
      const key = state.captureKey;
      const form = new FormData(reportForm);
      // The forum's own fields travel as one JSON object.
      for (const name of [...form.keys()]) if (name.startsWith("fields.")) form.delete(name);
      const own = ownFieldValues();
      if (Object.keys(own).length) form.set("fields", JSON.stringify(own));
      const round = activeRound();
      if (round) form.set("round", round.key);
      const counted = () => { if (round) { round.count += 1; saveRounds(); showRound(); } };
      try {
        // A round started without network is started on the server first; until then the report waits too.
        if (offline || (round && !(await syncRounds()))) throw new Error("offline");
        deviation = await api("/deviations", { method: "POST", body: form, headers: { "Idempotency-Key": key } });
        // A 2xx without our answer (a captive portal's page, a proxy): nothing is known to be saved.
        if (!deviation?.id) throw new Error("no answer");
      } catch (error) {
        if (error.status) throw error;
        counted();
        await keepOnPhone(form, key);
        return;
      }
      counted();
    }
    live.mine.add(deviation.id);
    closeReportForm();
    announce(t.saved);
    await load();
    openDetail(deviation.id);
  } catch (error) {
    showError(error.status ? error.message : t.networkError, error.field);
  } finally {
    submit.disabled = false;
  }
});
$("#report-cancel")?.addEventListener("click", closeReportForm);

// --- Reports waiting on the phone -----------------------------------------------------------------------

async function keepOnPhone(form, key) {
  const fields = [];
  const photos = [];
  for (const [name, value] of form.entries()) {
    if (name === "photos") {
      if (value.size) photos.push(await queue.resized(value));
    } else if (name !== "csrfmiddlewaretoken") {
      fields.push([name, value]);
    }
  }
  await queue.put({
    key, forum: config.forum, user: config.user, fields, photos, created: Date.now(), state: "waiting", reason: "",
    id: null,
    label: reportForm.category.selectedOptions[0]?.textContent.trim() || "",
  });
  // Ask the browser not to clear the device's storage when space runs low (Safari does after a week unused).
  navigator.storage?.persist?.().catch(() => {});
  closeReportForm();
  announce(t.captureKept);
  await showQueue();
}

async function showQueue() {
  const section = $("#capture-queue");
  const day = 864e5;
  let captures = await queue.captures(config.forum, config.user);
  // Sent ones stay listed for a day after they went, then leave the device.
  const gone = (c) => c.state === "sent" && Date.now() - (c.sentAt || c.created) > day;
  for (const capture of captures) {
    if (gone(capture)) await queue.remove(capture.key);
  }
  captures = captures.filter((c) => !gone(c));
  section.hidden = captures.length === 0;
  const counts = { waiting: 0, sent: 0, refused: 0 };
  const list = $("#capture-list");
  list.replaceChildren();
  for (const capture of captures) {
    counts[capture.state] += 1;
    const item = document.createElement("li");
    item.className = `capture capture-${capture.state}`;
    const what = document.createElement("span");
    what.textContent = `${capture.label} · ${formatTime(new Date(capture.created).toISOString())} · `;
    const status = document.createElement("strong");
    status.textContent = capture.state === "refused" ? format(t.captureRefused, { reason: capture.reason })
      : t[`capture_${capture.state}`];
    item.append(what, status);
    if (capture.state === "sent" && capture.id) {
      const show = document.createElement("button");
      show.type = "button";
      show.className = "link-button";
      show.textContent = t.captureShow;
      show.addEventListener("click", () => openDetail(capture.id, { fly: true }));
      item.append(" ", show);
    }
    if (capture.state !== "sent") {
      const drop = document.createElement("button");
      drop.type = "button";
      drop.className = "link-button";
      drop.textContent = t.captureRemove;
      drop.setAttribute("aria-label", `${t.captureRemove}: ${capture.label}`);
      drop.addEventListener("click", async () => {
        // A report not yet sent exists nowhere else: removing it is asked once more.
        if (capture.state === "waiting" && !window.confirm(t.captureDiscard)) return;
        await queue.remove(capture.key);
        await showQueue();
      });
      item.append(" ", drop);
    }
    list.append(item);
  }
  $("#capture-summary").textContent = format(t.captureSummary, counts);
  $("#capture-send").hidden = counts.waiting === 0;
  $("#capture-clear").hidden = counts.sent === 0;
}

// Sends what waits, oldest first, each with its key; stops at the first that still cannot get through.
// Returns false when the network still failed.
let sending = false;
let signInNeeded = false;
// --- Rounds ---------------------------------------------------------------------------------------------
// A round is started and ended on the device, under a key it makes, and sent to the server when the network
// allows (PUT is idempotent); reports made on it carry its key and are sent only after it.

const ROUNDS = `lagesbild-rounds:${config.forum}:${config.user}`;
let rounds = JSON.parse(localStorage.getItem(ROUNDS) || "[]");

function saveRounds() { localStorage.setItem(ROUNDS, JSON.stringify(rounds)); }
function activeRound() { return rounds.find((round) => !round.endedAt) || null; }

function showRound() {
  const section = $("#round");
  if (!section) return;
  const round = activeRound();
  $("#round-start").hidden = Boolean(round);
  $("#round-active").hidden = !round;
  if (round) {
    $("#round-state").textContent = format(t.roundActive, {
      name: round.name, started: formatTime(round.startedAt), count: round.count,
    });
  }
}

// Everything started or ended but not yet on the server: true when all of it is there. One at a time, so that
// the answer to a start still on its way cannot pass for the end pressed meanwhile.
let roundsSynced = Promise.resolve(true);
function syncRounds() {
  roundsSynced = roundsSynced.then(sendRounds, sendRounds);
  return roundsSynced;
}

async function sendRounds() {
  for (const round of rounds.filter((r) => !r.synced)) {
    const sent = { name: round.name, startedAt: round.startedAt, endedAt: round.endedAt };
    try {
      await api(`/rounds/${round.key}`, {
        method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(sent),
      });
    } catch (error) {
      // No network, signed out, a busy or failing server: the same again later, as waiting reports are.
      if (!error.status || [401, 408, 429].includes(error.status) || error.status >= 500 || error.code === "csrf") {
        return false;
      }
      announce(error.message); // refused for good (say why): the reports made on it are refused in turn
    }
    if (round.endedAt === sent.endedAt) round.synced = true; // ended meanwhile: the end is still to send
  }
  rounds = rounds.filter((round) => !(round.synced && round.endedAt));
  saveRounds();
  return rounds.every((round) => round.synced);
}

$("#round-start")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = event.currentTarget.name.value.trim() || format(t.roundDefaultName, { when: formatTime(new Date()) });
  rounds.push({ key: queue.newKey(), name, startedAt: new Date().toISOString(), endedAt: null, synced: false,
                count: 0 });
  saveRounds();
  event.currentTarget.reset();
  showRound();
  announce(format(t.roundStarted, { name }));
  syncRounds();
});
$("#round-end")?.addEventListener("click", () => {
  const round = activeRound();
  if (!round) return;
  round.endedAt = new Date().toISOString();
  round.synced = false;
  saveRounds();
  showRound();
  announce(format(t.roundEnded, { name: round.name, count: round.count }));
  $("#round-name").focus();
  syncRounds();
});
showRound();

// --- The basemap without network -------------------------------------------------------------------------
// Where the operator allows it (docs/deployment.md), the member keeps the raster tiles of the forum's area on
// the device: the service worker fetches them and serves them when the network cannot.

const MAX_KEPT_TILES = 4000;
const MIN_KEPT_ZOOM = 10;
const TILES = "lagesbild-tiles"; // the service worker serves them from here, and forgets them on sign-out

// The tiles of the area (and one more all round, as the screen reaches past it), from zoom 10 down to `maxZoom`,
// stopping at the zoom that would pass MAX_KEPT_TILES.
function tileUrls(bounds, maxZoom) {
  const [west, south, east, north] = bounds;
  const clamp = (n, z) => Math.min(2 ** z - 1, Math.max(0, n));
  const column = (lon, z) => Math.floor(((lon + 180) / 360) * 2 ** z);
  const row = (lat, z) => {
    const rad = (lat * Math.PI) / 180;
    return Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * 2 ** z);
  };
  const urls = [];
  let deepest = null;
  for (let z = MIN_KEPT_ZOOM; z <= maxZoom; z += 1) {
    const level = [];
    for (let x = clamp(column(west, z) - 1, z); x <= clamp(column(east, z) + 1, z); x += 1) {
      for (let y = clamp(row(north, z) - 1, z); y <= clamp(row(south, z) + 1, z); y += 1) {
        level.push(config.basemap.tiles.replace("{s}", "a").replaceAll("{z}", z).replaceAll("{x}", x)
          .replaceAll("{y}", y));
      }
    }
    if (urls.length + level.length > MAX_KEPT_TILES) break; // a large area: not quite as close
    urls.push(...level);
    deepest = z;
  }
  return { urls, deepest };
}

// The page fetches and keeps the tiles itself (a service worker may be stopped in the middle of a long job),
// four at a time; one area is kept at a time.
async function keepMapArea(status) {
  if (!state.forum?.bounds) { status.textContent = t.offlineMapNoArea; return; }
  const { urls, deepest } = tileUrls(state.forum.bounds, config.basemap.offlineZoom);
  if (!urls.length) { status.textContent = t.offlineMapTooLarge; return; }
  await caches.delete(TILES);
  const cache = await caches.open(TILES);
  let done = 0;
  let failed = 0;
  const waiting = [...urls];
  const worker = async () => {
    while (waiting.length) {
      const url = waiting.shift();
      try {
        const response = await fetch(url, { mode: "cors", credentials: "omit" });
        if (!response.ok) throw new Error(String(response.status));
        await cache.put(url, response);
      } catch (error) {
        failed += 1;
      }
      done += 1;
      if (done % 20 === 0) status.textContent = format(t.offlineMapKeeping, { done, total: urls.length });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  status.textContent = failed
    ? format(t.offlineMapPartly, { kept: done - failed, failed })
    : format(t.offlineMapKept, { kept: done, zoom: deepest });
}

if ($("#offline-map") && "serviceWorker" in navigator && "caches" in window) {
  $("#offline-map").hidden = false;
  // Say so when the map is kept already (from an earlier visit), rather than offering it as new.
  caches.has(TILES).then(async (has) => {
    if (!has) return;
    const count = (await (await caches.open(TILES)).keys()).length;
    const status = $("#offline-map-status");
    if (count && !status.textContent) status.textContent = format(t.offlineMapAlready, { kept: count });
  });
  const button = $("#offline-map-keep");
  button.addEventListener("click", async () => {
    button.disabled = true;
    const status = $("#offline-map-status");
    status.textContent = format(t.offlineMapKeeping, { done: 0, total: "…" });
    try {
      await keepMapArea(status);
    } finally {
      button.disabled = false;
    }
  });
}

async function sendWaiting() {
  if (sending || !navigator.onLine) return true;
  // The rounds the waiting reports were made on go first: a report on a round the server has not heard of
  // would be refused.
  if (!(await syncRounds())) return false;
  sending = true;
  let sent = 0;
  let through = true;
  try {
    for (const capture of await queue.captures(config.forum, config.user)) {
      if (capture.state !== "waiting") continue;
      try {
        const deviation = await api("/deviations", {
          method: "POST", body: queue.formOf(capture), headers: { "Idempotency-Key": capture.key },
        });
        if (!deviation?.id) { through = false; break; }  // not our server's answer (a captive portal)
        live.mine.add(deviation.id);
        Object.assign(capture, { state: "sent", id: deviation.id, reason: "", sentAt: Date.now() });
        sent += 1;
      } catch (error) {
        // Signed out, or the session's form key is stale after a long time away: the report waits for a
        // new sign-in rather than being refused. (A 403 for the member's role is a refusal, below.)
        if (error.status === 401 || error.code === "csrf") {
          announce(t.captureSignIn);
          signInNeeded = true; // no more uploads of photos every 15 s that cannot succeed, until a reload
          through = false;
          break;
        }
        if (!error.status || error.status >= 500 || error.status === 408 || error.status === 429) {
          through = false;
          break;
        }
        Object.assign(capture, { state: "refused", reason: error.message });
      }
      await queue.put(capture);
    }
  } finally {
    sending = false;
  }
  await showQueue();
  if (sent) {
    announce(format(t.capturesSent, { count: sent }));
    await load();
  }
  return through;
}
// "Online" often comes a moment before the network carries anything: if the first try fails, a few more.
window.addEventListener("online", async () => {
  for (const wait of [0, 2000, 5000, 15000]) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (await sendWaiting()) return;
  }
});
// Not every return of the network says so ("online" is not fired for a page that opened without one, and a
// weak network can look online while every request fails): while reports wait, try every 15 seconds as well.
setInterval(() => {
  if ((!$("#capture-send").hidden || rounds.some((round) => !round.synced)) && !signInNeeded) sendWaiting();
}, 15_000);
$("#capture-send").addEventListener("click", sendWaiting);
$("#capture-clear").addEventListener("click", async () => {
  for (const capture of await queue.captures(config.forum, config.user)) {
    if (capture.state === "sent") await queue.remove(capture.key);
  }
  await showQueue();
});
dialog?.addEventListener("close", () => {
  pickMarker?.remove();
  // The close event comes after "Draw it again" has put the corners back on the map: they stay.
  if (!state.picking) map.getSource("drawing")?.setData({ type: "FeatureCollection", features: [] });
});

$("#report-button")?.addEventListener("click", startPicking);
$("#pick-cancel").addEventListener("click", () => {
  stopPicking();
  state.corners = [];
  showDrawing();
  if (state.redrawing) {  // back to the form, with the line or area drawn before
    const { kind, corners } = state.drawn;
    openOrReturnToForm();
    setShape(drawnShape(corners, kind), corners.length);
    return;
  }
  $("#report-button")?.focus();
});
$("#pick-centre").addEventListener("click", () => {
  const centre = map.getCenter();
  stopPicking();
  openOrReturnToForm();
  setPosition(centre.lng, centre.lat);
});
$("#pick-gps").addEventListener("click", () => {
  navigator.geolocation.getCurrentPosition(
    (position) => {
      stopPicking();
      map.easeTo({ center: [position.coords.longitude, position.coords.latitude], zoom: 16 });
      openOrReturnToForm();
      setPosition(position.coords.longitude, position.coords.latitude);
    },
    () => announce(t.gpsError),
    { enableHighAccuracy: true, timeout: 15000 },
  );
});
// Export: the filter (and, if asked, the view) as a file. The browser downloads it straight from the API, so a
// large export streams to disk; an XLSX too large for Excel is refused here first, with the reason.
$("#export-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#export-error");
  error.hidden = true;
  const params = filterParams();
  if (form.in_view.checked) params.set("bbox", viewBbox());
  params.set("format", form.format.value);
  params.set("crs", form.crs.value);
  // The same filter is asked of the list first (one row): a filter the server refuses, a session that ended or
  // an XLSX too large for Excel is then said here, instead of the page being replaced by the error.
  const counted = new URLSearchParams(params);
  counted.delete("format");
  counted.delete("crs");
  counted.set("limit", "1");
  let matched;
  try {
    matched = (await api(`/deviations?${counted}`)).numberMatched;
  } catch (failure) {
    error.textContent = failure.message || t.loadError;
    error.hidden = false;
    return;
  }
  if (form.format.value === "xlsx" && matched > config.xlsxMaxRows) {
    error.textContent = format(t.exportTooLarge, { count: matched, max: config.xlsxMaxRows });
    error.hidden = false;
    return;
  }
  window.location.assign(`${config.api}/export?${params}`);
});

setUpSearch({ map, api, t, format, canReport: config.canReport, isPicking: () => state.picking, startPicking });

map.on("click", (event) => {
  if (!state.picking) return;
  if (drawKind() !== "point") {
    addCorner(event.lngLat);
    return;
  }
  stopPicking();
  openOrReturnToForm();
  setPosition(event.lngLat.lng, event.lngLat.lat);
});

// --- The live picture -----------------------------------------------------------------------------------
// New and changed deviations reach the open map as server-sent events, only those the member may see, and the
// map loads its view again. A tab that is hidden closes its stream (the server keeps no connection for it)
// and, shown again, resumes after the last event it had, so nothing is missed.

// `last`: the id of the last event this page was given; none until the first (the stream then starts now).
const live = { source: null, last: null, reload: null, retry: null, mine: new Set() };

function setLiveState(on) {
  const line = $("#live-state");
  line.textContent = on ? t.liveOn : t.liveOff;
  line.classList.toggle("off", !on);
}

function scheduleLoad() {
  clearTimeout(live.reload);
  live.reload = setTimeout(load, 300); // one load for a burst of changes
}

// The open deviation changed: shown afresh, unless the change is the one this page just made and showed, or
// the member is writing in it (a comment, a reference), which must not be wiped; then they are told instead.
async function refreshDetail(id) {
  let deviation;
  try {
    deviation = await api(`/deviations/${id}`);
  } catch (error) {
    if (state.detailId === id && error.status === 404) { showView("list"); announce(t.liveGone); }
    return;
  }
  const view = $("#view-detail");
  if (state.detailId !== id || deviation.version === state.detailVersion) return;
  const writing = view.contains(document.activeElement) && document.activeElement.matches("input, textarea, select")
    || [...view.querySelectorAll("input[type=text], textarea")].some((field) => field.value.trim());
  if (writing) announce(t.liveChangedElsewhere); else renderDetail(deviation);
}

function onLiveEvent(event) {
  if (event.lastEventId) live.last = event.lastEventId;
  if (event.type === "reload") {
    scheduleLoad();
    return;
  }
  const { id, kind } = JSON.parse(event.data);
  if (state.detailId === id) {
    if (kind === "removed") { showView("list"); announce(t.liveGone); } else refreshDetail(id);
  }
  if (kind === "reported" && !live.mine.has(id)) announce(t.liveReported);
  scheduleLoad();
}

function openLive() {
  if (live.source || document.hidden) return;
  clearTimeout(live.retry);
  const source = new EventSource(live.last === null ? config.liveUrl : `${config.liveUrl}?since=${live.last}`);
  live.source = source;
  source.addEventListener("deviation", onLiveEvent);
  source.addEventListener("reload", onLiveEvent);
  source.addEventListener("open", () => setLiveState(true));
  source.addEventListener("error", () => {
    setLiveState(false);
    // A closed stream was refused (signed out, too many maps open): the browser gives up, so we try later.
    // Otherwise the browser reconnects by itself, resuming after the last event.
    if (source.readyState === EventSource.CLOSED) {
      closeLive();
      live.retry = setTimeout(openLive, 30_000);
    }
  });
}

function closeLive() {
  live.source?.close();
  live.source = null;
}

document.addEventListener("visibilitychange", () => (document.hidden ? closeLive() : openLive()));

// --- Start ----------------------------------------------------------------------------------------------

for (const swatch of document.querySelectorAll(".swatch[data-color]")) swatch.style.background = swatch.dataset.color;

async function start() {
  const [forum, categories, organisations, places] = await Promise.all([
    api(""), api("/categories"), api("/organisations"), api("/places"),
  ]);
  state.forum = forum;
  for (const category of categories) state.categories.set(category.key, category);
  for (const organisation of organisations) state.organisations.set(organisation.id, organisation);
  restoreFilterFromUrl();
  const patterns = $("#nav-patterns");
  if (patterns) patterns.href = `${patterns.dataset.base}${location.search || "?period=meeting"}`;
  await mapLoaded;
  addLayers();
  addPlaces(places);
  // A link from a place or a meeting names the box to show (…?bbox=minLon,minLat,maxLon,maxLat).
  const linkedBox = (new URLSearchParams(location.search).get("bbox") || "").split(",").map(Number);
  if (linkedBox.length === 4 && linkedBox.every(Number.isFinite)) {
    map.fitBounds([[linkedBox[0], linkedBox[1]], [linkedBox[2], linkedBox[3]]], { padding: 20, duration: 0 });
  } else if (forum.bounds) {
    map.fitBounds([[forum.bounds[0], forum.bounds[1]], [forum.bounds[2], forum.bounds[3]]],
                  { padding: 20, duration: 0 });
  }
  map.on("moveend", load);
  openLive(); // before the first load: whatever changes from here on reaches the map
  await load();
  await showQueue();
  sendWaiting();
  // A link such as …/f/farsta/#deviation-42 (from the audit log, say) opens that deviation.
  const linked = /^#deviation-(\d+)$/.exec(location.hash);
  if (linked) await openDetail(Number(linked[1]), { fly: true });
  document.body.classList.add("map-ready");
}
start();
