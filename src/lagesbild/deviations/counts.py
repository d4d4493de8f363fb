"""Pre-aggregated counts: how many deviations lie in each H3 hexagon, per forum, category and day or month.

A city's map over all time cannot count a million rows on every request (counting them by hand in SQL takes
over a second). So database triggers keep `deviations_deviationcount` in step with every write to deviations
(reports, edits, withdrawals, the import's COPY, retention's deletes): no write path can forget to. They count
what the whole forum may see, once per deviation, in the resolution-8 hexagon of its anchor, in its category and
in "all categories", per UTC day and per UTC month; and per category in the forum as a whole. Finer hexagons
(a district's view) are counted from the rows in the box.

A reader's figures (`cell_counts`) are then:
- whole months inside the period, from the month rows;
- whole days at either end, from the day rows;
- the hours before the first whole day and after the last, counted from the rows;
- plus what only the reader's organisation may see (restricted deviations are few), counted from the rows.

The result equals counting the rows the reader may see (tests/test_counts.py holds it so over random writes).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import h3
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation, DeviationCount
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Membership

TABLE = DeviationCount._meta.db_table
DEVIATIONS = "deviations_deviation"
DAY = 1
MONTH = 2
# Kept at resolution 8 (hexagons of 0.7 km², coarser ones are their parents): a city or a region. A district's
# finer hexagons are counted from its rows, which the box and the spatial index make few; kept at 9 and 10 as
# well, the counts would be as many as the deviations, several times over.
RESOLUTIONS = (8,)
AREA_RESOLUTION = 6
ALL = DeviationCount.ALL_CATEGORIES
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL = EPOCH.toordinal()

# What the counts hold: the forum-wide deviations that are not withdrawn (and have hexagons).
_COUNTED = "{row}.visibility = 'forum' AND {row}.withdrawn_at IS NULL AND {row}.h3_8 IS NOT NULL"
_KEY = "(forum_id, resolution, span, period, cell, category)"
_COLUMNS = "(forum_id, resolution, span, period, area, cell, category, count)"


def _parent_bits(resolution: int, stored: int) -> tuple[int, int]:
    """(keep, set): an H3 index's parent at `resolution` from one at `stored` is (index & keep) | set. An H3
    index holds its resolution in bits 52-55 and a 3-bit digit per finer resolution, 7 where unused."""
    unused = sum(7 << ((15 - digit) * 3) for digit in range(resolution + 1, stored + 1))
    return ~(15 << 52) & ~unused & (2**63 - 1), (resolution << 52) | unused


_AREA_KEEP, _AREA_SET = _parent_bits(AREA_RESOLUTION, 8)
_AREA = "(({row}.h3_8 & %d) | %d)" % (_AREA_KEEP, _AREA_SET)  # noqa: UP031 (a template of its own)

# Read from the text Django stores in SQLite ("2026-03-31 23:59:59.999999", in UTC): SQLite's own date functions
# round to the millisecond, which would put that moment into April.
_SQLITE_DAY = "CAST(julianday(substr({row}.observed_at, 1, 10)) - 2440587.5 AS INTEGER)"
_SQLITE_MONTH = ("CAST(substr({row}.observed_at, 1, 4) AS INTEGER) * 12 "
                 "+ CAST(substr({row}.observed_at, 6, 2) AS INTEGER) - 1")


def _keys(row: str, day: str, month: str) -> list[tuple[str, str, str, str, str, str]]:
    """The counts one deviation is in, as SQL over `row`: (resolution, span, period, area, cell, category)."""
    spans = ((str(DAY), day.format(row=row)), (str(MONTH), month.format(row=row)))
    keys = [(str(resolution), span, period, _AREA.format(row=row), f"{row}.h3_{resolution}", category)
            for resolution in RESOLUTIONS for span, period in spans for category in (f"{row}.category_id", str(ALL))]
    keys += [("0", span, period, "0", "0", f"{row}.category_id") for span, period in spans]
    return keys


def _sqlite_change(row: str, sign: str) -> str:
    """Add a deviation to its counts, or take it away. Taking away only lowers counts that exist: when a forum
    is deleted, its counts may go before its deviations do, and must not come back."""
    keys = _keys(row, _SQLITE_DAY, _SQLITE_MONTH)
    if sign == "-":
        return " ".join(
            f"UPDATE {TABLE} SET count = count - 1 WHERE forum_id = {row}.forum_id AND resolution = {resolution} "
            f"AND span = {span} AND period = {period} AND cell = {cell} AND category = {category};"
            for resolution, span, period, _area, cell, category in keys)
    values = ", ".join(f"({row}.forum_id, {', '.join(key)}, 1)" for key in keys)
    return (f"INSERT INTO {TABLE} {_COLUMNS} VALUES {values} "
            f"ON CONFLICT {_KEY} DO UPDATE SET count = count + excluded.count;")


# The columns whose change can move a deviation between counts.
_MOVES = "forum_id, category_id, observed_at, visibility, withdrawn_at, h3_8, h3_9, h3_10"

_SQLITE_STATEMENTS = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_insert AFTER INSERT ON {DEVIATIONS}
        WHEN {_COUNTED.format(row="new")} BEGIN {_sqlite_change("new", "+")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_update_old AFTER UPDATE OF {_MOVES} ON {DEVIATIONS}
        WHEN {_COUNTED.format(row="old")} BEGIN {_sqlite_change("old", "-")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_update_new AFTER UPDATE OF {_MOVES} ON {DEVIATIONS}
        WHEN {_COUNTED.format(row="new")} BEGIN {_sqlite_change("new", "+")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_delete AFTER DELETE ON {DEVIATIONS}
        WHEN {_COUNTED.format(row="old")} BEGIN {_sqlite_change("old", "-")} END""",
]
SQLITE_TRIGGERS = [f"{TABLE}_insert", f"{TABLE}_update_old", f"{TABLE}_update_new", f"{TABLE}_delete"]

