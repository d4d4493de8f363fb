"""Vector tiles (Mapbox Vector Tile) of a member's filtered deviations, in the WebMercatorQuad tile matrix set.

Up to zoom 12, and wherever a tile would hold more than `MAX_POINTS` deviations, a tile carries H3 hexagons with
counts instead of points, so no tile carries every point of a city: its size follows the number of hexagons on
screen, not the number of deviations. Two layers then:

- `cells`: each hexagon that meets the tile, as a polygon with its `count` (of the whole hexagon: the rows are
  read from a box one hexagon wider than the tile), drawn by both tiles it straddles so it has no seam;
- `cell-centres`: the same hexagons as points at their centres, each in the one tile that holds its centre,
  for a label that appears once.

Past that, the `deviations` layer has every deviation (a point, or the line or area it was drawn as), with its
`id`, main `category` and `status`; the hexagon counts count a line or area in every hexagon it crosses. On PostgreSQL
PostGIS encodes it (`ST_AsMVT`); on SQLite mapbox-vector-tile does. The hexagon layers are encoded here.

Hexagons up to resolution 8 (zoom 11) are read from the pre-aggregated counts (deviations.counts) when the filter
is a period and categories; finer ones, and any other filter, are counted from the rows in the tile's box.

A hexagon layer asks for `hexagons=true`: hexagons at every zoom, never points (the map page's "Hexagons with
counts" draws them).

Everything is read through `visible_deviations` and the map's filter: the tile is the lägesbild the member may
see. A process keeps the tiles it built until the forum's data version moves; the ETag is the tile's fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import h3
import mapbox_vector_tile
import numpy as np
import shapely
import shapely.geometry
from django.db import connections
from django.db.models import Count, F, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from pyproj import Transformer

from lagesbild import data_version
from lagesbild.deviations import counts
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import NotFound
from lagesbild.forums.models import Membership

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
POINT_ZOOM = 13  # from here on, points, unless a tile would hold more than MAX_POINTS
MAX_POINTS = 5000
WORLD = 20037508.342789244  # half the width of the Web Mercator plane, in metres
# The hexagon resolution for each zoom: a hexagon is about 15 to 40 pixels across on a 512-pixel tile.
RESOLUTION = {0: 3, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4, 6: 5, 7: 6, 8: 6, 9: 7, 10: 8, 11: 8, 12: 9}
DENSE_RESOLUTION = 10  # for a tile past POINT_ZOOM that holds too many points
# For a hexagon layer (`hexagons=true`), past RESOLUTION's zooms: the same sizes as the patterns' hexagons.
HEXAGON_RESOLUTION = {13: 9, 14: 10}
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# Bumped when the tiles' content changes shape, so browsers do not keep a tile of the old kind.
SCHEMA = "1"


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    def check(self) -> None:
        if not (0 <= self.z <= MAX_ZOOM and 0 <= self.x < 2**self.z and 0 <= self.y < 2**self.z):
            raise NotFound(_("No such tile: zoom is 0 to %(max)s, and x and y 0 to 2^zoom - 1.") % {"max": MAX_ZOOM})

    def mercator_bounds(self) -> tuple[float, float, float, float]:
        size = 2 * WORLD / 2**self.z
        west = -WORLD + self.x * size
        north = WORLD - self.y * size
        return (west, north - size, west + size, north)

    def lonlat_bounds(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """West, south, east, north in degrees, widened by `margin` (a share of the tile's width).

        Widened in metres and held inside the world first: past ±180° a longitude would wrap to the other side
        (a zoom-0 tile would become a box from 176° to -176°, holding nothing).
        """
        west, south, east, north = self.mercator_bounds()
        pad = (east - west) * margin
        west, south = max(west - pad, -WORLD), max(south - pad, -WORLD)
        east, north = min(east + pad, WORLD), min(north + pad, WORLD)
        lon0, lat0 = _to_lonlat().transform(west, south)
        lon1, lat1 = _to_lonlat().transform(east, north)
        return (max(lon0, -180.0), max(lat0, -85.06), min(lon1, 180.0), min(lat1, 85.06))


# Tiles built lately in this process, by forum data version, reader's organisation, tile and filter.
kept = data_version.Kept()


def tile_for(membership: Membership, flt: deviations.DeviationFilter, tile: Tile,
             hexagons: bool = False) -> tuple[bytes, str]:
    """The tile and its ETag.

    The forum's data version says when a tile must be built again; the ETag is a fingerprint of the tile's own
    bytes, so a reader's ETag changes only when what they see changes (a version alone would also move when a
    deviation they may not see is written, and tell them so).
    """
    tile.check()
    version = data_version.data_version(membership.forum_id)
    # Keyed by the filter as read and checked, not the query string (where `q=a%26status%3Dnew` and
    # `q=a&status=new` would be one text).
    key = (f"{SCHEMA}|{membership.forum_id}|{version}|{membership.organisation_id}|{tile.z}/{tile.x}/{tile.y}|"
           f"{hexagons}|{flt!r}")
    data = kept.get(key)
    if data is None:
        data = build(membership, flt, tile, hexagons)
        kept.put(key, data)
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def build(membership: Membership, flt: deviations.DeviationFilter, tile: Tile, hexagons: bool = False) -> bytes:
    """The tile: points or hexagons of what the member may see under the filter (only hexagons if asked)."""
    if hexagons:
        resolution = RESOLUTION.get(tile.z) or HEXAGON_RESOLUTION.get(tile.z, DENSE_RESOLUTION)
        return _cells(membership, flt, tile, resolution)
    if tile.z >= POINT_ZOOM:
        inside = _in_box(membership, flt, tile.lonlat_bounds())
        if inside[: MAX_POINTS + 1].count() <= MAX_POINTS:
            return _points(inside, tile)
        return _cells(membership, flt, tile, DENSE_RESOLUTION)
    return _cells(membership, flt, tile, RESOLUTION[tile.z])


def _in_box(membership: Membership, flt: deviations.DeviationFilter,
            bounds: tuple[float, float, float, float]) -> QuerySet[Deviation]:
    """What the member may see under the filter, in the box: through the spatial index where the box is small
    (the GiST index on PostgreSQL, the R*Tree on SQLite), so a tile far from the forum's deviations is quick."""
    visible = deviations.visible_deviations(membership)
    box = bounds
    if flt.bbox:  # the reader's own box as well
        box = (max(box[0], flt.bbox[0]), max(box[1], flt.bbox[1]), min(box[2], flt.bbox[2]),
               min(box[3], flt.bbox[3]))
        if box[0] > box[2] or box[1] > box[3]:
            return visible.none()
    return deviations.apply_filter(visible, membership.forum, replace(flt, bbox=box))


