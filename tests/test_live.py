"""The live picture: each event reaches exactly those who may see its deviation (and who must take it off
their map), the stream that carries them ends with the session, resumes after a break without missing
anything, and hears of events written by another process."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Forbidden, NotFound
from lagesbild.forums.models import Membership
from lagesbild.live import events as live_events
from lagesbild.live import views as live_views
from lagesbild.live.broker import Event, broker
from lagesbild.live.models import LiveEvent
from tests.conftest import World, make_world
from tests.sse import close, deviation_ids, parse, read_until

pytestmark = pytest.mark.django_db


def _members(world: World) -> list[Membership]:
    """One member of each organisation of the forum."""
    return [world.coordinator, world.police_reporter, world.housing_reporter, world.viewer]


def _shares(deviation: Deviation) -> list[int]:
    return list(deviation.shares.values_list("organisation_id", flat=True))  # type: ignore[attr-defined]


def test_the_rule_for_one_deviation_is_the_visibility_gate(world: World) -> None:
    reported = [
        world.report(world.police_reporter),
        world.report(world.police_reporter, visibility="organisation"),
        world.report(world.police_reporter, visibility="named", shared_with=[world.housing.pk]),
        world.report(world.housing_reporter, visibility="named", shared_with=[world.school.pk, world.district.pk]),
        world.report(world.coordinator, visibility="organisation"),
    ]
    for member in _members(world):
        visible = set(services.visible_deviations(member).values_list("pk", flat=True))
        for deviation in reported:
            audience = services.organisations_that_may_see(deviation.visibility, deviation.organisation_id,
                                                            _shares(deviation))
            assert (audience is None or member.organisation_id in audience) == (deviation.pk in visible)


def _messages_for(member: Membership, after: int) -> list[dict[str, Any]]:
    rows = LiveEvent.objects.filter(forum_id=member.forum_id, pk__gt=after).order_by("pk")
    found = []
    for row in rows:
        message = Event.from_row(row).message_for(member.organisation_id)
        if message is not None:
            found.extend(m.data | {"event": m.event} for m in parse(message))
    return found


def test_every_change_reaches_those_who_may_see_it_and_those_who_no_longer_may(
        world: World, django_capture_on_commit_callbacks: Any) -> None:
    """A random run of reports, changes of who may see them, police marks and withdrawals. After each, every
    organisation is told of the deviation if it may see it now, told to remove it if it could before and
    may not now, and told nothing at all otherwise."""
    rng = random.Random(20261201)
    reporters = [world.police_reporter, world.housing_reporter, world.coordinator]
    orgs = [world.district.pk, world.police.pk, world.housing.pk, world.school.pk]
    members = _members(world)

    def visibility() -> dict[str, Any]:
        kind = rng.choice(["forum", "organisation", "named"])
        return {"visibility": kind, "shared_with": rng.sample(orgs, rng.randint(1, 2)) if kind == "named" else []}

    told = {"reported": 0, "changed": 0, "removed": 0, "silent": 0}
    for _step in range(60):
        live_ids = list(Deviation.objects.filter(forum=world.forum, withdrawn_at__isnull=True)
                        .values_list("pk", "reporter_id"))
        before = {m.pk: set(services.visible_deviations(m).values_list("pk", flat=True)) for m in members}
        last = LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        audited = AuditEvent.objects.count()
        op = rng.choice(["report", "report", "visibility", "police", "withdraw"]) if live_ids else "report"
        with django_capture_on_commit_callbacks(execute=True):
            if op == "report":
                deviation = world.report(rng.choice(reporters), **visibility())
                target = deviation.pk
            else:
                target, reporter_id = rng.choice(live_ids)
                reporter = next(m for m in reporters if m.user_id == reporter_id)
                if op == "visibility":
                    version = Deviation.objects.get(pk=target).version
                    services.edit_deviation(reporter, target, visibility(), version)
                elif op == "police":
                    # The coordinator marks what the district sees, the police's lead what the police see. Taking
                    # a mark away may be refused (it is someone else's): then nothing changed, and nobody is told.
                    flagger = world.coordinator if target in before[world.coordinator.pk] else world.police_lead
                    flagged = Deviation.objects.get(pk=target).police_flagged_at is None
                    with contextlib.suppress(Forbidden, NotFound):
                        services.set_police_flag(flagger, target, flagged)
                else:
                    services.withdraw_deviation(reporter, target)
        changed = AuditEvent.objects.count() > audited  # not when an edit changed nothing, or was refused
        for member in members:
            now_visible = set(services.visible_deviations(member).values_list("pk", flat=True))
            messages = [m for m in _messages_for(member, last) if m["id"] == target]
            if not changed:
                assert _messages_for(member, last) == []
                told["silent"] += 1
            elif target in now_visible:
                assert [m["kind"] for m in messages] in (["reported"], ["changed"]), (op, member, messages)
                told[messages[0]["kind"]] += 1
            elif target in before[member.pk]:
                assert [m["kind"] for m in messages] == ["removed"], (op, member, messages)
                told["removed"] += 1
            else:
                assert _messages_for(member, last) == [], (op, member)
                told["silent"] += 1
    # The run went through every case, so each assertion above was put to the test.
    assert min(told.values()) > 3, told


def test_an_import_reloads_the_maps_of_those_who_may_see_any_of_it(
        world: World, django_capture_on_commit_callbacks: Any) -> None:
    own = world.report(world.police_reporter, visibility="organisation")
    shared = world.report(world.police_reporter, visibility="named", shared_with=[world.housing.pk])
    Deviation.objects.filter(pk__in=[own.pk, shared.pk]).update(import_batch_id=4711)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_changed(world.forum.pk, 4711)
    event = Event.from_row(LiveEvent.objects.get(kind="reload"))
    assert [event.message_for(org) is not None for org in (world.police.pk, world.housing.pk, world.school.pk)] \
        == [True, True, False]
    Deviation.objects.filter(pk=shared.pk).update(visibility="forum")
    with django_capture_on_commit_callbacks(execute=True):
        services.import_changed(world.forum.pk, 4711)
    assert Event.from_row(LiveEvent.objects.filter(kind="reload").latest("pk")).message_for(world.school.pk)


def test_a_change_that_is_rolled_back_is_never_told(world: World, django_capture_on_commit_callbacks: Any) -> None:
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            world.report(world.police_reporter)
            raise RuntimeError("the request failed after the write")
    assert not LiveEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_live_event_that_cannot_be_written_loses_nothing_but_the_event(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The event is written after the report is committed (PostgreSQL may have gone just then): the report stays,
    the request goes on, and the error is logged. Django logs a failed hook by its __qualname__, so a hook
    without one (a functools.partial) turned the logging itself into an error: a 500 for a saved report."""
    from django.db import OperationalError, transaction

    def down(fields: dict[str, Any]) -> None:
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr(live_events, "_write", down)
    with transaction.atomic():
        made = world.report(world.police_reporter)
    assert Deviation.objects.filter(pk=made.pk).exists()
    assert not LiveEvent.objects.exists()
    assert "Connection refused" in caplog.text


