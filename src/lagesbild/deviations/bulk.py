"""Deviations written thousands at a time, for an import: checked rows in, with everything a report stores.

The one other path that writes deviations besides deviations.services, for the one case where a row at a time
is far too slow (a million rows). The rows are checked before they come here (interop.imports holds them to
services.check_values), and the import records one audit event for all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from lagesbild import geometry
from lagesbild.deviations.derived import h3_cells
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.services import search_text_for
from lagesbild.forums.models import Membership


class Writer:
    """Inserts checked rows with everything a report stores (the derived columns too), thousands at a time:
    COPY on PostgreSQL, one prepared INSERT for many rows on SQLite. Django's bulk_create builds a model
    object per row, which at a million rows costs more than the database does.

    Used as a context manager inside the caller's transaction. On PostgreSQL one COPY runs from the first row
    to the last, so that the database indexes rows while this process prepares the next ones (a COPY per
    chunk would make each side wait for the other at every chunk's end)."""

    # The columns an import sets, in the order each row's values are built.
    COLUMNS = ("forum", "category", "lon", "lat", "sweref_x", "sweref_y", "h3_8", "h3_9", "h3_10", "local_weekday",
               "local_hour", "local_month", "place_name", "observed_at", "observed_until", "reported_at", "updated_at",
               "organisation", "reporter", "description", "severity", "visibility", "status", "source", "version",
               "search_text", "import_batch")

    def __init__(self, membership: Membership, batch_id: int, source: str) -> None:
        self.forum = membership.forum
        self.user_id = membership.user_id
        self.batch_id = batch_id
        self.source = source
        self.now = timezone.now()
        self.zone = ZoneInfo(self.forum.timezone)
        fields = {f.name: f for f in Deviation._meta.concrete_fields if not f.primary_key}
        # A column added to Deviation later, and not nullable, gets its default in every row; nullable ones
        # are left to the database (NULL), so that COPY carries only what rows hold.
        self.constants = [(f, f.get_default()) for name, f in fields.items()
                          if name not in self.COLUMNS and not f.null]
        self.columns = [fields[name].column for name in self.COLUMNS] + [f.column for f, _v in self.constants]
        self.sqlite = connection.vendor == "sqlite"
        self.written = 0
        self.table = connection.ops.quote_name(Deviation._meta.db_table)
        self.names = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        self._stack = ExitStack()
        self._copy: Any = None

    def __enter__(self) -> Self:
        if not self.sqlite:
            cursor = self._stack.enter_context(connection.cursor())
            self._copy = self._stack.enter_context(cursor.cursor.copy(f"COPY {self.table} ({self.names}) FROM STDIN"))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # Ends the COPY; after an error psycopg aborts it, and the caller's transaction rolls back.
        self._copy = None
        self._stack.__exit__(kind, error, traceback)

    def write(self, rows: Sequence[Any]) -> None:
        """Insert the rows (each with the fields of interop.imports.Staged), checked already."""
        if not rows:
            return
        xs, ys = geometry.to_sweref99tm_many([r.lon for r in rows], [r.lat for r in rows])
        when = self.prepare
        now = when(self.now)
        extra = [value for _f, value in self.constants]
        values = []
        for row, x, y in zip(rows, xs, ys, strict=True):
            h3_8, h3_9, h3_10 = h3_cells(row.lon, row.lat)
            local = row.observed_at.astimezone(self.zone)
            values.append((
                self.forum.pk, row.category_id, row.lon, row.lat, x, y, h3_8, h3_9, h3_10, local.weekday(),
                local.hour, local.year * 100 + local.month, row.place_name, when(row.observed_at),
                when(row.observed_until), when(row.reported_at) if row.reported_at else now, now,
                row.organisation_id, self.user_id, row.description, row.severity, row.visibility, row.status,
                self.source, 1, search_text_for(row.place_name, row.description), self.batch_id, *extra))
        if self._copy is not None:
            for value in values:
                self._copy.write_row(value)
        else:
            if not self.sqlite:
                raise RuntimeError("Writer.write outside `with Writer(...)`")
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {self.table} ({self.names}) "
                                   f"VALUES ({', '.join(['%s'] * len(self.columns))})", values)
        self.written += len(rows)

    def prepare(self, value: dt.datetime | None) -> Any:
        """A time as the database takes it: on SQLite text in UTC, as Django stores it."""
        if self.sqlite and value is not None:
            return str(value.astimezone(dt.UTC).replace(tzinfo=None))
        return value