_PG_DAY = "(({row}.observed_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"
_PG_MONTH = ("(extract(year FROM {row}.observed_at AT TIME ZONE 'UTC') * 12 "
             "+ extract(month FROM {row}.observed_at AT TIME ZONE 'UTC') - 1)::int")


def _pg_changes(rows: str, sign: str) -> str:
    """Each counted deviation of a transition table, once per count it is in, with +1 or -1."""
    keys = ", ".join(f"({', '.join(key)})" for key in _keys("r", _PG_DAY, _PG_MONTH))
    return (f"SELECT r.forum_id, k.resolution, k.span, k.period, k.area, k.cell, k.category, {sign}1 AS n "
            f"FROM {rows} AS r CROSS JOIN LATERAL (VALUES {keys}) AS k(resolution, span, period, area, cell, category) "
            f"WHERE {_COUNTED.format(row='r')}")


# PostgreSQL: one statement per written statement (transition tables), so an import's COPY of a million rows
# adds its counts in one grouped INSERT rather than millions. Counts are lowered only where they exist (see
# _sqlite_change), and raised in key order.
_PG_APPLY = f"""
    WITH delta AS (
        SELECT forum_id, resolution, span, period, area, cell, category, sum(n) AS n FROM ({{changes}}) AS c
        GROUP BY forum_id, resolution, span, period, area, cell, category HAVING sum(n) <> 0),
    lowered AS (
        UPDATE {TABLE} AS t SET count = t.count + delta.n FROM delta
        WHERE delta.n < 0 AND t.forum_id = delta.forum_id AND t.resolution = delta.resolution
          AND t.span = delta.span AND t.period = delta.period AND t.cell = delta.cell
          AND t.category = delta.category)
    INSERT INTO {TABLE} {_COLUMNS}
    SELECT forum_id, resolution, span, period, area, cell, category, n FROM delta WHERE n > 0
    ORDER BY forum_id, resolution, span, period, cell, category
    ON CONFLICT {_KEY} DO UPDATE SET count = {TABLE}.count + excluded.count;"""

