"""The only backend-specific storage code: a spatial index on deviations, and the bbox and polygon filters.

- SQLite: an R*Tree virtual table kept in step with deviations_deviation by triggers.
- PostgreSQL: a PostGIS geometry column generated from lon/lat, or from the line or area drawn (`shape`),
  with a GiST index.

A deviation drawn as a line or area is indexed by its extent, and a filter finds it where the shape itself
meets the box or polygon (not only its anchor point).

`ensure_spatial_index` is idempotent. It runs from a migration and again after every migrate, because
Django's SQLite schema editor rebuilds a table on some ALTERs and drops its triggers with it.
"""

from __future__ import annotations

import itertools
import json
import logging
from functools import lru_cache
from typing import Any, TypeVar

import shapely
from django.apps import apps
from django.db import Error, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Func, IntegerField, Model, QuerySet
from django.db.models.expressions import RawSQL
from shapely.geometry import Point, box, shape
from shapely.geometry.base import BaseGeometry

from lagesbild.geometry import BBox, sweref99tm_shape

logger = logging.getLogger(__name__)
TABLE = "deviations_deviation"
RTREE = "deviations_deviation_rtree"

_M = TypeVar("_M", bound=Model)

# A point's extent is the point; a line's or area's is stored with it (shape_min_lon …).
_EXTENT = ("coalesce({row}.shape_min_lon, {row}.lon), coalesce({row}.shape_max_lon, {row}.lon), "
           "coalesce({row}.shape_min_lat, {row}.lat), coalesce({row}.shape_max_lat, {row}.lat)")

_SQLITE_STATEMENTS = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {RTREE} USING rtree(id, min_lon, max_lon, min_lat, max_lat)",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_insert AFTER INSERT ON {TABLE} BEGIN
        INSERT OR REPLACE INTO {RTREE} VALUES (new.id, {_EXTENT.format(row="new")}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_update AFTER UPDATE OF lon, lat, shape_min_lon, shape_max_lon,
        shape_min_lat, shape_max_lat ON {TABLE} BEGIN
        INSERT OR REPLACE INTO {RTREE} VALUES (new.id, {_EXTENT.format(row="new")}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {RTREE}_delete AFTER DELETE ON {TABLE} BEGIN
        DELETE FROM {RTREE} WHERE id = old.id; END""",
]
SQLITE_TRIGGERS = [f"{RTREE}_insert", f"{RTREE}_update", f"{RTREE}_delete"]

# SQLite's (forum, observed_at) index holds each deviation's position too: a short period's rows are tested
# against the viewport in the index, and only those inside it are read from the table (filter_bbox). The model
# declares the index without them, as PostgreSQL keeps it: there the app's condition (a point inside the box,
# or a line or area meeting it) is an OR, which one B-tree cannot test. PostgreSQL has an index for each side
# of the OR instead (below), and combines them (a BitmapOr).
TIME_INDEX = "deviation_forum_observed"
TIME_INDEX_COLUMNS = ["forum_id", "observed_at", "lon", "lat", "shape_min_lon"]


def sqlite_indexes() -> dict[str, tuple[str, list[str]]]:
    """The indexes SQLite has wider than the models declare them, by name: (table, columns). The time index
    (above), and every index with INCLUDE columns: SQLite has no INCLUDE, so they go at the end of its key, and
    SQLite too answers from the index alone what PostgreSQL does (deviations.models)."""
    wide = {TIME_INDEX: (TABLE, TIME_INDEX_COLUMNS)}
    for model in apps.get_models():
        for index in model._meta.indexes:
            if index.include:
                fields = [model._meta.get_field(name) for name in [*index.fields, *index.include]]
                wide[index.name] = (model._meta.db_table, [f.column for f in fields if isinstance(f, Field)])
    return wide


_POSTGIS_STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    f"""ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS geom geometry(Geometry, 4326)
        GENERATED ALWAYS AS (CASE WHEN shape IS NULL THEN ST_SetSRID(ST_MakePoint(lon, lat), 4326)
                                  ELSE ST_SetSRID(ST_GeomFromGeoJSON(shape), 4326) END) STORED""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_geom_gist ON {TABLE} USING gist (geom)",
    # A viewport over a period: the points by time with their position, tested inside the index, and the lines
    # and areas (few) by their shape. Measured at 1 M deviations, a district's month: 46 -> 25 ms in the
    # database, where the time index and the whole GiST index each found far more rows than the two together.
    f"CREATE INDEX IF NOT EXISTS deviation_points_in_time ON {TABLE} (forum_id, observed_at, lon, lat) "
    "WHERE shape IS NULL",
    f"CREATE INDEX IF NOT EXISTS deviation_drawn_gist ON {TABLE} USING gist (geom) WHERE shape IS NOT NULL",
]


def rebuild_spatial_index(connection: BaseDatabaseWrapper) -> None:
    """Drop the index (triggers, or the generated column) and make it again: for a migration that changes what
    it holds."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for trigger in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        elif connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS geom")
    ensure_spatial_index(connection)


def drop_insert_trigger(connection: BaseDatabaseWrapper) -> None:
    """SQLite only, inside a bulk load's transaction (deviations.bulk), which then calls `index_added`."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS {RTREE}_insert")


def index_added(connection: BaseDatabaseWrapper, where: str) -> None:
    """Index the rows a bulk load wrote with the insert trigger off, and put the trigger back. The rows go in
    in the order of their hexagon, neighbours together: the R*Tree takes them several times faster so than in
    the order of the file, which sends every insert to another part of the tree."""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT OR REPLACE INTO {RTREE} SELECT id, {_EXTENT.format(row=TABLE)} FROM {TABLE} "
                       f"WHERE {where} ORDER BY h3_10")
        cursor.execute(_SQLITE_STATEMENTS[1])


