"""The broker: one thread per app process that hears of new live events and hands each to the open maps
of its forum.

On PostgreSQL it LISTENs on a connection of its own, so an event written by any app process or worker
reaches every process at once; on SQLite the process that wrote the event wakes it, and it also looks
every second, for events written by another process (the worker). Either way it reads the events from
the table, in id order, so what it hands on is what a map that reconnects would be given.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from lagesbild.live.events import CHANNEL
from lagesbild.live.models import LiveEvent

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often the broker looks without being woken
BATCH = 500
QUEUE_SIZE = 1000  # events waiting for one slow map before it is told to load afresh instead


@dataclass(frozen=True)
class Event:
    id: int
    forum_id: int
    deviation_id: int | None
    kind: str
    seen_all: bool
    seen: frozenset[int]
    lost_all: bool
    lost: frozenset[int]

    @classmethod
    def from_row(cls, row: LiveEvent) -> Event:
        return cls(row.pk, row.forum_id, row.deviation_id, row.kind, row.seen_all, frozenset(row.seen),
                   row.lost_all, frozenset(row.lost))

    def message_for(self, organisation_id: int) -> str | None:
        """The server-sent event a member of the organisation gets, or None: they hear nothing of it."""
        if self.seen_all or organisation_id in self.seen:
            kind = self.kind
        elif self.kind != LiveEvent.Kind.RELOAD and (self.lost_all or organisation_id in self.lost):
            kind = LiveEvent.Kind.REMOVED
        else:
            return None
        if kind == LiveEvent.Kind.RELOAD:
            return f"id: {self.id}\n" + reload_message()
        data = json.dumps({"id": self.deviation_id, "kind": kind})
        return f"id: {self.id}\nevent: deviation\ndata: {data}\n\n"


def reload_message() -> str:
    """Load afresh. Without an id when it stands for many events: the browser keeps the id of the last event
    it was given, so no member ever holds the id of an event they may not see."""
    return "event: reload\ndata: {}\n\n"


class Reader:
    """One open map: its member's forum and organisation, and the events waiting for it."""

    def __init__(self, forum_id: int, organisation_id: int, user_id: int) -> None:
        self.forum_id = forum_id
        self.organisation_id = organisation_id
        self.user_id = user_id
        self.events: queue.Queue[Event] = queue.Queue(maxsize=QUEUE_SIZE)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.overflowed = True


class Busy(Exception):
    def __init__(self, per_user: bool) -> None:
        self.per_user = per_user


class Broker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: dict[int, set[Reader]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_id = 0

    def subscribe(self, reader: Reader) -> int:
        """Start handing the forum's events to `reader`; returns the id of the last event handed on before.
        Raises Busy if the process has as many open maps as it takes, or the member as many as one may."""
        with self._lock:
            readers = [r for forum in self._readers.values() for r in forum]
            if len(readers) >= settings.LAGESBILD_LIVE_MAX_CONNECTIONS:
                raise Busy(per_user=False)
            if sum(r.user_id == reader.user_id for r in readers) >= settings.LAGESBILD_LIVE_MAX_PER_USER:
                raise Busy(per_user=True)
            if self._thread is None:
                self.last_id = newest_event_id()
                self._thread = threading.Thread(target=self._run, name="lagesbild-live", daemon=True)
                self._thread.start()
            self._readers.setdefault(reader.forum_id, set()).add(reader)
            return self.last_id

    def unsubscribe(self, reader: Reader) -> None:
        with self._lock:
            forum = self._readers.get(reader.forum_id, set())
            forum.discard(reader)
            if not forum:
                self._readers.pop(reader.forum_id, None)

    def open_count(self) -> int:
        with self._lock:
            return sum(len(forum) for forum in self._readers.values())

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        """Until the last map closes: wait for news, then hand it on."""
        listener = None
        while True:
            try:
                if connection.vendor == "postgresql":
                    if listener is None:
                        listener = _listen()
                    for _notice in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                        pass
                else:
                    self._wake.wait(POLL_SECONDS)
                    self._wake.clear()
                with self._lock:
                    if not self._readers:  # the next map to open starts a new thread
                        self._thread = None
                        break
                self._deliver()
            except Exception:
                # The database went away (a restart, a failover): open maps wait, and are caught up from the
                # table once it is back, since the broker resumes after the last id it handed on.
                logger.exception("The live picture lost its database connection; trying again in a second.")
                if listener is not None:
                    listener.close()
                    listener = None
                connection.close()
                self._wake.wait(POLL_SECONDS)
        if listener is not None:
            listener.close()
        connection.close()

    def _deliver(self) -> None:
        while True:
            rows = list(LiveEvent.objects.filter(pk__gt=self.last_id).order_by("pk")[:BATCH])
            for row in rows:
                event = Event.from_row(row)
                with self._lock:
                    readers = list(self._readers.get(event.forum_id, ()))
                for reader in readers:
                    reader.offer(event)
                self.last_id = event.id
            if len(rows) < BATCH:
                return


def newest_event_id() -> int:
    return LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _listen():  # type: ignore[no-untyped-def]
    """A connection of the broker's own, LISTENing on the channel. It must be a direct connection to
    PostgreSQL (or a session-mode pool): a transaction-mode pooler drops notifications."""
    import psycopg

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    listener = psycopg.Connection.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    return listener


broker = Broker()
