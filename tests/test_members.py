"""Members and invitations: who may manage whom, and links that work once, for the invited person only."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.errors import Forbidden, InvalidInput, NotFound
from lagesbild.forums import members
from lagesbild.forums.models import Invitation, Membership, Organisation, User
from tests.conftest import World

pytestmark = pytest.mark.django_db
BASE_URL = "http://testserver/"


def invite(manager: Any, email: str = "ny@example.se", organisation: Organisation | None = None,
           role: str = "reporter") -> str:
    """Invite, and return the link's path from the e-mail."""
    members.invite(manager, email=email, organisation_id=(organisation or manager.organisation).pk, role=role,
                   base_url=BASE_URL)
    match = re.search(r"http://testserver(/konto/inbjudan/[^/\s]+/)", mail.outbox[-1].body)
    assert match is not None
    return match.group(1)


def test_invitation_creates_an_account_and_a_membership(world: World) -> None:
    link = invite(world.coordinator, organisation=world.school, role="viewer")
    [message] = mail.outbox
    assert message.to == ["ny@example.se"]
    assert "Farsta" in message.subject and "Skolan" in message.body
    client = Client()
    page = client.get(link)
    assert "Skapa ditt konto för ny@example.se" in page.content.decode()
    weak = client.post(link, {"first_name": "Nina", "password1": "123", "password2": "123"})
    assert weak.status_code == 400
    assert not User.objects.filter(email="ny@example.se").exists()
    response = client.post(link, {"first_name": "Nina", "last_name": "Ny", "password1": "ett långt lösenord här",
                                  "password2": "ett långt lösenord här"})
    assert response.status_code == 302 and response["Location"] == "/f/farsta/"
    membership = Membership.objects.get(user__email="ny@example.se")
    assert (membership.organisation, membership.role) == (world.school, "viewer")
    assert client.get("/f/farsta/").status_code == 200
    assert AuditEvent.objects.filter(action="invite").count() == 1
    assert AuditEvent.objects.filter(action="join", actor=membership.user).count() == 1
    # The link works once.
    again = Client().get(link)
    assert again.status_code == 422
    assert "redan använts" in again.content.decode()
    assert AuditEvent.objects.filter(action="refused", changes__reason="invitation already used").count() == 1


def test_expired_and_unknown_links(world: World) -> None:
    link = invite(world.coordinator)
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    expired = Client().get(link)
    assert expired.status_code == 422
    assert "gått ut" in expired.content.decode()
    assert Client().get("/konto/inbjudan/nonsense/").status_code == 404
    reasons = set(AuditEvent.objects.filter(action="refused").values_list("changes__reason", flat=True))
    assert reasons == {"invitation expired", "unknown or revoked invitation"}
    with pytest.raises(InvalidInput):
        members.accept_invitation(link.split("/")[-2], password="ett långt lösenord här")
    assert not User.objects.filter(email="ny@example.se").exists()


def test_the_link_is_for_the_invited_address_only(world: World) -> None:
    link = invite(world.coordinator, email="anna@example.se")
    someone_else = world.client(world.housing_reporter)
    response = someone_else.post(link)
    assert response.status_code == 403
    assert "anna@example.se" in response.content.decode()
    assert not Membership.objects.filter(user=world.housing_reporter.user, organisation=world.school).exists()
    assert Invitation.objects.get().accepted_at is None


def test_an_existing_account_joins_by_signing_in(world: World) -> None:
    link = invite(world.coordinator, email=world.outsider.user.email, organisation=world.police)
    anonymous = Client().get(link)
    assert "Du har redan ett konto" in anonymous.content.decode()
    outsider = world.client(world.outsider)
    assert outsider.post(link).status_code == 302
    assert Membership.objects.get(user=world.outsider.user, forum=world.forum).organisation == world.police