_POSTGRESQL_STATEMENTS = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_written() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_PG_APPLY.format(changes=_pg_changes("new_rows", "+"))}
            ELSIF TG_OP = 'DELETE' THEN
                {_PG_APPLY.format(changes=_pg_changes("old_rows", "-"))}
            ELSE
                {_PG_APPLY.format(changes=_pg_changes("new_rows", "+") + " UNION ALL "
                                  + _pg_changes("old_rows", "-"))}
            END IF;
            RETURN NULL;
        END $$""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_insert AFTER INSERT ON {DEVIATIONS}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_written()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_update AFTER UPDATE ON {DEVIATIONS}
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION {TABLE}_written()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_delete AFTER DELETE ON {DEVIATIONS}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_written()""",
]


def ensure_triggers(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers if they are missing (idempotent; run from a migration and after every migrate)."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if DEVIATIONS not in tables or TABLE not in tables:
            return
        for statement in _SQLITE_STATEMENTS if connection.vendor == "sqlite" else _POSTGRESQL_STATEMENTS:
            cursor.execute(statement)


def drop_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            for event in ("insert", "update", "delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{event} ON {DEVIATIONS}")


def _add(cursor: Any, source: str, condition: str, day: str, month: str, n: str) -> None:
    """Add the rows of `source` (as d) that `condition` selects to the counts, one statement per kind of count;
    each row stands for `n` deviations."""
    for resolution, span, period, area, cell, category in _keys("d", day, month):
        # No query parameters: a % in the SQL would be read as one.
        cursor.execute(
            f"INSERT INTO {TABLE} {_COLUMNS} "
            f"SELECT d.forum_id, {resolution}, {span}, {period}, {area}, {cell}, {category}, {n} "
            f"FROM {source} AS d WHERE {condition} GROUP BY 1, 2, 3, 4, 5, 6, 7 "
            f"ON CONFLICT {_KEY} DO UPDATE SET count = {TABLE}.count + excluded.count")


def _count_rows(connection: BaseDatabaseWrapper, where: str) -> None:
    """Add the deviations that `where` selects (of those counted) to the counts."""
    day, month = (_SQLITE_DAY, _SQLITE_MONTH) if connection.vendor == "sqlite" else (_PG_DAY, _PG_MONTH)
    with connection.cursor() as cursor:
        _add(cursor, DEVIATIONS, f"{_COUNTED.format(row='d')} AND {where}", day, month, "count(*)")


def rebuild(connection: BaseDatabaseWrapper = default_connection) -> int:
    """Count again from the rows (after a migration, or to check the triggers). Returns how many count rows
    there are now."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")
    _count_rows(connection, "1 = 1")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def add_loaded(connection: BaseDatabaseWrapper, forum_id: int, loaded: Counter[tuple[dt.date, int, int]]) -> None:
    """Add a bulk load's forum-wide deviations, counted as they were written by (UTC day, resolution-8 hexagon,
    category), to the counts at once: SQLite's bulk path loads with the row triggers off (deviations.bulk).
    Counting them from the table afterwards read every new row, a million of them, six times over; this reads a
    narrow table of their distinct keys instead, with the same SQL (`_keys`; a resolution kept besides 8 would
    need its column here too)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE lagesbild_loaded (forum_id, category_id, day, month, h3_8, n)")
        try:
            cursor.executemany(
                "INSERT INTO temp.lagesbild_loaded VALUES (%s, %s, %s, %s, %s, %s)",
                [(forum_id, category, day.toordinal() - _EPOCH_ORDINAL, day.year * 12 + day.month - 1, h3_8, n)
                 for (day, h3_8, category), n in loaded.items()])
            _add(cursor, "temp.lagesbild_loaded", "true", "{row}.day", "{row}.month", "sum(d.n)")
        finally:
            # IF EXISTS: an error that made SQLite roll the transaction back has taken the table already.
            cursor.execute("DROP TABLE IF EXISTS temp.lagesbild_loaded")


def drop_insert_trigger(connection: BaseDatabaseWrapper) -> None:
    """SQLite only, inside the bulk load's transaction (which restores it if it rolls back)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_insert")


