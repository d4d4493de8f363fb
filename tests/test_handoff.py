"""Passing a deviation to an owner's fault-report system, and following its status there.

The fault system is a real Open311 server: Lägesbild's own, another forum of it served over HTTP.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.core.management import call_command

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import ApiToken
from lagesbild.interop import handoff
from lagesbild.interop.models import FaultSystem, HandOff
from tests.conftest import World, make_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def city(live_server: Any) -> tuple[World, FaultSystem]:
    """Farsta, and the city's fault-report system for lighting and litter: the Open311 endpoint of the forum
    Skärholmen, served over HTTP, with its coordinator's token as the key."""
    world = make_world()
    key = ApiToken.issue(world.outsider, "fault system")[1]
    system = FaultSystem.objects.create(
        forum=world.forum, organisation=world.district, name="Stadens felanmälan",
        endpoint=f"{live_server.url}/api/forums/skarholmen/open311/v2/", api_key=key, jurisdiction="skarholmen",
        services={"broken_lighting": "broken_lighting", "littering": "litter"})
    return world, system


def detail(world: World, membership: Any, deviation: Deviation) -> dict[str, Any]:
    response = world.client(membership).get(f"/api/forums/farsta/deviations/{deviation.pk}")
    assert response.status_code == 200
    return response.json()


def pass_on(world: World, membership: Any, deviation: Deviation, system: FaultSystem) -> Any:
    return world.client(membership).post(f"/api/forums/farsta/deviations/{deviation.pk}/hand-off",
                                         {"system": system.pk}, content_type="application/json")


def test_a_broken_lamp_goes_to_the_citys_system_and_its_status_comes_back(city: tuple[World, FaultSystem]) -> None:
    world, system = city
    lamp = world.report(world.housing_reporter, category="broken_lighting", place_name="Gångtunneln",
                        description="Lampan vid trappan är trasig")
    assert detail(world, world.housing_reporter, lamp)["faultSystems"] == [{"id": system.pk,
                                                                             "name": "Stadens felanmälan"}]
    response = pass_on(world, world.housing_reporter, lamp, system)
    assert response.status_code == 201, response.content
    passed = response.json()["handOff"]
    assert passed["system"] == "Stadens felanmälan" and passed["status"] == "open"
    assert response.json()["faultSystems"] == []
    # It arrived in the other system as a new request, with what the deviation says and nothing about who.
    there = Deviation.objects.get(pk=int(passed["externalId"]))
    assert there.forum == world.other_forum and there.category.key == "broken_lighting"
    assert (there.place_name, there.description, there.lon, there.lat) == (
        "Gångtunneln", "Lampan vid trappan är trasig", pytest.approx(lamp.lon), pytest.approx(lamp.lat))
    assert AuditEvent.objects.filter(object_type="deviation", object_id=lamp.pk,
                                     changes__has_key="handed_off").exists()
    # The system mends it; the next poll brings the status back, shown on the deviation.
    call_command("poll_fault_systems", verbosity=0)
    Deviation.objects.filter(pk=there.pk).update(status="resolved")
    assert handoff.poll() == 1
    shown = detail(world, world.viewer, lamp)["handOff"]
    assert shown["status"] == "closed" and shown["statusNotes"] == "Åtgärdad" and shown["checkedAt"]
    assert handoff.poll() == 0  # closed ones are not asked again
    again = pass_on(world, world.coordinator, lamp, system)
    assert again.status_code == 409


def test_what_may_not_be_passed_on_is_refused_and_nothing_is_kept(city: tuple[World, FaultSystem]) -> None:
    world, system = city
    restricted = world.report(world.police_reporter, category="broken_lighting", visibility="organisation")
    graffiti = world.report(world.housing_reporter, category="graffiti")
    lamp = world.report(world.housing_reporter, category="broken_lighting")
    assert detail(world, world.police_reporter, restricted)["faultSystems"] == []
    assert pass_on(world, world.police_reporter, restricted, system).json()["error"]["code"] == "restricted"
    assert detail(world, world.housing_reporter, graffiti)["faultSystems"] == []
    assert pass_on(world, world.housing_reporter, graffiti, system).json()["error"]["code"] == "category"
    assert detail(world, world.viewer, lamp)["faultSystems"] == []
    assert pass_on(world, world.viewer, lamp, system).status_code == 403
    assert pass_on(world, world.housing_reporter, lamp, FaultSystem(pk=999_999)).status_code == 404
    assert HandOff.objects.count() == 0 and Deviation.objects.filter(forum=world.other_forum).count() == 0


def test_a_system_that_refuses_or_cannot_be_reached_says_so(city: tuple[World, FaultSystem]) -> None:
    world, system = city
    lamp = world.report(world.housing_reporter, category="broken_lighting")
    FaultSystem.objects.filter(pk=system.pk).update(api_key="lgb_not-a-key")
    refused = pass_on(world, world.housing_reporter, lamp, system)
    assert refused.status_code == 502
    assert "Stadens felanmälan" in refused.json()["error"]["message"]
    assert "api_key" in refused.json()["error"]["message"]  # the system's own explanation
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    FaultSystem.objects.filter(pk=system.pk).update(endpoint=f"http://127.0.0.1:{port}/open311/v2/")
    unreachable = pass_on(world, world.housing_reporter, lamp, system)
    assert unreachable.status_code == 502 and "kunde inte nås" in unreachable.json()["error"]["message"]
    assert HandOff.objects.count() == 0 and Deviation.objects.filter(forum=world.other_forum).count() == 0


def test_a_poll_that_cannot_reach_the_system_notes_it_and_keeps_the_status(city: tuple[World, FaultSystem]) -> None:
    world, system = city
    lamp = world.report(world.housing_reporter, category="broken_lighting")
    assert pass_on(world, world.housing_reporter, lamp, system).status_code == 201
    FaultSystem.objects.filter(pk=system.pk).update(endpoint="http://127.0.0.1:9/open311/v2/")
    assert handoff.poll() == 0
    kept = HandOff.objects.get()
    assert kept.status == "open" and "kunde inte nås" in kept.check_error


def test_a_claim_left_by_a_process_that_died_mid_call_is_freed(city: tuple[World, FaultSystem]) -> None:
    """The hand-off is claimed before the call; a claim never finished (no id, no token) frees the deviation."""
    import datetime as dt

    from django.utils import timezone

    world, system = city
    lamp = world.report(world.housing_reporter, category="broken_lighting")
    HandOff.objects.create(forum=world.forum, deviation=lamp, system=system, service_code="broken_lighting",
                           status="pending", organisation=world.housing,
                           handed_off_at=timezone.now() - dt.timedelta(minutes=11))
    assert pass_on(world, world.housing_reporter, lamp, system).status_code == 409  # still claimed
    handoff.poll()
    assert not HandOff.objects.exists()
    assert pass_on(world, world.housing_reporter, lamp, system).status_code == 201
