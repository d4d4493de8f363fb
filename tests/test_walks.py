"""Safety walks: planning, walking, the checklist, recording the findings, and the protocol (page and PDF)."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Conflict, Forbidden, InvalidInput, TooLarge
from lagesbild.forums.models import Forum
from lagesbild.meetings.models import MeetingFlag
from lagesbild.walks import protocol, services
from lagesbild.walks.models import Walk, WalkCheck
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db

OUTSIDE = (11.97, 57.70)  # Gothenburg


def plan(world: World, by: Any = None, **overrides: Any) -> Walk:
    data = services.WalkInput(title=overrides.pop("title", "Trygghetsvandring Farsta centrum"),
                              planned_at=overrides.pop("planned_at", timezone.now() + dt.timedelta(days=3)),
                              meeting_point=overrides.pop("meeting_point", "Vid tunnelbanan"))
    return services.plan_walk(by or world.police_reporter, data)


def walked(world: World) -> tuple[Walk, list[Any]]:
    """A walk with two stops, a resident and a police officer, started and ended, and a checklist filled in."""
    walk = plan(world)
    first = services.add_stop(world.police_reporter, walk.pk, "Gångtunneln", 18.090, 59.244)
    second = services.add_stop(world.police_reporter, walk.pk, "Parken", 18.092, 59.245)
    services.add_participant(world.police_reporter, walk.pk, "Anna Andersson", "Boende")
    services.add_participant(world.police_reporter, walk.pk, "Polis Per", "Polisen")
    services.start_walk(world.police_reporter, walk.pk)
    services.save_checks(world.police_reporter, walk.pk, first.pk, [
        services.CheckInput("lighting", "problem", "Tre lampor trasiga i tunneln", "Byt armaturerna"),
        services.CheckInput("sight_lines", "ok"),
        services.CheckInput("vegetation", ""),
    ])
    services.save_checks(world.police_reporter, walk.pk, second.pk, [
        services.CheckInput("vegetation", "problem", "Buskarna skymmer gången", category="physical"),
        services.CheckInput("unsafe", "ok", proposal="Fler bänkar vid lekplatsen"),
    ])
    services.end_walk(world.police_reporter, walk.pk)
    walk.refresh_from_db()
    return walk, [first, second]


# --- Planning -----------------------------------------------------------------------------------------------

def test_a_walk_is_planned_with_stops_in_order_and_participants_without_accounts(world: World) -> None:
    walk = plan(world)
    assert walk.organisation == world.police and walk.state == Walk.State.PLANNED
    a = services.add_stop(world.police_reporter, walk.pk, "", 18.090, 59.244)
    b = services.add_stop(world.police_reporter, walk.pk, "Torget", 18.091, 59.245)
    c = services.add_stop(world.police_reporter, walk.pk, "Parken", 18.092, 59.246)
    assert a.name == "Stopp 1"  # a stop without a name gets its number
    services.move_stop(world.police_reporter, walk.pk, c.pk, -1)
    services.move_stop(world.police_reporter, walk.pk, a.pk, -1)  # already first: stays
    assert [s.name for s in services.stops_of(walk)] == ["Stopp 1", "Parken", "Torget"]
    services.remove_stop(world.police_reporter, walk.pk, b.pk)
    assert [s.name for s in services.stops_of(walk)] == ["Stopp 1", "Parken"]
    resident = services.add_participant(world.police_reporter, walk.pk, "  Anna\u200b Andersson ", "")
    assert resident.name == "Anna Andersson"  # invisible characters and extra spaces go
    services.remove_participant(world.police_reporter, walk.pk, resident.pk)
    assert not walk.participants.exists()


@pytest.mark.parametrize(("lon", "lat", "message"), [
    (*OUTSIDE, "utanför forumets område"),
    (200.0, 59.0, "Longitud"),
    (float("nan"), 59.0, "måste vara tal"),
    (None, None, "Klicka på kartan"),
])
def test_a_stop_outside_the_area_or_without_a_position_is_refused(world: World, lon: Any, lat: Any,
                                                                    message: str) -> None:
    walk = plan(world)
    with pytest.raises(InvalidInput, match=message):
        services.add_stop(world.police_reporter, walk.pk, "Fel", lon, lat)
    assert not walk.stops.exists()


def test_only_the_arranging_organisation_and_coordinators_change_a_walk(world: World) -> None:
    with pytest.raises(Forbidden):
        plan(world, by=world.viewer)
    walk = plan(world)
    for outsider in (world.housing_reporter, world.viewer):
        with pytest.raises(Forbidden):
            services.add_stop(outsider, walk.pk, "X", *INSIDE)
        with pytest.raises(Forbidden):
            services.start_walk(outsider, walk.pk)
    services.add_stop(world.coordinator, walk.pk, "Coordinator's stop", *INSIDE)
    services.add_stop(world.police_lead, walk.pk, "Lead's stop", *INSIDE)
    assert walk.stops.count() == 2


@pytest.mark.parametrize(("field", "overrides"), [
    ("title", {"title": " \u200b "}),
    ("title", {"title": "x" * 121}),
    ("planned_at", {"planned_at": None}),
    ("planned_at", {"planned_at": timezone.now() + dt.timedelta(days=800)}),
    ("planned_at", {"planned_at": dt.datetime(1999, 12, 31, tzinfo=dt.UTC)}),
    ("meeting_point", {"meeting_point": "y" * 201}),
])
def test_bad_walk_details_are_refused_by_field(world: World, field: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as refused:
        plan(world, **overrides)
    assert refused.value.field == field
    assert not Walk.objects.exists()


def test_a_started_walk_cannot_be_deleted_or_started_again(world: World) -> None:
    walk = plan(world)
    with pytest.raises(Conflict):
        services.end_walk(world.police_reporter, walk.pk)
    services.start_walk(world.police_reporter, walk.pk)
    with pytest.raises(Conflict):
        services.start_walk(world.police_reporter, walk.pk)
    with pytest.raises(Conflict):
        services.delete_walk(world.police_reporter, walk.pk)
    services.end_walk(world.police_reporter, walk.pk)
    with pytest.raises(Conflict):
        services.end_walk(world.police_reporter, walk.pk)
    assert Walk.objects.get(pk=walk.pk).state == Walk.State.WALKED
    planned = plan(world, title="Inställd")
    services.delete_walk(world.police_reporter, planned.pk)
    assert not Walk.objects.filter(pk=planned.pk).exists()


# --- The track ----------------------------------------------------------------------------------------------

def test_the_track_takes_each_point_once_and_ignores_strays(world: World) -> None:
    walk = plan(world)
    with pytest.raises(Conflict):
        services.add_track(world.police_reporter, walk.pk, [(18.09, 59.244, timezone.now().timestamp())])
    services.start_walk(world.police_reporter, walk.pk)
    now = timezone.now().timestamp()
    batch = [(18.0900, 59.2440, now - 60), (18.0905, 59.2442, now - 30), (18.0910, 59.2444, now)]
    assert services.add_track(world.police_reporter, walk.pk, batch).kept == 3
    again = services.add_track(world.police_reporter, walk.pk, list(reversed(batch)))  # a retry, in any order
    assert (again.kept, again.repeated, again.ignored, again.total) == (0, 3, 0, 3)
    strays = [(*OUTSIDE, now + 1),  # far from the forum's area
              (18.091, 59.244, now - 3600),  # long before the walk started
              (18.091, 59.244, now + 3600)]  # in the future
    assert (services.add_track(world.police_reporter, walk.pk, strays).ignored) == 3
    walk.refresh_from_db()
    assert len(walk.track) == 3
    assert 70 < services.track_length_m(walk.track) < 75  # two legs of 36 m (28.5 m east, 22 m north)
    with pytest.raises(Forbidden):
        services.add_track(world.housing_reporter, walk.pk, [(18.09, 59.244, now + 2)])
    with pytest.raises(TooLarge):
        services.add_track(world.police_reporter, walk.pk, [(18.09, 59.244, now)] * 1001)


def test_a_second_phone_s_points_from_the_same_stretch_are_merged_in_time_order(world: World) -> None:
    walk = plan(world)
    services.start_walk(world.police_reporter, walk.pk)
    now = timezone.now().timestamp()
    first = [(18.0900 + i * 0.0001, 59.2440, now - 250 + i * 10) for i in range(20)]
    second = [(18.0900 + i * 0.0001, 59.2441, now - 245 + i * 10) for i in range(20)]  # a colleague's phone
    assert services.add_track(world.police_reporter, walk.pk, first).kept == 20
    assert services.add_track(world.police_lead, walk.pk, second).kept == 20
    walk.refresh_from_db()
    times = [p[2] for p in walk.track]
    assert len(times) == 40 and times == sorted(times)
    # Each phone's points make a line of their own: one line through both would zig-zag and double the length.
    lines = services.track_lines(walk.track)
    assert [len(line) for line in lines] == [20, 20] and {line[0][1] for line in lines} == {59.2440, 59.2441}
    assert 105 < services.track_length_m(walk.track) < 112  # 19 steps of 0.0001° east, about 5.7 m each


def test_the_track_api_answers_with_counts_and_refuses_bad_points(world: World) -> None:
    walk = plan(world)
    services.start_walk(world.police_reporter, walk.pk)
    client = world.client(world.police_reporter)
    url = f"/api/forums/farsta/walks/{walk.pk}/track"
    now = timezone.now().timestamp()
    answer = client.post(url, json.dumps({"points": [[18.09, 59.244, now], [18.091, 59.2445, now + 1]]}),
                         content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {"kept": 2, "repeated": 0, "ignored": 0, "total": 2}
    for body in ({"points": [[18.09, 95.0, now]]}, {"points": [[18.09, 59.2, "igår"]]}, {"points": [[18.09]]},
                 {"points": [[18.09, 59.2, now]] * 1001}, {"points": [], "extra": 1}):
        refused = client.post(url, json.dumps(body), content_type="application/json")
        assert refused.status_code == 422, body
        assert refused.json()["error"]["message"]
    assert len(Walk.objects.get(pk=walk.pk).track) == 2
    readers = world.client(world.viewer).get(f"/api/forums/farsta/walks/{walk.pk}").json()
    assert readers["track"] == [[[18.09, 59.244], [18.091, 59.2445]]]  # where, not when
    other = world.client(world.housing_reporter).post(url, json.dumps({"points": [[18.09, 59.244, now + 2]]}),
                                                      content_type="application/json")
    assert other.status_code == 403


# --- The checklist and the findings -------------------------------------------------------------------------

def test_findings_become_walk_deviations_and_proposals_once(world: World) -> None:
    walk, (first, _second) = walked(world)
    done = services.record_findings(world.police_reporter, walk.pk)
    assert (done.deviations, done.proposals) == (2, 2)
    made = {d.category.key: d for d in Deviation.objects.filter(source=Deviation.Source.WALK)}
    assert set(made) == {"dark_place", "physical"}  # lighting suggests "dark place"; the group chose "physical"
    lamp = made["dark_place"]
    assert (lamp.lon, lamp.lat, lamp.place_name) == (18.09, 59.244, "Gångtunneln")
    assert lamp.observed_at == walk.started_at and lamp.organisation == world.police
    assert "Tre lampor trasiga i tunneln" in lamp.description and walk.title in lamp.description
    assert lamp.visibility == Deviation.Visibility.FORUM
    flags = {f.text: f for f in MeetingFlag.objects.filter(forum=world.forum, meeting__isnull=True)}
    [lamp_flag] = [f for text, f in flags.items() if "Byt armaturerna" in text]
    assert lamp_flag.deviation_id == lamp.pk
    [bench_flag] = [f for text, f in flags.items() if "Fler bänkar" in text]
    assert bench_flag.deviation_id is None  # a proposal where all was fine: no deviation, still raised
    again = services.record_findings(world.police_reporter, walk.pk)
    assert (again.deviations, again.proposals) == (0, 0)
    assert Deviation.objects.filter(source=Deviation.Source.WALK).count() == 2
    # A recorded finding is not changed on the walk any more; the deviation is.
    with pytest.raises(Conflict, match="redan registrerad"):
        services.save_checks(world.police_reporter, walk.pk, first.pk, [
            services.CheckInput("lighting", "ok")])
    with pytest.raises(Conflict):
        services.remove_stop(world.police_reporter, walk.pk, first.pk)


def test_findings_wait_for_the_walk_to_end_and_are_all_or_nothing(world: World) -> None:
    walk = plan(world)
    stop = services.add_stop(world.police_reporter, walk.pk, "Torget", 18.09, 59.244)
    far = services.add_stop(world.police_reporter, walk.pk, "Gränsen", 18.11, 59.26)
    services.start_walk(world.police_reporter, walk.pk)
    for each in (stop, far):
        services.save_checks(world.police_reporter, walk.pk, each.pk, [services.CheckInput("lighting", "problem")])
    with pytest.raises(Conflict, match="Avsluta"):
        services.record_findings(world.police_reporter, walk.pk)
    services.end_walk(world.police_reporter, walk.pk)
    # The forum's area is redrawn after the walk, leaving the second stop outside.
    Forum.objects.filter(pk=world.forum.pk).update(area={"type": "Polygon", "coordinates": [[
        [18.08, 59.24], [18.10, 59.24], [18.10, 59.25], [18.08, 59.25], [18.08, 59.24]]]})
    world.police_reporter.forum.refresh_from_db()
    with pytest.raises(InvalidInput, match="Gränsen"):
        services.record_findings(world.police_reporter, walk.pk)
    assert not Deviation.objects.filter(source=Deviation.Source.WALK).exists()
    assert not WalkCheck.objects.filter(deviation__isnull=False).exists()


@pytest.mark.parametrize(("entry", "field"), [
    (services.CheckInput("noise", "ok"), "aspect"),
    (services.CheckInput("lighting", "bad"), "lighting-assessment"),
    (services.CheckInput("lighting", "", note="Mörkt"), "lighting-assessment"),
    (services.CheckInput("lighting", "problem", note="x" * 1001), "lighting-note"),
    (services.CheckInput("lighting", "problem", proposal="x" * 301), "lighting-proposal"),
    (services.CheckInput("lighting", "problem", category="no-such"), "lighting-category"),
])
def test_a_bad_checklist_entry_is_refused_and_nothing_is_saved(world: World, entry: Any, field: str) -> None:
    walk = plan(world)
    stop = services.add_stop(world.police_reporter, walk.pk, "Torget", *INSIDE)
    with pytest.raises(InvalidInput) as refused:
        services.save_checks(world.police_reporter, walk.pk, stop.pk, [
            services.CheckInput("signage", "ok"), entry])
    assert refused.value.field == field
    assert not WalkCheck.objects.exists()


def test_a_forum_that_refuses_personal_data_refuses_it_in_the_checklist(world: World) -> None:
    Forum.objects.filter(pk=world.forum.pk).update(block_personal_data=True)
    world.police_reporter.forum.refresh_from_db()
    walk = plan(world)
    stop = services.add_stop(world.police_reporter, walk.pk, "Torget", *INSIDE)
    with pytest.raises(InvalidInput):
        services.save_checks(world.police_reporter, walk.pk, stop.pk, [
            services.CheckInput("unsafe", "problem", note="Ring 070-123 45 67 om det händer igen")])
    assert not WalkCheck.objects.exists()


# --- The protocol ---------------------------------------------------------------------------------------------

def test_the_protocol_pdf_holds_the_walk_in_swedish(world: World) -> None:
    walk, _stops = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    response = world.client(world.viewer).get(f"/f/farsta/vandringar/{walk.pk}/protokoll.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "trygghetsvandring-trygghetsvandring-farsta-centrum.pdf" in response["Content-Disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert text.startswith("Trygghetsvandring Farsta centrum\n")  # the title says "safety walk" already
    for expected in ("Anna Andersson (Boende)",
                     "1. Gångtunneln", "2. Parken", "Tre lampor trasiga i tunneln", "Föreslagna åtgärder",
                     "Byt armaturerna", "upptagen till nästa möte", "Belysning", "Brist", "Karta"):
        assert expected in text, expected
    lamp = Deviation.objects.get(source=Deviation.Source.WALK, category__key="dark_place")
    assert f"#{lamp.pk}" in text


def test_the_protocol_names_a_finding_s_deviation_only_to_those_who_may_see_it(world: World) -> None:
    walk, _stops = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    lamp = Deviation.objects.get(source=Deviation.Source.WALK, category__key="dark_place")
    # The police later restrict it to their own organisation.
    deviations.edit_deviation(world.police_reporter, lamp.pk, {"visibility": "organisation"}, lamp.version)
    link = f"#deviation-{lamp.pk}".encode()
    police = world.client(world.police_lead).get(f"/f/farsta/vandringar/{walk.pk}/protokoll/")
    housing = world.client(world.housing_reporter).get(f"/f/farsta/vandringar/{walk.pk}/protokoll/")
    assert police.status_code == housing.status_code == 200
    assert link in police.content and link not in housing.content
    assert b"Tre lampor trasiga i tunneln" in housing.content  # the walk's own record stays readable
    api = world.client(world.housing_reporter).get(f"/api/forums/farsta/walks/{walk.pk}").json()
    ids = [c["deviation"] for s in api["stopList"] for c in s["checks"]]
    assert lamp.pk not in ids and any(ids)
    content = protocol.content(walk, world.housing_reporter)
    assert lamp.pk not in [c["deviation"] for s in content["stops"] for c in s["checks"]]


# --- The pages --------------------------------------------------------------------------------------------

def test_a_walk_from_plan_to_findings_through_the_pages(world: World) -> None:
    client = world.client(world.police_reporter)
    local = (timezone.now() + dt.timedelta(days=2)).astimezone(dt.timezone(dt.timedelta(hours=1)))
    planned = client.post("/f/farsta/vandringar/", {"op": "plan", "title": "Kvällsvandring",
                                                      "planned_at": local.strftime("%Y-%m-%dT%H:%M")})
    assert planned.status_code == 302
    walk = Walk.objects.get(title="Kvällsvandring")
    page = f"/f/farsta/vandringar/{walk.pk}/"
    assert planned["Location"] == page
    assert client.post(page, {"op": "add_stop", "name": "Torget", "lon": "18,09", "lat": "59.244"}).status_code == 302
    stop = walk.stops.get()
    assert client.post(page, {"op": "add_participant", "participant_name": "Boende Bo"}).status_code == 302
    assert client.post(page, {"op": "start"}).status_code == 302
    answer = client.post(page, {"op": "checks", "stop": stop.pk, "lighting-assessment": "problem",
                                "lighting-note": "Mörkt vid trappan", "lighting-proposal": "", "lighting-category": "",
                                "signage-assessment": "ok"})
    assert answer.status_code == 302 and answer["Location"] == f"{page}#stop-{stop.pk}"
    assert client.post(page, {"op": "end"}).status_code == 302
    assert client.post(page, {"op": "record"}).status_code == 302
    assert Deviation.objects.filter(source="walk", place_name="Torget").count() == 1
    shown = client.get(page)
    assert shown.status_code == 200 and "Alla iakttagelser är registrerade" in shown.content.decode()


@pytest.mark.parametrize("body", [
    {"op": "nonsense"},
    {"op": "remove_stop", "stop": "abc"},
    {"op": "remove_stop", "stop": "99999999999999999999999"},
    {"op": "up", "stop": ""},
    {"op": "checks", "stop": "123456", "lighting-assessment": "ok"},
    {"op": "add_stop", "lon": "öst", "lat": "59"},
    {"op": "details", "title": "Ny", "planned_at": "2026-13-45T25:00"},
    {"op": "remove_participant", "participant": "-1"},
    {"op": "checks", "stop": "²", "lighting-assessment": "ok"},
])
def test_bad_page_requests_get_a_clear_error_not_a_500(world: World, body: dict[str, str]) -> None:
    walk = plan(world)
    response = world.client(world.police_reporter).post(f"/f/farsta/vandringar/{walk.pk}/", body)
    assert 400 <= response.status_code < 500
    assert b"error-summary" in response.content


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["op", "stop", "lon", "lat", "name", "participant", "title",
                                               "planned_at", "lighting-assessment", "lighting-note"]),
                              st.text(max_size=30), max_size=6))
def test_the_walk_page_never_fails_on_any_form(world: World, fields: dict[str, str]) -> None:
    walk = Walk.objects.filter(title="Fuzz").first() or plan(world, title="Fuzz")
    response = world.client(world.police_reporter).post(f"/f/farsta/vandringar/{walk.pk}/", fields)
    assert response.status_code < 500


# --- After review: states, retention, categories, personal data ---------------------------------------------

def test_the_route_and_the_plan_stay_as_walked(world: World) -> None:
    walk = plan(world)
    stop = services.add_stop(world.police_reporter, walk.pk, "Torget", *INSIDE)
    with pytest.raises(Conflict, match="Checklistorna öppnas"):
        services.save_checks(world.police_reporter, walk.pk, stop.pk, [services.CheckInput("lighting", "ok")])
    services.start_walk(world.police_reporter, walk.pk)
    with pytest.raises(Conflict, match="planerade tiden"):
        services.change_walk(world.police_reporter, walk.pk, services.WalkInput(
            title=walk.title, planned_at=walk.planned_at + dt.timedelta(days=30)))
    services.change_walk(world.police_reporter, walk.pk, services.WalkInput(title="Ny rubrik", planned_at=None))
    services.end_walk(world.police_reporter, walk.pk)
    for change in (lambda: services.add_stop(world.police_reporter, walk.pk, "Sent", *INSIDE),
                   lambda: services.remove_stop(world.police_reporter, walk.pk, stop.pk),
                   lambda: services.move_stop(world.police_reporter, walk.pk, stop.pk, 1)):
        with pytest.raises(Conflict, match="rutten sparas"):
            change()
    walk.refresh_from_db()
    assert walk.title == "Ny rubrik" and walk.stops.count() == 1
    services.save_checks(world.police_reporter, walk.pk, stop.pk, [services.CheckInput("lighting", "ok")])


def test_a_finding_is_recorded_once_even_after_its_deviation_is_gone(world: World) -> None:
    walk, _stops = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    Deviation.objects.filter(source=Deviation.Source.WALK).delete()  # as retention deletes old deviations
    MeetingFlag.objects.all().delete()
    again = services.record_findings(world.police_reporter, walk.pk)
    assert (again.deviations, again.proposals) == (0, 0)
    assert not Deviation.objects.filter(source=Deviation.Source.WALK).exists()


@pytest.mark.parametrize("action", ["anonymise", "delete"])
def test_retention_takes_old_walks_with_the_deviations(world: World, action: str) -> None:
    from lagesbild.deviations.retention import apply_retention

    walk, _stops = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    recent = plan(world, title="Nästa vandring", planned_at=timezone.now() + dt.timedelta(days=60))
    Forum.objects.filter(pk=world.forum.pk).update(retention_months=1, retention_action=action)
    world.forum.refresh_from_db()
    result = apply_retention(world.forum, now=timezone.now() + dt.timedelta(days=62))
    assert result is not None and result.walks == 1
    assert Walk.objects.filter(pk=recent.pk).exists()  # planned after the cutoff
    if action == "delete":
        assert not Walk.objects.filter(pk=walk.pk).exists()
        return
    walk.refresh_from_db()
    assert walk.anonymised_at is not None and walk.track == [] and walk.summary == ""
    assert not walk.participants.exists()
    notes = set(WalkCheck.objects.filter(stop__walk=walk).values_list("note", "proposal"))
    assert notes == {("", "")}
    assert [s.name for s in services.stops_of(walk)] == ["Gångtunneln", "Parken"]  # the route and assessments stay
    with pytest.raises(Conflict, match="anonymiserats"):  # and nothing new is written into it
        services.add_participant(world.police_reporter, walk.pk, "Ny Person", "")
    assert walk.created_by_id is None


def test_retention_of_walks_alone_is_logged(world: World) -> None:
    from lagesbild.audit.models import AuditEvent
    from lagesbild.deviations.retention import apply_retention

    walk = plan(world, planned_at=timezone.now() - dt.timedelta(days=70))  # planned, never walked
    Forum.objects.filter(pk=world.forum.pk).update(retention_months=1, retention_action="anonymise")
    world.forum.refresh_from_db()
    result = apply_retention(world.forum)
    assert result is not None and (result.deviations, result.walks) == (0, 1)
    event = AuditEvent.objects.get(action=AuditEvent.Action.RETENTION)
    assert event.changes["walks"] == 1
    assert Walk.objects.get(pk=walk.pk).anonymised_at is not None


def test_a_fine_check_without_a_proposal_stays_open_after_recording(world: World) -> None:
    walk, (first, _second) = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    sight = WalkCheck.objects.get(stop=first, aspect="sight_lines")
    assert sight.recorded_at is None  # nothing was made of it
    services.save_checks(world.police_reporter, walk.pk, first.pk, [
        services.CheckInput("sight_lines", "problem", "Skymd sikt mot busshållplatsen")])
    assert services.record_findings(world.police_reporter, walk.pk).deviations == 1


def test_findings_are_not_reported_under_a_category_with_required_fields(world: World) -> None:
    from lagesbild.deviations.models import Category, CategoryField

    CategoryField.objects.create(forum=world.forum, category=Category.objects.get(key="lighting"),
                                 key="lampnummer", label="Lampnummer", kind="text", required=True)
    walk, _stops = walked(world)
    services.record_findings(world.police_reporter, walk.pk)
    lamp = Deviation.objects.get(source=Deviation.Source.WALK, place_name="Gångtunneln",
                                 description__startswith="Belysning")
    assert lamp.category.key == "other"  # not "dark place", whose main category asks for a lamp number
    stop = services.add_stop(world.coordinator, plan(world).pk, "Torget", *INSIDE)
    services.start_walk(world.police_reporter, stop.walk_id)
    with pytest.raises(InvalidInput):
        services.save_checks(world.police_reporter, stop.walk_id, stop.pk, [
            services.CheckInput("lighting", "problem", category="dark_place")])


def test_personal_data_is_refused_where_it_is_typed(world: World) -> None:
    Forum.objects.filter(pk=world.forum.pk).update(block_personal_data=True)
    world.police_reporter.forum.refresh_from_db()
    walk = plan(world)
    with pytest.raises(InvalidInput):
        services.add_stop(world.police_reporter, walk.pk, "Porten, ring 070-123 45 67", *INSIDE)
    with pytest.raises(InvalidInput):
        plan(world, title="Vandring, ring 070-123 45 67")
    assert not walk.stops.exists()


def test_a_proposal_reaches_the_meeting_whole_and_the_title_is_not_said_twice(world: World) -> None:
    walk = plan(world, title="Trygghetsvandring " + "x" * 100)
    stop = services.add_stop(world.police_reporter, walk.pk, "S" * 120, *INSIDE)
    services.start_walk(world.police_reporter, walk.pk)
    proposal = "Byt " + "armatur " * 36  # 300 characters
    services.save_checks(world.police_reporter, walk.pk, stop.pk, [
        services.CheckInput("lighting", "ok", proposal=proposal.strip())])
    services.end_walk(world.police_reporter, walk.pk)
    services.record_findings(world.police_reporter, walk.pk)
    flag = MeetingFlag.objects.get(forum=world.forum)
    assert flag.text.endswith(proposal.strip()) and len(flag.text) <= 500
    assert not flag.text.startswith("Trygghetsvandring: Trygghetsvandring")
    page = world.client(world.viewer).get(f"/f/farsta/vandringar/{walk.pk}/").content.decode()
    assert "<h1>Trygghetsvandring xxx" in page


def test_the_pdf_sets_names_beyond_latin_1(world: World) -> None:
    walk = plan(world, title="Vandring i Farsta")
    services.add_participant(world.police_reporter, walk.pk, "Łukasz Wiśniewski", "Þóra, boende")
    services.start_walk(world.police_reporter, walk.pk)
    response = world.client(world.viewer).get(f"/f/farsta/vandringar/{walk.pk}/protokoll.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Łukasz Wiśniewski (Þóra, boende)" in text
    assert "Trygghetsvandring: Vandring i Farsta" in text


def test_a_refused_checklist_says_so_beside_its_stop_and_keeps_what_was_typed(world: World) -> None:
    walk = plan(world)
    stop = services.add_stop(world.police_reporter, walk.pk, "Torget", *INSIDE)
    services.start_walk(world.police_reporter, walk.pk)
    note = "Mörkt\r\n" * 160  # 960 characters as typed (a line break is one), 1,120 as sent with CRLF
    answer = world.client(world.police_reporter).post(f"/f/farsta/vandringar/{walk.pk}/", {
        "op": "checks", "stop": stop.pk, "lighting-assessment": "problem", "lighting-note": note,
        "signage-assessment": "", "signage-note": "Skylten saknas"})
    assert answer.status_code == 422
    page = answer.content.decode()
    assert f'id="stop-error-{stop.pk}"' in page and "Torget: Ange om det var bra eller en brist" in page
    assert f'aria-describedby="stop-error-{stop.pk}"' in page and "Skylten saknas" in page
    assert not WalkCheck.objects.exists()
    ok = world.client(world.police_reporter).post(f"/f/farsta/vandringar/{walk.pk}/", {
        "op": "checks", "stop": stop.pk, "lighting-assessment": "problem", "lighting-note": note})
    assert ok.status_code == 302  # CRLF counts as one character, as the browser counted it
    assert WalkCheck.objects.get().note == note.replace("\r\n", "\n").strip()