# --- The stream -------------------------------------------------------------------------------------------

def _open(client: Any, url: str = "/f/farsta/live", **headers: Any) -> Any:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    return response


@pytest.mark.django_db(transaction=True)
def test_the_stream_brings_what_the_member_may_see_and_resumes_after_a_break(settings: Any) -> None:
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.05
    world = make_world()
    response = _open(world.client(world.housing_reporter))
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"retry: 5000\n\n"

    hidden = world.report(world.police_reporter, visibility="organisation", description="bara polisen")
    public = world.report(world.police_reporter)
    text = read_until(chunks, lambda got: public.pk in {m.data.get("id") for m in got})
    hidden_event = LiveEvent.objects.get(deviation_id=hidden.pk)
    messages = parse(text)
    assert [(m.event, m.data) for m in messages] == [("deviation", {"id": public.pk, "kind": "reported"})]
    # Nothing of the hidden one: not its deviation, not its event's id.
    assert hidden_event.pk not in {m.id for m in messages} and "bara polisen" not in text
    last = messages[-1].id
    close(response)
    assert broker.open_count() == 0

    # Away for a while: what happened meanwhile comes first on return, in order, and only what it may see.
    second = world.report(world.housing_reporter, visibility="organisation")
    world.report(world.police_reporter, visibility="organisation")
    services.withdraw_deviation(world.police_reporter, public.pk)
    response = _open(world.client(world.housing_reporter), HTTP_LAST_EVENT_ID=str(last))
    chunks = iter(response.streaming_content)
    text = read_until(chunks, lambda got: len(got) >= 2)
    assert [(m.event, m.data) for m in parse(text)] == [
        ("deviation", {"id": second.pk, "kind": "reported"}), ("deviation", {"id": public.pk, "kind": "removed"})]
    # …and then it goes on live.
    third = world.report(world.police_reporter)
    assert third.pk in deviation_ids(read_until(chunks, lambda got: bool(got)))
    close(response)

    # Away longer than the events are kept: one message to load afresh. It has no id (it stands for events the
    # member may not all see), so the browser keeps its own.
    LiveEvent.objects.all().delete()
    response = _open(world.client(world.housing_reporter), f"/f/farsta/live?since={last}")
    chunks = iter(response.streaming_content)
    [reload] = parse(read_until(chunks, lambda got: bool(got)))
    assert (reload.event, reload.id) == ("reload", None)
    close(response)


