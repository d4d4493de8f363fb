"""Each forum's data version: a number that grows whenever any of its deviations is written.

Caches key on it (the vector tiles' ETag): a map that pans back over a tile revalidates it for the price of one
indexed lookup instead of rebuilding it. Database triggers keep it, so no write path can forget to, the bulk
import's COPY included.

The versions are ids in an append-only table rather than a counter on the forum's row: a counter would be
locked by every writing transaction until it commits, so a long import would hold up every report in the
forum. PostgreSQL adds one row per statement and forum (statement triggers over the transition table),
SQLite one per row written (it has only row triggers, and one writer at a time anyway). `lagesbild
retention` keeps only each forum's newest row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "deviations_data_change"
DEVIATIONS = "deviations_deviation"

_SQLITE_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, forum_id INTEGER NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_forum ON {TABLE} (forum_id, id)",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_insert AFTER INSERT ON {DEVIATIONS} BEGIN
        INSERT INTO {TABLE} (forum_id) VALUES (new.forum_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_update AFTER UPDATE ON {DEVIATIONS} BEGIN
        INSERT INTO {TABLE} (forum_id) VALUES (new.forum_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_delete AFTER DELETE ON {DEVIATIONS} BEGIN
        INSERT INTO {TABLE} (forum_id) VALUES (old.forum_id); END""",
]

_POSTGRESQL_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, forum_id bigint NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_forum ON {TABLE} (forum_id, id)",
    f"""CREATE OR REPLACE FUNCTION {TABLE}_written() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO {TABLE} (forum_id) SELECT DISTINCT forum_id FROM old_rows;
            ELSE
                INSERT INTO {TABLE} (forum_id) SELECT DISTINCT forum_id FROM new_rows;
            END IF;
            RETURN NULL;
        END $$""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_insert AFTER INSERT ON {DEVIATIONS}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_written()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_update AFTER UPDATE ON {DEVIATIONS}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_written()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_delete AFTER DELETE ON {DEVIATIONS}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_written()""",
]


def ensure_triggers(connection: BaseDatabaseWrapper) -> None:
    """Create the table and triggers if they are missing (idempotent; run after every migrate)."""
    with connection.cursor() as cursor:
        if DEVIATIONS not in connection.introspection.table_names(cursor):
            return
        statements = _SQLITE_STATEMENTS if connection.vendor == "sqlite" else _POSTGRESQL_STATEMENTS
        for statement in statements:
            cursor.execute(statement)


def data_version(forum_id: int) -> int:
    """The forum's current data version: the newest change to any of its deviations (0 before the first)."""
    with default_connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {TABLE} WHERE forum_id = %s", [forum_id])
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


def prune() -> int:
    """Forget all but each forum's newest change; the versions stay what they were. Returns how many went."""
    with default_connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id NOT IN "
                       f"(SELECT max(id) FROM {TABLE} GROUP BY forum_id)")
        return cursor.rowcount


class Kept:
    """Answers built lately, in this process, by what they were built from: the forum's data version, the
    reader's organisation (what it may see), and what was asked. A change to any deviation of the forum moves
    the version, so a kept answer is never stale; up to LAGESBILD_KEPT_MB, the least recently used go first."""

    def __init__(self) -> None:
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0

    def get(self, key: str) -> bytes | None:
        with self.lock:
            data = self.items.get(key)
            if data is not None:
                self.items.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        with self.lock:
            if key in self.items:
                return
            self.items[key] = data
            self.size += len(data)
            limit = settings.LAGESBILD_KEPT_MB * 1024 * 1024
            while self.size > limit and self.items:
                _key, old = self.items.popitem(last=False)
                self.size -= len(old)


# The lists and aggregates of deviations built lately (deviations.api), so that a map panning back over a view
# revalidates it for the price of one indexed lookup of the data version.
answers = Kept()


def has_current(if_none_match: str, tag: str) -> bool:
    """Whether an If-None-Match header names `tag`. Compared weakly, as RFC 9110 asks: gzip makes the ETag
    weak on the way out (W/"…"), and the client sends it back so."""
    sent = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return tag.removeprefix("W/") in sent or "*" in sent
