"""Deviations written thousands at a time, for an import: checked rows in, with everything a report stores.

The one other path that writes deviations besides deviations.services, for the one case where a row at a time
is far too slow (a million rows). The rows are checked before they come here (interop.imports holds them to
services.check_values), and the import records one audit event for all of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from lagesbild import data_version, geometry, spatial_index
from lagesbild.deviations import counts
from lagesbild.deviations.derived import h3_cells
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.services import search_text_for
from lagesbild.forums.models import Membership

logger = logging.getLogger(__name__)

# COPY's text format: a backslash, tab, newline or carriage return inside a value is written escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return str(value).translate(_COPY_ESCAPES)


# SQLite's page cache while a bulk load writes (KiB; 2 MB by default): a million rows update the table, its unique
# indexes, the R*Tree and the counts all over, and with the default most of those pages are read again from the
# file for every few rows.
BULK_CACHE_KIB = 256 * 1024


def _refresh_statistics() -> None:
    try:
        spatial_index.refresh_statistics(connection)
    except OperationalError:  # busy: `lagesbild retention` gathers them tonight
        logger.warning("SQLite's statistics were not gathered after a bulk load", exc_info=True)


# PostgreSQL: a load of at least this many rows is vacuumed once committed; autovacuum takes care of smaller ones.
VACUUM_ROWS = 10_000


class Writer:
    """Inserts checked rows with everything a report stores (the derived columns too), thousands at a time:
    COPY on PostgreSQL, one prepared INSERT for many rows on SQLite. Django's bulk_create builds a model
    object per row, which at a million rows costs more than the database does.

    Used as a context manager inside the caller's transaction. On PostgreSQL one COPY runs from the first row
    to the last, so that the database indexes rows while this process prepares the next ones (a COPY per
    chunk would make each side wait for the other at every chunk's end). Its rows are written as COPY's text
    by hand: the columns' types are known, and that is several times quicker than a generic row adapter."""

    # The columns that differ from row to row, in the order each row's values are built...
    VARYING = ("category", "lon", "lat", "sweref_x", "sweref_y", "h3_8", "h3_9", "h3_10", "local_weekday",
               "local_hour", "local_month", "place_name", "observed_at", "observed_until", "reported_at",
               "organisation", "description", "severity", "visibility", "status", "search_text")
    # ...and those that are the same for the whole import.
    SHARED = ("forum", "updated_at", "reporter", "source", "version", "import_batch")

    def __init__(self, membership: Membership, batch_id: int, source: str, expected: int = 0) -> None:
        """`expected`: how many rows are coming, if known (an import's checked rows). On SQLite, a load at
        least as large as the table's rows builds the table's indexes afresh at the end, rather than adding to
        them row by row."""
        self.expected = expected
        self._set_aside: list[tuple[str, str]] = []  # SQLite: the indexes built again at the end (name, SQL)
        self._statistics: list[tuple[str, str, str]] = []
        self.forum = membership.forum
        self.now = timezone.now()
        self.zone = ZoneInfo(self.forum.timezone)
        self.sqlite = connection.vendor == "sqlite"
        fields = {f.name: f for f in Deviation._meta.concrete_fields if not f.primary_key}
        shared: list[tuple[str, Any]] = list(zip(self.SHARED, (
            self.forum.pk, self.prepare(self.now), membership.user_id, source, 1, batch_id), strict=True))
        # A column added to Deviation later, and not nullable, gets its default in every row; nullable ones
        # are left to the database (NULL), so that COPY carries only what rows hold.
        shared += [(name, f.get_default()) for name, f in fields.items()
                   if name not in self.VARYING + self.SHARED and not f.null]
        self.shared = [value for _name, value in shared]
        self.shared_text = "\t".join(_copy_text(value) for value in self.shared)
        self.columns = [fields[name].column for name in self.VARYING] + [fields[name].column for name, _v in shared]
        self.written = 0
        # SQLite: the forum-wide rows written, by UTC day, resolution-8 hexagon and category (for the counts).
        self.loaded: Counter[tuple[dt.date, int, int]] = Counter()
        self.table = connection.ops.quote_name(Deviation._meta.db_table)
        self.names = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        self._stack = ExitStack()
        self._copy: Any = None

    def __enter__(self) -> Self:
        if not self.sqlite:
            cursor = self._stack.enter_context(connection.cursor())
            self._copy = self._stack.enter_context(cursor.cursor.copy(f"COPY {self.table} ({self.names}) FROM STDIN"))
            return self
        # SQLite has only row triggers: for a million rows, six counts, a data version and an R*Tree insert each
        # would cost more than the rows. They are off while this transaction writes (it holds SQLite's one write
        # lock, and a rollback brings them back), and the rows are counted and indexed at once at the end.
        if not connection.in_atomic_block:
            raise RuntimeError("bulk.Writer on SQLite runs inside the caller's transaction (transaction.atomic)")
        try:
            self._start_sqlite()
        except BaseException:
            transaction.set_rollback(True)  # a trigger may be gone already
            raise
        return self

    def _start_sqlite(self) -> None:
        with connection.cursor() as cursor:
            counts.drop_insert_trigger(connection)  # the write lock from here: no one else adds rows meanwhile
            spatial_index.drop_insert_trigger(connection)
            cursor.execute(f"DROP TRIGGER IF EXISTS {data_version.TABLE}_insert")
            cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.table}")
            row = cursor.fetchone()
            self.first_id = int(row[0]) if row else 1
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {counts.TABLE}")
            count_rows = int(cursor.fetchone()[0])
            # A table's index sorted and written once is several times quicker than the same index grown row by
            # row, but rebuilding it reads the whole table: worth it when the load at least doubles the table (a
            # first import, a benchmark; an empty table always), not for a file added to millions. max(id) is at
            # least the rows there. Only plain indexes: a unique one checks every row as it comes. The rollback
            # of a failed load brings them back as they were.
            tables = [name for name, rows in ((counts.DEVIATIONS, self.first_id - 1), (counts.TABLE, count_rows))
                      if self.expected >= rows]
            for table in tables:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                               "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%%'", [table])
                for name, sql in cursor.fetchall():
                    self._set_aside.append((name, sql))
            # Dropping an index drops the planner's statistics of it; they are put back with it (the statistics
            # are gathered afresh after a large load, but that may be refused while others write).
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if cursor.fetchone() and self._set_aside:
                names = [name for name, _sql in self._set_aside]
                cursor.execute(f"SELECT tbl, idx, stat FROM sqlite_stat1 WHERE idx IN "
                               f"({', '.join(['%s'] * len(names))})", names)
                self._statistics = cursor.fetchall()
            for name, _sql in self._set_aside:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            cursor.execute("PRAGMA cache_size")
            self._cache_size = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")  # the last step: __exit__ sets it back

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # Ends the COPY; after an error psycopg aborts it, and the caller's transaction rolls back.
        self._copy = None
        self._stack.__exit__(kind, error, traceback)
        if kind is None and not self.sqlite and self.written >= VACUUM_ROWS:
            # Once committed (VACUUM cannot run inside a transaction); robust: whatever it raises, the load is
            # committed and reported as such, and the hooks after it run.
            transaction.on_commit(partial(spatial_index.vacuum, connection), robust=True)
        if self.sqlite:
            try:
                if kind is None:
                    self._index_and_count()
            finally:
                # With the load's page cache still: the R*Tree and the counts are filled from pages just written.
                # Not through Django's cursor, which refuses to run in a transaction marked for rollback.
                connection.connection.execute(f"PRAGMA cache_size = {self._cache_size}")
        if kind is not None and connection.in_atomic_block:
            # What was written is not to be kept, even by a caller that catches the error (on SQLite the rows
            # are neither indexed nor counted yet). The rollback brings SQLite's triggers back as well.
            transaction.set_rollback(True)

    def _index_and_count(self) -> None:
        """SQLite: index and count the loaded rows at once, and bring the row triggers back."""
        try:
            spatial_index.index_added(connection, f"forum_id = {int(self.forum.pk)} AND id >= {self.first_id}")
            counts.add_loaded(connection, self.forum.pk, self.loaded)
            with connection.cursor() as cursor:
                for _name, sql in self._set_aside:
                    cursor.execute(sql)
                cursor.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (%s, %s, %s)", self._statistics)
            counts.ensure_triggers(connection)
            data_version.ensure_triggers(connection)
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {data_version.TABLE} (forum_id) VALUES (%s)", [self.forum.pk])
            if self.written * 10 >= self.first_id - 1:
                # A tenth or more of the rows there are now came with this load: the planner's statistics are
                # gathered again once it is committed (not inside it: they hold the write lock a while, and a
                # failure there is no reason to lose the load).
                transaction.on_commit(_refresh_statistics)
        except BaseException:
            transaction.set_rollback(True)
            raise

    def write(self, rows: Sequence[Any]) -> None:
        """Insert the rows (each with the fields of interop.imports.Staged), checked already."""
        if not rows:
            return
        if self._copy is not None:
            self._copy.write("".join(self._copy_lines(rows)).encode())
        elif self.sqlite:
            worked_out = self._derived(rows)
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {self.table} ({self.names}) "
                                   f"VALUES ({', '.join(['%s'] * len(self.columns))})", self._values(rows, worked_out))
            # Counted here, where the rows and their hexagons are at hand (bulk rows are never withdrawn), once
            # they are in. Keyed by the hexagons the counts keep (counts.RESOLUTIONS).
            loaded = self.loaded
            for row, (_x, _y, h3_8, *_finer_and_local) in zip(rows, worked_out, strict=True):
                if row.visibility == "forum":
                    loaded[row.observed_at.astimezone(dt.UTC).date(), h3_8, row.category_id] += 1
        else:
            raise RuntimeError("Writer.write outside `with Writer(...)`")
        self.written += len(rows)

    def _derived(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Each row's stored values that are worked out from it: SWEREF 99 TM, hexagons, local time."""
        xs, ys = geometry.to_sweref99tm_many([r.lon for r in rows], [r.lat for r in rows])
        derived = []
        for row, x, y in zip(rows, xs, ys, strict=True):
            local = row.observed_at.astimezone(self.zone)
            derived.append((x, y, *h3_cells(row.lon, row.lat), local.weekday(), local.hour,
                            local.year * 100 + local.month))
        return derived

    def _values(self, rows: Sequence[Any], worked_out: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        when, now = self.prepare, self.prepare(self.now)
        return [(row.category_id, row.lon, row.lat, *derived, row.place_name, when(row.observed_at),
                 when(row.observed_until), when(row.reported_at) if row.reported_at else now, row.organisation_id,
                 row.description, row.severity, row.visibility, row.status,
                 search_text_for(row.place_name, row.description), *self.shared)
                for row, derived in zip(rows, worked_out, strict=True)]

    def _copy_lines(self, rows: Sequence[Any]) -> list[str]:
        escape, shared, now = _COPY_ESCAPES, self.shared_text, self.now.isoformat()
        lines = []
        for row, (x, y, h3_8, h3_9, h3_10, weekday, hour, month) in zip(rows, self._derived(rows), strict=True):
            until = row.observed_until.isoformat() if row.observed_until else "\\N"
            reported = row.reported_at.isoformat() if row.reported_at else now
            lines.append(
                f"{row.category_id:d}\t{row.lon!r}\t{row.lat!r}\t{x!r}\t{y!r}\t{h3_8:d}\t{h3_9:d}\t{h3_10:d}\t"
                f"{weekday:d}\t{hour:d}\t{month:d}\t{row.place_name.translate(escape)}\t"
                f"{row.observed_at.isoformat()}\t{until}\t{reported}\t{row.organisation_id:d}\t"
                f"{row.description.translate(escape)}\t{row.severity.translate(escape)}\t"
                f"{row.visibility.translate(escape)}\t{row.status.translate(escape)}\t"
                f"{search_text_for(row.place_name, row.description).translate(escape)}\t{shared}\n")
        return lines

    def prepare(self, value: dt.datetime | None) -> Any:
        """A time as the database takes it: on SQLite text in UTC, as Django stores it."""
        if self.sqlite and value is not None:
            return str(value.astimezone(dt.UTC).replace(tzinfo=None))
        return value
