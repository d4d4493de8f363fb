"""The basemap under every map, as the operator configured it.

- **Raster tiles** from a tile server: XYZ (`LAGESBILD_TILE_URL`, OpenStreetMap's by default) or WMTS in its REST
  form, for example Lantmäteriet's topographic map (`{TileMatrix}/{TileRow}/{TileCol}` work as well as
  `{z}/{y}/{x}`).
- **A vector basemap served by Lägesbild itself**: one PMTiles file (`LAGESBILD_PMTILES_PATH`), drawn in the
  browser with Protomaps' basemap style. No third party learns who looks at which streets.
- **None**: the forum's outline on a plain background.

The Content-Security-Policy (middleware.content_security_policy) allows exactly the hosts configured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse

WMTS_NAMES = {"{TileMatrix}": "{z}", "{TileRow}": "{y}", "{TileCol}": "{x}"}


@dataclass(frozen=True)
class Basemap:
    kind: str  # "raster", "pmtiles" or "none"
    tile_url: str = ""  # raster: the URL template with {z}, {x} and {y}
    attribution: str = ""
    max_zoom: int = 19
    pmtiles_path: Path | None = None

    @property
    def hosts(self) -> list[str]:
        """The origins the browser fetches basemap tiles from, other than Lägesbild itself."""
        if self.kind != "raster":
            return []
        parts = urlsplit(self.tile_url.replace("{s}", "a"))
        return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def configured() -> Basemap:
    pmtiles = getattr(settings, "LAGESBILD_PMTILES_PATH", "")
    if pmtiles:
        return Basemap(kind="pmtiles", pmtiles_path=Path(pmtiles), max_zoom=settings.LAGESBILD_TILE_MAXZOOM,
                       attribution=settings.LAGESBILD_TILE_ATTRIBUTION)
    url = settings.LAGESBILD_TILE_URL
    for wmts, xyz in WMTS_NAMES.items():
        url = url.replace(wmts, xyz)
    if url:
        return Basemap(kind="raster", tile_url=url, attribution=settings.LAGESBILD_TILE_ATTRIBUTION,
                       max_zoom=settings.LAGESBILD_TILE_MAXZOOM)
    return Basemap(kind="none")


def client_config() -> dict[str, object]:
    """What the pages' map scripts need to draw the basemap."""
    basemap = configured()
    config: dict[str, object] = {"kind": basemap.kind, "attribution": basemap.attribution,
                                 "maxZoom": basemap.max_zoom}
    if basemap.kind == "raster":
        config["tiles"] = basemap.tile_url
        # Kept from zoom 10 (a district) down; a setting above 0 but under 10 means 10.
        offline = settings.LAGESBILD_TILE_OFFLINE_ZOOM
        config["offlineZoom"] = min(max(offline, 10), basemap.max_zoom) if offline > 0 else 0
    elif basemap.kind == "pmtiles":
        config["pmtiles"] = reverse("basemap-pmtiles")
    # Map text (the basemap's labels, counts on clusters and hexagons) needs glyphs: Lägesbild makes them itself.
    config["glyphs"] = reverse("basemap-glyphs", kwargs={"fontstack": "FONTSTACK", "start": 0, "end": 255}
                               ).replace("FONTSTACK", "{fontstack}").replace("0-255", "{range}")
    return config