def test_organisation_leads_manage_only_their_own(world: World) -> None:
    invite(world.police_lead, email="kollega@polisen.se", role="reporter")
    with pytest.raises(Forbidden):
        members.invite(world.police_lead, email="x@example.se", organisation_id=world.housing.pk, role="reporter",
                       base_url=BASE_URL)
    with pytest.raises(Forbidden):
        members.invite(world.police_lead, email="x@example.se", organisation_id=world.police.pk,
                       role="coordinator", base_url=BASE_URL)
    with pytest.raises(Forbidden):
        members.change_role(world.police_lead, world.housing_reporter.pk, "viewer")
    members.change_role(world.police_lead, world.police_reporter.pk, "viewer")
    with pytest.raises(Forbidden):
        members.change_role(world.police_lead, world.police_reporter.pk, "coordinator")
    refused = AuditEvent.objects.filter(action="refused", actor=world.police_lead.user)
    assert refused.count() == 4
    assert Membership.objects.get(pk=world.police_reporter.pk).role == "viewer"


def test_nobody_changes_their_own_membership_and_a_coordinator_remains(world: World) -> None:
    with pytest.raises(Forbidden):
        members.change_role(world.police_lead, world.police_lead.pk, "coordinator")
    with pytest.raises(Forbidden):
        members.remove(world.coordinator, world.coordinator.pk)
    second = members.change_role(world.coordinator, world.police_lead.pk, "coordinator")
    # With two coordinators, one can step the other down; the last one cannot be.
    members.change_role(second, world.coordinator.pk, "reporter")
    with pytest.raises(InvalidInput):
        members.change_role(world.coordinator, second.pk, "reporter")  # the reporter has no right anyway


def test_suspend_reactivate_remove(world: World) -> None:
    client = world.client(world.housing_reporter)
    assert client.get("/f/farsta/").status_code == 200
    members.set_active(world.coordinator, world.housing_reporter.pk, active=False)
    assert client.get("/f/farsta/").status_code == 404
    members.set_active(world.coordinator, world.housing_reporter.pk, active=True)
    assert client.get("/f/farsta/").status_code == 200
    members.remove(world.coordinator, world.housing_reporter.pk)
    assert client.get("/f/farsta/").status_code == 404
    with pytest.raises(NotFound):
        members.remove(world.coordinator, world.outsider.pk)  # another forum's member: not found here
    actions = list(AuditEvent.objects.filter(actor=world.coordinator.user).values_list("action", flat=True))
    assert actions == ["suspend", "reactivate", "remove", "refused"]


def test_members_page_and_forms(world: World) -> None:
    client = world.client(world.coordinator)
    page = client.get("/f/farsta/medlemmar/")
    assert page.status_code == 200
    assert "polis@test.se" in page.content.decode()
    bad = client.post("/f/farsta/medlemmar/invite/", {"email": "inte-en-adress", "organisation": world.school.pk,
                                                       "role": "viewer"})
    assert bad.status_code == 422
    assert "Skriv en giltig e-postadress" in bad.content.decode()
    assert mail.outbox == []
    ok = client.post("/f/farsta/medlemmar/invite/", {"email": "Ny@Example.se", "organisation": world.school.pk,
                                                      "role": "viewer"})
    assert ok.status_code == 302
    assert Invitation.objects.get().email == "ny@example.se"
    added = client.post("/f/farsta/medlemmar/organisation/", {"name": "Räddningstjänsten", "kind": "other"})
    assert added.status_code == 302
    duplicate = client.post("/f/farsta/medlemmar/organisation/", {"name": "räddningstjänsten", "kind": "other"})
    assert duplicate.status_code == 422
    lead = world.client(world.police_lead).get("/f/farsta/medlemmar/").content.decode()
    assert "polis@test.se" in lead and "vicevard@test.se" not in lead  # only the police's own members
    assert "Lägg till en organisation" not in lead


