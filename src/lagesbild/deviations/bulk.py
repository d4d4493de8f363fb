"""Deviations written thousands at a time, for an import: checked rows in, with everything a report stores.

The one other path that writes deviations besides deviations.services, for the one case where a row at a time
is far too slow (a million rows). The rows are checked before they come here (interop.imports holds them to
services.check_values), and the import records one audit event for all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from lagesbild import geometry
from lagesbild.deviations.derived import h3_cells, time_fields
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.services import search_text_for
from lagesbild.forums.models import Membership


class Writer:
    """Inserts checked rows with everything a report stores (the derived columns too), thousands at a time:
    COPY on PostgreSQL, one prepared INSERT for many rows on SQLite. Django's bulk_create builds a model
    object per row, which at a million rows costs more than the database does."""

    def __init__(self, membership: Membership, batch_id: int, source: str) -> None:
        self.forum = membership.forum
        self.user_id = membership.user_id
        self.batch_id = batch_id
        self.source = source
        self.now = timezone.now()
        self.zone = ZoneInfo(self.forum.timezone)
        self.fields = [f for f in Deviation._meta.concrete_fields if not f.primary_key]
        # Each column's value comes from the row; a column added to Deviation later gets its default.
        self.defaults = [(f.name, None if f.null else f.get_default()) for f in self.fields]
        self.times = [n for n, f in enumerate(self.fields) if f.get_internal_type() == "DateTimeField"]
        self.sqlite = connection.vendor == "sqlite"
        self.written = 0

    def write(self, rows: Sequence[Any]) -> None:
        """Insert the rows (each with the fields of interop.imports.Staged), checked already."""
        if not rows:
            return
        xs, ys = geometry.to_sweref99tm_many([r.lon for r in rows], [r.lat for r in rows])
        values = []
        for row, x, y in zip(rows, xs, ys, strict=True):
            cells = h3_cells(row.lon, row.lat)
            record: dict[str, Any] = {
                "forum": self.forum.pk, "category": row.category_id, "lon": row.lon, "lat": row.lat,
                "sweref_x": x, "sweref_y": y, "h3_8": cells[0], "h3_9": cells[1], "h3_10": cells[2],
                **time_fields(row.observed_at, self.forum.timezone),
                "place_name": row.place_name, "observed_at": row.observed_at, "observed_until": row.observed_until,
                "reported_at": row.reported_at or self.now, "updated_at": self.now,
                "organisation": row.organisation_id, "reporter": self.user_id, "description": row.description,
                "severity": row.severity, "visibility": row.visibility, "status": row.status,
                "source": self.source, "version": 1,
                "search_text": search_text_for(row.place_name, row.description),
                "anonymised_at": None, "withdrawn_at": None, "import_batch": self.batch_id,
            }
            value = [record.get(name, default) for name, default in self.defaults]
            for index in self.times:
                value[index] = self.prepare(value[index])
            values.append(value)
        table = Deviation._meta.db_table
        columns = [f.column for f in self.fields]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                names = ", ".join(connection.ops.quote_name(c) for c in columns)
                with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                names = ", ".join(connection.ops.quote_name(c) for c in columns)
                cursor.executemany(f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES "
                                   f"({', '.join(['%s'] * len(columns))})", values)
        self.written += len(rows)

    def prepare(self, value: Any) -> Any:
        """A time as the database takes it: on SQLite text in UTC, as Django stores it."""
        if self.sqlite and value is not None:
            return str(value.astimezone(dt.UTC).replace(tzinfo=None))
        return value