def ensure_spatial_index(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return
        columns = {c.name for c in connection.introspection.get_table_description(cursor, TABLE)}
        if "shape_min_lon" not in columns:
            return  # migrating up from before lines and areas: the migration that adds them builds the index
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                           [f"{RTREE}_%"])
            had_triggers = cursor.fetchone()[0] == 3
            for statement in _SQLITE_STATEMENTS:
                cursor.execute(statement)
            # Django makes each index as the model says, with the table and again when it remakes the table. One
            # that a later migration has yet to make is left to it (its columns may not be there yet); the time
            # index is there from the first migrations on, so a missing one is made.
            for name, (table, wanted) in sqlite_indexes().items():
                cursor.execute(f"SELECT name FROM pragma_index_info('{name}') ORDER BY seqno")
                columns_now = [row[0] for row in cursor.fetchall()]
                if columns_now != wanted and (columns_now or name == TIME_INDEX):
                    with transaction.atomic(using=connection.alias):  # never left without the index
                        cursor.execute(f"DROP INDEX IF EXISTS {name}")
                        cursor.execute(f"CREATE INDEX {name} ON {table} ({', '.join(wanted)})")
            if not had_triggers:
                # Rows written while the triggers were missing are indexed now.
                cursor.execute(f"DELETE FROM {RTREE}")
                cursor.execute(f"INSERT INTO {RTREE} SELECT id, {_EXTENT.format(row=TABLE)} FROM {TABLE}")
        elif connection.vendor == "postgresql":
            for statement in _POSTGIS_STATEMENTS:
                cursor.execute(statement)
        else:
            raise RuntimeError(f"Lägesbild supports SQLite and PostgreSQL, not {connection.vendor}.")