def _main_category() -> Coalesce:
    return Coalesce(F("category__parent__key"), F("category__key"))


def _points(queryset: QuerySet[Deviation], tile: Tile) -> bytes:
    if connections[queryset.db].vendor == "postgresql":
        return _points_postgis(queryset, tile)
    # In a fixed order, so the same deviations make the same bytes (the ETag is their fingerprint).
    rows = list(queryset.annotate(main=_main_category()).order_by("id")
                .values_list("id", "lon", "lat", "main", "status", "shape"))
    xs, ys = _to_mercator().transform([r[1] for r in rows], [r[2] for r in rows])
    features = [{"geometry": _mercator_wkt(drawn) if drawn else f"POINT ({x} {y})",
                 "properties": {"id": pk, "category": main, "status": status}}
                for (pk, _lon, _lat, main, status, drawn), x, y in zip(rows, xs, ys, strict=True)]
    return _encode([("deviations", features)], tile)


def _mercator_wkt(drawn: dict[str, Any]) -> str:
    """A line or area in Web Mercator metres, as WKT for the tile encoder."""
    return shapely.transform(shapely.geometry.shape(drawn), lambda xy: np.column_stack(
        _to_mercator().transform(xy[:, 0], xy[:, 1]))).wkt


def _points_postgis(queryset: QuerySet[Deviation], tile: Tile) -> bytes:
    """PostGIS encodes the points itself: no row is turned into a Python object."""
    selected = queryset.annotate(main=_main_category()).extra(
        select={"mvt_geom": "ST_AsMVTGeom(ST_Transform(deviations_deviation.geom, 3857), "
                            "ST_TileEnvelope(%s, %s, %s), %s, %s, true)"},
        select_params=(tile.z, tile.x, tile.y, EXTENT, BUFFER),
    ).order_by("id").values("id", "main", "status", "mvt_geom")
    sql, params = selected.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT ST_AsMVT(t, 'deviations', %s, 'mvt_geom') FROM "
            f"(SELECT id, main AS category, status, mvt_geom FROM ({sql}) AS s) AS t",
            [EXTENT, *params])
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def _parent_expression(resolution: int, column: str | None = None) -> Any:
    """The H3 cell at `resolution` (≤ 10) of each deviation, in SQL: from its h3_* column, or from `column` (a
    line's or area's cell, stored at the same resolutions)."""
    column = column or ("h3_8" if resolution <= 8 else "h3_9" if resolution == 9 else "h3_10")
    return counts.parent_cell(resolution, column)