def test_forged_requests_and_tampering_are_refused_and_logged(world: World) -> None:
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(world.coordinator.user)
    response = forged.post("/f/farsta/medlemmar/suspend/", {"membership": world.housing_reporter.pk})
    assert response.status_code == 403
    assert "inget ändrades" in response.content.decode()
    assert Membership.objects.get(pk=world.housing_reporter.pk).is_active
    assert AuditEvent.objects.filter(action="refused", changes__reason="csrf").count() == 1
    # A member id from another forum: not found here, and logged.
    with pytest.raises(NotFound):
        members.set_active(world.coordinator, world.outsider.pk, active=False)
    assert Membership.objects.get(pk=world.outsider.pk).is_active
    # A visibility list naming another forum's organisation.
    from lagesbild.deviations import services

    with pytest.raises(InvalidInput):
        world.report(world.police_reporter, visibility="named", shared_with=[world.outsider.organisation.pk])
    reasons = list(AuditEvent.objects.filter(action="refused").values_list("changes__reason", flat=True))
    assert reasons == ["csrf", "membership of another forum", "visibility names organisations outside the forum"]
    assert not services.visible_deviations(world.police_lead).exists()


def test_forum_settings(world: World) -> None:
    import io
    import json

    client = world.client(world.coordinator)
    assert client.get("/f/farsta/installningar/").status_code == 200
    area = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
        [[18.0, 59.2], [18.2, 59.2], [18.2, 59.3], [18.0, 59.3], [18.0, 59.2]]]}}
    upload = io.BytesIO(json.dumps(area).encode())
    upload.name = "farsta.geojson"
    response = client.post("/f/farsta/installningar/", {
        "name": "Farsta trygghetsforum", "block_personal_data": "on", "retention_months": "24",
        "retention_action": "delete", "area": upload})
    assert response.status_code == 302
    world.forum.refresh_from_db()
    assert (world.forum.name, world.forum.require_two_factor, world.forum.block_personal_data) == (
        "Farsta trygghetsforum", False, True)
    assert (world.forum.retention_months, world.forum.retention_action) == (24, "delete")
    assert world.forum.area["coordinates"][0][1] == [18.2, 59.2]
    event = AuditEvent.objects.get(action="settings")
    assert event.changes["name"] == ["Farsta", "Farsta trygghetsforum"]
    assert event.changes["area"] == ["…", "…"]

    bow_tie = io.BytesIO(json.dumps({"type": "Polygon", "coordinates": [
        [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}).encode())
    bow_tie.name = "bad.geojson"
    bad = client.post("/f/farsta/installningar/", {"name": "Nytt namn", "area": bow_tie})
    assert bad.status_code == 422
    assert "korsar sig själv" in bad.content.decode()
    world.forum.refresh_from_db()
    assert world.forum.name == "Farsta trygghetsforum"  # nothing changed
    not_json = io.BytesIO(b"<kml>")
    not_json.name = "area.kml"
    assert client.post("/f/farsta/installningar/", {"name": "X", "area": not_json}).status_code == 422
    assert client.post("/f/farsta/installningar/", {"name": "X", "retention_months": "tre"}).status_code == 422
    assert client.post("/f/farsta/installningar/", {"name": "X", "retention_months": "0"}).status_code == 422
    assert world.client(world.police_lead).post("/f/farsta/installningar/", {"name": "Hackat"}).status_code == 403
    world.forum.refresh_from_db()
    assert world.forum.name == "Farsta trygghetsforum"
    # Turning two-factor authentication on takes effect at once, for the coordinator too.
    client.post("/f/farsta/installningar/", {"name": "Farsta trygghetsforum", "require_two_factor": "on"})
    assert client.get("/f/farsta/")["Location"] == "/konto/2fa/totp/activate/"


def test_a_drawn_area_that_crosses_itself_is_refused(world: World) -> None:
    import json

    client = world.client(world.coordinator)
    bow_tie = {"type": "Polygon", "coordinates": [[[18.0, 59.2], [18.1, 59.3], [18.1, 59.2], [18.0, 59.3],
                                                   [18.0, 59.2]]]}
    response = client.post("/f/farsta/installningar/", {"name": "Farsta", "area_drawn": json.dumps(bow_tie)})
    assert response.status_code == 422
    assert "korsar sig själv" in response.content.decode()
    assert client.post("/f/farsta/installningar/", {"name": "Farsta", "meeting_cadence": "daily"}).status_code == 422
    world.forum.refresh_from_db()
    assert world.forum.area["coordinates"][0][1] == [18.15, 59.22] and world.forum.meeting_cadence == "monthly"
