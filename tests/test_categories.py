"""A forum's own categories, and default ones it hides."""

from __future__ import annotations

import pytest

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import categories, services
from lagesbild.errors import Forbidden, InvalidInput
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_hidden_categories_are_not_offered_but_old_deviations_keep_them(world: World) -> None:
    old = world.report(world.police_reporter, category="graffiti")
    categories.set_hidden(world.coordinator, "graffiti", hidden=True)
    with pytest.raises(InvalidInput) as excinfo:
        world.report(world.police_reporter, category="graffiti")
    assert "Klotter" in excinfo.value.message
    # The old one can still be edited without choosing a new category...
    services.edit_deviation(world.police_reporter, old.pk, {"description": "Sanerat"}, version=1)
    # ...and is still on the map, under its category.
    api = world.client(world.police_lead)
    listed = api.get("/api/forums/farsta/deviations", {"category": "graffiti"}).json()
    assert listed["numberMatched"] == 1
    flags = {c["key"]: c["hidden"] for c in api.get("/api/forums/farsta/categories").json()}
    assert flags["graffiti"] is True and flags["litter"] is False
    page = api.get("/f/farsta/").content.decode()
    assert '<option value="graffiti">' not in page and '<option value="litter">' in page
    categories.set_hidden(world.coordinator, "graffiti", hidden=False)
    world.report(world.police_reporter, category="graffiti")
    assert AuditEvent.objects.filter(action="settings", changes__category="graffiti").count() == 2


def test_forums_add_their_own_categories(world: World) -> None:
    child = categories.add_category(world.coordinator, name_sv="Elsparkcyklar", name_en="E-scooters",
                                    parent_key="traffic")
    assert (child.key, child.parent.key, child.color) == ("e_scooters", "traffic", "#37474f")
    deviation = world.report(world.police_reporter, category="e_scooters")
    assert services.visible_deviations(world.police_lead).filter(
        category_id__in=services.category_ids_with_children(world.forum, ["traffic"])).filter(pk=deviation.pk).exists()
    main = categories.add_category(world.coordinator, name_sv="Hundar", color="#004d40")
    assert main.parent is None and main.forum == world.forum
    with pytest.raises(InvalidInput):
        categories.add_category(world.coordinator, name_sv="Katter")  # a main category needs a colour
    with pytest.raises(InvalidInput):
        categories.add_category(world.coordinator, name_sv="Elsparkcyklar", parent_key="traffic")
    with pytest.raises(InvalidInput):
        categories.add_category(world.coordinator, name_sv="X", parent_key="graffiti")  # not a main category
    # Another forum does not see this forum's categories.
    keys = {c["key"] for c in world.client(world.outsider).get("/api/forums/skarholmen/categories").json()}
    assert "e_scooters" not in keys and "graffiti" in keys


def test_only_coordinators_change_categories(world: World) -> None:
    with pytest.raises(Forbidden):
        categories.set_hidden(world.police_lead, "graffiti", hidden=True)
    with pytest.raises(Forbidden):
        categories.add_category(world.police_lead, name_sv="Egen", color="#000000")
    assert AuditEvent.objects.filter(action="refused").count() == 2


def test_categories_page(world: World) -> None:
    client = world.client(world.coordinator)
    page = client.get("/f/farsta/kategorier/")
    assert page.status_code == 200 and "Skadegörelse" in page.content.decode()
    assert client.post("/f/farsta/kategorier/", {"hide": "graffiti"}).status_code == 302
    assert "Dold" in client.get("/f/farsta/kategorier/").content.decode()
    bad = client.post("/f/farsta/kategorier/", {"name_sv": "", "parent": ""})
    assert bad.status_code == 422
    ok = client.post("/f/farsta/kategorier/", {"name_sv": "Lekplats", "parent": "physical", "color": "#000000"})
    assert ok.status_code == 302
    assert world.client(world.police_lead).get("/f/farsta/kategorier/").status_code == 403
