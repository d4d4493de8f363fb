"""What outside testing sent, and what it must get back: a 4xx with a message a person understands, the API's
JSON error shape or a page with the message, and nothing written. One test (or a few) per kind of input that
once gave a server error, a partial write or a wrong shape."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Forum
from lagesbild.meetings.models import Action, Meeting
from lagesbild.places import services as places
from lagesbild.places.models import Place
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db
BASE = "/api/forums/farsta"
HUGE = str(2**70)


def api_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"} and error["message"]
    return error


def page_error(response: Any, status: int, text: str) -> None:
    assert response.status_code == status, response.content[:300]
    assert text in response.content.decode()


def post_json(client: Client, url: str, body: str | bytes, **extra: Any) -> Any:
    return client.post(url, body, content_type="application/json", **extra)


# --- Digits that are not numbers, numbers too large for the database --------------------------------------

@pytest.mark.parametrize("value", ["²", "٣", "1e3", HUGE, "-5", "0x10"])
def test_odd_numbers_in_page_query_strings_and_forms(world: World, objects: dict[str, Any], value: str) -> None:
    client = world.client(world.coordinator)
    # A query string that prefills a form leaves out what is not an id.
    assert client.get(f"/f/farsta/atgarder/?deviation={value}").status_code == 200
    page_error(client.get(f"/f/farsta/monster/?period=all&organisation={value}"), 422, "")
    page_error(client.post("/f/farsta/atgarder/", {"title": "Lampor", "organisation": world.district.pk,
                                                  "due_date": (timezone.now().date() + dt.timedelta(days=3)),
                                                  "deviations": [value]}), 422, "")
    assert client.get(f"/f/farsta/logg/?organisation={value}").status_code in {200, 400}
    assert not Action.objects.filter(title="Lampor").exists()


def test_unicode_digits_get_a_message_that_names_them(world: World) -> None:
    response = world.client(world.coordinator).get("/f/farsta/monster/?period=all&organisation=²")
    page_error(response, 422, "² är inte ett heltal.")


@pytest.mark.parametrize("value", ["²", HUGE, "-1", "abc"])
def test_odd_numbers_in_api_filters_and_ids(world: World, value: str) -> None:
    client = world.client(world.coordinator)
    api_error(client.get(f"{BASE}/deviations", {"organisation": value}), 422)
    api_error(client.get(f"{BASE}/deviations/{value}"), 422)
    api_error(client.get(f"{BASE}/deviations", {"limit": value}), 422)


def test_ids_beyond_what_the_database_holds_in_page_addresses_are_missing_pages(world: World) -> None:
    client = world.client(world.coordinator)
    for url in (f"/f/farsta/platser/{HUGE}/", f"/f/farsta/moten/{HUGE}/", f"/f/farsta/atgarder/{HUGE}/"):
        assert client.get(url).status_code == 404
    api_error(client.patch(f"{BASE}/deviations/{HUGE}", json.dumps({"version": 1}),
                           content_type="application/json"), 422)


# --- JSON that cannot be read, text with what no one types ------------------------------------------------

def test_json_nested_a_hundred_thousand_levels(world: World) -> None:
    client = world.client(world.coordinator)
    deep = "[" * 100_000 + "]" * 100_000
    assert api_error(post_json(client, f"{BASE}/deviations", deep), 400)["code"] == "malformed_json"
    area = '{"type": "Polygon", "coordinates": ' + deep + "}"
    page_error(client.post("/f/farsta/platser/", {"name": "Djup", "area_drawn": area}), 422,
               "Området är inte en giltig GeoJSON-polygon.")
    page_error(client.post("/f/farsta/installningar/", {"name": "Farsta", "area_drawn": area}), 422, "")
    assert not Place.objects.filter(name="Djup").exists()


@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\udfffb"', '"\\u0000"'])
def test_lone_surrogates_and_nul_in_json_text(world: World, text: str) -> None:
    client = world.client(world.coordinator)
    before = Deviation.objects.count()
    body = '{"category": "graffiti", "lon": 18.09, "lat": 59.244, "description": ' + text + "}"
    assert api_error(post_json(client, f"{BASE}/deviations", body), 400)["code"] in {"malformed_json",
                                                                                     "bad_request"}
    api_error(post_json(client, f"{BASE}/flags", '{"text": ' + text + "}"), 400)
    assert Deviation.objects.count() == before


def test_nul_and_broken_utf8_in_forms_and_query_strings(world: World) -> None:
    client = world.client(world.coordinator)
    api_error(client.get(f"{BASE}/deviations", {"q": "a\x00b"}), 400)
    page_error(client.post("/f/farsta/platser/", {"name": "Nul\x00", "lon": "18.09", "lat": "59.244",
                                                 "radius_m": "50"}), 400, "NUL")
    # Bytes that are not UTF-8 are read with replacement characters, not refused with an error page.
    assert client.get(f"{BASE}/deviations?q=%ED%A0%80").status_code == 200
    assert not Place.objects.filter(name__startswith="Nul").exists()


# --- Dates and times at the edges of the calendar ---------------------------------------------------------

@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01",
                                   "9999-12-31T23:59"])
def test_times_at_the_edges_of_the_calendar_in_the_api(world: World, value: str) -> None:
    client = world.client(world.coordinator)
    error = api_error(client.get(f"{BASE}/deviations", {"from": value}), 422)
    assert error["field"] == "from" and "1900" in error["message"]
    api_error(client.get(f"{BASE}/patterns/compare", {"to": value}), 422)
    api_error(post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "observed_at": value})), 422)
    api_error(post_json(client, f"{BASE}/meetings", json.dumps({"held_at": value})), 422)


def test_a_comparison_reaching_back_before_year_one(world: World) -> None:
    client = world.client(world.coordinator)
    response = client.get(f"{BASE}/patterns/compare", {"from": "1900-01-01T00:00:00Z", "to": "2199-12-31T00:00Z"})
    assert response.status_code == 200  # the period before starts in the 1600s: far, but in the calendar
    page_error(client.get("/f/farsta/monster/?period=custom&from=0001-01-01&to=9999-12-31"), 422, "1900")


def test_observed_before_2000_is_refused(world: World) -> None:
    client = world.client(world.coordinator)
    error = api_error(post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "observed_at": "1999-12-31T23:00:00Z"})), 422)
    assert error["field"] == "observed_at" and "2000" in error["message"]


def test_a_local_time_that_does_not_exist_is_refused(world: World) -> None:
    """02:30 on 29 March 2026 did not happen in Stockholm: the clocks went from 02:00 to 03:00."""
    client = world.client(world.coordinator)
    error = api_error(post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "observed_at": "2026-03-29T02:30"})), 422)
    assert error["field"] == "observed_at" and "ställdes fram" in error["message"]
    # With its offset, or the hour after, it is a real moment, stored and counted in the hour it happened.
    created = post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "observed_at": "2026-03-29T03:30"}))
    assert created.status_code == 201
    stored = Deviation.objects.get(pk=created.json()["id"])
    assert stored.observed_at == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC) and stored.local_hour == 3


def test_a_local_time_that_happens_twice_is_the_first_of_the_two(world: World) -> None:
    client = world.client(world.coordinator)
    created = post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "observed_at": "2025-10-26T02:30"}))
    stored = Deviation.objects.get(pk=created.json()["id"])
    assert stored.observed_at == dt.datetime(2025, 10, 26, 0, 30, tzinfo=dt.UTC) and stored.local_hour == 2


# --- Meetings: a year 9999 meeting, and the meeting page's forms ------------------------------------------

def test_a_meeting_in_year_9999_is_refused_and_nothing_is_written(world: World) -> None:
    client = world.client(world.coordinator)
    api_error(post_json(client, f"{BASE}/meetings", json.dumps({"held_at": "9999-12-31T14:00:00+01:00"})), 422)
    error = api_error(post_json(client, f"{BASE}/meetings", json.dumps({"held_at": "2150-01-01T14:00:00Z"})), 422)
    assert error["field"] == "held_at"
    page_error(client.post("/f/farsta/moten/", {"held_at": "9999-12-31T14:00"}), 422, "")
    assert not Meeting.objects.exists()
    assert client.get("/f/farsta/moten/").status_code == 200


@pytest.mark.parametrize(("data", "field"), [
    ({"op": "attendance", "organisations": ["abc"]}, "organisations"),
    ({"op": "attendance", "people": ["²"]}, "people"),
    ({"op": "save_item", "item": "x", "notes": "n"}, "item"),
    ({"op": "action", "item": "1", "title": "T", "organisation": "one", "due_date": "2030-01-01"}, "organisation"),
    ({"op": "action", "title": "T", "organisation": "1", "due_date": "1 januari"}, "due_date"),
    ({"op": "details", "held_at": "igår"}, "held_at"),
    ({"op": "follow_up", "action": HUGE, "body": "x"}, "action"),
    ({"op": "nonsense"}, None),
])
def test_the_meeting_pages_forms_with_what_is_not_a_number(world: World, objects: dict[str, Any],
                                                          data: dict[str, Any], field: str | None) -> None:
    response = world.client(world.coordinator).post(f"/f/farsta/moten/{objects['meeting']}/", data)
    assert response.status_code == 422, response.content[:300]
    assert 'class="error-summary"' in response.content.decode()


def test_a_request_that_fails_after_writing_keeps_nothing(world: World, monkeypatch: Any) -> None:
    """The net under every service: the meeting row is written, then the answer cannot be made."""
    from lagesbild.meetings import presenters

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the answer could not be made")

    monkeypatch.setattr(presenters, "meeting_detail", broken)
    client = world.client(world.coordinator, raise_request_exception=False)
    response = post_json(client, f"{BASE}/meetings", "{}")
    assert api_error(response, 500)["code"] == "server_error"
    assert not Meeting.objects.exists()


def test_a_refused_attempt_is_logged_although_the_request_is_rolled_back(world: World) -> None:
    from lagesbild.audit.models import AuditEvent

    response = post_json(world.client(world.viewer), f"{BASE}/flags", json.dumps({"text": "Ta upp"}))
    api_error(response, 403)
    assert AuditEvent.objects.filter(action="refused", actor=world.viewer.user).exists()


# --- Requests that cannot be read, and requests without credentials ---------------------------------------

def test_a_body_over_the_limit_gets_json_413(world: World, settings: Any) -> None:
    client = world.client(world.coordinator)
    body = json.dumps({"fields": {"description": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}})
    assert api_error(post_json(client, f"{BASE}/personal-data-check", body), 413)["code"] == "too_large"


def test_multipart_without_a_boundary_gets_json_400(world: World) -> None:
    client = world.client(world.coordinator)
    response = client.post(f"{BASE}/deviations", b"category=graffiti", content_type="multipart/form-data")
    assert api_error(response, 400)["code"] == "bad_request"
    page = client.post("/f/farsta/platser/", b"name=x", content_type="multipart/form-data")
    page_error(page, 400, "boundary")


def test_a_write_without_credentials_is_401_not_a_csrf_complaint() -> None:
    response = Client(enforce_csrf_checks=True).post(f"{BASE}/deviations", "{}", content_type="application/json")
    assert api_error(response, 401)["code"] == "unauthenticated"


def test_a_signed_in_write_without_its_csrf_token_is_refused_in_swedish(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.coordinator.user)
    error = api_error(post_json(client, f"{BASE}/flags", json.dumps({"text": "Ta upp"})), 403)
    assert error["code"] == "csrf" and "inget ändrades" in error["message"]


# --- Too trusting -----------------------------------------------------------------------------------------

def test_an_action_with_a_longitude_and_no_latitude(world: World) -> None:
    client = world.client(world.coordinator)
    due = (timezone.now().date() + dt.timedelta(days=5)).isoformat()
    error = api_error(post_json(client, f"{BASE}/actions", json.dumps(
        {"title": "Lampor", "organisation": world.district.pk, "due_date": due, "lon": 500})), 422)
    assert error["field"] == "lon"
    error = api_error(post_json(client, f"{BASE}/actions", json.dumps(
        {"title": "Lampor", "organisation": world.district.pk, "due_date": due, "lon": 18.09})), 422)
    assert error["field"] == "lat" and "både" in error["message"]
    assert not Action.objects.exists()


def _circle(corners: int, radius: float = 0.001, wiggle: float = 0.0) -> dict[str, Any]:
    import math

    ring = [[INSIDE[0] + (radius + wiggle * (k % 2)) * math.cos(2 * math.pi * k / corners),
             INSIDE[1] + (radius + wiggle * (k % 2)) * math.sin(2 * math.pi * k / corners) / 2]
            for k in range(corners)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_a_place_with_sixty_thousand_corners(world: World) -> None:
    # A smooth outline with more corners than anyone draws is simplified by a metre and kept...
    smooth = places.create_place(world.coordinator, places.PlaceInput(name="Rund", area=_circle(60_000)))
    assert smooth.area is not None and len(smooth.area["coordinates"][0]) <= 1000
    # ...one that stays jagged at a metre is refused, with what to do about it.
    with pytest.raises(InvalidInput, match="för många hörn"):
        places.create_place(world.coordinator, places.PlaceInput(name="Taggig", area=_circle(60_000, wiggle=0.0002)))
    assert world.client(world.coordinator).get("/f/farsta/platser/").status_code == 200


def test_a_forum_time_zone_that_is_not_a_zone(world: World) -> None:
    from django.core.exceptions import ValidationError

    world.forum.timezone = "Europe/Farsta"
    with pytest.raises(ValidationError):
        world.forum.save()
    client = world.client(world.coordinator)
    page_error(client.post("/f/farsta/installningar/", {"name": "Farsta", "timezone": "Mars/Olympus"}), 422,
               "Mars/Olympus är inte namnet på en tidszon")
    assert Forum.objects.get(pk=world.forum.pk).timezone == "Europe/Stockholm"
    # Reporting still works.
    assert post_json(client, f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1]})).status_code == 201


def test_the_createforum_command_refuses_a_time_zone_that_is_not_one(db: None) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="tidszon"):
        call_command("createforum", "nacka", "Nacka", "--timezone", "Europe/Nowhere")
    assert not Forum.objects.filter(slug="nacka").exists()
