"""The live picture's stream: server-sent events for one open map, filtered for its member."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.crypto import constant_time_compare
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
    # Neither an open map nor its refused reconnections are activity (middleware.py): an unattended tab must
    # still be signed out after the idle time.
    request.passive = True  # type: ignore[attr-defined]
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
    reader = Reader(membership.forum_id, membership.organisation_id, membership.user_id)
    try:
        # Taken here, under the broker's lock, so that requests arriving together cannot all pass the limits;
        # and before the catching up is read, so that nothing falls between the two (what comes twice is
        # recognised by its id).
        start = broker.subscribe(reader)
    except Busy as busy:
        if busy.per_user:
            return _plain(_("You have too many maps open. Close one and try again."), 429, **{"Retry-After": "30"})
        return _plain(_("The server is following as many maps as it can. Try again shortly."), 503,
                      **{"Retry-After": "30"})
    response = StreamingHttpResponse(_Stream(reader, _events(request.session, membership, reader, since, start)),
                                     content_type="text/event-stream; charset=utf-8")
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the events back in its buffer
    return response


class _Stream:
    """The stream's messages; closing it (the server closes every response) gives the reader's place back,
    also when the response was never read."""

    def __init__(self, reader: Reader, messages: Iterator[str]) -> None:
        self.reader = reader
        self.messages = messages

    def __iter__(self) -> Iterator[str]:
        return self.messages

    def close(self) -> None:
        try:
            self.messages.close()  # type: ignore[attr-defined]
        finally:
            broker.unsubscribe(self.reader)


def _events(session: SessionBase, membership: Membership, reader: Reader, since: int | None,
            start: int) -> Iterator[str]:
    try:
        yield "retry: 5000\n\n"
        last = start if since is None else min(since, start)
        last, catch_up = _catch_up(membership, last, start)
        yield from catch_up
        _release_connection()
        keepalive = settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS
        now = time.monotonic()
        closes, next_check, next_keepalive = now + MAX_AGE_SECONDS, now + RECHECK_SECONDS, now + keepalive
        while True:
            # Keepalives and checks keep their own clock: an event the member does not get must not move
            # either (a keepalive that came late would tell them something happened in the forum).
            wait = max(0.0, min(next_check, next_keepalive) - time.monotonic())
            try:
                event = reader.events.get(timeout=wait)
            except queue.Empty:
                event = None
            now = time.monotonic()
            if now >= closes:
                return
            if now >= next_check:
                if not _still_member(session, membership):
                    return
                _release_connection()
                next_check = now + RECHECK_SECONDS
            message = None
            if reader.overflowed:  # too slow to keep up: load afresh, and go on after the newest event
                reader.overflowed = False
                while not reader.events.empty():
                    last = max(last, reader.events.get_nowait().id)
                last = max(last, broker.last_id)
                message = reload_message()
            elif event is not None and event.id > last:
                last = event.id
                message = event.message_for(reader.organisation_id)
            if message is not None:
                yield message
                next_keepalive = now + keepalive
            elif now >= next_keepalive:
                yield ": \n\n"  # keeps proxies from closing a quiet stream
                next_keepalive = now + keepalive
    finally:
        _release_connection()


def _catch_up(membership: Membership, since: int, start: int) -> tuple[int, list[str]]:
    """The messages of the events after `since` that the member missed, and the id they run to. If the
    table no longer holds them all (they are kept a day), or the member missed more than REPLAY_MAX, one
    message to load afresh. Events the member may not see are not counted: how many there are is not theirs
    to learn."""
    if since >= start:
        return since, []
    oldest = LiveEvent.objects.order_by("pk").values_list("pk", flat=True).first()
    last, messages = start, []
    if oldest is None or oldest > since + 1:
        return start, [reload_message()]
    rows = LiveEvent.objects.filter(forum_id=membership.forum_id, pk__gt=since).order_by("pk")
    for row in rows.iterator(chunk_size=1000):
        last = max(last, row.pk)
        message = Event.from_row(row).message_for(membership.organisation_id)
        if message is not None:
            messages.append(message)
            if len(messages) > REPLAY_MAX:
                newest = rows.values_list("pk", flat=True).last() or last
                return max(start, newest), [reload_message()]
    return last, messages


def _still_member(session: SessionBase, membership: Membership) -> bool:
    """Signed out, idle past the session's end, a changed password, moved to another organisation or
    removed from the forum: the stream ends (the browser then reconnects, and is refused or starts afresh
    with the new organisation)."""
    if session.session_key is None:
        return False
    # Read afresh from the store: a session signed out elsewhere or past its end reads as empty.
    stored = type(session)(session.session_key).load()
    if stored.get(SESSION_KEY) != str(membership.user_id):
        return False
    current = Membership.objects.select_related("user").filter(
        pk=membership.pk, is_active=True, organisation_id=membership.organisation_id, user__is_active=True).first()
    # As Django's own sign-in check: a session from before a password change no longer counts.
    return current is not None and constant_time_compare(stored.get(HASH_SESSION_KEY, ""),
                                                         current.user.get_session_auth_hash())


def _release_connection() -> None:
    """An open stream holds no database connection while it waits: 200 open maps must not be 200 of them."""
    if not connection.in_atomic_block:
        connection.close()
