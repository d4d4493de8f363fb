"""Basemaps for the tests, as users meet them but on loopback: a raster tile server of our own (which also
answers address searches as Nominatim and Photon do), and a small PMTiles file made here with the layers
Protomaps' style draws (land, a lake, a named road)."""

from __future__ import annotations

import io
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mapbox_vector_tile
from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from shapely.geometry import LineString, Polygon, box

# A colour no other layer of the map uses, so that pixels of it on the screen are basemap tiles.
RASTER_COLOUR = (200, 160, 255)
# A landmark the raster tiles draw at a known place (a block by Farsta centrum), to check where tiles land.
LANDMARK = (18.088, 59.242, 18.092, 59.246)
LANDMARK_COLOUR = (20, 110, 40)
# Protomaps' light flavour: land and water.
EARTH_COLOUR = (226, 223, 218)
WATER_COLOUR = (128, 222, 234)
# Magelungen, roughly: the lake on Farsta's western edge, and a road along the centre.
LAKE = Polygon([(18.050, 59.228), (18.072, 59.226), (18.076, 59.238), (18.058, 59.246), (18.046, 59.240)])
ROAD = LineString([(18.060, 59.250), (18.090, 59.244), (18.130, 59.240)])
BOUNDS = (18.02, 59.20, 18.18, 59.28)