@pytest.mark.django_db(transaction=True)
def test_an_event_written_by_another_process_reaches_the_stream(settings: Any) -> None:
    """The background worker, or another app process: on PostgreSQL by NOTIFY, on SQLite by looking."""
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.05
    world = make_world()
    response = _open(world.client(world.viewer))
    chunks = iter(response.streaming_content)
    next(chunks)
    script = textwrap.dedent(f"""
        import datetime as dt, django
        from django.conf import settings
        settings.DATABASES["default"]["NAME"] = {connection.settings_dict["NAME"]!r}
        django.setup()
        from django.utils import timezone
        from lagesbild.deviations import services
        from lagesbild.forums.models import Membership
        member = Membership.objects.get(pk={world.police_reporter.pk})
        deviation = services.report_deviation(member, services.DeviationInput(
            category="graffiti", lon=18.09, lat=59.244, observed_at=timezone.now() - dt.timedelta(hours=1)))
        print(deviation.pk)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"})
    assert done.returncode == 0, done.stderr
    reported = int(done.stdout.split()[-1])
    assert reported in deviation_ids(read_until(chunks, lambda got: bool(got)))
    close(response)


def test_the_stream_ends_with_the_session_and_does_not_keep_it_alive(world: World, settings: Any,
                                                                   monkeypatch: Any) -> None:
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.01
    monkeypatch.setattr(live_views, "RECHECK_SECONDS", 0)
    client = world.client(world.housing_reporter)
    session = Session.objects.get()
    with time_machine.travel(dt.timedelta(minutes=2)):  # past the minute in which a session is not written again
        response = _open(client)
        chunks = iter(response.streaming_content)
        assert next(chunks).startswith(b"retry")
        assert next(chunks) == b": \n\n"  # still signed in: a keepalive
    # An open map is not activity: the session's end stays where it was.
    assert Session.objects.get().expire_date == session.expire_date
    client.logout()
    assert list(chunks) == []
    assert broker.open_count() == 0


def test_a_changed_password_ends_the_stream_and_a_refusal_keeps_no_session_alive(world: World, settings: Any,
                                                                                 monkeypatch: Any) -> None:
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.01
    monkeypatch.setattr(live_views, "RECHECK_SECONDS", 0)
    client = world.client(world.housing_reporter)
    session = Session.objects.get()
    settings.LAGESBILD_LIVE_MAX_PER_USER = 0
    with time_machine.travel(dt.timedelta(minutes=2)):  # past the minute in which a session is not written again
        assert client.get("/f/farsta/live").status_code == 429  # the map's retry every 30 s
    assert Session.objects.get().expire_date == session.expire_date
    settings.LAGESBILD_LIVE_MAX_PER_USER = 10
    chunks = iter(_open(client).streaming_content)
    next(chunks)
    user = world.housing_reporter.user
    user.set_password("ett helt nytt lösenord")
    user.save()  # every other session of the user no longer signs in; its stream ends too
    assert list(chunks) == []


def test_the_stream_ends_when_the_member_leaves_or_moves(world: World, settings: Any, monkeypatch: Any) -> None:
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.01
    monkeypatch.setattr(live_views, "RECHECK_SECONDS", 0)
    for change in ({"is_active": False}, {"organisation": world.police}):
        member = world.housing_reporter
        response = _open(world.client(member))
        chunks = iter(response.streaming_content)
        next(chunks)
        Membership.objects.filter(pk=member.pk).update(**change)
        assert list(chunks) == []
        Membership.objects.filter(pk=member.pk).update(is_active=True, organisation=world.housing)


def test_who_may_open_a_stream_and_how_many(world: World, settings: Any) -> None:
    assert world.client().get("/f/farsta/live").status_code == 401
    response = world.client(world.outsider).get("/f/farsta/live")
    assert (response.status_code, response.content.decode()) == (404, "Forumet finns inte.")
    for bad in ("abc", "-1", "1e5", "9" * 19, "١٢"):
        response = world.client(world.viewer).get("/f/farsta/live", {"since": bad})
        assert response.status_code == 400, bad
        assert response.content.decode() == "Det senaste händelse-id:t måste vara ett heltal."
    assert world.client(world.viewer).post("/f/farsta/live").status_code == 405

    # Requests that come together are counted as they come, whether or not their streams are read yet.
    settings.LAGESBILD_LIVE_MAX_PER_USER = 2
    first, second = (_open(world.client(world.viewer)) for _ in range(2))
    refused = world.client(world.viewer).get("/f/farsta/live")
    assert (refused.status_code, refused["Retry-After"]) == (429, "30")
    assert refused.content.decode() == "Du har för många kartor öppna. Stäng en och försök igen."
    other = _open(world.client(world.housing_reporter))
    settings.LAGESBILD_LIVE_MAX_CONNECTIONS = 3
    assert world.client(world.coordinator).get("/f/farsta/live").status_code == 503
    for response in (first, second, other):
        close(response)  # also a stream never read gives its place back
    assert broker.open_count() == 0


def test_events_are_kept_a_day(world: World, django_capture_on_commit_callbacks: Any, monkeypatch: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    monkeypatch.setattr(live_events, "PRUNE_EVERY", 1)
    with django_capture_on_commit_callbacks(execute=True):
        old = world.report(world.police_reporter)
    LiveEvent.objects.filter(deviation_id=old.pk).update(created_at=timezone.now() - dt.timedelta(days=1, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        new = world.report(world.police_reporter)
    assert list(LiveEvent.objects.values_list("deviation_id", flat=True)) == [new.pk]


@given(value=st.text(max_size=30))
@hyp_settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_last_event_id_is_taken_or_refused_clearly(world: World, value: str) -> None:
    client = world.client(world.viewer)
    for response in (client.get("/f/farsta/live", {"since": value}),
                     client.get("/f/farsta/live", HTTP_LAST_EVENT_ID=value.encode().decode("latin-1"))):
        assert response.status_code in (200, 400), value
        if response.status_code == 200:
            assert value.strip() == "" or (value.isascii() and value.isdigit())
            close(response)
        elif "\x00" in value and response.request["QUERY_STRING"]:
            assert "NUL" in response.content.decode()  # refused before any view reads it (middleware.py)
        else:
            assert response.content.decode() == "Det senaste händelse-id:t måste vara ett heltal."
    assert broker.open_count() == 0


@pytest.mark.django_db(transaction=True)
def test_what_a_member_may_not_see_moves_nothing_they_can_time(settings: Any) -> None:
    """Hidden events do not hold back the keepalive (a late keepalive would say something happened), and do not
    count towards the catch-up's limit (a reload after N would count them)."""
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.3
    world = make_world()
    response = _open(world.client(world.housing_reporter))
    chunks = iter(response.streaming_content)
    next(chunks)
    arrived: list[float] = []
    import threading
    import time

    def report_hidden() -> None:
        for _ in range(12):
            world.report(world.police_reporter, visibility="organisation")
            time.sleep(0.1)

    writer = threading.Thread(target=report_hidden)
    start = time.monotonic()
    writer.start()
    while time.monotonic() - start < 1.5:
        assert next(chunks) == b": \n\n"  # never anything but a keepalive
        arrived.append(time.monotonic() - start)
    writer.join()
    close(response)
    assert len(arrived) >= 4, arrived  # one every 0.3 s, hidden events or not
    gaps = [b - a for a, b in itertools.pairwise(arrived)]
    assert max(gaps) < 0.6, gaps

    before = LiveEvent.objects.order_by("pk").first()
    assert before is not None
    visible = world.report(world.police_reporter)
    live_views_max = live_views.REPLAY_MAX
    live_views.REPLAY_MAX = 2  # twelve hidden events after `before`, one visible: still no reload
    try:
        response = _open(world.client(world.housing_reporter), HTTP_LAST_EVENT_ID=str(before.pk - 1))
        text = read_until(iter(response.streaming_content), lambda got: False, quiet=True)
        close(response)
    finally:
        live_views.REPLAY_MAX = live_views_max
    assert [(m.event, m.data) for m in parse(text)] == [("deviation", {"id": visible.pk, "kind": "reported"})]
