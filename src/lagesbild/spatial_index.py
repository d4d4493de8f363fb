"""The only backend-specific storage code: a spatial index on deviation points, and the bbox filter.

- SQLite: an R*Tree virtual table kept in step with deviations_deviation by triggers.
- PostgreSQL: a PostGIS geometry column generated from lon/lat, with a GiST index.

`ensure_spatial_index` is idempotent. It runs from a migration and again after every migrate, because
Django's SQLite schema editor rebuilds a table on some ALTERs and drops its triggers with it.
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, IntegerField, Model, QuerySet
from django.db.models.expressions import RawSQL
from shapely.geometry import shape

from lagesbild.geometry import BBox

TABLE = "deviations_deviation"
RTREE = "deviations_deviation_rtree"

_M = TypeVar("_M", bound=Model)

_SQLITE_STATEMENTS = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {RTREE} USING rtree(id, min_lon, max_lon, min_lat, max_lat)",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_insert AFTER INSERT ON {TABLE} BEGIN
        INSERT OR REPLACE INTO {RTREE} VALUES (new.id, new.lon, new.lon, new.lat, new.lat); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_update AFTER UPDATE OF lon, lat ON {TABLE} BEGIN
        UPDATE {RTREE} SET min_lon = new.lon, max_lon = new.lon, min_lat = new.lat, max_lat = new.lat
        WHERE id = new.id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_delete AFTER DELETE ON {TABLE} BEGIN
        DELETE FROM {RTREE} WHERE id = old.id; END""",
]

_POSTGIS_STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    f"""ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326)
        GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_geom_gist ON {TABLE} USING gist (geom)",
]


def ensure_spatial_index(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                           [f"{RTREE}_%"])
            had_triggers = cursor.fetchone()[0] == 3
            for statement in _SQLITE_STATEMENTS:
                cursor.execute(statement)
            if not had_triggers:
                # Rows written while the triggers were missing are indexed now.
                cursor.execute(f"DELETE FROM {RTREE}")
                cursor.execute(f"INSERT INTO {RTREE} SELECT id, lon, lon, lat, lat FROM {TABLE}")
        elif connection.vendor == "postgresql":
            for statement in _POSTGIS_STATEMENTS:
                cursor.execute(statement)
        else:
            raise RuntimeError(f"Lägesbild supports SQLite and PostgreSQL, not {connection.vendor}.")


class CellIndex(Func):
    """floor(expression), evaluated natively on both backends, for grid cell numbers.

    Django's Floor runs a Python function per row on SQLite. Truncation equals floor for positive
    numbers, so SQLite shifts the value by 2**30 (more than any lon/lat cell number) and casts.
    """

    function = "FLOOR"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "(CAST(%(expressions)s + 1073741824 AS INTEGER) - 1073741824)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def filter_bbox(queryset: QuerySet[_M], bbox: BBox, *, selective: bool = True) -> QuerySet[_M]:
    """Deviations whose point lies in the box, using the backend's spatial index.

    `selective=False` says the box covers most of the forum. SQLite's planner cannot tell how many rows
    an R*Tree match returns and would then fetch nearly every row through it; without it, it takes the
    (forum, observed_at) index and reads rows in time order instead, which is several times faster.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    vendor = connections[queryset.db].vendor
    exact = queryset.filter(lon__gte=min_lon, lon__lte=max_lon, lat__gte=min_lat, lat__lte=max_lat)
    if vendor == "sqlite" and not selective:
        return exact
    if vendor == "sqlite":
        # The R*Tree stores 32-bit floats rounded outwards, so the exact comparison above still applies.
        rtree_ids = RawSQL(  # noqa: S611 - fixed SQL, values passed as parameters
            f"SELECT id FROM {RTREE} WHERE max_lon >= %s AND min_lon <= %s AND max_lat >= %s AND min_lat <= %s",
            (min_lon, max_lon, min_lat, max_lat),
        )
        return exact.filter(id__in=rtree_ids)
    if vendor == "postgresql":
        return exact.extra(  # noqa: S610 - fixed SQL, values passed as parameters
            where=[f"{TABLE}.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"],
            params=[min_lon, min_lat, max_lon, max_lat],
        )
    raise RuntimeError(f"Unsupported database: {vendor}")


# --- Points in a polygon ---------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _polygon_edges(area_json: str) -> tuple[tuple[float, float, float, float], ...]:
    """Every edge of every ring (outer and holes) of a GeoJSON Polygon or MultiPolygon."""
    geom = shape(json.loads(area_json))
    polygons = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    edges: list[tuple[float, float, float, float]] = []
    for polygon in polygons:
        for ring in [polygon.exterior, *polygon.interiors]:
            edges.extend((x1, y1, x2, y2) for (x1, y1), (x2, y2) in itertools.pairwise(ring.coords))
    return tuple(edges)


def point_in_polygon(area_json: str, x: float, y: float) -> bool:
    """In the polygon or on its outline. Ray casting (even-odd, so holes count out) in plain Python: SQLite
    calls this once per candidate row, and it is several times faster than a call into GEOS."""
    inside = False
    for x1, y1, x2, y2 in _polygon_edges(area_json):
        if (x2 - x1) * (y - y1) == (y2 - y1) * (x - x1) \
                and min(y1, y2) <= y <= max(y1, y2) and min(x1, x2) <= x <= max(x1, x2):
            return True  # on the outline
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _sqlite_covers(area_json: str, lon: float, lat: float) -> int:
    return int(point_in_polygon(area_json, lon, lat))


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """SQLite has no spatial functions; this gives it the one we need, in Python, per connection."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("lagesbild_covers", 3, _sqlite_covers, deterministic=True)


def filter_in_polygon(queryset: QuerySet[_M], polygon: dict[str, Any], bbox: BBox, *,
                      selective: bool = True) -> QuerySet[_M]:
    """Deviations whose point lies in the GeoJSON polygon (or on its edge): the box first, through the
    spatial index, then the exact test in the database (PostGIS, or our function on SQLite)."""
    area_json = json.dumps(polygon, sort_keys=True)
    in_box = filter_bbox(queryset, bbox, selective=selective)
    vendor = connections[queryset.db].vendor
    if vendor == "sqlite":
        return in_box.extra(  # noqa: S610 - fixed SQL, the polygon passed as a parameter
            where=[f"lagesbild_covers(%s, {TABLE}.lon, {TABLE}.lat)"], params=[area_json])
    if vendor == "postgresql":
        return in_box.extra(  # noqa: S610 - fixed SQL, the polygon passed as a parameter
            where=[f"ST_Covers(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), {TABLE}.geom)"], params=[area_json])
    raise RuntimeError(f"Unsupported database: {vendor}")
