"""The live picture's stream: server-sent events for one open map, filtered for its member."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from lagesbild.errors import NotFound
from lagesbild.forums.models import Membership
from lagesbild.forums.services import membership_for
from lagesbild.live.broker import Busy, Event, Reader, broker, reload_message
from lagesbild.live.models import LiveEvent

RECHECK_SECONDS = 60  # how often an open stream checks that its member is still signed in and a member
MAX_AGE_SECONDS = 3600  # then the browser reconnects and resumes, so no stream outlives a deployment for long
REPLAY_MAX = 500  # a map that missed more than this loads afresh instead


def _plain(message: str, status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


@require_GET
def stream(request: HttpRequest, forum: str) -> HttpResponse | StreamingHttpResponse:
    if not request.user.is_authenticated:
        return _plain(_("Sign in to follow the map as it changes."), 401)
    try:
        membership = membership_for(request.user, forum)
    except NotFound as exc:
        return _plain(exc.message, 404)
    raw = request.headers.get("Last-Event-ID") or request.GET.get("since", "")
    since: int | None = None
    if raw:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return _plain(_("The last event id must be a whole number."), 400)
        since = int(raw)
    try:
        broker.check_room(membership.user_id)
    except Busy as busy:
        if busy.per_user:
            return _plain(_("You have too many maps open. Close one and try again."), 429, **{"Retry-After": "30"})
        return _plain(_("The server is following as many maps as it can. Try again shortly."), 503,
                      **{"Retry-After": "30"})
    request.passive = True  # type: ignore[attr-defined]  # an open map is not activity (middleware.py)
    response = StreamingHttpResponse(_events(request.session, membership, since),
                                     content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the events back in its buffer
    return response


def _events(session: SessionBase, membership: Membership, since: int | None) -> Iterator[str]:
    reader = Reader(membership.forum_id, membership.organisation_id, membership.user_id)
    # Subscribed before the catching up is read, so that nothing falls between the two; what comes twice is
    # recognised by its id.
    start = broker.subscribe(reader)
    try:
        yield "retry: 5000\n\n"
        last = start if since is None else min(since, start)
        last, catch_up = _catch_up(membership, last, start)
        yield from catch_up
        _release_connection()
        keepalive = settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS
        opened = checked = time.monotonic()
        while True:
            try:
                event = reader.events.get(timeout=keepalive)
            except queue.Empty:  # a comment then keeps proxies from closing a quiet stream
                event = None
            now = time.monotonic()
            if now - checked >= RECHECK_SECONDS:
                if not _still_member(session, membership):
                    return
                _release_connection()
                checked = now
            if now - opened >= MAX_AGE_SECONDS:
                return
            if reader.overflowed:  # too slow to keep up: load afresh from the newest event
                reader.overflowed = False
                while not reader.events.empty():
                    last = max(last, reader.events.get_nowait().id)
                last = max(last, broker.last_id)
                yield reload_message(last)
                continue
            if event is None:
                yield ": \n\n"
                continue
            if event.id <= last:
                continue
            last = event.id
            message = event.message_for(reader.organisation_id)
            if message is not None:
                yield message
    finally:
        broker.unsubscribe(reader)
        _release_connection()


def _catch_up(membership: Membership, since: int, start: int) -> tuple[int, list[str]]:
    """The messages of the events after `since` that the member missed, and the id they run to. If the
    table no longer holds them all (they are kept a day) or they are many, one message to load afresh."""
    if since >= start:
        return since, []
    events = list(LiveEvent.objects.filter(forum_id=membership.forum_id, pk__gt=since)
                  .order_by("pk")[:REPLAY_MAX + 1])
    oldest = LiveEvent.objects.order_by("pk").values_list("pk", flat=True).first()
    if len(events) > REPLAY_MAX or oldest is None or oldest > since + 1:
        newest = max([start, *(e.pk for e in events)])
        return newest, [reload_message(newest)]
    messages = []
    for row in events:
        message = Event.from_row(row).message_for(membership.organisation_id)
        if message is not None:
            messages.append(message)
    return max([start, *(e.pk for e in events)]), messages


def _still_member(session: SessionBase, membership: Membership) -> bool:
    """Signed out, idle past the session's end, moved to another organisation or removed from the forum: the
    stream ends (the browser then reconnects, and is refused or starts afresh with the new organisation)."""
    if session.session_key is None:
        return False
    # Read afresh from the store: a session signed out elsewhere or past its end reads as empty.
    stored = type(session)(session.session_key).load()
    if stored.get("_auth_user_id") != str(membership.user_id):
        return False
    return Membership.objects.filter(pk=membership.pk, is_active=True, organisation_id=membership.organisation_id,
                                     user__is_active=True).exists()


def _release_connection() -> None:
    """An open stream holds no database connection while it waits: 200 open maps must not be 200 of them."""
    if not connection.in_atomic_block:
        connection.close()
