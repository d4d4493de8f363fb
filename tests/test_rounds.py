"""Rounds: started and ended by the phone under its own key, idempotently; the deviations reported on one
belong to it; a member sees only their own rounds, and through a round only what they may see."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from lagesbild.deviations.models import Deviation, Round
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db

F = "/api/forums/farsta"


def _put(client: Any, key: str, **body: Any) -> Any:
    return client.put(f"{F}/rounds/{key}", json.dumps(body), content_type="application/json")


def test_a_round_from_start_to_end_with_its_reports(world: World) -> None:
    client = world.client(world.housing_reporter)
    start = (timezone.now() - dt.timedelta(hours=2)).isoformat()
    first = _put(client, "kvall-0001", name="  Kvällsrundan \n", startedAt=start)
    assert first.status_code == 201
    again = _put(client, "kvall-0001", name="Kvällsrundan", startedAt=start)  # the phone retried
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert first.json()["name"] == "Kvällsrundan" and first.json()["endedAt"] is None

    form = {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "round": "kvall-0001"}
    reported = client.post(f"{F}/deviations", form, HTTP_IDEMPOTENCY_KEY="capture-0001")
    assert reported.status_code == 201, reported.content
    plain = client.post(f"{F}/deviations", {**form, "round": ""})
    assert plain.status_code == 201
    round_id = first.json()["id"]
    assert Deviation.objects.get(pk=reported.json()["id"]).round_id == round_id
    assert Deviation.objects.get(pk=plain.json()["id"]).round_id is None

    ended = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    done = _put(client, "kvall-0001", name="Kvällsrundan", startedAt=start, endedAt=ended)
    assert done.status_code == 200 and done.json()["endedAt"] is not None
    later = _put(client, "kvall-0001", name="Kvällsrundan", startedAt=start, endedAt=timezone.now().isoformat())
    assert later.json()["endedAt"] == done.json()["endedAt"]  # ended once

    assert [(r["key"], r["count"]) for r in client.get(f"{F}/rounds").json()] == [("kvall-0001", 1)]
    listed = client.get(f"{F}/deviations", {"round": round_id}).json()
    assert [f["id"] for f in listed["features"]] == [reported.json()["id"]]


def test_rounds_are_their_members_own_and_show_only_what_each_may_see(world: World) -> None:
    police = world.client(world.police_reporter)
    assert _put(police, "natt-00001", name="Nattrundan", startedAt=timezone.now().isoformat()).status_code == 201
    round_id = Round.objects.get().pk
    for visibility in ("organisation", "forum"):
        response = police.post(f"{F}/deviations", {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1],
                                                   "round": "natt-00001", "visibility": visibility})
        assert response.status_code == 201
    housing = world.client(world.housing_reporter)
    assert housing.get(f"{F}/rounds").json() == []
    # The key is the police reporter's: for anyone else it is no round of theirs.
    refused = housing.post(f"{F}/deviations", {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1],
                                               "round": "natt-00001"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "round"
    assert Deviation.objects.filter(organisation=world.housing).count() == 0
    # Nobody else may gather the round's reports by its id (which would make another organisation's reports
    # one person's evening): refused exactly as a round that does not exist.
    for asked in (round_id, round_id + 1000):
        refused = housing.get(f"{F}/deviations", {"round": asked})
        assert refused.status_code == 422
        assert refused.json()["error"] == {"code": "invalid", "message": f"Okänd runda: {asked}.", "field": "round"}
    assert police.get(f"{F}/deviations", {"round": round_id}).json()["numberMatched"] == 2
    assert police.get(f"{F}/rounds").json()[0]["count"] == 2
    other = world.client(world.outsider)
    assert other.get("/api/forums/skarholmen/deviations", {"round": round_id}).status_code == 422


@pytest.mark.parametrize(("key", "body", "field"), [
    ("kort", {"name": "Runda"}, "key"),
    ("med mellanslag", {"name": "Runda"}, "key"),
    ("kvall-0002", {"name": "   "}, "name"),
    ("kvall-0002", {"name": "x" * 81}, "name"),
    ("kvall-0002", {"name": "Runda", "startedAt": "2099-01-01T00:00:00Z"}, "startedAt"),
    ("kvall-0002", {"name": "Runda", "startedAt": "1999-12-31T00:00:00Z"}, "startedAt"),
    ("kvall-0002", {"name": "Runda", "endedAt": "2020-01-01T00:00:00Z"}, "endedAt"),
])
def test_a_round_that_cannot_be_is_refused_clearly_and_not_saved(world: World, key: str, body: dict[str, Any],
                                                                   field: str) -> None:
    body = {"startedAt": (timezone.now() - dt.timedelta(hours=1)).isoformat(), **body}
    response = _put(world.client(world.housing_reporter), key, **body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not Round.objects.exists()


def test_a_rounds_name_is_what_people_read(world: World) -> None:
    response = _put(world.client(world.housing_reporter), "kvall-0004", name="Kvälls\u202erundan\x07 \u200b ute",
                    startedAt=timezone.now().isoformat())
    assert response.json()["name"] == "Kvällsrundan ute"


def test_a_member_who_may_not_report_cannot_start_a_round(world: World) -> None:
    response = _put(world.client(world.viewer), "kvall-0003", name="Runda", startedAt=timezone.now().isoformat())
    assert response.status_code == 403
    assert not Round.objects.exists()