def _cells(membership: Membership, flt: deviations.DeviationFilter, tile: Tile, resolution: int) -> bytes:
    """Hexagon counts: the whole of each hexagon that meets the tile, read from a box one hexagon wider."""
    west, south, east, north = tile.lonlat_bounds()
    width = max(east - west, 1e-9)
    # A hexagon is at most twice its edge across; the edge in degrees of latitude, widened for longitude.
    edge = h3.average_hexagon_edge_length(resolution, unit="km") / 111.0
    margin = 2.2 * edge / max(math.cos(math.radians(max(abs(south), abs(north)))), 0.05) / width
    if resolution <= max(counts.RESOLUTIONS) and flt.bbox is None and counts.simple_enough(flt):
        found = _kept_cell_counts(membership, flt, tile.lonlat_bounds(margin), resolution)
    else:
        found = _counted_cell_counts(membership, flt, tile.lonlat_bounds(margin), resolution)
    return _hexagon_tile(found, tile)


def _hexagon_tile(found: Counter[int], tile: Tile) -> bytes:
    """The `cells` and `cell-centres` layers of the hexagons that meet the tile, encoded here rather than by
    mapbox-vector-tile: a city tile holds hundreds of hexagons, and going through shapely for each cost more
    than reading the counts. A hexagon needs no clipping (it reaches at most a hexagon past the tile's edge, and
    MapLibre clips what it draws) and is convex, so its ring's winding is one sign to check."""
    west, south, east, north = tile.lonlat_bounds()
    middle = (west + east) / 2
    kept: list[tuple[str, int, list[tuple[float, float]]]] = []
    for cell, count in sorted(found.items()):
        if count <= 0:
            continue
        name, outline, (min_lat, min_lon, max_lat, max_lon) = _outline(cell)
        lon = outline[-1][1]
        # The whole hexagon on the side of the antimeridian nearer the tile.
        shift = 360.0 * round((middle - lon) / 360.0)
        if max_lon + shift < west or min_lon + shift > east or max_lat < south or min_lat > north:
            continue
        points = [(p_lat, p_lon + shift) for p_lat, p_lon in outline] if shift else list(outline)
        kept.append((name, count, points))  # its corners, then its centre
    if not kept:
        return b""
    # Every corner and centre in one go, in Web Mercator (by its formula: a longitude past ±180 stays there,
    # where pyproj would wrap it) and then the tile's 4096 units, y down.
    lats_lons = np.array([point for _name, _count, points in kept for point in points])
    xs = lats_lons[:, 1] * WORLD / 180.0
    ys = np.log(np.tan(np.pi / 4 + np.radians(np.clip(lats_lons[:, 0], -85.06, 85.06)) / 2)) * WORLD / np.pi
    left, bottom, right, top = tile.mercator_bounds()
    units_x = np.rint((xs - left) / (right - left) * EXTENT).astype(np.int64).tolist()
    units_y = np.rint((top - ys) / (top - bottom) * EXTENT).astype(np.int64).tolist()
    cells, centres = _Layer("cells"), _Layer("cell-centres")
    at = 0
    for name, count, points in kept:
        corners = len(points) - 1
        ring = [(units_x[at + k], units_y[at + k]) for k in range(corners)]
        centre_lat, centre_lon = points[-1]
        centre = (units_x[at + corners], units_y[at + corners])
        if centre_lat > 85.06 or centre_lat < -85.06:
            at += len(points)
            continue  # beyond Web Mercator's square
        at += len(points)
        ring = [p for k, p in enumerate(ring) if p != ring[k - 1]]  # corners that fell on one unit
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True))
        if len(ring) >= 3 and area != 0:
            # An outer ring has a positive area in tile units (the MVT specification, 4.3.4.4).
            cells.add(3, _geometry(ring if area > 0 else ring[::-1], close=True), name, count)
        if west <= centre_lon < east and south < centre_lat <= north:  # labelled by one tile only
            centres.add(1, _geometry([centre], close=False), name, count)
    result = vector_tile_pb2.tile()
    result.layers.extend(layer.layer for layer in (cells, centres) if layer.layer.features)
    return result.SerializeToString() if result.layers else b""


class _Layer:
    """One layer of a vector tile whose features carry a hexagon's `cell` and `count`."""

    def __init__(self, name: str) -> None:
        self.layer = vector_tile_pb2.tile.layer()
        self.layer.name, self.layer.version, self.layer.extent = name, 2, EXTENT
        self.layer.keys.extend(["cell", "count"])
        self.values: dict[tuple[type, Any], int] = {}

    def _value(self, value: str | int) -> int:
        key = (type(value), value)
        if key not in self.values:
            self.values[key] = len(self.values)
            added = self.layer.values.add()
            if isinstance(value, str):
                added.string_value = value
            else:
                added.int_value = value
        return self.values[key]

    def add(self, kind: int, geometry: list[int], cell: str, count: int) -> None:
        feature = self.layer.features.add()
        feature.type = kind  # 1 a point, 3 a polygon
        feature.tags.extend([0, self._value(cell), 1, self._value(count)])
        feature.geometry.extend(geometry)


