"""'To report to the police': the mark with who and when, the report's reference, who may do which, the
audit, and the meeting agenda's item listing marked deviations without a report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Forbidden, InvalidInput
from lagesbild.meetings import services as meetings
from lagesbild.meetings.models import AgendaItem
from tests.conftest import MARKER, World

pytestmark = pytest.mark.django_db


def post(world: World, membership: Any, deviation: Deviation, body: dict[str, Any]) -> Any:
    return world.client(membership).post(f"/api/forums/farsta/deviations/{deviation.pk}/police", json.dumps(body),
                                         content_type="application/json")


def test_marking_and_recording_the_report(world: World) -> None:
    deviation = world.report(world.housing_reporter, description="Krossad ruta i porten")
    response = post(world, world.housing_reporter, deviation, {"flagged": True})
    assert response.status_code == 200
    police = response.json()["police"]
    assert police["flaggedBy"] == "Bostadsbolaget" and police["flaggedAt"] and police["reportReference"] is None
    assert response.json()["version"] == deviation.version + 1
    # A viewer may not record the report; the police, the reporting organisation and coordinators may.
    refused = post(world, world.viewer, deviation, {"reportReference": "5000-K1-26"})
    assert refused.status_code == 403
    bad = post(world, world.police_reporter, deviation, {"reportReference": "<script>"})
    assert bad.status_code == 422 and "bokstäver, siffror" in bad.json()["error"]["message"]
    done = post(world, world.police_reporter, deviation, {"reportReference": " 5000-K123456-26 "})
    assert done.status_code == 200
    assert done.json()["police"]["reportReference"] == "5000-K123456-26"
    assert done.json()["police"]["flaggedBy"] == "Bostadsbolaget"  # the mark keeps who set it
    # The mark stays once a report is recorded.
    kept = post(world, world.housing_reporter, deviation, {"flagged": False})
    assert kept.status_code == 422
    changes = list(AuditEvent.objects.filter(object_type="deviation", object_id=deviation.pk,
                                             action="update").values_list("changes", flat=True).order_by("pk"))
    assert changes == [{"police_flag": [False, True]}, {"police_report": [None, "5000-K123456-26"]}]


def test_who_may_mark_and_record(world: World) -> None:
    deviation = world.report(world.housing_reporter)
    with pytest.raises(Forbidden):
        services.set_police_flag(world.viewer, deviation.pk, True)
    services.set_police_flag(world.police_reporter, deviation.pk, True)
    services.set_police_flag(world.police_reporter, deviation.pk, False)
    assert Deviation.objects.get(pk=deviation.pk).police_flagged_at is None
    with pytest.raises(Forbidden):
        services.record_police_report(world.viewer, deviation.pk, "5000-K1-26")
    with pytest.raises(InvalidInput):
        services.record_police_report(world.housing_reporter, deviation.pk, "   ")
    # The reporting organisation records it; that marks it too.
    services.record_police_report(world.housing_reporter, deviation.pk, "5000-K2-26")
    stored = Deviation.objects.get(pk=deviation.pk)
    assert stored.police_flagged_at and stored.police_report_reference == "5000-K2-26"
    # A restricted deviation is not found by those who may not see it.
    restricted = world.report(world.police_reporter, visibility="organisation")
    assert post(world, world.housing_reporter, restricted, {"flagged": True}).status_code == 404


def test_the_agenda_lists_what_is_marked_without_a_report_and_only_what_all_may_see(world: World) -> None:
    import datetime as dt

    from django.utils import timezone

    waiting = world.report(world.housing_reporter, place_name="Porten")
    reported = world.report(world.housing_reporter, place_name="Garaget")
    hidden = world.report(world.police_reporter, visibility="organisation", place_name=f"Port {MARKER}")
    for deviation in (waiting, reported, hidden):
        services.set_police_flag(world.police_reporter, deviation.pk, True)
    services.record_police_report(world.police_reporter, reported.pk, "5000-K3-26")
    meeting = meetings.schedule_meeting(world.coordinator, meetings.MeetingInput(
        held_at=timezone.now() + dt.timedelta(days=3)))
    items = meetings.build_agenda(world.coordinator, meeting.pk)
    [item] = [i for i in items if i.kind == AgendaItem.Kind.POLICE]
    assert item.title == "Att polisanmäla"
    for viewer in (world.police_reporter, world.housing_reporter):
        [view] = [v for v in meetings.agenda(meeting, viewer) if v.item.kind == AgendaItem.Kind.POLICE]
        assert [d.pk for d in view.police] == [waiting.pk]  # the shared screen: forum-wide only
    page = world.client(world.housing_reporter).get(f"/f/farsta/moten/{meeting.pk}/").content.decode()
    assert "Porten" in page and "Garaget" not in page and MARKER not in page
    assert "markerad av Polisen" in page


def test_a_mark_and_a_recorded_reference_are_not_undone_by_just_anyone(world: World) -> None:
    deviation = world.report(world.housing_reporter)
    assert post(world, world.police_reporter, deviation, {"flagged": True}).status_code == 200
    school_lead = world.viewer
    school_lead.role = "reporter"
    school_lead.save()
    assert post(world, school_lead, deviation, {"flagged": False}).status_code == 403  # neither marker nor owner
    assert post(world, world.housing_reporter, deviation, {"flagged": "false"}).status_code == 422  # not a bool
    assert post(world, world.police_reporter, deviation, {"reportReference": "5000-K1-26"}).status_code == 200
    # The reporting organisation may not overwrite what the police recorded; the same reference again is no change.
    assert post(world, world.housing_reporter, deviation, {"reportReference": "5000-K9-26"}).status_code == 403
    again = post(world, world.police_reporter, deviation, {"reportReference": "5000-K1-26"})
    assert again.status_code == 200 and again.json()["version"] == deviation.version + 2
