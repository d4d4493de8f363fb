"""Addresses for the map's search box, from a Nominatim- or Photon-compatible geocoder.

The server asks the geocoder, never the browser: the geocoder learns what was searched, but not who searched
it or from where, and the page's Content-Security-Policy stays closed to it. Answers are kept in the cache for
a day, and the public Nominatim's usage policy (at most one request a second, an identifying User-Agent, no
search-as-you-type) is kept by asking only when a person presses Sök, and by starting requests from one process at
least LAGESBILD_GEOCODER_INTERVAL seconds apart.

With LAGESBILD_GEOCODER_URL empty (the default) there is no address search, and nothing leaves the server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from lagesbild.basemap_picture import USER_AGENT
from lagesbild.geometry import BBox

log = logging.getLogger(__name__)

KINDS = ("nominatim", "photon")
TIMEOUT_S = 4.0
CACHE_S = 86400
MAX_ANSWER = 1024 * 1024
MAX_LABEL = 200

_lock = threading.Lock()
_last_request = 0.0


class GeocoderUnavailable(Exception):
    """The geocoder did not answer, or answered something that is not a list of places."""


@dataclass(frozen=True)
class Address:
    label: str
    lon: float
    lat: float
    bbox: BBox | None = None


def configured() -> bool:
    return bool(settings.LAGESBILD_GEOCODER_URL)


def lookup(query: str, *, near: BBox | None = None, limit: int = 5, scope: str = "") -> list[Address]:
    """Addresses matching `query`, inside `near` (the forum's area) where it is given, best first.

    `scope` keeps the cache apart per organisation: a shared cache would let one organisation learn, from how
    fast an answer comes, which addresses another looked up today.
    """
    url = settings.LAGESBILD_GEOCODER_URL
    if not url:
        return []
    if not url.startswith(("https://", "http://")):
        raise GeocoderUnavailable(f"LAGESBILD_GEOCODER_URL must start with https:// or http://: {url}")
    request_url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(_params(query, near, limit))}"
    key = "geocoder:" + hashlib.sha256(f"{scope}\n{request_url}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return [Address(label, lon, lat, tuple(bbox) if bbox else None) for label, lon, lat, bbox in cached]
    answer = _get(request_url)
    found = _parse(answer)[:limit]
    cache.set(key, [(a.label, a.lon, a.lat, a.bbox) for a in found], CACHE_S)
    return found


def _params(query: str, near: BBox | None, limit: int) -> dict[str, Any]:
    if settings.LAGESBILD_GEOCODER_KIND == "photon":
        params: dict[str, Any] = {"q": query, "limit": limit}
        if near:
            params["bbox"] = ",".join(f"{v:.5f}" for v in near)
        return params
    params = {"q": query, "format": "jsonv2", "limit": limit, "accept-language": "sv,en"}
    if near:
        west, south, east, north = near
        params.update(viewbox=f"{west:.5f},{north:.5f},{east:.5f},{south:.5f}", bounded=1)
    return params


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A geocoder answers where it was asked; a redirect elsewhere (another host, ftp:, the internal network)
    is refused rather than followed by the server."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _get(url: str) -> Any:
    global _last_request
    with _lock:  # only the spacing is decided under the lock: a slow answer holds up nobody else
        slot = max(time.monotonic(), _last_request + settings.LAGESBILD_GEOCODER_INTERVAL)
        _last_request = slot
    if slot > time.monotonic():
        time.sleep(slot - time.monotonic())
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,  # noqa: S310 (scheme checked)
                                                   "Accept": "application/json"})
    deadline = time.monotonic() + TIMEOUT_S
    try:
        with _opener.open(request, timeout=TIMEOUT_S) as response:
            if response.status != 200:
                raise GeocoderUnavailable(f"The geocoder answered {response.status}")
            parts: list[bytes] = []
            size = 0
            # The timeout is per read; the deadline is for the whole answer, however slowly it trickles in.
            while chunk := response.read1(64 * 1024):
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER or time.monotonic() > deadline:
                    raise GeocoderUnavailable("The geocoder's answer is too large or too slow")
        return json.loads(b"".join(parts))
    except GeocoderUnavailable:
        raise
    except Exception as error:  # anything from elsewhere (HTTP, JSON, recursion) means: no addresses now
        log.warning("The geocoder did not answer usably: %r", error)
        raise GeocoderUnavailable(str(error)) from error


def _parse(answer: Any) -> list[Address]:
    """Nominatim's list of places, or Photon's GeoJSON FeatureCollection; anything else is refused. A result
    that cannot be read is left out, the others kept."""
    read: Callable[[dict[str, Any]], Address]
    if isinstance(answer, list):  # Nominatim
        items, read = answer, _nominatim_item
    elif isinstance(answer, dict) and isinstance(answer.get("features"), list):  # Photon
        items, read = answer["features"], _photon_item
    else:
        raise GeocoderUnavailable("The geocoder's answer is neither Nominatim's nor Photon's")
    found = []
    for item in items[:50]:
        try:
            address = read(item)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError):
            continue
        if address.label:
            found.append(address)
    return found


def _number(value: Any) -> float:
    """A coordinate as Nominatim (a string) or Photon (a number) gives it; nothing else, not a boolean."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _nominatim_item(item: dict[str, Any]) -> Address:
    box = item.get("boundingbox")  # [south, north, west, east], as strings
    bbox = None
    if isinstance(box, list) and len(box) == 4:
        south, north, west, east = (_number(v) for v in box)
        bbox = (west, south, east, north)
    label = item.get("display_name")
    if not isinstance(label, str):
        raise TypeError("no name")
    return _address(label, _number(item["lon"]), _number(item["lat"]), bbox)


def _photon_item(feature: dict[str, Any]) -> Address:
    coordinates = feature["geometry"]["coordinates"]
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        raise TypeError("no position")
    properties = feature.get("properties") or {}
    extent = properties.get("extent")  # [west, north, east, south]
    bbox = None
    if isinstance(extent, list) and len(extent) == 4:
        west, north, east, south = (_number(v) for v in extent)
        bbox = (west, south, east, north)
    return _address(_photon_label(properties), _number(coordinates[0]), _number(coordinates[1]), bbox)


def _address(label: str, lon: float, lat: float, bbox: BBox | None) -> Address:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError("a position outside the globe")
    if bbox and not (-180 <= bbox[0] <= bbox[2] <= 180 and -90 <= bbox[1] <= bbox[3] <= 90):
        bbox = None
    # Text from elsewhere goes into the page as text only (the map's script never uses innerHTML); here it is
    # only cut short and cleared of control characters.
    clean = "".join(c for c in label if c.isprintable())[:MAX_LABEL].strip()
    return Address(clean, round(lon, 6), round(lat, 6), bbox)


def _photon_label(properties: dict[str, Any]) -> str:
    def text(key: str) -> str:
        value = properties.get(key)
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""

    street = " ".join(text(k) for k in ("street", "housenumber") if text(k))
    name = text("name")
    town = " ".join(text(k) for k in ("postcode", "city") if text(k))
    parts = [name, street if street != name else "", text("district"), town]
    return ", ".join(p for p in parts if p)
