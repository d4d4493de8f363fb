"""The basemap as one picture, under the small maps that Lägesbild draws itself: the patterns page, the place
page and the protocol PDF.

Where the operator configured raster tiles (basemap.py), the server fetches the tiles that cover the map,
keeps them in a cache on disk (LAGESBILD_TILE_CACHE_DIR, a month by default) and stitches them into one
picture in the small map's own projection. Where no raster basemap is configured, or the tile server cannot be
reached, there is no picture and the small map shows the outline on a plain background, as before.

Tile servers are asked politely: an identifying User-Agent, two connections at most, each tile once a month,
and a server that failed is left alone for a few minutes rather than asked again on every page.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from PIL import Image

from lagesbild import basemap

if TYPE_CHECKING:
    from lagesbild.staticmap import Frame

log = logging.getLogger(__name__)

TILE = 256
MAX_TILES = 48  # a small map never needs more; more would mean a zoom level too deep for the tile server's sake
TIMEOUT_S = 4.0
RETRY_AFTER_S = 300.0  # a tile server that failed is left alone this long
USER_AGENT = "Lagesbild/0.1 (static maps of a local safety forum; https://github.com/lagesbild)"
BACKGROUND = (244, 241, 234)  # the plain background of staticmap, under tiles that could not be had

_failed: dict[str, float] = {}  # tile URL template -> when it last failed
_lock = threading.Lock()


def _x(lon: float, zoom: int) -> float:
    """Web Mercator pixel column of a longitude at a zoom level."""
    return (lon + 180.0) / 360.0 * TILE * 2**zoom


def _y(lat: float, zoom: int) -> float:
    lat = max(min(lat, 85.0511), -85.0511)
    rad = math.radians(lat)
    return (1.0 - math.log(math.tan(rad) + 1.0 / math.cos(rad)) / math.pi) / 2.0 * TILE * 2**zoom


def frame_bounds(frame: Frame) -> tuple[float, float, float, float]:
    """The longitudes and latitudes at the frame's edges (it may show more than its bbox, to keep the aspect)."""
    k = frame.kx * frame.scale
    west = frame.bbox[0] - frame.x0 / k
    east = frame.bbox[0] + (frame.width - frame.x0) / k
    south = frame.bbox[1] - frame.y0 / frame.scale
    north = frame.bbox[1] + (frame.height - frame.y0) / frame.scale
    return west, south, east, north


def cache_dir() -> Path:
    return Path(getattr(settings, "LAGESBILD_TILE_CACHE_DIR", "") or Path(settings.VAR_DIR) / "tile-cache")


def _tile_path(template: str, zoom: int, x: int, y: int) -> Path:
    # One folder per tile source, so that changing LAGESBILD_TILE_URL never mixes two maps' tiles.
    source = hashlib.sha256(template.encode()).hexdigest()[:16]
    return cache_dir() / source / str(zoom) / str(x) / f"{y}.tile"


def _tile_url(template: str, zoom: int, x: int, y: int) -> str:
    return (template.replace("{s}", "abc"[(x + y) % 3]).replace("{z}", str(zoom))
            .replace("{x}", str(x)).replace("{y}", str(y)))


def tile(template: str, zoom: int, x: int, y: int) -> Image.Image | None:
    """One tile, from the cache while it is fresh, otherwise from the tile server (and then into the cache)."""
    path = _tile_path(template, zoom, x, y)
    max_age = settings.LAGESBILD_TILE_CACHE_DAYS * 86400
    if path.exists() and time.time() - path.stat().st_mtime < max_age:
        try:
            return Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged file in the cache: fetch it again
    url = _tile_url(template, zoom, x, y)
    if not url.startswith(("https://", "http://")):  # never file: or other schemes, whatever is configured
        raise ValueError(f"A tile URL must start with https:// or http://: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (checked above)
            data = response.read(4 * 1024 * 1024)
        image = Image.open(io.BytesIO(data))
        image.load()
    except urllib.error.HTTPError as error:
        if error.code == 404:  # no tile here (sea, edge of the extract): a blank, not a failure
            return None
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)  # whole files only, also when two pages fetch the same tile at once
    return image.convert("RGB")


def zoom_for(west: float, east: float, pixels: int, max_zoom: int) -> int:
    """The tile zoom whose pixels are closest to the picture's: text on the tiles stays readable."""
    wanted = math.log2(pixels * 360.0 / (TILE * max(east - west, 1e-9)))
    return max(0, min(max_zoom, round(wanted)))


def picture(frame: Frame, pixels_per_unit: float = 1.5) -> Image.Image | None:
    """The raster basemap under `frame`, `pixels_per_unit` image pixels per frame unit; None when there is none."""
    config = basemap.configured()
    if config.kind != "raster":
        return None
    template = config.tile_url
    with _lock:
        if time.monotonic() - _failed.get(template, -RETRY_AFTER_S) < RETRY_AFTER_S:
            return None
    width, height = max(1, round(frame.width * pixels_per_unit)), max(1, round(frame.height * pixels_per_unit))
    west, south, east, north = frame_bounds(frame)
    zoom = zoom_for(west, east, width, config.max_zoom)
    while True:
        left, right = _x(west, zoom), _x(east, zoom)
        top, bottom = _y(north, zoom), _y(south, zoom)
        columns = range(math.floor(left / TILE), math.floor((right - 1e-9) / TILE) + 1)
        rows = range(max(0, math.floor(top / TILE)), min(2**zoom - 1, math.floor((bottom - 1e-9) / TILE)) + 1)
        if len(columns) * len(rows) <= MAX_TILES or zoom == 0:
            break
        zoom -= 1
    wanted = [(x, y) for y in rows for x in columns]

    def fetch(xy: tuple[int, int]) -> Image.Image | None:
        return tile(template, zoom, xy[0] % 2**zoom, xy[1])

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            tiles = list(pool.map(fetch, wanted))
    except (OSError, ValueError, urllib.error.URLError) as error:
        with _lock:
            _failed[template] = time.monotonic()
        log.warning("The basemap's tiles could not be fetched for a small map (%s); it is drawn without them.",
                    error)
        return None
    mosaic = Image.new("RGB", (len(columns) * TILE, len(rows) * TILE), BACKGROUND)
    for (x, y), image in zip(wanted, tiles, strict=True):
        if image is not None:
            mosaic.paste(image.resize((TILE, TILE)) if image.size != (TILE, TILE) else image,
                         ((x - columns.start) * TILE, (y - rows.start) * TILE))
    origin_x, origin_y = columns.start * TILE, rows.start * TILE
    box = (left - origin_x, top - origin_y, right - origin_x, bottom - origin_y)
    stretched = np.asarray(mosaic.resize((width, height), Image.Resampling.LANCZOS, box=box))
    # The frame's north-south axis is linear in latitude, Web Mercator's is not: pick each row from where its
    # latitude lies in the tiles. Across a district the difference is a pixel or two, across a city more.
    latitudes = north - (np.arange(height) + 0.5) / height * (north - south)
    source = np.array([(_y(float(lat), zoom) - top) / (bottom - top) * height for lat in latitudes])
    return Image.fromarray(stretched[np.clip(source.astype(int), 0, height - 1)])


def washed(image: Image.Image, strength: float = 0.35) -> Image.Image:
    """The picture paled towards white, so that the deviations and outlines drawn over it stand out."""
    return Image.blend(image, Image.new("RGB", image.size, (255, 255, 255)), strength)


def data_uri(image: Image.Image) -> str:
    import base64

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