def prune(connection: BaseDatabaseWrapper = default_connection) -> int:
    """Remove counts that have gone down to nothing (every deviation in them withdrawn or deleted)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE count = 0")
        return cursor.rowcount


# --- Reading -------------------------------------------------------------------------------------------------


def day_of(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(days=1)


def month_of(day: int) -> int:
    date = (EPOCH + dt.timedelta(days=day)).date()
    return date.year * 12 + date.month - 1


def first_day_of_month(month: int) -> int:
    return day_of(dt.datetime(month // 12, month % 12 + 1, 1, tzinfo=dt.UTC))


@dataclass(frozen=True)
class Split:
    """A period [start, end] (both inclusive, as the filter has it) cut into what each source counts."""

    months: tuple[int, int] | None  # whole months [first, last + 1)
    days: list[tuple[int, int]]  # whole days [first, last + 1), outside those months
    rows: list[tuple[dt.datetime, dt.datetime]]  # the rest, [from, to) counted from the rows


def split(start: dt.datetime, end: dt.datetime) -> Split:
    """Whole months, then whole days, then the hours left at either end. `end` is inclusive: a deviation at
    exactly `end` is in the period, so the last whole day is the one that ends at or before `end` + 1 µs."""
    after_end = end + dt.timedelta(microseconds=1)
    first_day = -(-(start - EPOCH) // dt.timedelta(days=1))  # the first day that begins at or after start
    last_day = day_of(after_end)  # days before this one end at or before after_end
    if first_day >= last_day:
        return Split(None, [], [(start, after_end)])
    rows = [(start, EPOCH + dt.timedelta(days=first_day)), (EPOCH + dt.timedelta(days=last_day), after_end)]
    rows = [(a, b) for a, b in rows if a < b]
    first_month = month_of(first_day) if first_day_of_month(month_of(first_day)) == first_day \
        else month_of(first_day) + 1
    last_month = month_of(last_day)  # months before this one end at or before last_day
    if first_month >= last_month:
        return Split(None, [(first_day, last_day)], rows)
    days = [(first_day, first_day_of_month(first_month)), (first_day_of_month(last_month), last_day)]
    return Split((first_month, last_month), [(a, b) for a, b in days if a < b], rows)


def parent_cell(resolution: int, column: str) -> Any:
    """The H3 cell at `resolution` (≤ 10), in SQL, from one stored at 8, 9 or 10 in `column`."""
    stored = 8 if resolution <= 8 else resolution
    if resolution == stored:
        return F(column)
    keep, bits = _parent_bits(resolution, stored)
    return F(column).bitand(keep).bitor(bits)


FAR_PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # nothing observed before 2000 is taken
FAR_FUTURE = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Question:
    """What a reader asks the counts: a period, categories (None: all), hexagons at a resolution (0: the forum
    as a whole), and optionally only those in some resolution-6 areas (a prefilter; None: everywhere)."""

    membership: Membership
    start: dt.datetime | None
    end: dt.datetime | None
    category_ids: frozenset[int] | None
    resolution: int
    areas: frozenset[int] | None = None
    bbox: geometry.BBox | None = None  # finer than resolution 8: only the rows in this box (and a hexagon round it)


def _kept(question: Question, parts: Split, *, all_categories: bool) -> QuerySet[DeviationCount, Any]:
    """The kept counts for the whole days and months of the period."""
    stored = 0 if question.resolution == 0 else 8
    kept = DeviationCount.objects.filter(forum_id=question.membership.forum_id, resolution=stored)
    if all_categories:
        kept = kept.filter(category=ALL)
    elif question.category_ids is not None:
        kept = kept.filter(category__in=question.category_ids)
    else:
        kept = kept.exclude(category=ALL)
    if question.areas is not None:
        kept = kept.filter(area__in=question.areas)
    ranges = [Q(span=DAY, period__gte=a, period__lt=b) for a, b in parts.days]
    if parts.months:
        ranges.append(Q(span=MONTH, period__gte=parts.months[0], period__lt=parts.months[1]))
    if not ranges:
        return kept.none()
    either = Q()
    for one in ranges:
        either |= one
    return kept.filter(either)


def _live(question: Question, parts: Split) -> list[QuerySet[Deviation]]:
    """What the counts do not hold, from the rows: the hours before the first whole day and after the last
    (forum-wide deviations), and, over the whole period, what only the reader's organisation may see."""
    live = [services.forum_wide_deviations(question.membership.forum).filter(
        h3_8__isnull=False, observed_at__gte=a, observed_at__lt=b) for a, b in parts.rows]
    for restricted in services.restricted_visible_deviations(question.membership):
        restricted = restricted.filter(h3_8__isnull=False)
        if question.start:
            restricted = restricted.filter(observed_at__gte=question.start)
        if question.end:
            restricted = restricted.filter(observed_at__lte=question.end)
        live.append(restricted)
    if question.category_ids is not None:
        live = [queryset.filter(category_id__in=question.category_ids) for queryset in live]
    return live


