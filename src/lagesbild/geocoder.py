"""Addresses for the map's search box, from a Nominatim- or Photon-compatible geocoder.

The server asks the geocoder, never the browser: the geocoder learns what was searched, but not who searched
it or from where, and the page's Content-Security-Policy stays closed to it. Answers are kept in the cache for
a day, and the public Nominatim's usage policy (at most one request a second, an identifying User-Agent, no
search-as-you-type) is kept by asking only when a person presses Sök, one request at a time per process and at
most one every LAGESBILD_GEOCODER_INTERVAL seconds.

With LAGESBILD_GEOCODER_URL empty (the default) there is no address search, and nothing leaves the server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
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


def lookup(query: str, *, near: BBox | None = None, limit: int = 5) -> list[Address]:
    """Addresses matching `query`, inside `near` (the forum's area) where it is given, best first."""
    url = settings.LAGESBILD_GEOCODER_URL
    if not url:
        return []
    if not url.startswith(("https://", "http://")):
        raise GeocoderUnavailable(f"LAGESBILD_GEOCODER_URL must start with https:// or http://: {url}")
    request_url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(_params(query, near, limit))}"
    key = "geocoder:" + hashlib.sha256(request_url.encode()).hexdigest()
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


def _get(url: str) -> Any:
    global _last_request
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,  # noqa: S310 (scheme checked)
                                                   "Accept": "application/json"})
    with _lock:  # one request at a time, at most one a second, from this process
        wait = _last_request + settings.LAGESBILD_GEOCODER_INTERVAL - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
                data = response.read(MAX_ANSWER)
        except (OSError, urllib.error.URLError, ValueError) as error:
            log.warning("The geocoder did not answer: %s", error)
            raise GeocoderUnavailable(str(error)) from error
        finally:
            _last_request = time.monotonic()
    try:
        return json.loads(data)
    except ValueError as error:
        raise GeocoderUnavailable("The geocoder's answer is not JSON") from error


def _parse(answer: Any) -> list[Address]:
    """Nominatim's list of places, or Photon's GeoJSON FeatureCollection; anything else is refused."""
    found: list[Address] = []
    try:
        if isinstance(answer, list):  # Nominatim
            for item in answer:
                box = item.get("boundingbox")  # [south, north, west, east], as strings
                bbox = (float(box[2]), float(box[0]), float(box[3]), float(box[1])) if box else None
                found.append(_address(str(item.get("display_name", "")), float(item["lon"]), float(item["lat"]),
                                      bbox))
        elif isinstance(answer, dict) and isinstance(answer.get("features"), list):  # Photon
            for feature in answer["features"]:
                lon, lat = feature["geometry"]["coordinates"][:2]
                properties = feature.get("properties") or {}
                extent = properties.get("extent")  # [west, north, east, south]
                bbox = (float(extent[0]), float(extent[3]), float(extent[2]), float(extent[1])) if extent else None
                found.append(_address(_photon_label(properties), float(lon), float(lat), bbox))
        else:
            raise GeocoderUnavailable("The geocoder's answer is neither Nominatim's nor Photon's")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise GeocoderUnavailable(f"The geocoder's answer could not be read: {error}") from error
    return [a for a in found if a.label]


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
    street = " ".join(str(properties[k]) for k in ("street", "housenumber") if properties.get(k))
    name = str(properties.get("name") or "")
    town = " ".join(str(properties[k]) for k in ("postcode", "city") if properties.get(k))
    parts = [name, street if street != name else "", str(properties.get("district") or ""), town]
    return ", ".join(p for p in parts if p)