def _geometry(points: list[tuple[int, int]], close: bool) -> list[int]:
    """MVT geometry commands: MoveTo the first point, LineTo the rest, ClosePath for a ring; each position
    relative to the last, zigzag-encoded."""

    def zigzag(n: int) -> int:
        return (n << 1) ^ (n >> 63)

    x0, y0 = points[0]
    commands = [1 | (1 << 3), zigzag(x0), zigzag(y0)]
    if len(points) > 1:
        commands.append(2 | ((len(points) - 1) << 3))
        for (px, py), (x, y) in itertools.pairwise(points):
            commands += [zigzag(x - px), zigzag(y - py)]
    if close:
        commands.append(7 | (1 << 3))
    return commands


def _counted_cell_counts(membership: Membership, flt: deviations.DeviationFilter,
                         box: tuple[float, float, float, float], resolution: int) -> Counter[int]:
    """Hexagon -> how many deviations the member may see there under the filter, counted from the rows in `box`."""
    counted = _in_box(membership, flt, box).exclude(h3_8__isnull=True)
    found = Counter(dict(counted.filter(shape_min_lon__isnull=True).annotate(cell=_parent_expression(resolution))
                         .values("cell").order_by().annotate(n=Count("id")).values_list("cell", "n")))
    # A line or area counts in every hexagon it lies in (once, however many of its finer cells share it).
    stored = 8 if resolution <= 8 else resolution
    drawn = (counted.filter(shape_min_lon__isnull=False, cells__resolution=stored)
             .annotate(cell=_parent_expression(resolution, "cells__cell")).values("cell").order_by()
             .annotate(n=Count("id", distinct=True)).values_list("cell", "n"))
    for cell, n in drawn:
        found[cell] += n
    return found


def _kept_cell_counts(membership: Membership, flt: deviations.DeviationFilter,
                      box: tuple[float, float, float, float], resolution: int) -> Counter[int]:
    """The same as `_counted_cell_counts`, from the pre-aggregated counts (deviations.counts) where the filter
    is a period and categories: a city's tile at zoom 10 reads some 24,000 counts (month by month)
    rather than a million rows.

    The counts hold each deviation once, at its anchor; a tile counts a line or area in every hexagon it
    crosses. So the lines and areas in the box (few among the points) are taken away at their anchors and
    added where they lie."""
    forum = membership.forum
    ids = frozenset(deviations.category_ids_with_children(forum, flt.categories)) if flt.categories else None
    found = counts.cell_totals(counts.Question(membership, flt.start, flt.end, ids, resolution,
                                               counts.areas_of(box)))
    # Only those that meet the box: a hexagon that meets the tile lies inside it, and so does any line or area
    # in it, or anchored in it.
    drawn = _in_box(membership, flt, box).filter(shape_min_lon__isnull=False, h3_8__isnull=False)
    for cell, n in (drawn.annotate(cell=_parent_expression(resolution)).values("cell").order_by()
                    .annotate(n=Count("id")).values_list("cell", "n")):
        found[cell] -= n
    for cell, n in (drawn.filter(cells__resolution=8).annotate(cell=_parent_expression(resolution, "cells__cell"))
                    .values("cell").order_by().annotate(n=Count("id", distinct=True)).values_list("cell", "n")):
        found[cell] += n
    return found


@lru_cache(maxsize=16384)
def _outline(cell: int) -> tuple[str, tuple[tuple[float, float], ...], tuple[float, float, float, float]]:
    """A hexagon's name, its corners and then its centre as (lat, lon), and their extent: the same for every
    tile and request, so a panning map's hexagons are worked out once (16,384 of them, some 20 MB, are kept).
    A hexagon across the antimeridian has corners near +180 and -180: each is taken on the side of its centre."""
    name = h3.int_to_str(cell)
    lat, lon = h3.cell_to_latlng(name)
    corners = [(p_lat, p_lon + 360.0 * round((lon - p_lon) / 360.0)) for p_lat, p_lon in h3.cell_to_boundary(name)]
    lats, lons = [p[0] for p in corners], [p[1] for p in corners]
    return name, (*corners, (lat, lon)), (min(lats), min(lons), max(lats), max(lons))


def _encode(layers: list[tuple[str, list[dict[str, Any]]]], tile: Tile) -> bytes:
    present = [{"name": name, "features": features} for name, features in layers if features]
    if not present:
        return b""
    data: bytes = mapbox_vector_tile.encode(
        present, default_options={"quantize_bounds": tile.mercator_bounds(), "extents": EXTENT})
    return data


@lru_cache(maxsize=1)
def _to_mercator() -> Transformer:
    return Transformer.from_crs(4326, 3857, always_xy=True)


@lru_cache(maxsize=1)
def _to_lonlat() -> Transformer:
    return Transformer.from_crs(3857, 4326, always_xy=True)

