"""Actions: creating them, following them up, their effect, and reminders sent by the background worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from lagesbild.deviations.derived import derived_fields
from lagesbild.deviations.models import Category, Deviation
from lagesbild.errors import Conflict, Forbidden, InvalidInput, NotFound
from lagesbild.meetings import actions, effect, reminders, services
from lagesbild.meetings.models import Action, FollowUp, Reminder
from lagesbild.places import services as places
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db


def today() -> dt.date:
    return timezone.localdate()


def new(world: World, member: Any = None, **overrides: Any) -> Action:
    data = {"title": "Byta belysning", "organisation_id": world.housing.pk, "due_date": today() + dt.timedelta(days=30),
            **overrides}
    return actions.create_action(member or world.coordinator, actions.ActionInput(**data))


def test_an_action_from_deviations_links_them_and_puts_them_under_way(world: World) -> None:
    first = world.report(world.police_reporter, lon=18.09, lat=59.24)
    second = world.report(world.housing_reporter, lon=18.10, lat=59.25)
    action = new(world, deviation_ids=[first.pk, second.pk], responsible_id=world.housing_reporter.user.pk)
    assert set(action.deviations.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert set(Deviation.objects.values_list("status", flat=True)) == {"in_progress"}
    assert (action.lon, action.lat) == pytest.approx((18.095, 59.245))
    assert action.status == Action.Status.PLANNED


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"organisation_id": None}, "organisation", "Välj vilken organisation som ansvarar"),
    ({"due_date": dt.date(2020, 1, 1)}, "due_date", "Klart-datum kan inte vara före dagen"),
    ({"due_date": None}, "due_date", "Ange när åtgärden ska vara klar"),
    ({"title": " "}, "title", "Skriv vad som ska göras"),
    ({"responsible_id": -1}, "responsible", "måste tillhöra den ansvariga organisationen"),
    ({"lon": 18.5, "lat": 59.2}, "lon", "utanför forumets område"),
])
def test_bad_actions_are_refused_and_nothing_is_saved(world: World, overrides: dict, field: str,
                                                      message: str) -> None:
    if overrides.get("responsible_id") == -1:
        overrides["responsible_id"] = world.police_reporter.user.pk  # a member, but not of the housing company
    with pytest.raises(InvalidInput, match=message) as caught:
        new(world, **overrides)
    assert caught.value.field == field
    assert not Action.objects.exists()


def test_who_may_create_actions(world: World) -> None:
    assert new(world, world.police_lead, organisation_id=world.police.pk).organisation == world.police
    for member in (world.police_lead, world.police_reporter, world.viewer):
        with pytest.raises(Forbidden):
            new(world, member)  # for the housing company
    hidden = world.report(world.police_reporter, visibility="organisation")
    with pytest.raises(NotFound):
        new(world, deviation_ids=[hidden.pk])  # the coordinator's organisation cannot see it
    assert Action.objects.count() == 1


def test_the_responsible_organisation_follows_up_and_resolves_its_deviations(world: World) -> None:
    seen = world.report(world.housing_reporter)
    action = new(world, deviation_ids=[seen.pk])
    with pytest.raises(Forbidden):
        actions.follow_up(world.police_lead, action.pk, "Inte vår åtgärd")
    with pytest.raises(InvalidInput, match="Skriv en uppföljning"):
        actions.follow_up(world.housing_reporter, action.pk, "")
    with pytest.raises(InvalidInput, match="först när åtgärden är genomförd"):
        actions.follow_up(world.housing_reporter, action.pk, "Pågår", status="in_progress", resolve_deviations=True)
    actions.follow_up(world.housing_reporter, action.pk, "Beställt lampor", status="in_progress")
    actions.follow_up(world.housing_reporter, action.pk, "Klart", status="done", result="Sex nya lampor",
                      resolve_deviations=True)
    action.refresh_from_db()
    assert action.status == Action.Status.DONE and action.completed_at is not None
    assert action.result == "Sex nya lampor"
    assert list(FollowUp.objects.values_list("status", flat=True)) == ["in_progress", "done"]
    seen.refresh_from_db()
    assert (seen.status, seen.version) == ("resolved", 3)  # in progress when the action started, then resolved
    assert list(actions.my_open_actions(world.housing_reporter)) == []


def test_a_stale_status_change_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    action = new(world)
    stale = actions.get_action(world.housing_reporter, action.pk)  # read while it was planned
    actions.follow_up(world.coordinator, action.pk, "", status="in_progress")
    # The housing company's follow-up starts from its stale read; the write must notice.
    monkeypatch.setattr(actions, "get_action", lambda *args: stale)
    with pytest.raises(Conflict):
        actions.follow_up(world.housing_reporter, action.pk, "", status="done")
    assert Action.objects.get(pk=action.pk).status == "in_progress"
    assert FollowUp.objects.count() == 1


def test_only_coordinators_change_an_action_and_due_dates_stay_after_creation(world: World) -> None:
    action = new(world)
    with pytest.raises(Forbidden):
        actions.update_action(world.housing_reporter, action.pk, {"title": "Annat"})
    with pytest.raises(InvalidInput, match="före dagen då åtgärden skapades"):
        actions.update_action(world.coordinator, action.pk, {"due_date": today() - dt.timedelta(days=1)})
    changed = actions.update_action(world.coordinator, action.pk, {"title": "Byta all belysning",
                                                                   "organisation_id": world.district.pk})
    assert (changed.title, changed.organisation) == ("Byta all belysning", world.district)


# --- Effect ----------------------------------------------------------------------------------------------

def _deviations(world: World, count: int, when: dt.datetime, lon: float, lat: float) -> None:
    """Many deviations at once, with the derived fields reporting would give them."""
    graffiti = Category.objects.get(key="graffiti", forum__isnull=True)
    fields = derived_fields(lon, lat, when, world.forum.timezone)
    Deviation.objects.bulk_create([Deviation(forum=world.forum, category=graffiti, lon=lon, lat=lat, observed_at=when,
                                             organisation=world.police, **fields) for _ in range(count)])


@pytest.fixture
def square(world: World) -> Any:
    return places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=INSIDE[0], lat=INSIDE[1],
                                                                     radius_m=100))


def _weekly(world: World, counts: list[int], first_week: dt.datetime, lon: float, lat: float) -> None:
    """counts[k] deviations in the k-th week from `first_week`, on its third day."""
    for k, n in enumerate(counts):
        _deviations(world, n, first_week + dt.timedelta(days=7 * k + 2), lon, lat)


def _counts(world: World, place_before: list[int], place_after: list[int], rest_before: list[int],
            rest_after: list[int], pivot: dt.datetime) -> None:
    weeks = len(place_before)
    _weekly(world, place_before, pivot - dt.timedelta(days=7 * weeks), *INSIDE)
    _weekly(world, place_after, pivot, *INSIDE)
    _weekly(world, rest_before, pivot - dt.timedelta(days=7 * weeks), 18.13, 59.26)
    _weekly(world, rest_after, pivot, 18.13, 59.26)


def test_a_clear_decrease_against_the_rest_of_the_area(world: World, square: Any) -> None:
    pivot = timezone.now() - dt.timedelta(days=40)
    _counts(world, [5, 5, 5, 5], [1, 1, 1, 2], [10] * 4, [10] * 4, pivot)
    result = effect.place_effect(world.coordinator, square, pivot, days=30)
    assert (result.days, result.place_before, result.place_after, result.rest_before, result.rest_after) == (
        28, 20, 5, 40, 40)
    # Of the C(8, 4) = 70 ways to call four of the eight weeks "after", only the actual one and its mirror
    # image change the place's share this much.
    assert result.p_value == pytest.approx(2 / 70)
    assert result.expected_after == 20
    assert result.verdict == "decrease"
    assert result.by_category == [("Skadegörelse", 20, 5)]


def test_a_district_wide_fall_is_not_mistaken_for_an_effect(world: World, square: Any) -> None:
    pivot = timezone.now() - dt.timedelta(days=40)
    _counts(world, [5, 5, 5, 5], [3, 2, 3, 2], [10] * 4, [5] * 4, pivot)  # everywhere halved
    result = effect.place_effect(world.coordinator, square, pivot, days=30)
    assert result.expected_after == 10
    assert result.p_value == pytest.approx(1.0)  # the place kept its share exactly
    assert result.verdict == "no_clear_change"
    assert "Ingen tydlig skillnad" in result.message


def test_the_weeks_that_prompted_an_action_are_left_out(world: World, square: Any) -> None:
    """A peak just before the action (which would have passed anyway) is not the baseline."""
    decided = timezone.now() - dt.timedelta(days=40)
    _weekly(world, [2] * 10, decided - dt.timedelta(days=42), *INSIDE)  # a steady place, six weeks before, four after
    _weekly(world, [6, 6], decided - dt.timedelta(days=14), *INSIDE)  # and a peak in the two weeks before
    _weekly(world, [10] * 10, decided - dt.timedelta(days=42), 18.13, 59.26)
    naive = effect.place_effect(world.coordinator, square, decided, days=30)
    assert (naive.place_before, naive.place_after) == (20, 8)
    fair = effect.place_effect(world.coordinator, square, decided, days=30,
                               before_end=decided - dt.timedelta(days=14))
    assert fair.left_out_days == 14 and fair.before_end == decided - dt.timedelta(days=14)
    assert (fair.place_before, fair.place_after, fair.rest_before, fair.rest_after) == (8, 8, 40, 40)
    assert fair.p_value == pytest.approx(1.0) and fair.verdict == "no_clear_change"


def test_an_action_decided_at_a_meeting_is_judged_against_the_time_before_the_meetings_period(
        world: World, square: Any) -> None:
    now = timezone.now()
    meeting = services.schedule_meeting(world.coordinator, services.MeetingInput(
        held_at=now + dt.timedelta(days=1), period_start=now - dt.timedelta(days=30)))
    action = actions.create_action(world.coordinator, actions.ActionInput(
        title="Belysning", organisation_id=world.district.pk, due_date=now.date() + dt.timedelta(days=10),
        place_id=square.pk, meeting_id=meeting.pk))
    assert effect.before_end(action) == meeting.period_start
    alone = actions.create_action(world.coordinator, actions.ActionInput(
        title="Klotter", organisation_id=world.district.pk, due_date=now.date() + dt.timedelta(days=10),
        place_id=square.pk))
    assert effect.before_end(alone) == alone.created_at - dt.timedelta(days=28)


def test_too_few_deviations_say_so(world: World, square: Any) -> None:
    pivot = timezone.now() - dt.timedelta(days=40)
    _counts(world, [1, 1, 1, 1], [1, 0, 0, 0], [10] * 4, [10] * 4, pivot)
    result = effect.place_effect(world.coordinator, square, pivot, days=30)
    assert result.verdict == "too_few" and result.p_value is None
    assert "För få avvikelser (5)" in result.message


def test_too_soon_after_the_action_says_so(world: World, square: Any) -> None:
    result = effect.place_effect(world.coordinator, square, timezone.now() - dt.timedelta(days=20))
    assert (result.verdict, result.days) == ("too_early", 20)
    assert "minst fyra veckor" in result.message


def test_the_permutation_test_matches_a_hand_computation() -> None:
    # Weeks: the place had 4, 4, 0, 0 and the rest 4 each; the last two weeks are "after". Of the six ways to
    # choose two weeks as "after", two move the place's share from 1/2 to 0 (or back); the others change nothing.
    assert effect.permutation_p([4, 4, 0, 0], [4, 4, 4, 4], 2) == pytest.approx(2 / 6)
    assert effect.permutation_p([2, 2, 2, 2], [4, 4, 4, 4], 2) == pytest.approx(1.0)
    # Thirteen weeks on each side: too many arrangements to try all, so random ones, the same on every run.
    place = [6] * 13 + [1] * 13
    first = effect.permutation_p(place, [20] * 26, 13)
    assert first == effect.permutation_p(place, [20] * 26, 13)
    assert first == pytest.approx(1 / (1 + effect.PERMUTATIONS))  # no shuffle is as extreme as the real split


# --- Reminders ------------------------------------------------------------------------------------------

# The worker closes its database connection between tasks, as it should; these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_reminders_are_queued_once_and_sent_by_the_worker(world: World) -> None:
    world.forum.reminder_days = 3
    world.forum.save()
    soon = new(world, due_date=today() + dt.timedelta(days=2), responsible_id=world.housing_reporter.user.pk)
    late = new(world, organisation_id=world.police.pk, due_date=today() + dt.timedelta(days=1))
    Action.objects.filter(pk=late.pk).update(due_date=today() - dt.timedelta(days=1))
    new(world, due_date=today() + dt.timedelta(days=10))  # not yet
    done = new(world, due_date=today())
    Action.objects.filter(pk=done.pk).update(status=Action.Status.DONE)

    assert reminders.queue_reminders() == 2
    assert reminders.queue_reminders() == 0  # not twice
    assert set(Reminder.objects.values_list("action_id", "kind")) == {(soon.pk, "due_soon"), (late.pk, "overdue")}
    assert mail.outbox == []  # queued, not sent: the worker sends
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    by_subject = {m.subject: m for m in mail.outbox}
    assert set(by_subject) == {
        f"[Farsta] Åtgärd klar senast {soon.due_date.day} {_month(soon.due_date)} {soon.due_date.year}: Byta belysning",
        "[Farsta] Försenad åtgärd: Byta belysning"}
    due_soon = next(m for m in mail.outbox if "Försenad" not in m.subject)
    assert due_soon.to == ["vicevard@test.se"]  # the responsible person (the housing company has no lead)
    overdue = next(m for m in mail.outbox if "Försenad" in m.subject)
    assert overdue.to == ["polislead@test.se"]  # the police's organisation lead
    assert f"/f/farsta/atgarder/{late.pk}/" in overdue.body


def _month(day: dt.date) -> str:
    return ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
            "november", "december"][day.month - 1]


@pytest.mark.django_db(transaction=True)
def test_publishing_sends_every_member_a_digest_with_their_open_actions(world: World) -> None:
    held = timezone.now() - dt.timedelta(days=1)
    meeting = services.schedule_meeting(world.coordinator, services.MeetingInput(held_at=held))
    services.build_agenda(world.coordinator, meeting.pk)
    new(world, organisation_id=world.police.pk, title="Fler patrullor", meeting_id=meeting.pk)
    services.publish_protocol(world.coordinator, meeting.pk)
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    recipients = sorted(address for m in mail.outbox for address in m.to)
    assert recipients == ["lasare@test.se", "polis@test.se", "polislead@test.se", "samordnare@test.se",
                          "vicevard@test.se"]
    police = next(m for m in mail.outbox if m.to == ["polis@test.se"])
    assert "Öppna åtgärder för Polisen:\n- Fler patrullor" in police.body
    assert "1 nya åtgärder" in police.body
    assert "Fler patrullor" not in next(m for m in mail.outbox if m.to == ["vicevard@test.se"]).body


def test_how_an_action_was_carried_out_is_recorded_and_not_done_is_not_did_not_work(world: World,
                                                                                      square: Any) -> None:
    action = actions.create_action(world.coordinator, actions.ActionInput(
        title="Ny belysning", organisation_id=world.district.pk, due_date=timezone.now().date() + dt.timedelta(days=5),
        place_id=square.pk))
    with pytest.raises(InvalidInput, match="när den är genomförd eller avbruten"):
        actions.follow_up(world.coordinator, action.pk, "Beställt", execution="partly")
    with pytest.raises(InvalidInput, match="avbruten, inte genomförd"):
        actions.follow_up(world.coordinator, action.pk, "Klart", status="done", execution="not_at_all")
    actions.follow_up(world.coordinator, action.pk, "Klart", status="done")
    action.refresh_from_db()
    assert action.execution == "fully"  # done means in full unless told otherwise
    actions.follow_up(world.coordinator, action.pk, "Leverantören uteblev", status="cancelled",
                      execution="not_at_all", execution_note="Lamporna kom aldrig")
    action.refresh_from_db()
    assert (action.status, action.execution, action.execution_note) == ("cancelled", "not_at_all",
                                                                        "Lamporna kom aldrig")
    result = effect.action_effect(world.coordinator, action)
    assert result is not None and result.verdict == "not_done" and result.p_value is None
    assert "inte genomförd" in result.message
    page = world.client(world.coordinator).get(f"/f/farsta/atgarder/{action.pk}/").content.decode()
    assert "Inte genomförd" in page and "Lamporna kom aldrig" in page