def _pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Web Mercator pixel of a position at zoom z, in 256-pixel tiles."""
    rad = math.radians(lat)
    return ((lon + 180) / 360 * 256 * 2**z,
            (1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * 256 * 2**z)


def raster_tile(z: int, x: int, y: int) -> bytes:
    """A tile in RASTER_COLOUR with the LANDMARK drawn where it lies."""
    from PIL import ImageDraw

    image = Image.new("RGB", (256, 256), RASTER_COLOUR)
    left, top = _pixel(LANDMARK[0], LANDMARK[3], z)
    right, bottom = _pixel(LANDMARK[2], LANDMARK[1], z)
    ImageDraw.Draw(image).rectangle((left - x * 256, top - y * 256, right - x * 256, bottom - y * 256),
                                    fill=LANDMARK_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# The one address the geocoders know: at the landmark, so a test can see the map move under it.
ADDRESS = "Farstavägen 10"
ADDRESS_POSITION = (18.09, 59.244)


def geocoder_answer(path: str) -> bytes | None:
    """What Nominatim (/nominatim/search) or Photon (/photon/api) would answer, or None for another path."""
    url = urlsplit(path)
    query = parse_qs(url.query).get("q", [""])[0].casefold()
    hit = "farstavägen" in query
    lon, lat = ADDRESS_POSITION
    if url.path == "/nominatim/search":
        found = [{"lon": str(lon), "lat": str(lat), "display_name": f"{ADDRESS}, Farsta, Stockholm",
                  "boundingbox": [str(lat - 0.0002), str(lat + 0.0002), str(lon - 0.0003), str(lon + 0.0003)]}]
        return json.dumps(found if hit else []).encode()
    good = {"lon": str(lon), "lat": str(lat), "display_name": f"{ADDRESS}, Farsta, Stockholm"}
    if url.path == "/hostile/mixed":  # results a careless parser would choke on, around one good one
        return json.dumps([{"lon": True, "lat": "59.2", "display_name": "boolean"}, {"lat": "59.2"},
                           {"lon": "1e400", "lat": "59.2", "display_name": "infinite"},
                           {"lon": "18.1", "lat": "59.2", "display_name": {"a": 1}},
                           {"lon": 10**400, "lat": "59.2", "display_name": "huge"}, good]).encode()
    if url.path == "/hostile/deep":
        return b"[" * 5000 + b"]" * 5000
    if url.path == "/hostile/huge-number":
        return json.dumps([{**good, "boundingbox": ["1" * 400] * 4}]).encode()
    if url.path == "/broken/search":  # JSON, but neither Nominatim's nor Photon's
        return json.dumps({"error": "Unknown request"}).encode()
    if url.path == "/photon/api":
        features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                     "properties": {"street": "Farstavägen", "housenumber": "10", "postcode": "123 47",
                                    "city": "Stockholm", "district": "Farsta"}}]
        return json.dumps({"type": "FeatureCollection", "features": features if hit else []}).encode()
    return None


class TileServer:
    """An XYZ tile server on loopback: every tile in one colour with a landmark; it counts the tiles asked for.
    It answers address searches too, at /nominatim/search and /photon/api."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.headers.append(dict(self.headers))
                if self.path.startswith("/hostile/redirect"):  # to "the internal network"
                    self.send_response(302)
                    self.send_header("Location", f"{server.root}/nominatim/search?q=farstavägen")
                    self.end_headers()
                    return
                if self.path.startswith("/hostile/slow"):  # a byte a while, each read within the timeout
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    for _ in range(100):  # ten seconds: far past any deadline, however busy the machine
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.1)
                    return
                answer = geocoder_answer(self.path)
                if answer is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                try:
                    z, x, y = (int(part) for part in self.path.removesuffix(".png").strip("/").split("/"))
                except ValueError:
                    self.send_error(404)
                    return
                tile = raster_tile(z, x, y)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.root}/{{z}}/{{x}}/{{y}}.png"
        self.nominatim = f"{self.root}/nominatim/search"
        self.photon = f"{self.root}/photon/api"

    @contextmanager
    def running(self) -> Iterator[TileServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    x = lon * 20037508.34 / 180
    y = math.log(math.tan((90 + lat) * math.pi / 360)) * 20037508.34 / math.pi
    return x, y


def _tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * 20037508.34 / 2**z
    west = -20037508.34 + x * size
    north = 20037508.34 - y * size
    return west, north - size, west + size, north


def _tiles(z: int) -> Iterator[tuple[int, int]]:
    def column(lon: float) -> int:
        return int((lon + 180) / 360 * 2**z)

    def row(lat: float) -> int:
        rad = math.radians(lat)
        return int((1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * 2**z)

    for x in range(column(BOUNDS[0]), column(BOUNDS[2]) + 1):
        for y in range(row(BOUNDS[3]), row(BOUNDS[1]) + 1):
            yield x, y


def _project(geometry: Polygon | LineString) -> Polygon | LineString:
    import numpy as np
    import shapely

    def mercator(coordinates: np.ndarray) -> np.ndarray:
        return np.array([_mercator(lon, lat) for lon, lat in coordinates])

    return shapely.transform(geometry, mercator)


def make_pmtiles(path: Path, max_zoom: int = 15) -> Path:
    """A PMTiles file of vector tiles over Farsta, zooms 10 to `max_zoom`."""
    lake, road = _project(LAKE), _project(ROAD)
    entries = []
    for z in range(10, max_zoom + 1):
        for x, y in _tiles(z):
            bounds = _tile_bounds(z, x, y)
            extent = box(*bounds)
            layers = [{"name": "earth", "features": [{"geometry": extent.wkt, "properties": {"kind": "earth"}}]}]
            if lake.intersects(extent):
                layers.append({"name": "water", "features": [{"geometry": lake.intersection(extent).wkt,
                                                              "properties": {"kind": "lake", "name": "Magelungen"}}]})
            if road.intersects(extent.buffer(100)):
                layers.append({"name": "roads", "features": [{"geometry": road.wkt, "properties": {
                    "kind": "major_road", "name": "Farstavägen", "min_zoom": 10}}]})
            data = mapbox_vector_tile.encode(layers, default_options={"quantize_bounds": bounds, "extents": 4096})
            entries.append((zxy_to_tileid(z, x, y), data))
    with path.open("wb") as handle:
        writer = Writer(handle)
        for tile_id, data in sorted(entries):
            writer.write_tile(tile_id, data)
        writer.finalize({
            "tile_type": TileType.MVT, "tile_compression": Compression.NONE,
            "min_lon_e7": int(BOUNDS[0] * 1e7), "min_lat_e7": int(BOUNDS[1] * 1e7),
            "max_lon_e7": int(BOUNDS[2] * 1e7), "max_lat_e7": int(BOUNDS[3] * 1e7),
            "center_zoom": 13, "center_lon_e7": int(18.09 * 1e7), "center_lat_e7": int(59.24 * 1e7),
        }, {"name": "Farsta (test)", "vector_layers": [{"id": name} for name in ("earth", "water", "roads")]})
    return path


def share_of_colour(png: bytes, colour: tuple[int, int, int], tolerance: int = 6) -> float:
    """How much of a screenshot is this colour."""
    import numpy as np

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    close = (np.abs(pixels - np.array(colour)) <= tolerance).all(axis=2)
    return float(close.mean())
