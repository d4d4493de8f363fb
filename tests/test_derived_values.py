"""Restricted deviations planted must change nothing for those who may not see them: not a list or a detail,
and not a value derived from deviations either (a position, an extent, a count, a suggestion, a hotspot, an
agenda figure, a protocol, an e-mail).

The same forum is built twice, in the same order, at the same frozen moment: once as it is, once with the
police's restricted deviations planted among the rest (at the busy square, and as a new cluster elsewhere),
linked to an action the police decide and then resolve. Every page and every API answer that the district
administration (the coordinator), a housing company and a school see must then be the same, byte for byte,
except for each request's own CSRF token. The police's own answers must differ, or the test proves nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Any

import pytest
import time_machine
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from lagesbild.api import api
from lagesbild.deviations import services as deviations
from lagesbild.meetings import actions, reminders
from lagesbild.meetings import services as meetings
from lagesbild.places import services as places
from lagesbild.walks import services as walks
from tests.conftest import World

pytestmark = pytest.mark.django_db
FROZEN = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
SQUARE = (18.09, 59.244)
ELSEWHERE = (18.125, 59.232)  # where only the restricted deviations recur: a place that would be suggested
CSRF = re.compile(rb"[A-Za-z0-9]{64}|[A-Za-z0-9]{32}")


def _report(world: World, who: Any, days_ago: float, lon: float, lat: float, **extra: Any) -> int:
    return world.report(who, lon=lon, lat=lat, observed_at=FROZEN - dt.timedelta(days=days_ago), **extra).pk


def build(world: World, plant: bool) -> dict[str, Any]:
    """The forum, in a fixed order; with `plant`, the police's restricted deviations too."""
    shared = [_report(world, world.housing_reporter, d, SQUARE[0] + 0.0002 * (d % 3), SQUARE[1], category=c)
              for d, c in ((2, "graffiti"), (5, "litter"), (9, "graffiti"), (16, "broken_lighting"), (23, "graffiti"),
                           (30, "graffiti"), (45, "litter"), (60, "graffiti"), (75, "graffiti"), (85, "litter"))]
    shared += [_report(world, world.police_reporter, d, 18.07 + 0.001 * d, 59.26) for d in (3, 12, 40)]
    deviations.add_comment(world.coordinator, shared[0], "Sanerat i morse")
    square = places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=SQUARE[0], lat=SQUARE[1],
                                                                      radius_m=120))
    past = meetings.schedule_meeting(world.coordinator, meetings.MeetingInput(
        held_at=FROZEN - dt.timedelta(days=35), period_start=FROZEN - dt.timedelta(days=70)))
    # A safety walk the housing company made at the square, its finding recorded as a deviation.
    walk = walks.plan_walk(world.housing_reporter, walks.WalkInput(title="Vandring vid torget", planned_at=FROZEN))
    stop = walks.add_stop(world.housing_reporter, walk.pk, "Torget", *SQUARE)
    walks.add_participant(world.housing_reporter, walk.pk, "Boende Bo", "Brf Torget")
    walks.start_walk(world.housing_reporter, walk.pk)
    walks.add_track(world.housing_reporter, walk.pk, [(SQUARE[0], SQUARE[1] - 0.001, FROZEN.timestamp()),
                                                      (SQUARE[0], SQUARE[1], FROZEN.timestamp() + 60)])
    walks.save_checks(world.housing_reporter, walk.pk, stop.pk, [
        walks.CheckInput("lighting", "problem", "Mörkt vid porten", "Ny belysning")])
    walks.end_walk(world.housing_reporter, walk.pk)
    walks.record_findings(world.housing_reporter, walk.pk)
    hidden: list[int] = []
    if plant:
        for d in (1, 4, 8, 11, 15, 19, 26, 33, 52, 66):
            hidden.append(_report(world, world.police_reporter, d, SQUARE[0] - 0.0003, SQUARE[1] + 0.0002,
                                  visibility="organisation", category="suspected_dealing",
                                  description="Försäljning i porten", place_name="Porten vid torget"))
        for d in (2, 6, 13, 20, 27, 34):
            hidden.append(_report(world, world.police_lead, d, *ELSEWHERE, visibility="organisation",
                                  category="drug_use"))
        # Drawn as a line across the square and an area elsewhere: counted in every hexagon they cross.
        path = {"type": "LineString", "coordinates": [[SQUARE[0] - 0.004, SQUARE[1] - 0.001],
                                                      [SQUARE[0] + 0.004, SQUARE[1] + 0.001]]}
        yard = {"type": "Polygon", "coordinates": [[[ELSEWHERE[0], ELSEWHERE[1]], [ELSEWHERE[0] + 0.003, ELSEWHERE[1]],
                                                    [ELSEWHERE[0] + 0.003, ELSEWHERE[1] + 0.002],
                                                    [ELSEWHERE[0], ELSEWHERE[1]]]]}
        for d, drawn in ((3, path), (7, yard)):
            hidden.append(world.report(world.police_reporter, lon=0.0, lat=0.0, shape=drawn,
                                       observed_at=FROZEN - dt.timedelta(days=d), visibility="organisation",
                                       category="dark_place", description="Mörk sträcka").pk)
        deviations.add_comment(world.police_lead, hidden[0], "Känd adress")
    # The police act on what they see: the group from their list, restricted deviations included.
    group = [shared[0], shared[2], *hidden]
    action = actions.create_action(world.police_lead, actions.ActionInput(
        title="Kameror vid porten", organisation_id=world.police.pk, due_date=FROZEN.date() + dt.timedelta(days=5),
        deviation_ids=group))
    actions.follow_up(world.police_lead, action.pk, "Uppsatta", status="done", resolve_deviations=True)
    meetings.build_agenda(world.coordinator, past.pk)
    protocol = meetings.publish_protocol(world.coordinator, past.pk)
    upcoming = meetings.schedule_meeting(world.coordinator, meetings.MeetingInput(
        held_at=FROZEN + dt.timedelta(days=3)))
    meetings.build_agenda(world.coordinator, upcoming.pk)
    return {"deviation": shared[0], "place": square.pk, "past": past.pk, "upcoming": upcoming.pk,
            "action": action.pk, "protocol": protocol.pk, "hidden": hidden, "walk": walk.pk}


