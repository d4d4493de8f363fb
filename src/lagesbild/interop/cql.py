"""CQL2 filters (OGC API Features Part 3) turned into database conditions.

The text and JSON encodings are parsed by `cql2`, a maintained parser of the standard; this module only walks
the parsed expression (always CQL2-JSON) and turns each predicate on a *queryable* into a Django `Q`. What it
supports is the standard's Basic CQL2 (comparisons, AND/OR/NOT, IS NULL), LIKE, BETWEEN, IN, and S_INTERSECTS
with a point or a box, which is what a GIS sends when it filters by attributes and the map view. Everything else
is refused with a message that names the construct, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import cql2
from django.db.models import F, Lookup, Q
from django.utils.translation import gettext as _
from pyproj import Transformer

from lagesbild import inputs
from lagesbild.errors import InvalidInput

MAX_FILTER = 8000  # characters; a GIS sends a few hundred
MAX_DEPTH = 40  # nested expressions; deeper is not a filter a person wrote
MAX_LIST = 1000  # values in one IN

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG3006 = "http://www.opengis.net/def/crs/EPSG/0/3006"

TEXT, INTEGER, TIMESTAMP, CHOICE = "text", "integer", "timestamp", "choice"


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its column, its kind, and for a choice the values it takes."""

    name: str
    column: str
    kind: str
    title: str
    choices: Sequence[str] = ()
    nullable: bool = False
    # For properties that are not one column (a main category): value -> condition.
    condition: Callable[[str], Q] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Geometry:
    """The queryable geometry: the columns that hold a point in each coordinate system."""

    name: str
    lon: str
    lat: str
    easting: str
    northing: str
    # A line's or area's extent in WGS 84 (min lon, min lat, max lon, max lat), NULL for a point.
    extent: tuple[str, str, str, str] | None = None


@dataclass(frozen=True)
class Context:
    queryables: dict[str, Queryable]
    geometry: Geometry | None
    timezone: str
    filter_crs: str = CRS84


def parse(text: str, lang: str | None) -> dict[str, Any]:
    """CQL2 text or JSON, parsed; a filter that does not parse is a 400 that says where."""
    lang = lang or "cql2-text"
    if lang == "cql-text":
        lang = "cql2-text"  # the draft's name, which GDAL and QGIS still send
    if lang not in {"cql2-text", "cql2-json"}:
        raise InvalidInput(_("filter-lang must be cql2-text or cql2-json."), field="filter-lang")
    if len(text) > MAX_FILTER:
        raise InvalidInput(_("The filter is too long (at most %(max)s characters).") % {"max": MAX_FILTER},
                           field="filter")
    if "\x00" in text:
        raise InvalidInput(_("Text may not contain the NUL character."), field="filter")
    if not text.strip():
        raise InvalidInput(_("The filter is empty."), field="filter")
    # The parser recurses on the machine's stack: a few thousand nested brackets crash the process, which no
    # exception handler can catch. So the nesting is measured first (brackets outside quoted text).
    if _nesting(text) > MAX_DEPTH:
        raise InvalidInput(_("The filter is nested too deeply."), field="filter")
    try:
        expr = cql2.parse_json(text) if lang == "cql2-json" else cql2.parse_text(text)
        parsed = expr.to_json()
    except BaseException as exc:  # the parser is Rust; a panic arrives as a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        detail = " ".join(str(exc).split())[:300]
        raise InvalidInput(_("The filter could not be read as %(lang)s: %(detail)s") % {
            "lang": lang.upper().replace("CQL2-", "CQL2 "), "detail": detail}, field="filter") from None
    return parsed if isinstance(parsed, dict) else {"literal": parsed}