def refresh_statistics(connection: BaseDatabaseWrapper) -> None:
    """SQLite: gather the statistics its planner chooses indexes by (PostgreSQL's autovacuum does so by itself).

    SQLite keeps none until ANALYZE runs, and without them it guessed badly at 1 M deviations: the whole city's
    aggregates took 370 ms instead of 70, a hexagon tile at zoom 10 3.7 s instead of 70 ms. ANALYZE reads every
    index (2 s at 1 M): it runs after every migration and bulk load, and nightly (`lagesbild retention`).
    Sampling (analysis_limit) took 20 ms but guessed a forum to hold a thousand rows, and whole-forum queries
    then went through an index, row by row, at twice the time."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def vacuum(connection: BaseDatabaseWrapper) -> None:
    """PostgreSQL, after many rows came at once (a big import, a restore): the planner's statistics, and the
    visibility map, without which the map's counts and the restricted rows are read through their tables rather
    than their indexes alone until autovacuum comes by. VACUUM skips the pages that are all visible already. It
    cannot run inside a transaction: there, and if it fails, it is left to autovacuum (the rows are kept)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) deviations_deviation, deviations_deviationcount")
    except Error:
        logger.warning("The deviations were not vacuumed; autovacuum will", exc_info=True)


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
    """Deviations that lie in the box (a point) or meet it (a line or area), using the backend's spatial index.

    `selective=False` says the box covers most of the forum. SQLite's planner cannot tell how many rows
    an R*Tree match returns and would then fetch nearly every row through it; without it, it takes the
    (forum, observed_at) index and reads rows in time order instead, which is several times faster.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    vendor = connections[queryset.db].vendor
    if vendor == "sqlite":
        # Points by their coordinates; a shape by its extent first, then exactly (CASE, so the Python function
        # runs only for the few shapes whose extent meets the box).
        # The first condition says less than the second, but only with columns of the (forum, observed_at, lon,
        # lat, shape_min_lon) index (TIME_INDEX): SQLite tests it there and reads from the table only the rows
        # in the box.
        # With the second alone, it read every row of the period to test it (a district's month: 140 ms of
        # rows from all over the city at 1 M; 30 ms with the first).
        exact = queryset.extra(  # noqa: S610 - fixed SQL, values passed as parameters
            where=[f"""(({TABLE}.lon >= %s AND {TABLE}.lon <= %s AND {TABLE}.lat >= %s AND {TABLE}.lat <= %s)
                        OR {TABLE}.shape_min_lon IS NOT NULL)""",
                   f"""(({TABLE}.shape_min_lon IS NULL AND {TABLE}.lon >= %s AND {TABLE}.lon <= %s
                         AND {TABLE}.lat >= %s AND {TABLE}.lat <= %s)
                        OR ({TABLE}.shape_min_lon IS NOT NULL AND CASE WHEN {TABLE}.shape_min_lon <= %s
                            AND {TABLE}.shape_max_lon >= %s AND {TABLE}.shape_min_lat <= %s
                            AND {TABLE}.shape_max_lat >= %s
                            THEN lagesbild_meets_box({TABLE}.shape, %s, %s, %s, %s) ELSE 0 END))"""],
            params=[min_lon, max_lon, min_lat, max_lat,
                    min_lon, max_lon, min_lat, max_lat, max_lon, min_lon, max_lat, min_lat,
                    min_lon, min_lat, max_lon, max_lat],
        )
        if not selective:
            return exact
        # The R*Tree stores 32-bit floats rounded outwards, so the exact comparison above still applies.
        rtree_ids = RawSQL(  # noqa: S611 - fixed SQL, values passed as parameters
            f"SELECT id FROM {RTREE} WHERE max_lon >= %s AND min_lon <= %s AND max_lat >= %s AND min_lat <= %s",
            (min_lon, max_lon, min_lat, max_lat),
        )
        return exact.filter(id__in=rtree_ids)
    if vendor == "postgresql":
        # && finds candidates through the index, but compares boxes of 32-bit floats rounded outwards: a point
        # is then tested on its coordinates, a line or area on its shape.
        return queryset.extra(  # noqa: S610 - fixed SQL, values passed as parameters
            where=[f"{TABLE}.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                   f"""(({TABLE}.shape IS NULL AND {TABLE}.lon >= %s AND {TABLE}.lon <= %s AND {TABLE}.lat >= %s
                          AND {TABLE}.lat <= %s)
                        OR ({TABLE}.shape IS NOT NULL
                            AND ST_Intersects({TABLE}.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))))"""],
            params=[min_lon, min_lat, max_lon, max_lat, min_lon, max_lon, min_lat, max_lat,
                    min_lon, min_lat, max_lon, max_lat],
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


@lru_cache(maxsize=256)
def _shape(shape_json: str) -> BaseGeometry:
    geom = shape(json.loads(shape_json))
    shapely.prepare(geom)
    return geom


@lru_cache(maxsize=64)
def _sweref_shape(shape_json: str) -> BaseGeometry:
    return sweref99tm_shape(shape(json.loads(shape_json)))


def _sqlite_meets_box(shape_json: str | None, min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> int:
    return int(shape_json is not None and _shape(shape_json).intersects(box(min_lon, min_lat, max_lon, max_lat)))


def _sqlite_meets(area_json: str, shape_json: str | None) -> int:
    return int(shape_json is not None and _shape(area_json).intersects(_shape(shape_json)))


def _sqlite_near(shape_json: str | None, x: float, y: float, radius_m: float) -> int:
    return int(shape_json is not None and _sweref_shape(shape_json).distance(Point(x, y)) <= radius_m)


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """SQLite has no spatial functions; this gives it the ones we need, in Python, per connection."""
    if connection.vendor == "sqlite":
        create = connection.connection.create_function
        create("lagesbild_covers", 3, _sqlite_covers, deterministic=True)
        create("lagesbild_meets_box", 5, _sqlite_meets_box, deterministic=True)
        create("lagesbild_meets", 2, _sqlite_meets, deterministic=True)
        create("lagesbild_near", 4, _sqlite_near, deterministic=True)


def filter_in_polygon(queryset: QuerySet[_M], polygon: dict[str, Any], bbox: BBox, *,
                      selective: bool = True) -> QuerySet[_M]:
    """Deviations whose point lies in the GeoJSON polygon (or on its edge), or whose line or area meets it: the
    box first, through the spatial index, then the exact test in the database (PostGIS, or our functions on
    SQLite)."""
    area_json = json.dumps(polygon, sort_keys=True)
    in_box = filter_bbox(queryset, bbox, selective=selective)
    vendor = connections[queryset.db].vendor
    if vendor == "sqlite":
        return in_box.extra(  # noqa: S610 - fixed SQL, the polygon passed as a parameter
            where=[f"""CASE WHEN {TABLE}.shape_min_lon IS NULL THEN lagesbild_covers(%s, {TABLE}.lon, {TABLE}.lat)
                       ELSE lagesbild_meets(%s, {TABLE}.shape) END"""], params=[area_json, area_json])
    if vendor == "postgresql":
        # ST_Intersects counts a point on the edge as in it, like ST_Covers.
        return in_box.extra(  # noqa: S610 - fixed SQL, the polygon passed as a parameter
            where=[f"ST_Intersects(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), {TABLE}.geom)"], params=[area_json])
    raise RuntimeError(f"Unsupported database: {vendor}")


def filter_near(queryset: QuerySet[_M], x: float, y: float, radius_m: float, bbox: BBox, *,
                selective: bool = True) -> QuerySet[_M]:
    """Deviations within `radius_m` metres of the SWEREF 99 TM point (x, y): a point by its stored SWEREF
    coordinates, a line or area by its nearest part."""
    in_box = filter_bbox(queryset, bbox, selective=selective)
    vendor = connections[queryset.db].vendor
    point = (f"(({TABLE}.sweref_x - %s) * ({TABLE}.sweref_x - %s) + ({TABLE}.sweref_y - %s) * "
             f"({TABLE}.sweref_y - %s) <= %s)")
    point_params = [x, x, y, y, radius_m * radius_m]
    if vendor == "sqlite":
        return in_box.extra(  # noqa: S610 - fixed SQL, values passed as parameters
            where=[f"CASE WHEN {TABLE}.shape_min_lon IS NULL THEN {point} "
                   f"ELSE lagesbild_near({TABLE}.shape, %s, %s, %s) END"],
            params=[*point_params, x, y, radius_m])
    if vendor == "postgresql":
        return in_box.extra(  # noqa: S610 - fixed SQL, values passed as parameters
            where=[f"CASE WHEN {TABLE}.shape IS NULL THEN {point} ELSE "
                   f"ST_DWithin(ST_Transform({TABLE}.geom, 3006), ST_SetSRID(ST_MakePoint(%s, %s), 3006), %s) END"],
            params=[*point_params, x, y, radius_m])
    raise RuntimeError(f"Unsupported database: {vendor}")
