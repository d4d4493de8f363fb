"""Geometry helpers: coordinate checks, forum areas and WGS84 -> SWEREF 99 TM.

Pure Python on shapely and pyproj wheels; no GDAL, no database.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from django.utils.translation import gettext as _
from pyproj import Transformer
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from lagesbild.errors import InvalidInput

BBox = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

# An outline with more corners than this is simplified (by about a metre) when it is saved, and refused if
# it still has too many: every point-in-area test afterwards walks its corners. A forum's area comes from
# the municipality's map data; a place is drawn by hand.
MAX_AREA_CORNERS = 20_000
MAX_PLACE_CORNERS = 1_000
SIMPLIFY_DEGREES = 0.00001  # about a metre


@lru_cache(maxsize=1)
def _to_sweref() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:3006", always_xy=True)


def to_sweref99tm(lon: float, lat: float) -> tuple[float, float]:
    """SWEREF 99 TM (EPSG:3006) easting and northing in metres."""
    x, y = _to_sweref().transform(lon, lat)
    return round(x, 2), round(y, 2)


def to_sweref99tm_many(lons: list[float], lats: list[float]) -> tuple[list[float], list[float]]:
    """`to_sweref99tm` for many points in one call."""
    xs, ys = _to_sweref().transform(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
    return np.round(xs, 2).tolist(), np.round(ys, 2).tolist()


def sweref99tm_shape(geom: BaseGeometry) -> BaseGeometry:
    """A WGS 84 shape in SWEREF 99 TM metres, for distances and areas."""
    return shapely.transform(geom, lambda xy: np.column_stack(_to_sweref().transform(xy[:, 0], xy[:, 1])))


def check_lon_lat(lon: float, lat: float) -> None:
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput(_("Longitude must be between -180 and 180 degrees."), field="lon")
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput(_("Latitude must be between -90 and 90 degrees."), field="lat")


def validate_area(area: Any, max_corners: int = MAX_AREA_CORNERS) -> BaseGeometry:
    """The area as a shapely geometry: a valid polygon or multipolygon, within WGS84's range, with at most
    `max_corners` corners after simplifying by about a metre."""
    if not isinstance(area, dict):
        raise InvalidInput(_("The area is not a valid GeoJSON polygon."), field="area")
    try:
        geom = shape(area)
    except Exception as exc:
        raise InvalidInput(_("The area is not a valid GeoJSON polygon."), field="area") from exc
    if geom.geom_type not in {"Polygon", "MultiPolygon"} or geom.is_empty:
        raise InvalidInput(_("The area must be a polygon."), field="area")
    if not geom.is_valid:
        raise InvalidInput(_("The area's outline crosses itself."), field="area")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon and max_lon <= 180 and -90 <= min_lat and max_lat <= 90):
        raise InvalidInput(_("The area's corners must be longitude and latitude in WGS84 degrees."), field="area")
    if shapely.get_num_coordinates(geom) > max_corners:
        geom = geom.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
        if shapely.get_num_coordinates(geom) > max_corners or not geom.is_valid:
            raise InvalidInput(_("The outline has too many corners (at most %(max)d). Simplify it and try "
                                 "again.") % {"max": max_corners}, field="area")
    return geom


def as_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """A polygon or multipolygon as plain GeoJSON (lists, not tuples), for storing."""
    mapped = shapely.geometry.mapping(geom)

    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return {"type": mapped["type"], "coordinates": plain(mapped["coordinates"])}


@lru_cache(maxsize=64)
def _prepared_area(area_json: str) -> BaseGeometry:
    geom = shape(json.loads(area_json))
    shapely.prepare(geom)
    return geom


def area_contains(area: dict[str, Any] | None, lon: float, lat: float) -> bool:
    """True if the point lies in the area (or on its edge). A forum without an area accepts any point."""
    if not area:
        return True
    geom = _prepared_area(json.dumps(area, sort_keys=True))
    return bool(geom.covers(Point(lon, lat)))


def area_covers(area: dict[str, Any] | None, geom: BaseGeometry) -> bool:
    """True if the whole shape lies in the area (or on its edge). A forum without an area accepts any."""
    if not area:
        return True
    return bool(_prepared_area(json.dumps(area, sort_keys=True)).covers(geom))


def area_bounds(area: dict[str, Any] | None) -> BBox | None:
    if not area:
        return None
    minx, miny, maxx, maxy = _prepared_area(json.dumps(area, sort_keys=True)).bounds
    return (minx, miny, maxx, maxy)


def bbox_contains(outer: BBox, inner: BBox) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def overlap_fraction(bbox: BBox, bounds: BBox) -> float:
    """How much of `bounds` the box covers, from 0 to 1 (in degrees; fine for comparing at one place)."""
    width = min(bbox[2], bounds[2]) - max(bbox[0], bounds[0])
    height = min(bbox[3], bounds[3]) - max(bbox[1], bounds[1])
    total = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
    if width <= 0 or height <= 0 or total <= 0:
        return 0.0
    return (width * height) / total


def parse_bbox(value: str) -> BBox:
    """Parse 'minLon,minLat,maxLon,maxLat' as OGC API Features does."""
    parts = value.split(",")
    if len(parts) != 4:
        raise InvalidInput(_("bbox must be four numbers: minLon,minLat,maxLon,maxLat."), field="bbox")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput(_("bbox must be four numbers: minLon,minLat,maxLon,maxLat."), field="bbox") from exc
    for lon in (min_lon, max_lon):
        if not -180.0 <= lon <= 180.0:
            raise InvalidInput(_("Longitude must be between -180 and 180 degrees."), field="bbox")
    for lat in (min_lat, max_lat):
        if not -90.0 <= lat <= 90.0:
            raise InvalidInput(_("Latitude must be between -90 and 90 degrees."), field="bbox")
    if min_lon > max_lon or min_lat > max_lat:
        raise InvalidInput(_("bbox minimum must not be greater than its maximum."), field="bbox")
    return (min_lon, min_lat, max_lon, max_lat)
