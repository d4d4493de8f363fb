// Draw a forum's area on the settings page: click the corners, then "Done". The polygon goes into a
// hidden field; the server checks it (inside valid ranges, not crossing itself) when the form is saved.
/* global maplibregl */
import { baseStyle } from "./basemap.js";

const config = JSON.parse(document.getElementById("area-config").textContent);
const t = JSON.parse(document.getElementById("area-strings").textContent);
const $ = (selector) => document.querySelector(selector);
const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));

maplibregl.setWorkerUrl(config.workerUrl);
const map = new maplibregl.Map({ container: "area-map", style: baseStyle(config.basemap), center: [18.07, 59.33],
                                 zoom: 10 });
window.lagesbildAreaMap = map; // for the browser tests
let corners = [];
let drawing = false;

function polygon(points) {
  return { type: "Polygon", coordinates: [[...points, points[0]]] };
}

function show() {
  if (!map.getSource("drawing")) return; // the map is still loading
  const features = [];
  if (drawing && corners.length >= 3) features.push({ type: "Feature", geometry: polygon(corners), properties: {} });
  else if (drawing && corners.length === 2) {
    features.push({ type: "Feature", geometry: { type: "LineString", coordinates: corners }, properties: {} });
  }
  for (const corner of corners) features.push({ type: "Feature", geometry: { type: "Point", coordinates: corner }, properties: {} });
  map.getSource("drawing").setData({ type: "FeatureCollection", features });
}

map.on("load", () => {
  map.addSource("area", { type: "geojson", data: config.area || { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "area-fill", type: "fill", source: "area", paint: { "fill-color": "#0b5cad", "fill-opacity": 0.12 } });
  map.addLayer({ id: "area-line", type: "line", source: "area", paint: { "line-color": "#14213d", "line-width": 2 } });
  map.addSource("drawing", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "drawing-fill", type: "fill", source: "drawing", filter: ["==", ["geometry-type"], "Polygon"],
                 paint: { "fill-color": "#b3261e", "fill-opacity": 0.15 } });
  map.addLayer({ id: "drawing-line", type: "line", source: "drawing", filter: ["!=", ["geometry-type"], "Point"],
                 paint: { "line-color": "#b3261e", "line-width": 2, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "drawing-corners", type: "circle", source: "drawing", filter: ["==", ["geometry-type"], "Point"],
                 paint: { "circle-radius": 5, "circle-color": "#b3261e", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } });
  if (config.area) {
    const ring = config.area.type === "MultiPolygon" ? config.area.coordinates.flat(2) : config.area.coordinates.flat();
    const bounds = ring.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(ring[0], ring[0]));
    map.fitBounds(bounds, { padding: 20, duration: 0 });
  }
  document.body.classList.add("area-map-ready");
});

function setDrawing(on) {
  drawing = on;
  $("#area-draw").hidden = on;
  for (const id of ["#area-undo", "#area-done", "#area-cancel"]) $(id).hidden = !on;
  map.getCanvas().style.cursor = on ? "crosshair" : "";
  map.doubleClickZoom[on ? "disable" : "enable"]();
}

map.on("click", (event) => {
  if (!drawing) {
    // On the places page a click outside drawing sets the centre of a point-with-radius place.
    const lon = $("#place-lon");
    const lat = $("#place-lat");
    if (!lon || !lat) return;
    lon.value = event.lngLat.lng.toFixed(6);
    lat.value = event.lngLat.lat.toFixed(6);
    corners = [[Number(lon.value), Number(lat.value)]];
    $("#area-drawn").value = "";
    show();
    $("#area-status").textContent = t.centre;
    return;
  }
  corners.push([Number(event.lngLat.lng.toFixed(6)), Number(event.lngLat.lat.toFixed(6))]);
  $("#area-status").textContent = format(t.corners, { count: corners.length });
  show();
});

$("#area-draw").addEventListener("click", () => {
  corners = [];
  $("#area-drawn").value = "";
  setDrawing(true);
  show();
  $("#area-status").textContent = format(t.corners, { count: 0 });
});
$("#area-undo").addEventListener("click", () => {
  corners.pop();
  $("#area-status").textContent = format(t.corners, { count: corners.length });
  show();
});
$("#area-cancel").addEventListener("click", () => {
  corners = [];
  $("#area-drawn").value = "";
  $("#area-status").textContent = "";
  setDrawing(false);
  show();
});
$("#area-done").addEventListener("click", () => {
  if (corners.length < 3) {
    $("#area-status").textContent = t.tooFew;
    return;
  }
  $("#area-drawn").value = JSON.stringify(polygon(corners));
  setDrawing(false);
  drawing = true; // keep showing the finished polygon
  show();
  drawing = false;
  $("#area-status").textContent = t.ready;
});