def _from_rows(question: Question) -> Counter[tuple[int, int]]:
    """Finer than the kept counts: every deviation the member may see, counted where it lies."""
    rows = services.visible_deviations(question.membership).filter(h3_8__isnull=False)
    if question.start:
        rows = rows.filter(observed_at__gte=question.start)
    if question.end:
        rows = rows.filter(observed_at__lte=question.end)
    if question.category_ids is not None:
        rows = rows.filter(category_id__in=question.category_ids)
    if question.bbox:  # widened by a hexagon, so that every deviation of a hexagon whose centre is inside counts
        margin = 2.2 * h3.average_hexagon_edge_length(question.resolution, "km") / 111.0
        west, south, east, north = question.bbox
        widen = margin / max(math.cos(math.radians(max(abs(south), abs(north)))), 0.05)
        rows = services.apply_filter(rows, question.membership.forum, services.DeviationFilter(bbox=(
            max(west - widen, -180.0), max(south - margin, -90.0), min(east + widen, 180.0),
            min(north + margin, 90.0))))
    stored = "h3_9" if question.resolution == 9 else "h3_10"
    counts: Counter[tuple[int, int]] = Counter()
    for cell, category, n in (rows.annotate(at=parent_cell(question.resolution, stored), of=F("category_id") + 0)
                              .values("at", "of").order_by().annotate(n=Count("id")).values_list("at", "of", "n")):
        counts[(cell, category)] += n
    return counts


def cell_counts(question: Question) -> Counter[tuple[int, int]]:
    """(H3 cell, category id) -> how many deviations the member may see there in the period: each deviation
    once, at its anchor. At resolution 0 the cell is 0: the forum as a whole."""
    if question.resolution > max(RESOLUTIONS):
        return _from_rows(question)
    parts = split(question.start or FAR_PAST, question.end or FAR_FUTURE)
    counts: Counter[tuple[int, int]] = Counter()
    at = parent_cell(question.resolution, "cell") if question.resolution else F("cell")
    summed = (_kept(question, parts, all_categories=False).annotate(at=at).values("at", "category").order_by()
              .annotate(n=Sum("count")).values_list("at", "category", "n"))
    for cell, category, n in summed:
        counts[(cell, category)] += n
    live_at = parent_cell(question.resolution, "h3_8") if question.resolution else Value(0)
    for queryset in _live(question, parts):
        # Grouped by an expression of the category rather than the column: SQLite would otherwise read every row
        # in category order through the category's index, rather than the few through the time index.
        # count(*) rather than count(id): the restricted rows are then counted from their index alone.
        rows = (queryset.annotate(at=live_at, of=F("category_id") + 0).values("at", "of").order_by()
                .annotate(n=Count("*")).values_list("at", "of", "n"))
        for cell, category, n in rows:
            counts[(cell, category)] += n
    return counts


def cell_totals(question: Question) -> Counter[int]:
    """H3 cell -> how many deviations the member may see there, of every category asked for."""
    if question.category_ids is not None or question.resolution > max(RESOLUTIONS):  # added up by category
        totals: Counter[int] = Counter()
        for (cell, _category), n in cell_counts(question).items():
            totals[cell] += n
        return totals
    parts = split(question.start or FAR_PAST, question.end or FAR_FUTURE)
    totals = Counter(dict(
        _kept(question, parts, all_categories=True).annotate(at=parent_cell(question.resolution, "cell"))
        .values("at").order_by().annotate(n=Sum("count")).values_list("at", "n")))
    for queryset in _live(question, parts):
        for cell, n in (queryset.annotate(at=parent_cell(question.resolution, "h3_8")).values("at")
                        .order_by().annotate(n=Count("*")).values_list("at", "n")):
            totals[cell] += n
    return totals


def simple_enough(flt: services.DeviationFilter) -> bool:
    """Whether the counts can answer the filter: a box, a period and categories. Any other filter (status,
    organisation, search text, the forum's own fields, a round) needs the rows."""
    return not (flt.organisations or flt.statuses or flt.q or flt.fields or flt.round is not None)


def resolution_for(bbox: geometry.BBox, cells_across: int) -> int:
    """The H3 resolution (4 to 10) whose hexagons are nearest in size to a 1/cells_across of the box's width."""
    middle = math.radians((bbox[1] + bbox[3]) / 2)
    wanted = max((bbox[2] - bbox[0]) * 111.32 * max(math.cos(middle), 0.01) / cells_across, 1e-6)
    return min(range(4, 11), key=lambda r: abs(math.log(2 * h3.average_hexagon_edge_length(r, "km") / wanted)))


