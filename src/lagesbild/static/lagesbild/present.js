// Meeting mode: the item's map, keys for the next and previous item, and following the coordinator's screen.
/* global maplibregl */
import { baseStyle } from "./basemap.js";

const config = JSON.parse(document.getElementById("screen-config").textContent);

if (config.map && document.getElementById("screen-map")) {
  maplibregl.setWorkerUrl(config.workerUrl);
  const [west, south, east, north] = config.map.bbox;
  const map = new maplibregl.Map({
    container: "screen-map", style: baseStyle(config.basemap, config.language),
    bounds: [[west, south], [east, north]], fitBoundsOptions: { padding: 24 }, attributionControl: { compact: true },
  });
  window.lagesbildScreenMap = map; // for the browser tests
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.on("load", () => {
    if (config.map.area) {
      map.addSource("area", { type: "geojson", data: config.map.area });
      map.addLayer({ id: "area", type: "line", source: "area",
                     paint: { "line-color": "#14213d", "line-width": 2, "line-dasharray": [3, 2] } });
    }
    if (config.map.outline) {
      map.addSource("place", { type: "geojson", data: config.map.outline });
      map.addLayer({ id: "place-fill", type: "fill", source: "place",
                     paint: { "fill-color": "#1d4ed8", "fill-opacity": 0.08 } });
      map.addLayer({ id: "place-line", type: "line", source: "place",
                     paint: { "line-color": "#1d4ed8", "line-width": 3 } });
    }
    const colour = ["match", ["get", "category"]];
    for (const [key, value] of Object.entries(config.colours)) colour.push(key, value);
    colour.push("#555555");
    map.addSource("points", { type: "geojson", data: config.map.points });
    map.addLayer({ id: "points", type: "circle", source: "points",
                   paint: { "circle-color": colour, "circle-radius": 8, "circle-stroke-width": 2,
                            "circle-stroke-color": "#ffffff" } });
  });
}

// Keys move through the agenda, except while someone is typing notes.
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
  const next = { ArrowRight: "next-item", PageDown: "next-item", ArrowLeft: "previous-item",
                 PageUp: "previous-item" }[event.key];
  const link = next && document.getElementById(next);
  if (link) {
    event.preventDefault();
    link.click();
  }
});

// Those who are not running the meeting follow the item on the coordinator's screen.
const follow = document.getElementById("follow");
if (follow) {
  setInterval(async () => {
    if (!follow.checked) return;
    try {
      const response = await fetch(config.current, { headers: { Accept: "application/json" } });
      const { item } = await response.json();
      if (item && item !== config.number) window.location.assign(`?punkt=${item}`);
    } catch {
      // The network comes back; the next tick tries again.
    }
  }, 4000);
}