def pages(ids: dict[str, Any]) -> list[str]:
    f = "/f/farsta"
    figures = ("hexagons", "hotspots", "week-hours", "trend", "actors", "overlap", "repeat-places", "compare")
    return [
        f"{f}/", f"{f}/?period=all", f"{f}/monster/?period=all", f"{f}/monster/?period=90&resolution=8",
        f"{f}/monster/?period=all&resolution=10&against=last_year",
        *[f"{f}/monster/{figure}.csv?period=all" for figure in figures],
        f"{f}/platser/", f"{f}/platser/{ids['place']}/", f"{f}/moten/", f"{f}/moten/{ids['past']}/",
        f"{f}/moten/{ids['upcoming']}/", f"{f}/moten/{ids['past']}/protokoll/",
        *[f"{f}/moten/{ids['upcoming']}/visning/?punkt={n}" for n in range(1, 6)],
        f"{f}/moten/{ids['past']}/protokoll.pdf",
        f"{f}/atgarder/", f"{f}/atgarder/?show=all", f"{f}/atgarder/{ids['action']}/", f"{f}/logg/", f"{f}/logg.csv",
        f"{f}/medlemmar/", f"{f}/vandringar/", f"{f}/vandringar/{ids['walk']}/",
        f"{f}/vandringar/{ids['walk']}/protokoll/", f"{f}/vandringar/{ids['walk']}/protokoll.pdf",
    ]


def api_urls(ids: dict[str, Any]) -> list[str]:
    """Every GET operation of the API, on the objects built, and the map's and patterns' common queries."""
    # Tiles around the forum's deviations: hexagons at zoom 12, points at zoom 16.
    values = {"forum": "farsta", "deviation_id": ids["deviation"], "place_id": ids["place"],
              "meeting_id": ids["past"], "action_id": ids["action"], "version": 1, "photo_id": 1,
              "walk_id": ids["walk"], "z": 12, "x": 2253, "y": 1206, "collection": "deviations",
              "feature": ids["deviation"]}
    urls = []
    for path, item in api.get_openapi_schema(path_prefix="/api/")["paths"].items():
        if "get" in item:
            urls.append(re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path))
    box = "18.05,59.22,18.15,59.27"
    urls += ["/api/forums/farsta/deviations?from=2026-10-01T00:00:00Z", f"/api/forums/farsta/deviations?bbox={box}",
             f"/api/forums/farsta/deviations/aggregates?bbox={box}&cells=64",
             "/api/forums/farsta/deviations?category=drugs", "/api/forums/farsta/deviations?q=porten",
             f"/api/forums/farsta/meetings/{ids['upcoming']}",
             "/api/forums/farsta/places/suggestions?min_count=3&min_weeks=2",
             "/api/forums/farsta/search?q=porten", "/api/forums/farsta/search?q=torget",
             *[f"/api/forums/farsta/patterns/hotspots?resolution={r}" for r in (8, 9, 10)],
             *[f"/api/forums/farsta/patterns/hexagons?resolution={r}" for r in (8, 9, 10)],
             "/api/forums/farsta/patterns/compare?against=last_year",
             "/api/forums/farsta/patterns/repeat-places?min_weeks=2",
             "/api/forums/farsta/tiles/WebMercatorQuad/16/36061/19303",
             "/api/forums/farsta/tiles/WebMercatorQuad/16/36067/19308",
             "/api/forums/farsta/ogc/collections/places/items",
             "/api/forums/farsta/open311/v2/requests.json", "/api/forums/farsta/open311/v2/requests.xml"]
    return urls


