"""Meetings: scheduling and periods, the agenda builder, flags, and publishing and correcting the protocol."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from pypdf import PdfReader

from lagesbild.audit.models import AuditEvent
from lagesbild.errors import Conflict, Forbidden, InvalidInput
from lagesbild.forums.models import Forum
from lagesbild.meetings import actions, protocol, services
from lagesbild.meetings.models import Action, AgendaItem, Meeting, MeetingFlag, Protocol
from lagesbild.places import services as places
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def at(day: int, month: int = 3, hour: int = 14) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=STOCKHOLM)


def meeting(world: World, held: dt.datetime, start: dt.datetime | None = None,
            end: dt.datetime | None = None) -> Meeting:
    return services.schedule_meeting(world.coordinator, services.MeetingInput(held_at=held, period_start=start,
                                                                              period_end=end))


# --- Scheduling and periods ------------------------------------------------------------------------------

def test_the_period_defaults_to_since_the_previous_meeting(world: World) -> None:
    first = meeting(world, at(10, 2), start=at(10, 1))
    second = meeting(world, at(10, 3))
    assert (second.period_start, second.period_end) == (first.period_end, at(10, 3))
    assert second.title == "Avstämningsmöte 10 mars 2026"


def test_the_next_meeting_follows_the_cadence_in_local_time(world: World) -> None:
    meeting(world, at(10, 2), start=at(10, 1))
    # A month after 14:00 on 10 February is 14:00 on 10 March, though the clocks change in between.
    assert services.add_cadence(world.forum, at(10, 3), 1) == at(10, 4)
    assert services.suggested_next(world.forum, now=at(11, 2)) == at(10, 3)
    world.forum.meeting_cadence = Forum.Cadence.BIWEEKLY
    assert services.suggested_next(world.forum, now=at(11, 2)) == at(24, 2)


@pytest.mark.parametrize(("start", "end", "message"), [
    (at(10, 3), at(1, 3), "Periodens början måste vara före dess slut"),
    (at(10, 3), at(10, 3), "Periodens början måste vara före dess slut"),
    (at(1, 2), at(20, 2), "överlappar perioden för mötet 10 februari 2026"),
])
def test_inverted_or_overlapping_periods_are_refused(world: World, start: dt.datetime, end: dt.datetime,
                                                     message: str) -> None:
    meeting(world, at(10, 2), start=at(10, 1))
    with pytest.raises(InvalidInput, match=message) as caught:
        meeting(world, at(10, 3), start=start, end=end)
    assert caught.value.field == "period_start"
    assert Meeting.objects.count() == 1


def test_periods_that_touch_do_not_overlap(world: World) -> None:
    meeting(world, at(10, 2), start=at(10, 1))
    assert meeting(world, at(10, 3), start=at(10, 2)).period_start == at(10, 2)


def test_only_coordinators_schedule_meetings(world: World) -> None:
    for member in (world.police_lead, world.police_reporter, world.viewer):
        with pytest.raises(Forbidden):
            services.schedule_meeting(member, services.MeetingInput(held_at=at(10, 3)))
    assert not Meeting.objects.exists()
    assert AuditEvent.objects.filter(action="refused").count() == 3


# --- The agenda ----------------------------------------------------------------------------------------

@pytest.fixture
def march(world: World) -> Meeting:
    """A meeting on 10 March reviewing 10 February to 10 March; the period before is 13 January to 10 February."""
    return meeting(world, at(10, 3), start=at(10, 2))


def test_the_agenda_is_built_from_due_actions_busy_places_categories_and_flags(world: World,
                                                                             march: Meeting) -> None:
    square = places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=INSIDE[0], lat=INSIDE[1],
                                                                      radius_m=100))
    park = places.create_place(world.coordinator, places.PlaceInput(name="Parken", lon=18.12, lat=59.25,
                                                                    radius_m=100))
    places.create_place(world.coordinator, places.PlaceInput(name="Tomt", lon=18.06, lat=59.23, radius_m=50))
    # In the period: 3 at the square, 1 in the park, 1 restricted at the square (not counted on the shared
    # screen). In the period before: 1 at the square.
    for day in (12, 20, 25):
        world.report(world.police_reporter, observed_at=at(day, 2), category="graffiti")
    world.report(world.police_reporter, observed_at=at(1, 3), lon=18.12, lat=59.25, category="syringes")
    world.report(world.police_reporter, observed_at=at(2, 3), visibility="organisation")
    world.report(world.housing_reporter, observed_at=at(1, 2), category="litter")
    # Open actions: one overdue (police), one due within two weeks after the meeting (housing), one due
    # later (not on the agenda), one done (not on the agenda).
    def action(org: int, due: dt.date, status: str = Action.Status.PLANNED) -> Action:
        return Action.objects.create(forum=world.forum, title=f"Åtgärd {due}", organisation_id=org, due_date=due,
                                     status=status)
    action(world.police.pk, dt.date(2026, 3, 1))
    action(world.housing.pk, dt.date(2026, 3, 24))
    action(world.housing.pk, dt.date(2026, 3, 25))
    action(world.school.pk, dt.date(2026, 3, 1), Action.Status.DONE)
    flag = services.flag_for_meeting(world.housing_reporter, "Mörkt vid skolan")
    MeetingFlag.objects.filter(pk=flag.pk).update(created_at=at(5, 3))
    late = services.flag_for_meeting(world.housing_reporter, "Raised after the meeting")  # waits for the next one

    items = services.build_agenda(world.coordinator, march.pk)
    assert [(i.kind, i.title) for i in items] == [
        ("actions_due", "Uppföljning av åtgärder: Bostadsbolaget"),
        ("actions_due", "Uppföljning av åtgärder: Polisen"),
        ("place", "Plats: Torget"),
        ("place", "Plats: Parken"),
        ("categories", "Nya avvikelser per kategori"),
        ("flagged", "Mörkt vid skolan"),
    ]
    views = {v.item.title: v for v in services.agenda(march, world.coordinator)}
    assert [a.title for a in views["Uppföljning av åtgärder: Bostadsbolaget"].actions] == ["Åtgärd 2026-03-24"]
    square_count = views["Plats: Torget"].place_count
    assert (square_count.count, square_count.previous, square_count.change) == (3, 1, 2)
    assert views["Plats: Torget"].place_count.place == square
    assert views["Plats: Parken"].place_count.place == park
    categories = [(c.key, c.count, c.previous) for c in views["Nya avvikelser per kategori"].categories]
    assert categories == [("damage", 3, 0), ("littering", 1, 1)]
    assert "bbox=" in views["Plats: Torget"].map_url and "from=2026-02-10" in views["Plats: Torget"].map_url
    assert "to=2026-03-10" in views["Plats: Torget"].map_url
    # The flag is taken: building again adds nothing, and the next meeting does not get it.
    assert len(services.build_agenda(world.coordinator, march.pk)) == 6
    assert list(services.open_flags(world.forum.pk)) == [late]


def test_the_coordinator_reorders_removes_and_annotates_items(world: World, march: Meeting) -> None:
    flag = services.flag_for_meeting(world.police_reporter, "Bilbränder")
    MeetingFlag.objects.update(created_at=at(5, 3))
    services.build_agenda(world.coordinator, march.pk)
    extra = services.add_item(world.coordinator, march.pk, "Övrigt: sommarens evenemang")
    first = march.items.first()
    services.move_item(world.coordinator, march.pk, extra.pk, -10)
    assert march.items.first().pk == extra.pk
    order = [i.pk for i in march.items.all()][::-1]
    services.reorder_items(world.coordinator, march.pk, order)
    assert [i.pk for i in march.items.all()] == order
    with pytest.raises(InvalidInput):
        services.reorder_items(world.coordinator, march.pk, order[1:])
    services.update_item(world.coordinator, march.pk, first.pk, notes="Diskuterades", decision="Följ upp i april")
    first.refresh_from_db()
    assert (first.notes, first.decision) == ("Diskuterades", "Följ upp i april")
    flagged = march.items.get(kind=AgendaItem.Kind.FLAGGED)
    services.remove_item(world.coordinator, march.pk, flagged.pk)
    assert MeetingFlag.objects.get(pk=flag.pk).meeting is None  # waits for the next meeting again
    with pytest.raises(Forbidden):
        services.update_item(world.police_lead, march.pk, first.pk, notes="x")


def test_a_flag_about_a_deviation_the_viewer_cannot_see_does_not_link_it(world: World, march: Meeting) -> None:
    hidden = world.report(world.police_reporter, visibility="organisation", observed_at=at(1, 3))
    services.flag_for_meeting(world.police_reporter, "Langning i trapphuset", deviation_id=hidden.pk)
    MeetingFlag.objects.update(created_at=at(5, 3))
    services.build_agenda(world.coordinator, march.pk)
    [police_view] = [v for v in services.agenda(march, world.police_lead) if v.flag]
    [district_view] = [v for v in services.agenda(march, world.coordinator) if v.flag]
    assert police_view.flag_deviation_visible and f"#deviation-{hidden.pk}" in police_view.map_url
    assert not district_view.flag_deviation_visible and "#deviation" not in district_view.map_url


def test_flags_need_text_and_a_visible_deviation(world: World) -> None:
    with pytest.raises(InvalidInput, match="Skriv vad mötet ska ta upp"):
        services.flag_for_meeting(world.police_reporter, "  ")
    hidden = world.report(world.police_reporter, visibility="organisation")
    from lagesbild.errors import NotFound
    with pytest.raises(NotFound):
        services.flag_for_meeting(world.housing_reporter, "Titta på detta", deviation_id=hidden.pk)
    with pytest.raises(Forbidden):
        services.flag_for_meeting(world.viewer, "Läsare anmäler")
    assert not MeetingFlag.objects.exists()


# --- The protocol ---------------------------------------------------------------------------------------

def test_publishing_locks_the_meeting_and_a_correction_is_a_new_version(world: World, march: Meeting) -> None:
    world.report(world.police_reporter, observed_at=at(1, 3), description="Klotter vid torget")
    world.report(world.police_reporter, observed_at=at(2, 3), visibility="organisation",
                 description="HEMLIGT i trapphuset")
    services.build_agenda(world.coordinator, march.pk)
    item = march.items.get(kind=AgendaItem.Kind.CATEGORIES)
    services.update_item(world.coordinator, march.pk, item.pk, notes="Mycket klotter", decision="Sanera")
    services.set_attendance(world.coordinator, march.pk, [world.district.pk], [world.police_lead.user.pk])
    first = services.publish_protocol(world.coordinator, march.pk)
    assert first.version == 1
    assert first.content["organisations"] == ["Polisen", "Stadsdelsförvaltningen"]  # a person brings their org
    # Only what the whole forum sees is in the protocol: one deviation, not two.
    assert first.content["map"]["count"] == 1
    assert first.content["items"][0]["lines"] == ["Skadegörelse: 1 (0 perioden före)"]

    with pytest.raises(Conflict, match="Protokollet är publicerat"):
        services.update_item(world.coordinator, march.pk, item.pk, notes="Ändrat i efterhand")
    with pytest.raises(Conflict):
        services.add_item(world.coordinator, march.pk, "Sen punkt")
    with pytest.raises(Conflict):
        services.publish_protocol(world.coordinator, march.pk)
    item.refresh_from_db()
    assert item.notes == "Mycket klotter"

    services.start_correction(world.coordinator, march.pk)
    services.update_item(world.coordinator, march.pk, item.pk, notes="Mycket klotter vid torget")
    with pytest.raises(InvalidInput, match="Skriv vad rättelsen ändrar"):
        services.publish_protocol(world.coordinator, march.pk)
    second = services.publish_protocol(world.coordinator, march.pk, correction_reason="Platsen angavs")
    assert second.version == 2
    assert Protocol.objects.get(pk=first.pk).content["items"][0]["notes"] == "Mycket klotter"
    assert second.content["items"][0]["notes"] == "Mycket klotter vid torget"
    assert second.content["correctionReason"] == "Platsen angavs"


def test_an_empty_agenda_is_not_published(world: World, march: Meeting) -> None:
    with pytest.raises(InvalidInput, match="Dagordningen är tom"):
        services.publish_protocol(world.coordinator, march.pk)
    assert not Protocol.objects.exists()
    assert Meeting.objects.get(pk=march.pk).state == Meeting.State.PLANNED


def test_the_pdf_holds_the_protocol_in_swedish(world: World, march: Meeting) -> None:
    world.report(world.police_reporter, observed_at=at(1, 3))
    services.build_agenda(world.coordinator, march.pk)
    item = march.items.get(kind=AgendaItem.Kind.CATEGORIES)
    services.update_item(world.coordinator, march.pk, item.pk, decision="Skolan bjuds in \u2013 nästa gång")
    actions.create_action(world.coordinator, actions.ActionInput(
        title="Sanera klottret på skolgården", organisation_id=world.school.pk,
        due_date=timezone.now().date() + dt.timedelta(days=30), agenda_item_id=item.pk))
    published = services.publish_protocol(world.coordinator, march.pk)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(protocol.pdf_bytes(published.content))).pages)
    for expected in ("Protokoll: Avstämningsmöte 10 mars 2026",
                     "Period som gicks igenom: 10 februari 2026 - 10 mars 2026",
                     "Dagordning", "Nya avvikelser per kategori", "Beslut: Skolan bjuds in \u2013 nästa gång",
                     "Sanera klottret på skolgården", "Skolan", "Karta över perioden", "1 avvikelse som hela forumet"):
        assert expected in text, expected


def test_without_a_unicode_font_the_pdf_falls_back_to_latin_1(world: World, march: Meeting, tmp_path: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A system without DejaVu Sans still gets a PDF, in Helvetica: a dash becomes "-", other letters "?"."""
    from lagesbild import pdf

    monkeypatch.setattr(pdf, "FONT_DIR", tmp_path)
    pdf.unicode_font.cache_clear()
    try:
        services.build_agenda(world.coordinator, march.pk)
        item = march.items.get(kind=AgendaItem.Kind.CATEGORIES)
        services.update_item(world.coordinator, march.pk, item.pk, decision="Łukasz bjuds in \u2013 nästa gång")
        published = services.publish_protocol(world.coordinator, march.pk)
        body = protocol.pdf_bytes(published.content)
    finally:
        pdf.unicode_font.cache_clear()
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    assert "Beslut: ?ukasz bjuds in - nästa gång" in text


def test_a_meeting_scheduled_by_mistake_is_deleted_but_not_once_published(world: World, march: Meeting) -> None:
    flag = services.flag_for_meeting(world.police_reporter, "Bilbränder")
    MeetingFlag.objects.update(created_at=at(5, 3))
    services.build_agenda(world.coordinator, march.pk)
    with pytest.raises(Forbidden):
        services.delete_meeting(world.police_lead, march.pk)
    services.delete_meeting(world.coordinator, march.pk)
    assert not Meeting.objects.filter(pk=march.pk).exists()
    assert MeetingFlag.objects.get(pk=flag.pk).meeting is None  # waits for the next meeting
    published = meeting(world, at(10, 4))
    services.build_agenda(world.coordinator, published.pk)
    services.publish_protocol(world.coordinator, published.pk)
    with pytest.raises(Conflict, match="publicerat protokoll kan inte tas bort"):
        services.delete_meeting(world.coordinator, published.pk)
    assert Meeting.objects.filter(pk=published.pk).exists()