def _nesting(text: str) -> int:
    """The deepest nesting of brackets in the text, leaving out quoted strings ('…' in CQL2 text, "…" in JSON)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def to_condition(expr: Any, context: Context) -> Q:
    """The expression as a condition on the collection's rows."""
    walker = _Walker(context)
    condition = walker.condition(expr, 0)
    if walker.predicates > MAX_PREDICATES:
        # SQLite refuses expressions deeper than 1,000, and long OR chains are built that deep.
        raise InvalidInput(_("The filter has too many conditions (at most %(max)s). Use IN for lists of "
                             "values.") % {"max": MAX_PREDICATES}, field="filter")
    return condition


MAX_PREDICATES = 200
NOTHING = Q(pk__in=[])
EVERYTHING = ~Q(pk__in=[])  # not Q(): negating an empty Q gives an empty Q, which matches everything


class _Walker:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.predicates = 0

    def condition(self, expr: Any, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise InvalidInput(_("The filter is nested too deeply."), field="filter")
        self.predicates += 1
        if isinstance(expr, dict) and set(expr) == {"literal"}:
            expr = expr["literal"]
        if isinstance(expr, bool):
            return EVERYTHING if expr else NOTHING
        if not isinstance(expr, dict) or "op" not in expr:
            raise InvalidInput(_("The filter must be a condition, such as status = 'new'."), field="filter")
        op, args = str(expr["op"]).lower(), expr.get("args") or []
        if not isinstance(args, list):
            raise InvalidInput(_("The filter's %(op)s has no arguments.") % {"op": op.upper()}, field="filter")
        if op in {"and", "or"}:
            parts = [self.condition(arg, depth + 1) for arg in args]
            result = parts[0] if parts else (EVERYTHING if op == "and" else NOTHING)
            for part in parts[1:]:
                result = (result & part) if op == "and" else (result | part)
            return result
        if op == "not":
            self._arity(op, args, 1)
            return ~self.condition(args[0], depth + 1)
        if op in COMPARISONS:
            self._arity(op, args, 2)
            return self.compare(op, args[0], args[1])
        if op == "like":
            self._arity(op, args, 2)
            return self.like(args[0], args[1])
        if op == "between":
            self._arity(op, args, 3)
            return self.compare(">=", args[0], args[1]) & self.compare("<=", args[0], args[2])
        if op == "in":
            self._arity(op, args, 2)
            return self.within(args[0], args[1])
        if op == "isnull":
            self._arity(op, args, 1)
            queryable = self.queryable(args[0], op)
            if not queryable.nullable:
                return NOTHING  # never empty, so IS NULL matches nothing
            return Q(**{f"{queryable.column}__isnull": True})
        if op in {"s_intersects", "s_within", "s_contains", "s_equals", "s_disjoint"}:
            self._arity(op, args, 2)
            return self.spatial(op, args[0], args[1])
        if op.startswith("t_"):
            raise InvalidInput(_("Temporal functions such as %(op)s are not supported; compare observedAt with a "
                                 "TIMESTAMP or DATE instead.") % {"op": op.upper()}, field="filter")
        raise InvalidInput(_("%(op)s is not supported in filters.") % {"op": op.upper()}, field="filter")

    def _arity(self, op: str, args: list[Any], count: int) -> None:
        if len(args) != count:
            raise InvalidInput(_("%(op)s takes %(count)s arguments.") % {"op": op.upper(), "count": count},
                               field="filter")

    def queryable(self, arg: Any, op: str) -> Queryable:
        if not (isinstance(arg, dict) and "property" in arg):
            raise InvalidInput(_("%(op)s must start with a property, such as status or observedAt.") % {
                "op": op.upper()}, field="filter")
        name = str(arg["property"])
        queryable = self.context.queryables.get(name)
        if queryable is None:
            if self.context.geometry and name == self.context.geometry.name:
                raise InvalidInput(_("Filter the geometry with S_INTERSECTS."), field="filter")
            raise InvalidInput(_("Unknown property in the filter: %(name)s. Filters can use: %(known)s.") % {
                "name": name[:60], "known": ", ".join(self.context.queryables)}, field="filter")
        return queryable

    def compare(self, op: str, left: Any, right: Any) -> Q:
        if not (isinstance(left, dict) and "property" in left) and isinstance(right, dict) and "property" in right:
            left, right, op = right, left, FLIPPED[op]
        queryable = self.queryable(left, op)
        if isinstance(right, dict) and "property" in right:
            raise InvalidInput(_("Compare a property with a value, not with another property."), field="filter")
        if queryable.kind == TIMESTAMP:
            return self._compare_time(op, queryable, right)
        value = self.value(queryable, right)
        if value is None:
            raise InvalidInput(_("Use IS NULL to find what has no %(name)s.") % {"name": queryable.name},
                               field="filter")
        return self._lookup(op, queryable, value)

    def _lookup(self, op: str, queryable: Queryable, value: Any) -> Q:
        if queryable.condition is not None:
            if op not in {"=", "<>"}:
                raise InvalidInput(_("%(name)s can only be compared with = or <>.") % {"name": queryable.name},
                                   field="filter")
            matched = queryable.condition(value)
            return matched if op == "=" else ~matched
        if op == "<>":
            return ~Q(**{queryable.column: value})
        return Q(**{f"{queryable.column}{LOOKUPS[op]}": value})

    def _compare_time(self, op: str, queryable: Queryable, literal: Any) -> Q:
        start, end = self.instant(literal, queryable)
        column = queryable.column
        # A DATE is the whole day in the forum's time zone: "= DATE('2026-03-01')" is any time that day.
        if op == "=":
            return Q(**{f"{column}__gte": start, f"{column}__lt": end}) if end != start else Q(**{column: start})
        if op == "<>":
            return ~self._compare_time("=", queryable, literal)
        if op == "<":
            return Q(**{f"{column}__lt": start})
        if op == "<=":
            return Q(**{f"{column}__lt": end}) if end != start else Q(**{f"{column}__lte": start})
        if op == ">":
            return Q(**{f"{column}__gte": end}) if end != start else Q(**{f"{column}__gt": start})
        return Q(**{f"{column}__gte": start})

    def instant(self, literal: Any, queryable: Queryable) -> tuple[dt.datetime, dt.datetime]:
        """A TIMESTAMP as (t, t), a DATE as the local day [start, end)."""
        if isinstance(literal, dict) and "timestamp" in literal:
            text = str(literal["timestamp"])
            try:
                when = parse_timestamp(text)
                when = inputs.check_datetime(when, "filter")
            except ValueError:
                raise InvalidInput(_("%(value)s is not a valid TIMESTAMP (use e.g. "
                                     "TIMESTAMP('2026-03-01T14:30:00Z')).") % {"value": text[:40]},
                                   field="filter") from None
            return when, when
        if isinstance(literal, dict) and "date" in literal:
            text = str(literal["date"])
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                    raise ValueError(text)
                day = inputs.check_date(dt.date.fromisoformat(text), "filter")
            except ValueError:
                raise InvalidInput(_("%(value)s is not a valid DATE (use e.g. DATE('2026-03-01')).") % {
                    "value": text[:40]}, field="filter") from None
            zone = ZoneInfo(self.context.timezone)
            start = dt.datetime.combine(day, dt.time(), zone)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
            return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        if isinstance(literal, str) and literal:
            # GDAL (and so QGIS) writes times as plain strings: '2026-03-01T12:00:00Z', '2026-03-01T' for a
            # date, or '2026-03-01'.
            text = literal.rstrip("Tt ")
            return self.instant({"date": text} if len(text) == 10 else {"timestamp": literal}, queryable)
        raise InvalidInput(_("Compare %(name)s with a TIMESTAMP or a DATE, e.g. %(name)s >= DATE('2026-03-01').") % {
            "name": queryable.name}, field="filter")

    def value(self, queryable: Queryable, literal: Any) -> Any:
        if literal is None:
            return None
        if queryable.kind == INTEGER:
            if isinstance(literal, bool) or not isinstance(literal, (int, float)) or not math.isfinite(literal) \
                    or literal != int(literal) or not 0 <= literal <= inputs.MAX_INT:
                raise InvalidInput(_("%(name)s is a whole number.") % {"name": queryable.name}, field="filter")
            return int(literal)
        if not isinstance(literal, str):
            raise InvalidInput(_("%(name)s is text: put the value in single quotes.") % {"name": queryable.name},
                               field="filter")
        if queryable.kind == CHOICE and literal not in queryable.choices:
            raise InvalidInput(_("Unknown value for %(name)s: %(value)s. It can be: %(known)s.") % {
                "name": queryable.name, "value": literal[:60], "known": ", ".join(queryable.choices)},
                field="filter")
        return literal

    def like(self, left: Any, pattern: Any) -> Q:
        queryable = self.queryable(left, "like")
        if queryable.kind not in {TEXT, CHOICE} or queryable.condition is not None:
            raise InvalidInput(_("LIKE works on text properties such as placeName."), field="filter")
        if not isinstance(pattern, str):
            raise InvalidInput(_("LIKE needs a text pattern in single quotes, such as '%%torg%%'."), field="filter")
        return Q(Like(F(queryable.column), pattern))

    def within(self, left: Any, values: Any) -> Q:
        queryable = self.queryable(left, "in")
        if not isinstance(values, list):
            raise InvalidInput(_("IN needs a list of values, such as ('new', 'reviewed')."), field="filter")
        if len(values) > MAX_LIST:
            raise InvalidInput(_("IN takes at most %(max)s values.") % {"max": MAX_LIST}, field="filter")
        if queryable.kind == TIMESTAMP:
            self.predicates += len(values)
            return _any([self._compare_time("=", queryable, v) for v in values])
        cleaned = [self.value(queryable, v) for v in values]
        if queryable.condition is not None:
            self.predicates += 2 * len(cleaned)  # each value is two conditions joined by OR
            return _any([queryable.condition(v) for v in cleaned])
        return Q(**{f"{queryable.column}__in": cleaned})

    def spatial(self, op: str, left: Any, right: Any) -> Q:
        geom = self.context.geometry
        if geom is None:
            raise InvalidInput(_("This collection has no geometry to filter on."), field="filter")
        if isinstance(right, dict) and right.get("property") == geom.name:
            left, right = right, left
        if not (isinstance(left, dict) and left.get("property") == geom.name):
            raise InvalidInput(_("%(op)s compares the property %(name)s with a geometry.") % {
                "op": op.upper(), "name": geom.name}, field="filter")
        if op not in {"s_intersects", "s_within"}:
            raise InvalidInput(_("Only S_INTERSECTS is supported for geometries."), field="filter")
        sweref = self.context.filter_crs == EPSG3006
        x_col, y_col = (geom.easting, geom.northing) if sweref else (geom.lon, geom.lat)
        if isinstance(right, dict) and "bbox" in right:
            box = _numbers(right["bbox"], "BBOX")
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            if len(box) != 4:
                raise InvalidInput(_("BBOX takes four numbers."), field="filter")
            # Coordinates follow the CRS's axis order: SWEREF 99 TM is northing first.
            a1, a2, b1, b2 = box
            (min_x, min_y, max_x, max_y) = (a2, a1, b2, b1) if sweref else (a1, a2, b1, b2)
            if min_x > max_x or min_y > max_y:
                raise InvalidInput(_("A BBOX's minimum must not be greater than its maximum."), field="filter")
            points = Q(**{f"{x_col}__gte": min_x, f"{x_col}__lte": max_x, f"{y_col}__gte": min_y,
                          f"{y_col}__lte": max_y})
            if geom.extent is None:
                return points
            # A line or area meets the box where its extent does (the bbox parameter tests the shape exactly).
            west, south, east, north = bbox_to_wgs84(box, EPSG3006 if sweref else CRS84)
            min_lon, min_lat, max_lon, max_lat = geom.extent
            return (Q(**{f"{min_lon}__isnull": True}) & points) | Q(**{
                f"{min_lon}__lte": east, f"{max_lon}__gte": west, f"{min_lat}__lte": north, f"{max_lat}__gte": south})
        if isinstance(right, dict) and right.get("type") == "Point":
            position = _numbers(right.get("coordinates"), "POINT")
            if len(position) < 2:
                raise InvalidInput(_("A POINT takes two numbers."), field="filter")
            x, y = (position[1], position[0]) if sweref else (position[0], position[1])
            tolerance = 0.005 if sweref else 1e-7  # half a centimetre: the precision positions are kept to
            return Q(**{f"{x_col}__gte": x - tolerance, f"{x_col}__lte": x + tolerance,
                        f"{y_col}__gte": y - tolerance, f"{y_col}__lte": y + tolerance})
        raise InvalidInput(_("S_INTERSECTS supports a BBOX or a POINT."), field="filter")


def _numbers(values: Any, what: str) -> list[float]:
    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise InvalidInput(_("%(what)s takes numbers.") % {"what": what}, field="filter")
    return [float(v) for v in values]


def _any(conditions: list[Q]) -> Q:
    if not conditions:
        return NOTHING
    result = conditions[0]
    for condition in conditions[1:]:
        result |= condition
    return result


class Like(Lookup):
    """CQL2 LIKE, case-sensitive on both databases, in the database's own matcher (linear in the text, unlike
    a regular expression built from the pattern, which a hostile pattern could make take minutes).

    `rhs` is the CQL2 pattern; PostgreSQL's LIKE reads it as it is, SQLite's GLOB gets it translated (its LIKE
    ignores case).
    """

    lookup_name = "cql2_like"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "sqlite":
            return f"{lhs} GLOB %s", [*lhs_params, like_to_glob(self.rhs)]
        return f"{lhs} LIKE %s ESCAPE '\\'", [*lhs_params, like_for_postgres(self.rhs)]


def like_for_postgres(pattern: str) -> str:
    """The pattern with a lone trailing backslash made literal (PostgreSQL refuses it)."""
    escaped = False
    for char in pattern:
        escaped = (not escaped) and char == "\\"
    return pattern + "\\" if escaped else pattern


def like_to_glob(pattern: str) -> str:
    """CQL2 LIKE ('%' any text, '_' one character, '\\' escapes the next) as an SQLite GLOB pattern."""
    out, escaped = [], False
    for char in pattern:
        if escaped or char not in "%_\\":
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("*" if char == "%" else "?")
    if escaped:
        out.append("\\")
    return "".join(out)


TIMESTAMP_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?")


def parse_timestamp(text: str) -> dt.datetime:
    """An RFC 3339 time (a space for the T, and seconds, may be left out). Without an offset it is UTC: the
    time that the service itself gives out, and that GIS show, is UTC."""
    if not TIMESTAMP_FORMAT.fullmatch(text.strip()):
        raise ValueError(text)
    when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


COMPARISONS = {"=", "<>", "<", "<=", ">", ">="}
LOOKUPS = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}
FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def bbox_to_wgs84(box: Sequence[float], crs: str) -> tuple[float, float, float, float]:
    """A bbox parameter in `crs` (axis order of the CRS) as lon/lat bounds that contain it."""
    if crs == CRS84:
        return (box[0], box[1], box[2], box[3])
    min_n, min_e, max_n, max_e = box
    west, south, east, north = _from_sweref().transform_bounds(min_e, min_n, max_e, max_n, densify_pts=21)
    return (west, south, east, north)


@lru_cache(maxsize=1)
def _from_sweref() -> Transformer:
    return Transformer.from_crs(3006, 4326, always_xy=True)
