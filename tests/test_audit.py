"""The audit log: every audited action writes exactly one event; coordinators read and export it."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services
from tests.conftest import PASSWORD, World, image_bytes

pytestmark = pytest.mark.django_db
BASE = "/api/forums/farsta"


def events(**filters: object) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("pk"))


def test_each_change_writes_exactly_one_event_with_actor_object_and_address(world: World) -> None:
    client = world.client(world.police_reporter, REMOTE_ADDR="10.1.2.3")
    created = client.post(f"{BASE}/deviations", json.dumps(
        {"category": "graffiti", "lon": 18.09, "lat": 59.244}), content_type="application/json").json()
    pk = created["id"]
    client.patch(f"{BASE}/deviations/{pk}", json.dumps({"version": 1, "description": "Mer klotter"}),
                 content_type="application/json")
    client.patch(f"{BASE}/deviations/{pk}", json.dumps({"version": 2, "visibility": "organisation"}),
                 content_type="application/json")
    client.post(f"{BASE}/deviations/{pk}/comments", json.dumps({"body": "Sanerat i morgon"}),
                content_type="application/json")
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.post(f"{BASE}/deviations/{pk}/photos", {"photos": [SimpleUploadedFile("a.jpg", image_bytes())]})
    client.delete(f"{BASE}/deviations/{pk}")
    logged = events(object_type="deviation", object_id=pk)
    assert [e.action for e in logged] == ["create", "update", "visibility", "comment", "photo", "withdraw"]
    assert {e.actor_id for e in logged} == {world.police_reporter.user_id}
    assert {e.organisation_id for e in logged} == {world.police.pk}
    assert {e.forum_id for e in logged} == {world.forum.pk}
    assert {e.ip for e in logged} == {"10.1.2.3"}
    assert logged[2].changes["visibility"] == ["forum", "organisation"]


def test_reading_a_restricted_deviation_is_logged_and_hidden_from_its_history(world: World) -> None:
    restricted = world.report(world.police_reporter, visibility="organisation")
    public = world.report(world.police_reporter)
    reader = world.client(world.police_lead)
    detail = reader.get(f"{BASE}/deviations/{restricted.pk}").json()
    reader.get(f"{BASE}/deviations/{public.pk}")
    [read] = events(action="read")
    assert (read.actor_id, read.object_id, read.ip) == (world.police_lead.user_id, restricted.pk, "127.0.0.1")
    assert [h["action"] for h in detail["history"]] == ["create"]
    # Someone who may not see it leaves no read behind, only a 404.
    assert world.client(world.housing_reporter).get(f"{BASE}/deviations/{restricted.pk}").status_code == 404
    assert len(events(action="read")) == 1


def test_sign_in_sign_out_and_failed_sign_in(world: World) -> None:
    client = Client(REMOTE_ADDR="192.0.2.7")
    client.post("/konto/login/", {"login": "polis@test.se", "password": "wrong password"})
    client.post("/konto/login/", {"login": "nobody@test.se", "password": "wrong password"})
    client.post("/konto/login/", {"login": "polis@test.se", "password": PASSWORD})
    client.post("/konto/logout/")
    logged = events(object_type="user")
    assert [e.action for e in logged] == ["sign_in_failed", "sign_in_failed", "sign_in", "sign_out"]
    assert logged[0].actor_id == world.police_reporter.user_id
    assert logged[1].actor_id is None
    assert logged[1].changes == {"email": "nobody@test.se"}
    assert {e.ip for e in logged} == {"192.0.2.7"}


def test_events_cannot_be_changed_or_deleted(world: World) -> None:
    world.report(world.police_reporter)
    event = AuditEvent.objects.get()
    event.action = "update"
    with pytest.raises(ValueError, match="cannot be changed"):
        event.save()
    with pytest.raises(ValueError, match="cannot be deleted"):
        event.delete()
    assert AuditEvent.objects.get().action == "create"


def test_only_coordinators_read_the_log(world: World) -> None:
    world.report(world.police_reporter)
    page = world.client(world.coordinator).get("/f/farsta/logg/")
    assert page.status_code == 200
    assert "Händelselogg" in page.content.decode()
    assert world.client(world.police_lead).get("/f/farsta/logg/").status_code == 403
    assert world.client(world.police_lead).get("/f/farsta/logg.csv").status_code == 403
    assert world.client(world.outsider).get("/f/farsta/logg/").status_code == 404
    assert Client().get("/f/farsta/logg/").status_code == 302


def test_log_filters_and_other_forums_stay_out(world: World) -> None:
    world.report(world.police_reporter)
    world.report(world.housing_reporter)
    services.add_comment(world.housing_reporter, world.report(world.housing_reporter).pk, "Hej")
    outsider_deviation = services.report_deviation(world.outsider, services.DeviationInput(
        category="graffiti", lon=18.0, lat=59.0, observed_at=world.forum.created_at))
    client = world.client(world.coordinator)
    page = client.get("/f/farsta/logg/", {"action": "comment"})
    assert page.context["page"].paginator.count == 1
    page = client.get("/f/farsta/logg/", {"organisation": world.housing.pk})
    assert page.context["page"].paginator.count == 3
    everything = [e.pk for e in client.get("/f/farsta/logg/").context["page"]]
    assert AuditEvent.objects.get(object_id=outsider_deviation.pk, action="create").pk not in everything
    bad = client.get("/f/farsta/logg/", {"from": "31/12/2026"})
    assert bad.status_code == 400
    assert "ÅÅÅÅ-MM-DD" in bad.content.decode()
    assert client.get("/f/farsta/logg/", {"action": "hack"}).status_code == 400


def test_csv_export_is_itself_logged_and_safe_for_spreadsheets(world: World) -> None:
    world.police_reporter.user.first_name = "=HYPERLINK(\"http://evil\")"
    world.police_reporter.user.save()
    world.report(world.police_reporter)
    response = world.client(world.coordinator).get("/f/farsta/logg.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["Tid", "Händelse", "Person"]
    created = next(row for row in rows if row[1] == "Skapad")
    assert created[2].startswith("'=")  # a formula would run when the file is opened
    [export] = events(action="export")
    assert export.actor_id == world.coordinator.user_id
    assert export.changes == {"what": "audit_log", "filter": ""}  # no count: it would count hidden events