def reset_sequences() -> None:
    """PostgreSQL's sequences do not roll back with a savepoint: set them back, so both builds get the same ids."""
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT counters are rows of a table, and roll back with it
    from django.apps import apps

    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
            cursor.execute(statement)


def snapshot(world: World, plant: bool, readers: dict[str, Any]) -> tuple[dict[tuple[str, str], bytes], list[int]]:
    point = transaction.savepoint()
    reset_sequences()  # so that both builds start from the same ids, whatever tests ran before
    try:
        ids = build(world, plant)
        answers: dict[tuple[str, str], bytes] = {}
        for name, membership in readers.items():
            client = world.client(membership)
            for url in pages(ids) + api_urls(ids):
                response = client.get(url)
                body = b"".join(response.streaming_content) if response.streaming else response.content
                # The ETag too: a tile's changes when its content does, never for what the reader cannot see.
                head = f"{response.status_code} {response.get('ETag', '')}\n".encode()
                answers[(name, url)] = head + CSRF.sub(b"TOKEN", body)
        # The e-mails every member is sent: the protocol's digest and the action's reminders.
        from lagesbild.meetings.models import Action, Protocol

        for message in reminders.digest_messages(Protocol.objects.get(pk=ids["protocol"])):
            answers[(message.to[0], "digest")] = f"{message.subject}\n{message.body}".encode()
        reminder = reminders.reminder_message(Action.objects.get(pk=ids["action"]), "due_soon")
        answers[("responsible", "reminder")] = f"{reminder.subject}\n{reminder.body}".encode() if reminder else b""
        return answers, ids["hidden"]
    finally:
        transaction.savepoint_rollback(point)


def _difference(first: bytes, second: bytes) -> str:
    lines = difflib.unified_diff(first.decode(errors="replace").splitlines(),
                                 second.decode(errors="replace").splitlines(), lineterm="", n=1)
    return "\n".join(list(lines)[:30])


def test_restricted_deviations_change_nothing_their_readers_may_not_see(world: World) -> None:
    readers = {"coordinator": world.coordinator, "housing": world.housing_reporter, "school": world.viewer,
               "police": world.police_lead}
    with time_machine.travel(FROZEN, tick=False):
        plain, _none = snapshot(world, False, readers)
        planted, hidden = snapshot(world, True, readers)
    assert len(hidden) == 18
    changed = [key for key in plain if plain[key] != planted[key]]
    leaks = [key for key in changed if key[0] not in {"police", world.police_lead.user.email,
                                                      world.police_reporter.user.email}]
    assert leaks == [], "\n\n".join(f"{key}:\n{_difference(plain[key], planted[key])}" for key in leaks[:5])
    # The police see their own deviations: their answers must differ, or nothing was planted.
    police = {url for name, url in changed if name == "police"}
    assert {"/f/farsta/monster/?period=all", "/api/forums/farsta/deviations?category=drugs",
            "/api/forums/farsta/patterns/hotspots?resolution=9",
            "/api/forums/farsta/tiles/WebMercatorQuad/16/36067/19308",
            "/api/forums/farsta/open311/v2/requests.json",
            "/api/forums/farsta/patterns/hexagons?resolution=10"} <= police
    for reader in readers:  # and the pages compared were pages, not refusals
        for url in ("/f/farsta/monster/?period=all", "/f/farsta/platser/", "/api/forums/farsta/patterns/hotspots"):
            assert planted[(reader, url)].startswith(b"200 "), (reader, url)


def test_an_action_is_placed_only_by_what_the_whole_forum_may_see(world: World) -> None:
    """The leak found from outside: an action from a group of deviations was put at their centre, restricted
    ones included, for everyone to see."""
    public = world.report(world.housing_reporter, lon=18.10, lat=59.25).pk
    hidden = world.report(world.police_reporter, lon=18.14, lat=59.23, visibility="organisation").pk
    due = timezone.now().date() + dt.timedelta(days=5)
    action = actions.create_action(world.police_lead, actions.ActionInput(
        title="Kameror", organisation_id=world.police.pk, due_date=due, deviation_ids=[public, hidden]))
    assert (action.lon, action.lat) == pytest.approx((18.10, 59.25))
    only_hidden = actions.create_action(world.police_lead, actions.ActionInput(
        title="Spaning", organisation_id=world.police.pk, due_date=due, deviation_ids=[hidden]))
    assert (only_hidden.lon, only_hidden.lat) == (None, None)