MAX_AREAS = 400  # past this many resolution-6 areas (a region, not a city), every area is read


def areas_of(bbox: geometry.BBox) -> frozenset[int] | None:
    """The resolution-6 hexagons that a box meets, and their neighbours (a child's centre can lie just outside
    its parent's outline), or None when there are too many to list."""
    west, south, east, north = bbox
    if (east - west) * (north - south) > 4.0:  # more than about 2 degrees square: skip working them out
        return None
    outline = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    inner = h3.h3shape_to_cells_experimental(outline, AREA_RESOLUTION, contain="overlap")
    found = {h3.str_to_int(ring) for cell in inner for ring in h3.grid_disk(cell, 1)}
    return frozenset(found) if len(found) <= MAX_AREAS else None


def hexagon_aggregates(membership: Membership, flt: services.DeviationFilter,
                       cells_across: int) -> services.Aggregates:
    """The map's aggregates from the counts: one point per hexagon (at its centre) with how many deviations
    the member may see whose anchor lies in it, and the counts per main category for the legend. A hexagon
    belongs to the box when its centre does; every hexagon does when the box holds the forum's whole area."""
    forum = membership.forum
    if not 4 <= cells_across <= 128:
        raise InvalidInput(_("cells must be between 4 and 128."), field="cells")
    if flt.start and flt.end and flt.start > flt.end:
        raise InvalidInput(_("The start of the period is after its end."), field="from")
    bounds = geometry.area_bounds(forum.area)
    bbox = flt.bbox or bounds or (-180.0, -85.0, 180.0, 85.0)
    resolution = resolution_for(bbox, cells_across)
    ids = (frozenset(services.category_ids_with_children(forum, flt.categories)) if flt.categories else None)
    whole = bounds is not None and geometry.bbox_contains(bbox, bounds)  # the forum's whole area in view
    # A hexagon coarser than the areas (resolution 4 or 5) reaches well beyond the areas the box meets: every
    # area is read then, or a hexagon whose centre is in the box would lose the counts of its outer parts.
    areas = None if whole or resolution < AREA_RESOLUTION else areas_of(bbox)
    question = Question(membership, flt.start, flt.end, ids, resolution, areas, None if whole else bbox)
    main_key = {c.pk: (c.parent.key if c.parent else c.key) for c in services.forum_categories(forum)}
    centres: dict[int, tuple[float, float]] = {}

    def centre(cell: int) -> tuple[float, float]:
        if cell not in centres:
            lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
            centres[cell] = (lon, lat)
        return centres[cell]

    def centre_in_box(cell: int) -> bool:
        lon, lat = centre(cell)
        return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]

    by_cell: Counter[int] = Counter()
    by_category: Counter[str] = Counter()
    if whole:
        # Every deviation lies in the forum's area, so in view: every hexagon that holds one, also one at the
        # area's edge whose centre is outside the box (or the number and the legend would count deviations no
        # hexagon shows). The hexagons from the counts of all categories, the legend from the forum-wide ones.
        by_cell.update({cell: n for cell, n in cell_totals(question).items() if n > 0})
        for (_cell, category), n in cell_counts(replace(question, resolution=0)).items():
            by_category[main_key.get(category, "")] += n
    else:  # both from one count per hexagon and category (a district's finer hexagons count the rows)
        for (cell, category), n in cell_counts(question).items():
            if n > 0 and centre_in_box(cell):
                by_cell[cell] += n
                by_category[main_key.get(category, "")] += n
    features = []  # cells and categories in a fixed order: the bytes (and ETag) must not follow the database's
    for cell, n in sorted(by_cell.items()):
        lon, lat = centre(cell)
        features.append({"type": "Feature", "geometry": {"type": "Point",
                                                         "coordinates": [round(lon, 6), round(lat, 6)]},
                         "properties": {"count": n, "cell": h3.int_to_str(cell)}})
    across = 2 * h3.average_hexagon_edge_length(resolution, "km") / 111.32
    middle = math.radians((bbox[1] + bbox[3]) / 2)
    return services.Aggregates(features=features, by_category={k: v for k, v in sorted(by_category.items()) if v},
                               cell_size=(across / max(math.cos(middle), 0.01), across))
