"""Saved views and alerts: a member saves the map's filter under a name and is told of new deviations that
match it, in the app and by e-mail, at once or daily; never of one their organisation may not see."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lagesbild.alerts import services
from lagesbild.alerts.models import Alert, SavedView
from lagesbild.alerts.tasks import match_new_deviation
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Category, Deviation, HiddenCategory
from lagesbild.forums.models import Membership
from tests.conftest import INSIDE, World

PAGE = "/f/farsta/bevakningar/"
# A box around INSIDE, and one in the forum's area well away from it.
NEAR = f"{INSIDE[0] - 0.01},{INSIDE[1] - 0.005},{INSIDE[0] + 0.01},{INSIDE[1] + 0.005}"
FAR = (18.14, 59.225)


def save(world: World, member: Membership, **fields: Any) -> SavedView:
    fields.setdefault("email", fields.get("frequency", "immediate") != "none")
    data = services.ViewInput(**{"name": "Klotter vid torget", "query": "period=30&category=graffiti",
                                 "bbox": NEAR, "frequency": "immediate", **fields})
    return services.save_view(member, data)


def report(world: World, member: Membership, **fields: Any) -> Deviation:
    deviation = world.report(member, **fields)
    services.match_new_deviation(world.forum.pk, deviation.pk)
    return deviation


# --- Saving -------------------------------------------------------------------------------------------------

def test_the_map_saves_its_filter_and_box_under_a_name(world: World) -> None:
    client = world.client(world.police_reporter)
    response = client.post(PAGE, {"op": "save", "name": "  Klotter   vid torget ", "frequency": "daily",
                                  "email": "on", "bbox": NEAR,
                                  "query": "period=30&category=graffiti&status=new&layer=heat&evil=1"})
    assert response.status_code == 302, response.content
    view = SavedView.objects.get(membership=world.police_reporter)
    assert view.name == "Klotter vid torget"
    assert parse_qs(view.query) == {"period": ["30"], "category": ["graffiti"], "status": ["new"]}
    assert view.bbox == pytest.approx([float(v) for v in NEAR.split(",")])
    assert (view.frequency, view.email) == ("daily", True)
    page = client.get(PAGE).content.decode()
    address = services.map_address(view)
    assert f'href="{address.replace("&", "&amp;")}"' in page
    assert parse_qs(urlsplit(address).query)["bbox"] == [",".join(f"{float(v):g}" for v in NEAR.split(","))]
    assert "Klotter" in page and "senaste 30 dagarna" in page
    # Another member of the same organisation sees none of it.
    assert "Klotter vid torget" not in world.client(world.police_lead).get(PAGE).content.decode()


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": "   "}, "name", "Ge vyn ett namn."),
    ({"name": "x" * 81}, "name", "högst 80 tecken"),
    ({"query": "category=unicorns"}, "category", "Okänd kategori: unicorns."),
    ({"query": "organisation=999999"}, "organisation", "Okänd organisation: 999999."),
    ({"query": "period=fortnight"}, "period", "Okänd period: fortnight."),
    ({"query": "status=lost"}, "status", "Okänd status: lost."),
    ({"bbox": "18.2,59.2,18.1"}, "bbox", "fyra tal"),
    ({"bbox": "18.1,59.2,18.1,59.3"}, "bbox", "ingen yta"),
    ({"frequency": "hourly"}, "frequency", "Välj hur ofta"),
    ({"frequency": "none", "email": "on"}, "frequency", "för att få bevakningen med e-post"),
    ({"query": "q=%00"}, "q", "NUL"),  # PostgreSQL cannot store it, and every later match would fail
    ({"query": "q=" + "😀" * 200}, "query", "för långt"),  # 800 characters typed, 2,402 once encoded
    ({"bbox": "18.0000001,59.0000001,18.0000002,59.0000002"}, "bbox", "ingen yta"),  # none left once rounded
    ({"name": "\u200b\u200b"}, "name", "Ge vyn ett namn."),  # only invisible characters
])
def test_a_view_that_cannot_be_saved_says_why_and_keeps_what_was_typed(world: World, fields: dict[str, str],
                                                                        field: str, message: str) -> None:
    data = {"op": "save", "name": "Min vy", "query": "period=30", "bbox": NEAR, "frequency": "none", **fields}
    data = {k: v for k, v in data.items() if k != "email" or v}
    response = world.client(world.viewer).post(PAGE, data)
    assert response.status_code == 422
    page = response.content.decode()
    assert message in page
    assert 'id="retry-save"' in page
    assert not SavedView.objects.exists()


def test_names_are_unique_per_member_and_views_are_few(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    save(world, world.viewer)
    response = world.client(world.viewer).post(PAGE, {"op": "save", "name": "Klotter vid torget", "query": ""})
    assert response.status_code == 422
    assert "Du har redan en vy som heter Klotter vid torget." in response.content.decode()
    # The same letters written another way (Å as A and a ring) are the same name.
    save(world, world.viewer, name="Ån")
    assert world.client(world.viewer).post(PAGE, {"op": "save", "name": "A\u030an", "query": ""}).status_code == 422
    SavedView.objects.filter(name="Ån").delete()
    save(world, world.police_reporter)  # the same name for someone else is fine
    monkeypatch.setattr(services, "MAX_VIEWS", 2)
    save(world, world.viewer, name="Andra")
    response = world.client(world.viewer).post(PAGE, {"op": "save", "name": "Tredje", "query": ""})
    assert response.status_code == 422 and "högst 2 sparade vyer" in response.content.decode()
    assert SavedView.objects.filter(membership=world.viewer).count() == 2


def test_only_the_owner_changes_or_removes_a_view(world: World) -> None:
    view = save(world, world.viewer)
    other = world.client(world.police_lead)
    for op in ({"op": "alerts", "frequency": "none"}, {"op": "delete"}):
        response = other.post(PAGE, {**op, "view": view.pk})
        assert response.status_code == 404 and "Det finns ingen sådan sparad vy." in response.content.decode()
    view.refresh_from_db()
    assert view.frequency == "immediate"
    own = world.client(world.viewer)
    assert own.post(PAGE, {"op": "alerts", "view": view.pk, "frequency": "daily"}).status_code == 302
    view.refresh_from_db()
    assert (view.frequency, view.email, view.digest_sent_at is not None) == ("daily", False, True)
    for bad in ({"view": "x"}, {"view": ""}, {"view": "99999999999999999999"}):
        assert own.post(PAGE, {"op": "delete", **bad}).status_code in (404, 422)
    assert own.post(PAGE, {"op": "explode"}).status_code == 422
    assert own.post(PAGE, {"op": "delete", "view": view.pk}).status_code == 302
    assert not SavedView.objects.exists()


# --- Matching -----------------------------------------------------------------------------------------------

def test_a_new_deviation_alerts_the_views_it_matches(world: World) -> None:
    watching = save(world, world.viewer)
    everything = save(world, world.police_reporter, name="Allt", query="period=7", bbox="")
    save(world, world.housing_reporter, name="Inget", frequency="none")
    matching = report(world, world.housing_reporter, category="graffiti", observed_at=timezone.now()
                      - dt.timedelta(days=60))  # old news reported today is new: the period does not apply
    assert {a.saved_view_id for a in Alert.objects.filter(deviation=matching)} == {watching.pk, everything.pk}
    far = report(world, world.housing_reporter, category="graffiti", lon=FAR[0], lat=FAR[1])
    other_category = report(world, world.housing_reporter, category="lighting")
    assert {a.saved_view_id for a in Alert.objects.filter(deviation__in=[far, other_category])} == {everything.pk}
    # A member's own report does not alert them.
    own = report(world, world.police_reporter, category="graffiti")
    assert set(Alert.objects.filter(deviation=own).values_list("saved_view_id", flat=True)) == {watching.pk}
    # Matching twice (a task run again) alerts once.
    assert services.match_new_deviation(world.forum.pk, matching.pk) == []
    assert Alert.objects.filter(deviation=matching).count() == 2


def test_a_restricted_deviation_alerts_only_those_who_may_see_it(world: World) -> None:
    """Planted restricted deviations: no alert, no unread count, no line in a list, no e-mail, no digest for an
    organisation that may not see them."""
    housing_view = save(world, world.housing_reporter, name="Husets klotter")
    police_view = save(world, world.police_lead, name="Polisens klotter")
    viewer_view = save(world, world.viewer, frequency="daily")
    secret = report(world, world.police_reporter, category="graffiti", visibility="organisation",
                    description="Hemlig spaning", place_name="Hemliga gatan")
    named = report(world, world.police_reporter, category="graffiti", visibility="named",
                   shared_with=[world.housing.pk], place_name="Delad gata")
    assert set(Alert.objects.values_list("saved_view_id", "deviation_id")) == {
        (police_view.pk, secret.pk), (police_view.pk, named.pk), (housing_view.pk, named.pk)}
    assert services.unread_count(world.viewer) == 0
    page = world.client(world.viewer).get(PAGE).content.decode()
    assert "Hemliga gatan" not in page and "Delad gata" not in page
    # An alert made while the deviation was visible is not shown once it no longer is.
    Alert.objects.create(forum=world.forum, saved_view=viewer_view, deviation=secret)
    assert services.unread_count(world.viewer) == 0 and services.alerts_of(world.viewer) == []
    assert "Hemliga gatan" not in world.client(world.viewer).get("/f/farsta/").content.decode()
    digest = {d.view.pk: d for d in services.digests(timezone.now() + dt.timedelta(seconds=1))}
    assert digest[viewer_view.pk].message is None
    at_once = save(world, world.viewer, name="Direkt")
    planted = Alert.objects.create(forum=world.forum, saved_view=at_once, deviation=secret)
    assert world.viewer.user.email and services.immediate_messages([planted]) == []
    # ... while the police lead, who may see it, is told (the check above can fail).
    [(_alert, told)] = services.immediate_messages([Alert.objects.get(saved_view=police_view, deviation=secret)])
    assert "Hemliga gatan" in told.body and told.to == [world.police_lead.user.email]


def test_withdrawn_deviations_leave_the_alerts(world: World) -> None:
    save(world, world.viewer)
    deviation = report(world, world.housing_reporter, category="graffiti", place_name="Torget")
    assert services.unread_count(world.viewer) == 1
    deviations.withdraw_deviation(world.housing_reporter, deviation.pk)
    assert services.unread_count(world.viewer) == 0 and services.alerts_of(world.viewer) == []


def test_a_view_whose_category_is_gone_matches_nothing_and_breaks_nothing(world: World) -> None:
    view = save(world, world.viewer)
    SavedView.objects.filter(pk=view.pk).update(query="category=removed-long-ago")
    report(world, world.housing_reporter, category="graffiti")
    assert not Alert.objects.exists()
    page = world.client(world.viewer).get(PAGE)
    assert page.status_code == 200 and "removed-long-ago" in page.content.decode()


# --- Reading and e-mail -------------------------------------------------------------------------------------

def test_the_alerts_page_and_the_unread_count_in_the_menu(world: World) -> None:
    save(world, world.viewer)
    deviation = report(world, world.housing_reporter, category="graffiti", place_name="Torget")
    client = world.client(world.viewer)
    map_page = client.get("/f/farsta/").content.decode()
    assert ('class="nav-count" aria-hidden="true">1</span><span class="visually-hidden">, 1 oläst bevakningsträff'
            in map_page)
    page = client.get(PAGE).content.decode()
    assert f"?period=all#deviation-{deviation.pk}" in page and "Torget" in page and 'class="unread"' in page
    assert client.post(PAGE, {"op": "read"}).status_code == 302
    assert services.unread_count(world.viewer) == 0
    assert 'class="nav-count"' not in client.get("/f/farsta/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_report_is_matched_by_the_worker_and_e_mailed_at_once(world: World) -> None:
    world.viewer.user.email = "lasare@test.se"
    world.viewer.user.save()
    save(world, world.viewer)
    deviation = world.report(world.housing_reporter, category="graffiti", place_name="Torget",
                             description="Känslig beskrivning")
    assert not Alert.objects.exists() and mail.outbox == []  # queued for the worker, not done in the request
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert Alert.objects.get().deviation_id == deviation.pk
    [message] = mail.outbox
    assert message.to == ["lasare@test.se"]
    assert message.subject == "[Farsta] Ny avvikelse i ”Klotter vid torget”"
    assert "Torget" in message.body and f"#deviation-{deviation.pk}" in message.body
    assert "Känslig" not in message.body  # the description stays in Lägesbild


def test_the_daily_e_mail_tells_of_each_alert_once(world: World) -> None:
    world.viewer.user.email = "lasare@test.se"
    world.viewer.user.save()
    save(world, world.viewer, frequency="daily")
    for n in range(services.DIGEST_LINES + 3):
        report(world, world.housing_reporter, category="graffiti", place_name=f"Plats {n}")
    assert services.immediate_messages(list(Alert.objects.all())) == []  # daily views wait for the digest
    call_command("alerts", stdout=io.StringIO())
    [message] = mail.outbox
    assert message.subject == f"[Farsta] {services.DIGEST_LINES + 3} nya avvikelser i ”Klotter vid torget”"
    assert message.body.count("\n- ") == services.DIGEST_LINES and "… och 3 till." in message.body
    call_command("alerts", stdout=io.StringIO())
    assert len(mail.outbox) == 1  # nothing new, nothing sent
    report(world, world.housing_reporter, category="graffiti", place_name="Ny plats")
    call_command("alerts", stdout=io.StringIO())
    assert len(mail.outbox) == 2 and "1 ny avvikelse i" in mail.outbox[1].subject


def test_a_digest_the_mail_server_refuses_is_sent_the_next_day(world: World, settings: Any) -> None:
    world.viewer.user.email = "lasare@test.se"
    world.viewer.user.save()
    save(world, world.viewer, frequency="daily")
    report(world, world.housing_reporter, category="graffiti")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: the connection is refused
    with pytest.raises(OSError):
        call_command("alerts", stdout=io.StringIO())
    assert Alert.objects.get().emailed_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("alerts", stdout=io.StringIO())
    assert len(mail.outbox) == 1 and Alert.objects.get().emailed_at is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=100), query=st.text(max_size=300) | st.builds(
    lambda keys, values: "&".join(f"{k}={v}" for k, v in zip(keys, values, strict=False)),
    st.lists(st.sampled_from([*services.QUERY_KEYS, "bbox", "x"]), max_size=6),
    st.lists(st.text(max_size=20), max_size=6)), bbox=st.text(max_size=60), frequency=st.text(max_size=12),
    view=st.text(max_size=30))
def test_any_form_input_is_saved_or_refused_clearly(world: World, name: str, query: str, bbox: str,
                                                    frequency: str, view: str) -> None:
    client = world.client(world.viewer)
    before = SavedView.objects.count()
    # Text holding NUL is refused for every form alike (400), before it reaches the page.
    nul = {400} if "\x00" in name + query + bbox + frequency else set()
    response = client.post(PAGE, {"op": "save", "name": name, "query": query, "bbox": bbox, "frequency": frequency})
    assert response.status_code in {302, 422} | nul, response.content[:300]
    assert SavedView.objects.count() == before + (response.status_code == 302)
    nul = {400} if "\x00" in view + frequency else set()
    for op in ("alerts", "delete"):
        response = client.post(PAGE, {"op": op, "view": view, "frequency": frequency})
        assert response.status_code in {302, 404, 422} | nul, response.content[:300]
    SavedView.objects.all().delete()


def test_one_view_the_database_cannot_run_costs_no_one_else_their_alerts(world: World) -> None:
    """A view saved before NUL was refused in it (PostgreSQL cannot compare text holding NUL)."""
    broken = save(world, world.viewer, name="Trasig")
    SavedView.objects.filter(pk=broken.pk).update(query="q=%00")
    fine = save(world, world.housing_reporter)
    deviation = report(world, world.police_reporter, category="graffiti")
    assert Alert.objects.filter(saved_view=fine, deviation=deviation).exists()


def test_a_view_that_matches_nothing_any_more_says_so(world: World) -> None:
    view = save(world, world.viewer)
    SavedView.objects.filter(pk=view.pk).update(query="category=removed-long-ago")
    page = world.client(world.viewer).get(PAGE).content.decode()
    assert "Vyn ger inga bevakningsträffar längre: Okänd kategori: removed-long-ago." in page
    SavedView.objects.filter(pk=view.pk).update(query="category=graffiti")
    assert "Vyn ger inga bevakningsträffar" not in world.client(world.viewer).get(PAGE).content.decode()
    # A category the forum has since hidden takes no new reports, so the view matches nothing either.
    HiddenCategory.objects.create(forum=world.forum, category=Category.objects.get(key="graffiti", forum=None))
    page = world.client(world.viewer).get(PAGE).content.decode()
    assert "Vyn ger inga bevakningsträffar längre: Forumet använder inte längre kategorin graffiti." in page


def test_an_e_mail_the_mail_server_refuses_is_sent_by_the_daily_run(world: World, settings: Any) -> None:
    world.viewer.user.email = "lasare@test.se"
    world.viewer.user.save()
    save(world, world.viewer)  # at once, by e-mail
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: the connection is refused
    deviation = world.report(world.housing_reporter, category="graffiti", place_name="Torget")
    with pytest.raises(OSError):
        match_new_deviation.call(world.forum.pk, deviation.pk)
    alert = Alert.objects.get()
    assert alert.emailed_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("alerts", stdout=io.StringIO())
    assert mail.outbox == []  # not yet: the worker may still be sending it
    # An hour later (moved back in time, as the clock cannot be moved on):
    later = services.RETRY_AFTER * 2
    Alert.objects.filter(pk=alert.pk).update(created_at=F("created_at") - later)
    SavedView.objects.update(digest_sent_at=F("digest_sent_at") - later)
    call_command("alerts", stdout=io.StringIO())
    [message] = mail.outbox
    assert "1 ny avvikelse i ”Klotter vid torget”" in message.subject and "Se den i Lägesbild" in message.body
    Alert.objects.get(emailed_at__isnull=False)


def test_the_first_daily_e_mail_starts_when_it_was_asked_for(world: World) -> None:
    world.viewer.user.email = "lasare@test.se"
    world.viewer.user.save()
    view = save(world, world.viewer, email=False)  # alerts in the app only, at first
    report(world, world.housing_reporter, category="graffiti", place_name="Före")
    services.change_alerts(world.viewer, view.pk, "daily", True)
    report(world, world.housing_reporter, category="graffiti", place_name="Efter")
    call_command("alerts", stdout=io.StringIO())
    [message] = mail.outbox
    assert "Efter" in message.body and "Före" not in message.body


def test_the_api_saves_lists_changes_and_removes_views_and_reads_alerts(world: World) -> None:
    api = world.client(world.viewer)
    base = "/api/forums/farsta"
    created = api.post(f"{base}/saved-views", json.dumps({"name": "Klotter", "query": "category=graffiti",
                                                          "bbox": NEAR, "frequency": "immediate"}),
                       content_type="application/json")
    assert created.status_code == 201, created.content
    view = created.json()
    assert view["mapUrl"].startswith("/f/farsta/?category=graffiti&bbox=") and view["stale"] == ""
    refused = api.post(f"{base}/saved-views", json.dumps({"name": "Klotter", "query": "category=unicorns"}),
                       content_type="application/json")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "category"
    deviation = report(world, world.housing_reporter, category="graffiti", place_name="Torget")
    [alert] = api.get(f"{base}/alerts").json()
    assert (alert["deviation"]["id"], alert["deviation"]["placeName"], alert["read"]) == (deviation.pk, "Torget", False)
    assert api.post(f"{base}/alerts/read", "{}", content_type="application/json").status_code == 204
    assert api.get(f"{base}/alerts").json()[0]["read"] is True
    changed = api.patch(f"{base}/saved-views/{view['id']}", json.dumps({"frequency": "daily", "email": True}),
                        content_type="application/json")
    assert changed.status_code == 200 and (changed.json()["frequency"], changed.json()["email"]) == ("daily", True)
    assert [v["name"] for v in api.get(f"{base}/saved-views").json()] == ["Klotter"]
    assert api.delete(f"{base}/saved-views/{view['id']}").status_code == 204
    assert api.get(f"{base}/saved-views").json() == [] and api.get(f"{base}/alerts").json() == []


def test_a_view_is_not_alerted_about_what_was_reported_before_it_was_saved(world: World) -> None:
    """The matching task may run long after the report (a worker that was stopped): a view saved meanwhile
    is not told about it."""
    earlier = world.report(world.police_reporter, description="Före vyn")
    view = services.save_view(world.housing_reporter, services.ViewInput(
        name="Allt", query="period=30", frequency="immediate"))
    assert services.match_new_deviation(world.forum.pk, earlier.pk) == []
    later = world.report(world.police_reporter, description="Efter vyn")
    [alert] = services.match_new_deviation(world.forum.pk, later.pk)
    assert alert.saved_view_id == view.pk
