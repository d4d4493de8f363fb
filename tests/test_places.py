"""Places: geometry, which deviations lie in them, their history, and suggested new places."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services as deviations
from lagesbild.errors import Forbidden, InvalidInput
from lagesbild.places import services
from lagesbild.places.models import Place
from tests.conftest import World

pytestmark = pytest.mark.django_db

CENTRE = (18.09, 59.244)
# About 11 m per 0.0001 degree of latitude; 0.0002 degrees of longitude at 59°N is about 11 m.
NORTH_50M = (18.09, 59.244 + 50 / 111_320)
NORTH_150M = (18.09, 59.244 + 150 / 111_320)


def circle(world: World, name: str = "Torget", radius: int = 100) -> Place:
    return services.create_place(world.coordinator, services.PlaceInput(name=name, lon=CENTRE[0], lat=CENTRE[1],
                                                                        radius_m=radius))


def test_a_circle_holds_the_deviations_within_its_radius(world: World) -> None:
    place = circle(world)
    inside = world.report(world.police_reporter, lon=NORTH_50M[0], lat=NORTH_50M[1])
    world.report(world.police_reporter, lon=NORTH_150M[0], lat=NORTH_150M[1])
    found = services.deviations_at(place, deviations.visible_deviations(world.coordinator))
    assert list(found.values_list("pk", flat=True)) == [inside.pk]


def test_a_polygon_holds_the_deviations_inside_it(world: World) -> None:
    area = {"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.10, 59.24], [18.10, 59.25], [18.08, 59.25],
                                                [18.08, 59.24]]]}
    place = services.create_place(world.coordinator, services.PlaceInput(name="Parken", area=area))
    assert place.shape == Place.Shape.POLYGON
    inside = world.report(world.police_reporter, lon=18.09, lat=59.245)
    world.report(world.police_reporter, lon=18.11, lat=59.245)
    found = services.deviations_at(place, deviations.visible_deviations(world.coordinator))
    assert list(found.values_list("pk", flat=True)) == [inside.pk]


def test_a_place_does_not_reveal_restricted_deviations(world: World) -> None:
    place = circle(world)
    world.report(world.police_reporter, visibility="organisation")
    assert services.deviations_at(place, deviations.visible_deviations(world.housing_reporter)).count() == 0
    assert services.deviations_at(place, deviations.visible_deviations(world.police_lead)).count() == 1


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"area": {"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.10, 59.25], [18.10, 59.24], [18.08, 59.25],
                                                   [18.08, 59.24]]]}}, "area", "korsar sig själv"),
    ({"area": {"type": "Polygon", "coordinates": [[[18.14, 59.24], [18.20, 59.24], [18.20, 59.25], [18.14, 59.25],
                                                   [18.14, 59.24]]]}}, "area", "utanför forumets område"),
    ({"lon": 18.3, "lat": 59.24, "radius_m": 100}, "lon", "utanför forumets område"),
    ({"lon": 18.09, "lat": 59.24, "radius_m": 5}, "radius_m", "mellan 10 och 2000"),
    ({}, "lon", "Välj var platsen ligger"),
])
def test_bad_shapes_are_refused_and_nothing_is_saved(world: World, data: dict, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        services.create_place(world.coordinator, services.PlaceInput(name="Fel", **data))
    assert caught.value.field == field
    assert message in caught.value.message
    assert not Place.objects.exists()


def test_names_are_unique_in_a_forum(world: World) -> None:
    circle(world)
    with pytest.raises(InvalidInput, match="redan en plats"):
        circle(world)


def test_only_coordinators_draw_places_and_the_refusal_is_logged(world: World) -> None:
    with pytest.raises(Forbidden):
        services.create_place(world.police_lead, services.PlaceInput(name="X", lon=18.09, lat=59.24, radius_m=50))
    assert AuditEvent.objects.filter(action="refused", actor=world.police_lead.user).exists()
    assert not Place.objects.exists()


def test_counts_by_month_use_the_forums_time_zone(world: World) -> None:
    place = circle(world)
    stockholm = ZoneInfo("Europe/Stockholm")
    now = dt.datetime(2026, 3, 15, 12, tzinfo=stockholm)
    # 00:30 on 1 March in Stockholm is still February in UTC: it counts in March.
    world.report(world.police_reporter, observed_at=dt.datetime(2026, 3, 1, 0, 30, tzinfo=stockholm))
    world.report(world.police_reporter, observed_at=dt.datetime(2026, 2, 10, 12, tzinfo=stockholm),
                 category="suspected_dealing")
    world.report(world.police_reporter, observed_at=dt.datetime(2026, 2, 11, 12, tzinfo=stockholm),
                 category="suspected_dealing")
    table = services.counts_by_month(place, deviations.visible_deviations(world.coordinator), months=3, now=now)
    assert table.months == ["2026-01", "2026-02", "2026-03"]
    assert [(key, counts, total) for key, _name, counts, total in table.rows] == [
        ("drugs", [0, 2, 0], 2), ("damage", [0, 0, 1], 1)]
    assert table.totals == [0, 2, 1]


def _cluster(world: World, centre: tuple[float, float], count: int, weeks: int, now: dt.datetime,
             place_name: str = "") -> None:
    for i in range(count):
        world.report(world.police_reporter, lon=centre[0] + (i % 3) * 0.0002, lat=centre[1] + (i % 2) * 0.0002,
                     observed_at=now - dt.timedelta(days=7 * (i % weeks) + 1), place_name=place_name)


def test_suggestions_find_a_recurring_cluster_and_nothing_else(world: World) -> None:
    now = timezone.now()
    _cluster(world, (18.09, 59.244), count=6, weeks=4, now=now, place_name="Torget")  # recurs: suggested
    _cluster(world, (18.12, 59.26), count=6, weeks=1, now=now)  # one busy week: not a place
    _cluster(world, (18.06, 59.23), count=3, weeks=3, now=now)  # too few
    found = services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                    radius_m=100, days=90, min_count=5, min_weeks=3, now=now)
    assert len(found) == 1
    [suggestion] = found
    assert suggestion.count == 6
    assert suggestion.weeks == 4
    assert suggestion.name_hint == "Torget"
    # The centre is the mean of the six points: offsets 0, 1, 2, 0, 1, 2 (times 0.0002) and 0, 1, 0, 1, 0, 1.
    assert suggestion.lon == pytest.approx(18.09 + 0.0002, abs=1e-6)
    assert suggestion.lat == pytest.approx(59.244 + 0.0001, abs=1e-6)


def test_suggestions_leave_out_deviations_already_in_a_place(world: World) -> None:
    now = timezone.now()
    _cluster(world, CENTRE, count=6, weeks=4, now=now)
    circle(world, radius=200)
    assert services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                   radius_m=100, min_count=5, min_weeks=3, now=now) == []


def test_suggestions_of_an_empty_forum_are_empty(world: World) -> None:
    assert services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator)) == []


def test_suggestion_parameters_are_checked(world: World) -> None:
    with pytest.raises(InvalidInput, match="mellan 10 och 2000"):
        services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator), radius_m=3)


@pytest.mark.parametrize(("point", "expected"), [
    ((18.09, 59.245), True), ((18.11, 59.245), False),  # inside, outside
    ((18.08, 59.245), True), ((18.09, 59.24), True), ((18.10, 59.25), True),  # on an edge, on a corner
    ((18.0875, 59.2475), False),  # in the hole
])
def test_the_sqlite_point_in_polygon_agrees_with_shapely(point: tuple[float, float], expected: bool) -> None:
    import json

    from shapely.geometry import Point, shape

    from lagesbild.spatial_index import point_in_polygon

    area = {"type": "Polygon", "coordinates": [
        [[18.08, 59.24], [18.10, 59.24], [18.10, 59.25], [18.08, 59.25], [18.08, 59.24]],
        [[18.085, 59.245], [18.09, 59.245], [18.09, 59.249], [18.085, 59.249], [18.085, 59.245]]]}
    assert shape(area).covers(Point(point)) == expected
    assert point_in_polygon(json.dumps(area, sort_keys=True), *point) == expected


def test_suggestions_leave_out_clusters_beside_an_existing_place(world: World) -> None:
    # Deviations just outside a drawn place recur there too; a second place beside it would split them.
    now = timezone.now()
    _cluster(world, (18.09, 59.244), count=6, weeks=4, now=now)
    found = services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                    radius_m=100, min_count=5, min_weeks=3, now=now)
    assert len(found) == 1
    # A circle 150 m east, of radius 60 m: it does not contain the cluster (about 140 m away) but its
    # circle and the suggestion's overlap.
    services.create_place(world.coordinator, services.PlaceInput(
        name="Busstorget", lon=18.09 + 150 / 56900, lat=59.244, radius_m=60))
    assert services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                   radius_m=100, min_count=5, min_weeks=3, now=now) == []


def test_suggestions_leave_out_clusters_beside_a_drawn_area(world: World) -> None:
    now = timezone.now()
    _cluster(world, (18.09, 59.244), count=6, weeks=4, now=now)
    # A square whose west edge is 50 m east of the cluster: outside it, but nearer than the radius.
    west = 18.09 + 0.0004 + 50 / 56900
    square = {"type": "Polygon", "coordinates": [[[west, 59.243], [west + 0.002, 59.243], [west + 0.002, 59.245],
                                                   [west, 59.245], [west, 59.243]]]}
    services.create_place(world.coordinator, services.PlaceInput(name="Parken", area=square))
    assert services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                   radius_m=100, min_count=5, min_weeks=3, now=now) == []
    # Far enough away (a radius and more), the same cluster is suggested.
    services.delete_place(world.coordinator, services.forum_places(world.coordinator).get().pk)
    far = [[[c[0] + 0.004, c[1]] for c in square["coordinates"][0]]]
    services.create_place(world.coordinator, services.PlaceInput(name="Parken",
                                                                 area={"type": "Polygon", "coordinates": far}))
    assert len(services.suggest_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                       radius_m=100, min_count=5, min_weeks=3, now=now)) == 1


def test_the_places_page_marks_each_suggestion_on_a_map_by_its_number(world: World) -> None:
    now = timezone.now()
    _cluster(world, (18.09, 59.244), count=6, weeks=4, now=now)
    _cluster(world, (18.12, 59.26), count=7, weeks=4, now=now)
    svg = places_page_svg(world)
    # Two suggestions, the denser one first, each a circle with its number where its deviations are.
    labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="12" font-weight="bold"[^>]*>(\d)</text>',
                        svg)
    assert [label for *_, label in labels] == ["1", "2"]
    first, second = ((float(x), float(y)) for x, y, _ in labels)
    assert first[0] > second[0] and first[1] < second[1]  # number 1 is the cluster to the north-east
    assert "Förslag 1: 7 avvikelser" in svg


def places_page_svg(world: World) -> str:
    page = world.client(world.coordinator).get("/f/farsta/platser/").content.decode()
    start = page.index('<svg xmlns="http://www.w3.org/2000/svg"')
    return page[start:page.index("</svg>", start)]
