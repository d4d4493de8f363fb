// The basemap every map in Lägesbild draws under its own layers, as the operator configured it
// (lagesbild/basemap.py): raster tiles from a tile server, Lägesbild's own PMTiles file drawn with
// Protomaps' basemap style, or a plain background with the forum's outline.
/* global maplibregl, pmtiles, basemaps */

const BACKGROUND = { id: "background", type: "background", paint: { "background-color": "#eef0ec" } };
let protocolAdded = false;

// Layers that draw sprite icons (shields, one-way arrows, points of interest) need a sprite sheet, which a
// self-hosted basemap does not have: their text stays, their icons go.
function withoutIcons(layer) {
  if (!layer.layout || !("icon-image" in layer.layout)) return layer;
  if (!("text-field" in layer.layout)) return null;
  const layout = Object.fromEntries(Object.entries(layer.layout).filter(([key]) => !key.startsWith("icon-")));
  return { ...layer, layout };
}

// The font of Lägesbild's own map text (counts), one the glyph endpoint makes.
export const FONT = ["Noto Sans Regular"];

function glyphUrl(basemap) {
  return new URL(basemap.glyphs, window.location.href).href.replace("%7Bfontstack%7D", "{fontstack}")
    .replace("%7Brange%7D", "{range}");
}

export function baseStyle(basemap, language = "sv") {
  const style = { version: 8, sources: {}, layers: [BACKGROUND] };
  if (!basemap) return style;
  style.glyphs = glyphUrl(basemap);
  if (basemap.kind === "none") return style;
  if (basemap.kind === "raster") {
    style.sources.basemap = {
      type: "raster", tiles: [basemap.tiles], tileSize: 256, maxzoom: basemap.maxZoom,
      attribution: basemap.attribution,
    };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
    return style;
  }
  if (!protocolAdded) {
    maplibregl.addProtocol("pmtiles", new pmtiles.Protocol().tile);
    protocolAdded = true;
  }
  style.sources.protomaps = {
    type: "vector", url: "pmtiles://" + new URL(basemap.pmtiles, window.location.href).href,
    attribution: basemap.attribution, maxzoom: 15,
  };
  const layers = basemaps.layers("protomaps", basemaps.namedFlavor("light"), { lang: language });
  style.layers = layers.map(withoutIcons).filter(Boolean);
  return style;
}
