"""A deviation drawn as a line (a dark footpath) or an area (an overgrown slope) instead of a point.

The shape is kept as GeoJSON on the deviation. Its point (lon, lat) becomes the shape's *anchor*: the middle of
a line, measured along it, or a point inside an area. Everything that works on points keeps working on the
anchor, and the statistics that claim significance (hotspots) count each deviation once, there.

What needs the true shape reads what is derived here:
- its extent, which the spatial index holds, so a map view or a box filter finds a line that crosses it;
- the H3 hexagons it lies in (DeviationCell), so hexagon maps count it where it lies.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import h3
import shapely
from django.utils.translation import gettext as _
from h3.api import basic_int as h3_int
from shapely.geometry import LineString, Polygon, shape
from shapely.geometry.base import BaseGeometry

from lagesbild import geometry
from lagesbild.deviations.derived import H3_RESOLUTIONS
from lagesbild.errors import InvalidInput

KINDS = ("LineString", "Polygon")
# A deviation is a place's problem, not a district's: a footpath, a slope, a car park. Larger shapes would
# count in hundreds of hexagons and swamp the map.
MAX_CORNERS = 500
MAX_LENGTH_M = 5_000
MAX_AREA_M2 = 2_000_000
# An area's outline, and any shape's extent: a thin winding area would otherwise lie in as many hexagons as a
# district (and a forum without an area would accept a shape across the country).
MAX_OUTLINE_M = 10_000
MAX_EXTENT_M = 5_000
MIN_LENGTH_M = 1.0
MIN_AREA_M2 = 1.0
# A line is sampled this often (in degrees: 1.7 to 3.3 m in Sweden) to find the hexagons it passes through: well
# under the edge of the finest hexagon kept (65 m), so only a corner clipped by less than that is missed.
SAMPLE_DEGREES = 0.00003


@dataclass(frozen=True)
class DeviationShape:
    geojson: dict[str, Any]  # plain GeoJSON, coordinates rounded to 7 decimals (about a centimetre)
    lon: float  # the anchor
    lat: float
    extent: geometry.BBox
    length_m: float  # a line's length, an area's outline
    area_m2: float  # 0 for a line


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, field="shape")


def parse(value: Any, forum_area: dict[str, Any] | None = None) -> DeviationShape:
    """Check a GeoJSON LineString or Polygon drawn for a deviation, and work out its anchor and extent.

    Refused: anything else, coordinates outside WGS84, an outline that crosses itself or has holes, more than
    MAX_CORNERS corners, a line longer than MAX_LENGTH_M or an area larger than MAX_AREA_M2, and a shape that
    leaves the forum's area.
    """
    if isinstance(value, str):
        if len(value) > 100_000:
            raise _invalid(_("The line or area is not valid GeoJSON."))
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid(_("The line or area is not valid GeoJSON.")) from None
    if not isinstance(value, dict) or value.get("type") not in KINDS:
        raise _invalid(_("The shape must be a GeoJSON LineString (a line) or Polygon (an area)."))
    coordinates = value.get("coordinates")
    try:
        geom = _geometry(value["type"], coordinates)
    except _Refused as refused:
        raise _invalid(str(refused)) from None
    except (TypeError, ValueError, IndexError, shapely.errors.GEOSException):
        raise _invalid(_("The line or area is not valid GeoJSON.")) from None
    if shapely.get_num_coordinates(geom) > MAX_CORNERS:
        raise _invalid(_("The line or area has too many corners (at most %(max)d).") % {"max": MAX_CORNERS})
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon and max_lon <= 180 and -90 <= min_lat and max_lat <= 90):
        raise _invalid(_("The corners must be longitude and latitude in WGS84 degrees."))
    # The extent in degrees as well as in metres: the hexagons are found in degrees, and a shape round a pole
    # or across the 180th meridian is short in metres but spans the globe in degrees.
    metres_per_degree = 111_320
    if max(abs(min_lat), abs(max_lat)) > 85 or max(
            (max_lat - min_lat) * metres_per_degree,
            (max_lon - min_lon) * metres_per_degree * math.cos(math.radians(max(abs(min_lat), abs(max_lat))))
    ) > MAX_EXTENT_M:
        raise _invalid(_("The line or area stretches over more than %(max)s km. Report a smaller one, or several.")
                       % {"max": f"{MAX_EXTENT_M / 1000:g}"})
    metric = geometry.sweref99tm_shape(geom)
    west, south, east, north = metric.bounds
    # Far outside the projection's zone its numbers run to infinity: that is too far, too.
    if not all(map(math.isfinite, (west, south, east, north))) or max(east - west, north - south) > MAX_EXTENT_M:
        raise _invalid(_("The line or area stretches over more than %(max)s km. Report a smaller one, or several.")
                       % {"max": f"{MAX_EXTENT_M / 1000:g}"})
    if isinstance(geom, Polygon):
        if not geom.is_valid:
            # Corners on one line are no area at all, though shapely calls that crossing itself.
            if geom.convex_hull.area < 1e-10:
                raise _invalid(_("The area is too small: draw at least three corners apart from each other."))
            raise _invalid(_("The area's outline crosses itself."))
        if metric.area < MIN_AREA_M2:
            raise _invalid(_("The area is too small: draw at least three corners apart from each other."))
        if metric.area > MAX_AREA_M2:
            raise _invalid(_("The area is larger than %(max)s km². Report a smaller area, or several.")
                           % {"max": f"{MAX_AREA_M2 / 1e6:g}"})
        if metric.length > MAX_OUTLINE_M:
            raise _invalid(_("The area's outline is longer than %(max)s km. Draw it with fewer turns, or report "
                             "several areas.") % {"max": f"{MAX_OUTLINE_M / 1000:g}"})
    elif metric.length < MIN_LENGTH_M:
        raise _invalid(_("The line is too short: draw at least two points apart from each other."))
    if metric.length > MAX_LENGTH_M and isinstance(geom, LineString):
        raise _invalid(_("The line is longer than %(max)s km. Report a shorter stretch, or several.")
                       % {"max": f"{MAX_LENGTH_M / 1000:g}"})
    if forum_area and not geometry.area_covers(forum_area, geom):
        raise _invalid(_("The line or area goes outside the forum's area."))
    anchor = _anchor(geom)
    return DeviationShape(geojson=_plain(geom), lon=round(anchor[0], 7), lat=round(anchor[1], 7),
                          extent=(min_lon, min_lat, max_lon, max_lat), length_m=round(metric.length, 1),
                          area_m2=round(metric.area, 1) if isinstance(geom, Polygon) else 0.0)


class _Refused(ValueError):
    """A shape that is GeoJSON, but not one a deviation can have; the message says why."""


def _geometry(kind: str, coordinates: Any) -> BaseGeometry:
    if not isinstance(coordinates, list):
        raise ValueError("coordinates")

    def pair(value: Any) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) not in (2, 3) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise ValueError("position")
        return round(float(value[0]), 7), round(float(value[1]), 7)

    if kind == "LineString":
        points = [pair(p) for p in coordinates]
        # Two clicks on one spot are one corner.
        points = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        if len(points) < 2:
            raise _Refused(_("The line is too short: draw at least two points apart from each other."))
        return LineString(points)
    if len(coordinates) > 1:
        raise _Refused(_("An area is one outline, without holes."))
    if len(coordinates) != 1:
        raise ValueError("no ring")
    ring = [pair(p) for p in coordinates[0]]
    ring = [p for i, p in enumerate(ring) if i == 0 or p != ring[i - 1]]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise _Refused(_("The area is too small: draw at least three corners apart from each other."))
    return Polygon(ring)


def _anchor(geom: BaseGeometry) -> tuple[float, float]:
    """The middle of a line, measured along it (in metres, so the middle is where a person would say it is);
    for an area, a point inside it (the centroid when it lies inside, as for most drawn areas)."""
    if isinstance(geom, LineString):
        metric = geometry.sweref99tm_shape(geom)
        # The same fraction along the line in degrees: exact per segment, close enough between them.
        distances = [0.0]
        for a, b in zip(metric.coords[:-1], metric.coords[1:], strict=True):
            distances.append(distances[-1] + math.dist(a, b))
        half = distances[-1] / 2
        for i in range(1, len(distances)):
            if distances[i] >= half:
                share = (half - distances[i - 1]) / max(distances[i] - distances[i - 1], 1e-12)
                (x1, y1), (x2, y2) = geom.coords[i - 1], geom.coords[i]
                return x1 + (x2 - x1) * share, y1 + (y2 - y1) * share
        return geom.coords[0]
    centroid = geom.centroid
    point = centroid if geom.covers(centroid) else geom.representative_point()
    return point.x, point.y


def _plain(geom: BaseGeometry) -> dict[str, Any]:
    if isinstance(geom, LineString):
        return {"type": "LineString", "coordinates": [[x, y] for x, y in geom.coords]}
    assert isinstance(geom, Polygon)
    return {"type": "Polygon", "coordinates": [[[x, y] for x, y in geom.exterior.coords]]}


def cells(geojson: dict[str, Any]) -> dict[int, set[int]]:
    """The H3 hexagons the shape lies in, at each kept resolution: those a line passes through, and those an
    area overlaps. The coarser ones are the parents of the finest, as for a point (derived.h3_cells)."""
    finest = max(H3_RESOLUTIONS)
    geom = shape(geojson)
    found: set[int] = set()
    if isinstance(geom, Polygon):
        outline = h3.LatLngPoly([(lat, lon) for lon, lat in geom.exterior.coords[:-1]])
        found.update(h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(outline, finest, contain="overlap"))
        line = geom.exterior
    else:
        line = geom
    # The outline (or the line) itself, sampled: a thin area can slip between hexagon centres.
    for lon, lat in shapely.segmentize(line, SAMPLE_DEGREES).coords:
        found.add(h3_int.latlng_to_cell(lat, lon, finest))
    return {resolution: ({h3_int.cell_to_parent(c, resolution) for c in found} if resolution < finest else found)
            for resolution in H3_RESOLUTIONS}


def describe(geojson: dict[str, Any] | None) -> str:
    """"Line, 240 m" or "Area, 1 200 m²", for lists and the detail."""
    if not geojson:
        return ""
    metric = geometry.sweref99tm_shape(shape(geojson))
    if geojson.get("type") == "LineString":
        return _("Line, %(length)s m") % {"length": _grouped(metric.length)}
    return _("Area, %(area)s m²") % {"area": _grouped(metric.area)}


def _grouped(value: float) -> str:
    rounded = round(value, -1) if value >= 100 else round(value)
    return f"{rounded:,.0f}".replace(",", "\u00a0")
