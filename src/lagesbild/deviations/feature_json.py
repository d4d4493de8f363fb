"""A deviation as the list's GeoJSON feature, written by the database rather than by Python.

A district's list is thousands of features. Reading each row into Python (a datetime parsed, two floats
rounded, three dicts built) and writing it out again as JSON took about as long as the query itself; SQLite's
JSON functions and PostgreSQL's `jsonb_build_object` write the same feature in C, and Python only joins the
texts. `tests/test_api.py` holds the feature equal to one built in Python, on both databases.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, FloatField, Func, JSONField, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, JSONArray, JSONObject, Round


class _Moment(Func):
    """A stored moment as the API writes it: 2026-03-01T14:30:00Z, with microseconds only when there are some
    (as Python's isoformat)."""

    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores "2026-03-01 14:30:00[.ffffff]", in UTC.
        return self.as_sql(compiler, connection, template="(replace(%(expressions)s, ' ', 'T') || 'Z')", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        utc = "(%(expressions)s AT TIME ZONE 'UTC')"
        template = (f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') = '000000' "
                    f"THEN '' ELSE '.' || to_char({utc}, 'US') END || 'Z')")
        return self.as_sql(compiler, connection, template=template, **extra)


class _Stored(Func):
    """A JSONField's value as JSON inside another (SQLite keeps it as text, which json_object would quote)."""

    output_field = JSONField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="json(%(expressions)s)", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="%(expressions)s", **extra)


class _WithAnchor(Func):
    """The properties with `anchor` added last (a line's or area's point on the map)."""

    output_field = JSONField()

    def __init__(self, properties: Any, anchor: Any) -> None:
        super().__init__(properties, anchor)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="json_insert(%(expressions)s)", arg_joiner=", '$.anchor', ",
                           **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s))",
                           arg_joiner=" || jsonb_build_object('anchor', ", **extra)


def _coordinate(name: str) -> Cast:
    # Rounded to 6 decimals (about 10 cm); a float again, so that PostgreSQL writes 18.1 rather than numeric's
    # 18.100000.
    return Cast(Round(F(name), 6), FloatField())


def feature_expression() -> Cast:
    """The feature of each row, as JSON text."""
    anchor = JSONArray(_coordinate("lon"), _coordinate("lat"))
    properties = JSONObject(
        id=F("id"), category=F("category__key"),
        parentCategory=Coalesce(F("category__parent__key"), F("category__key")),
        observedAt=_Moment(F("observed_at")), status=F("status"), severity=F("severity"),
        organisation=F("organisation_id"), placeName=F("place_name"), visibility=F("visibility"))
    point = JSONObject(type=Value("Point"), coordinates=anchor)
    feature = JSONObject(
        type=Value("Feature"), id=F("id"),
        geometry=Case(When(shape__isnull=True, then=point), default=_Stored(F("shape")), output_field=JSONField()),
        properties=Case(When(shape__isnull=True, then=properties), default=_WithAnchor(properties, anchor),
                        output_field=JSONField()))
    return Cast(feature, TextField())
