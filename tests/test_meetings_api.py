"""The API and pages for places, meetings and actions: clear errors that change nothing, and the flows."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.utils import timezone
from pypdf import PdfReader

from lagesbild.meetings import services
from lagesbild.meetings.models import Action, AgendaItem, Meeting, Protocol
from lagesbild.places.models import Place
from tests.conftest import World

pytestmark = pytest.mark.django_db

F = "/api/forums/farsta"


def send(client: Any, method: str, url: str, body: Any) -> Any:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def meeting(world: World) -> Meeting:
    held = timezone.now() - dt.timedelta(days=1)
    return services.schedule_meeting(world.coordinator, services.MeetingInput(held_at=held))


@pytest.mark.parametrize(("url", "body", "field", "message"), [
    ("/places", {"name": "Korsat", "area": {"type": "Polygon", "coordinates": [
        [[18.08, 59.24], [18.10, 59.25], [18.10, 59.24], [18.08, 59.25], [18.08, 59.24]]]}}, "area",
     "Områdets kontur korsar sig själv."),
    ("/places", {"name": "Långt bort", "lon": 17.0, "lat": 59.0, "radius_m": 100}, "lon",
     "Platsen ligger utanför forumets område."),
    ("/places", {"name": "", "lon": 18.09, "lat": 59.24, "radius_m": 100}, "name", "Ge platsen ett namn."),
    ("/actions", {"title": "Utan ansvarig", "due_date": "2030-01-01"}, "organisation",
     "Välj vilken organisation som ansvarar för åtgärden."),
    ("/actions", {"title": "Okänd", "organisation": 999999, "due_date": "2030-01-01"}, "organisation",
     "Okänd organisation."),
    ("/meetings", {"held_at": "2026-03-10T14:00", "period_start": "2026-03-10T14:00",
                   "period_end": "2026-02-10T14:00"}, "period_start", "Periodens början måste vara före dess slut."),
    ("/meetings", {"held_at": "i morgon"}, "held_at", "held_at är inte en giltig tidpunkt"),
    ("/flags", {"text": ""}, "text", "Skriv vad mötet ska ta upp."),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(world: World, url: str, body: dict, field: str,
                                                           message: str) -> None:
    response = send(world.client(world.coordinator), "post", F + url, body)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert (error["field"], error["code"]) == (field, "invalid")
    assert error["message"].startswith(message)
    assert not Place.objects.exists() and not Action.objects.exists() and not Meeting.objects.exists()


def test_an_action_due_before_today_is_refused(world: World) -> None:
    response = send(world.client(world.coordinator), "post", F + "/actions",
                    {"title": "Sent", "organisation": world.police.pk, "due_date": "2020-01-01"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "Klart-datum kan inte vara före dagen då åtgärden skapas."
    assert not Action.objects.exists()


def test_another_forums_objects_are_not_found(world: World, meeting: Meeting) -> None:
    client = world.client(world.outsider)
    for url in (f"/api/forums/skarholmen/meetings/{meeting.pk}", f"/api/forums/farsta/meetings/{meeting.pk}"):
        assert client.get(url).status_code == 404
    response = send(world.client(world.coordinator), "post", F + "/actions", {
        "title": "Fel forum", "organisation": world.outsider.organisation_id, "due_date": "2030-01-01"})
    assert response.json()["error"]["message"] == "Okänd organisation."


def test_a_published_protocol_is_refused_changes_over_the_api(world: World, meeting: Meeting) -> None:
    client = world.client(world.coordinator)
    built = client.post(f"{F}/meetings/{meeting.pk}/agenda").json()
    item = built["agenda"][0]["id"]
    published = send(client, "post", f"{F}/meetings/{meeting.pk}/protocols", {})
    assert published.status_code == 201 and published.json()["version"] == 1
    refused = send(client, "patch", f"{F}/meetings/{meeting.pk}/items/{item}", {"notes": "I efterhand"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "published"
    assert "Börja en rättelse" in refused.json()["error"]["message"]
    assert AgendaItem.objects.get(pk=item).notes == ""
    assert client.post(f"{F}/meetings/{meeting.pk}/correction").json()["state"] == "correcting"
    assert send(client, "patch", f"{F}/meetings/{meeting.pk}/items/{item}", {"notes": "Rättat"}).status_code == 200
    missing_reason = send(client, "post", f"{F}/meetings/{meeting.pk}/protocols", {})
    assert missing_reason.status_code == 422 and missing_reason.json()["error"]["field"] == "correction_reason"
    second = send(client, "post", f"{F}/meetings/{meeting.pk}/protocols", {"correction_reason": "Stavfel"})
    assert second.json()["version"] == 2
    pdf = client.get(f"{F}/meetings/{meeting.pk}/protocols/2/pdf")
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Rättelse: Stavfel" in text and "Version 2" in text
    assert client.get(f"{F}/meetings/{meeting.pk}/protocols/3").status_code == 404


def test_the_meeting_runs_on_its_page(world: World, meeting: Meeting) -> None:
    """The coordinator's forms on the meeting page: build, take notes, decide an action, publish."""
    client = world.client(world.coordinator)
    page = f"/f/farsta/moten/{meeting.pk}/"
    assert client.post(page, {"op": "build"}).status_code == 302
    item = meeting.items.get(kind=AgendaItem.Kind.CATEGORIES)
    assert client.post(page, {"op": "save_item", "item": item.pk, "notes": "Lugn månad",
                              "decision": "Fortsätt"}).status_code == 302
    bad = client.post(page, {"op": "action", "item": item.pk, "title": "Utan ansvarig", "due_date": ""})
    assert bad.status_code == 422
    assert "Välj vilken organisation som ansvarar för åtgärden." in bad.content.decode()
    due = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    assert client.post(page, {"op": "action", "item": item.pk, "title": "Städa torget",
                              "organisation": world.housing.pk, "due_date": due}).status_code == 302
    assert client.post(page, {"op": "publish"}).status_code == 302
    protocol = Protocol.objects.get(meeting=meeting)
    assert protocol.content["newActions"][0]["title"] == "Städa torget"
    shown = client.get(f"/f/farsta/moten/{meeting.pk}/protokoll/").content.decode()
    assert "Lugn månad" in shown and "Städa torget" in shown and "<svg" in shown
    refused = client.post(page, {"op": "save_item", "item": item.pk, "notes": "Ändrat"})
    assert refused.status_code == 409
    assert "Protokollet är publicerat" in refused.content.decode()


