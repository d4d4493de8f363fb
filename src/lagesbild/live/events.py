"""Publishing the live picture's events.

The deviation services call these as they change deviations. Each event is written after the change has
committed, so that no map hears of a change that was rolled back, and a failure to write one never undoes
the change: the event is a courtesy to open maps, which also load afresh whenever they are opened.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from lagesbild.live.models import LiveEvent

logger = logging.getLogger(__name__)

# The organisations that may see a deviation; None means the whole forum.
Audience = frozenset[int] | None

CHANNEL = "lagesbild_live"  # PostgreSQL's NOTIFY channel between app processes
# Taken while an event is written on PostgreSQL, so that events commit in the order of their ids: the
# broker reads "everything after the last id it saw", which must never skip one that commits late.
ORDER_LOCK = 0x4C69766531
KEEP = dt.timedelta(days=1)  # a map that was away longer loads afresh instead of catching up
PRUNE_EVERY = 100  # events written between two prunings of those older than KEEP


def deviation_reported(forum_id: int, deviation_id: int, seen: Audience) -> None:
    _publish(forum_id, deviation_id, LiveEvent.Kind.REPORTED, seen, False, frozenset())


def deviation_changed(forum_id: int, deviation_id: int, before: Audience, after: Audience) -> None:
    """A deviation changed; `before` and `after` are who could see it before and who may now. Those who
    could see it and no longer may are told to remove it."""
    _publish(forum_id, deviation_id, LiveEvent.Kind.CHANGED, after, *_lost(before, after))


def deviation_removed(forum_id: int, deviation_id: int, before: Audience) -> None:
    """A deviation was withdrawn: those who could see it take it off their map."""
    _publish(forum_id, deviation_id, LiveEvent.Kind.REMOVED, frozenset(), *_lost(before, frozenset()))


def many_changed(forum_id: int, seen: Audience) -> None:
    """Many deviations changed at once (an import, or undoing one): the maps of `seen` load again."""
    _publish(forum_id, None, LiveEvent.Kind.RELOAD, seen, False, frozenset())


def _lost(before: Audience, after: Audience) -> tuple[bool, frozenset[int]]:
    """Who could see it before and may not now: everyone outside `after`, or the organisations named."""
    if after is None:
        return False, frozenset()
    if before is None:
        return True, frozenset()
    return False, before - after


def _publish(forum_id: int, deviation_id: int | None, kind: str, seen: Audience, lost_all: bool,
             lost: frozenset[int]) -> None:
    fields: dict[str, Any] = {
        "forum_id": forum_id, "deviation_id": deviation_id, "kind": kind,
        "seen_all": seen is None, "seen": sorted(seen or ()), "lost_all": lost_all, "lost": sorted(lost),
    }

    def write() -> None:
        _write(fields)

    # A function, not a functools.partial: Django logs a robust hook that fails by its __qualname__, which a
    # partial lacks, and the logging then fails in turn: a 500 for a report that was saved.
    transaction.on_commit(write, robust=True)


def _write(fields: dict[str, Any]) -> None:
    with transaction.atomic():
        postgres = connection.vendor == "postgresql"
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ORDER_LOCK])
        event = LiveEvent.objects.create(**fields)
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(event.pk)])
    if event.pk % PRUNE_EVERY == 0:
        LiveEvent.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    from lagesbild.live.broker import broker  # on SQLite, this process's maps hear of it at once

    broker.wake()
