"""A deviation as the list's GeoJSON feature, written by the database rather than by Python.

A district's list is thousands of features. Reading each row into Python (a datetime parsed, two floats
rounded, three dicts built) and writing it out again as JSON took about as long as the query itself. SQLite's
JSON functions, and PostgreSQL joining the feature's text from its parts, write the same feature in C, and
Python only joins the features. `tests/test_api.py` holds the feature equal to one built in Python, on both
databases.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Case, F, FloatField, Func, IntegerField, JSONField, TextField, Value, When
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
        seconds = "'YYYY-MM-DD\"T\"HH24:MI:SS"
        template = (f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN to_char({utc}, {seconds}\"Z\"') "
                    f"ELSE to_char({utc}, {seconds}.US\"Z\"') END")
        return self.as_sql(compiler, connection, template=template, **extra)


def _json_text(compiler: Any, expression: Any) -> tuple[str, list[Any]]:
    """An expression's value as JSON text in PostgreSQL: as it is if it is JSON text already (an object or
    array of this module's), a whole number or a coordinate as its text, else through to_json, which quotes and
    escapes a text; SQL's NULL as null."""
    if isinstance(expression, Value):  # a constant ("Feature"): its JSON, as a parameter
        # Typed: concat() takes any type, and PostgreSQL cannot tell an untyped parameter's when it is bound
        # on the server.
        return "%s::text", [json.dumps(expression.value)]
    sql, params = compiler.compile(expression)
    if isinstance(expression, (_Object, _Array, _Stored, _Either)):
        return sql, params
    if isinstance(expression, _Coordinate) or isinstance(getattr(expression, "output_field", None), IntegerField):
        # A number's text is its JSON: to_json would look up the value's type again for every row.
        return f"COALESCE(({sql})::text, 'null')", params
    return f"COALESCE(to_json({sql})::text, 'null')", params


class _Object(JSONObject):
    """Django's JSONObject (SQLite's json_object), but on PostgreSQL the object's text joined from its parts
    by one concat(), which writes the text once (a chain of `||` copies it again at every step). Django's
    jsonb_build_object builds a binary value, sorts its keys and writes it out again, and json_build_object
    looks up each value's type again for every row: for a district's 3,000 features these took 47 and 37-41 ms
    in the database, the joined text 31 ms (and a tenth fewer bytes: no spaces); concat, numbers without
    to_json and coordinates rounded without numeric took it from 28 to 24-26 ms."""

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        expressions = self.get_source_expressions()
        parts, params = [], []
        for index in range(0, len(expressions), 2):
            key = expressions[index].value
            if not key.isidentifier():  # the keys are this module's own, and need no escaping in SQL or JSON
                raise ValueError(key)
            sql, value_params = _json_text(compiler, expressions[index + 1])
            before = "{" if index == 0 else ","
            parts += [f"'{before}\"{key}\":'", sql]
            params.extend(value_params)
        return "concat(" + ", ".join([*parts, "'}'"]) + ")", params


class _Array(JSONArray):
    """Django's JSONArray (SQLite's json_array), joined from its parts on PostgreSQL (see _Object)."""

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, value_params = _json_text(compiler, expression)
            parts.append(sql)
            params.extend(value_params)
        return "concat('[', " + ", ',', ".join(parts) + ", ']')", params


class _Stored(Func):
    """A JSONField's value as JSON inside another (SQLite keeps it as text, which json_object would quote;
    PostgreSQL keeps jsonb, written out here as text)."""

    output_field = JSONField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="json(%(expressions)s)", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # NULL as null: concat() would leave a NULL out, and the feature would not be JSON.
        return self.as_sql(compiler, connection, template="COALESCE((%(expressions)s)::text, 'null')", **extra)


class _Either(Case):
    """A point's or a shape's JSON: a Case whose every branch is JSON already (so _json_text takes it as it is)."""

    def __init__(self, point: Any, shape: Any) -> None:
        super().__init__(When(shape__isnull=True, then=point), default=shape, output_field=JSONField())


class _Coordinate(Func):
    """A longitude or latitude rounded to 6 decimals (about 10 cm), still a float, so that it is written as
    18.1 rather than numeric's 18.100000. PostgreSQL rounds in floating point: through numeric, as SQLite's
    ROUND is written there, it took a fifth of a district list's time in the database."""

    output_field = FloatField()

    def __init__(self, name: str) -> None:
        super().__init__(F(name))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return compiler.compile(Cast(Round(self.get_source_expressions()[0], 6), FloatField()))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(round(%(expressions)s * 1e6) / 1e6)", **extra)


def feature_expression() -> Cast:
    """The feature of each row, as JSON text."""
    anchor = _Array(_Coordinate("lon"), _Coordinate("lat"))
    fields = {
        "id": F("id"), "category": F("category__key"),
        "parentCategory": Coalesce(F("category__parent__key"), F("category__key")),
        "observedAt": _Moment(F("observed_at")), "status": F("status"), "severity": F("severity"),
        "organisation": F("organisation_id"), "placeName": F("place_name"), "visibility": F("visibility")}
    point = _Object(type=Value("Point"), coordinates=anchor)
    feature = _Object(
        type=Value("Feature"), id=F("id"), geometry=_Either(point, _Stored(F("shape"))),
        # A line's or area's properties also hold its anchor, its point on the map.
        properties=_Either(_Object(**fields), _Object(**fields, anchor=anchor)))
    return Cast(feature, TextField())