def test_my_organisations_open_actions(world: World) -> None:
    due = timezone.localdate() + dt.timedelta(days=5)
    for org, title, status in ((world.housing, "Vår öppna", "planned"), (world.housing, "Vår klara", "done"),
                               (world.police, "Polisens", "planned")):
        Action.objects.create(forum=world.forum, organisation=org, title=title, due_date=due, status=status)
    mine = world.client(world.housing_reporter).get("/f/farsta/atgarder/").content.decode()
    assert "Vår öppna" in mine and "Vår klara" not in mine and "Polisens" not in mine
    every = world.client(world.housing_reporter).get("/f/farsta/atgarder/?show=all").content.decode()
    assert "Vår klara" in every and "Polisens" in every
    api = world.client(world.housing_reporter).get(f"{F}/actions", {"mine": "true"}).json()
    assert [a["title"] for a in api] == ["Vår öppna"]


def test_a_suggested_place_is_confirmed_and_named_on_the_places_page(world: World) -> None:
    now = timezone.now()
    for week in range(4):
        for i in range(2):
            world.report(world.police_reporter, lon=18.09 + i * 0.0002, lat=59.244,
                         observed_at=now - dt.timedelta(days=7 * week + 1))
    page = world.client(world.coordinator).get("/f/farsta/platser/").content.decode()
    assert "8 avvikelser under 4 olika veckor" in page
    response = world.client(world.coordinator).post("/f/farsta/platser/", {
        "name": "Porten", "lon": "18.0901", "lat": "59.244", "radius_m": "150"})
    place = Place.objects.get(name="Porten")
    assert response["Location"] == f"/f/farsta/platser/{place.pk}/"
    assert "8 avvikelser som du kan se ligger här" in world.client(world.coordinator).get(
        response["Location"]).content.decode()


def test_a_deviations_detail_names_its_places_and_actions(world: World) -> None:
    deviation = world.report(world.police_reporter)
    client = world.client(world.coordinator)
    send(client, "post", F + "/places", {"name": "Torget", "lon": 18.09, "lat": 59.244, "radius_m": 100})
    send(client, "post", F + "/places", {"name": "Långt bort", "lon": 18.12, "lat": 59.26, "radius_m": 100})
    created = send(client, "post", F + "/actions", {"title": "Sanera", "organisation": world.housing.pk,
                                                    "due_date": "2030-01-01", "deviations": [deviation.pk]})
    assert created.status_code == 201
    detail = client.get(f"{F}/deviations/{deviation.pk}").json()
    assert [p["name"] for p in detail["places"]] == ["Torget"]
    assert [(a["title"], a["statusLabel"]) for a in detail["actions"]] == [("Sanera", "Planerad")]
    assert detail["status"] == "in_progress"


def test_the_audit_log_names_and_links_places_meetings_and_actions(world: World, meeting: Meeting) -> None:
    client = world.client(world.coordinator)
    place = send(client, "post", F + "/places", {"name": "Torget", "lon": 18.09, "lat": 59.244, "radius_m": 100})
    action = send(client, "post", F + "/actions", {"title": "Sanera", "organisation": world.housing.pk,
                                                   "due_date": "2030-01-01"})
    page = client.get("/f/farsta/logg/").content.decode()
    assert f'<a href="/f/farsta/platser/{place.json()["id"]}/">Plats {place.json()["id"]}</a>' in page
    assert f'<a href="/f/farsta/atgarder/{action.json()["id"]}/">Åtgärd {action.json()["id"]}</a>' in page
    assert f'<a href="/f/farsta/moten/{meeting.pk}/">Möte {meeting.pk}</a>' in page


def test_the_action_form_names_a_responsible_person_in_that_organisation(world: World) -> None:
    client = world.client(world.coordinator)
    due = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    wrong = client.post("/f/farsta/atgarder/", {"title": "Belysning", "organisation": world.housing.pk,
                                                "due_date": due, "responsible": world.police_reporter.user.pk})
    assert wrong.status_code == 422
    assert "Den ansvariga personen måste tillhöra den ansvariga organisationen." in wrong.content.decode()
    assert not Action.objects.exists()
    right = client.post("/f/farsta/atgarder/", {"title": "Belysning", "organisation": world.housing.pk,
                                                "due_date": due, "responsible": world.housing_reporter.user.pk})
    assert right.status_code == 302
    assert Action.objects.get().responsible == world.housing_reporter.user
