"""Patterns: hexagons, Gi* hotspots (against PySAL's esda), when, actors, repeat places and comparisons."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pytest
from django.utils import timezone

from lagesbild.analysis import hotspots, services
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from tests.conftest import World

pytestmark = pytest.mark.django_db

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CENTRE = h3.str_to_int(h3.latlng_to_cell(59.244, 18.09, 9))


def cell_point(cell: int) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    return lon, lat


def neighbour(cell: int, k: int) -> int:
    """A hexagon exactly k steps away."""
    return h3.str_to_int(sorted(h3.grid_ring(h3.int_to_str(cell), k))[0])


def everything(world: World, member: Any = None) -> Any:
    return services.filtered(member or world.coordinator, deviations.DeviationFilter())


# --- Gi* -------------------------------------------------------------------------------------------------------

def test_gi_star_matches_pysal_esda() -> None:
    import esda  # a dev dependency, installed by make test
    from libpysal.weights import W

    rng = np.random.default_rng(7)
    cells = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(CENTRE), 5))
    study = hotspots._study(dict.fromkeys(cells, 1.0))
    values = np.array([float(rng.poisson(3)) for _c in study.cells])
    values[study.cells.index(CENTRE)] += 25  # and one busy spot
    ours = hotspots.gi_star(values, study.neighbours)
    weights = W({i: [int(j) for j in row if j >= 0 and j != i] for i, row in enumerate(study.neighbours)})
    theirs = esda.G_Local(values, weights, transform="B", star=True, permutations=0)
    assert np.allclose(ours, theirs.Zs, atol=1e-9)


def test_the_exact_p_value_is_the_binomial_tail() -> None:
    # 10 of 20 deviations in a neighbourhood that is a tenth of the area: P(X >= 10) for Bin(20, 0.1), doubled.
    tail = sum(math.comb(20, k) * 0.1**k * 0.9 ** (20 - k) for k in range(10, 21))
    p, high = hotspots.exact_p_values(np.array([10]), 20, np.array([0.1]))
    assert math.isclose(p[0], 2 * tail, rel_tol=1e-9) and high[0]
    # None where two were expected: P(X = 0) = 0.9**20, doubled.
    p, high = hotspots.exact_p_values(np.array([0]), 20, np.array([0.1]))
    assert math.isclose(p[0], 2 * 0.9**20, rel_tol=1e-9) and not high[0]


def test_one_obvious_hotspot_is_found_and_nothing_else() -> None:
    cells = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(CENTRE), 4))
    counts = dict.fromkeys(cells, 1)
    counts[CENTRE] = 40
    result = hotspots.find_hotspots(counts, 9, None)
    assert result.verdict == "tested" and result.resolution == 9
    hot = {c.cell for c in result.hot}
    assert CENTRE in hot
    # Only the centre and the hexagons whose neighbourhood holds it can stand out.
    assert hot <= {h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(CENTRE), 1)}
    assert result.cold == []
    centre = next(c for c in result.cells if c.cell == CENTRE)
    assert centre.fdr == 0.01 and centre.z > 3 and centre.observed == 46


def test_an_empty_area_a_single_deviation_and_ties_have_no_hotspots() -> None:
    assert hotspots.find_hotspots({}, 9, None).verdict == "too_few"
    assert hotspots.find_hotspots({CENTRE: 1}, 9, None).verdict == "too_few"
    # Ties: every hexagon of the area has the same count.
    area = {"type": "Polygon", "coordinates": [[[18.05, 59.22], [18.15, 59.22], [18.15, 59.27], [18.05, 59.27],
                                                [18.05, 59.22]]]}
    even = dict.fromkeys(hotspots.study_area({}, 9, area).cells, 5)
    assert hotspots.find_hotspots(even, 9, area).verdict == "no_variation"
    # Two equal peaks far apart are equally hot.
    far = neighbour(CENTRE, 12)
    counts = dict.fromkeys(hotspots.study_area({}, 9, area).cells, 1) | {CENTRE: 30, far: 30}
    result = {c.cell: c for c in hotspots.find_hotspots(counts, 9, area).cells}
    assert result[CENTRE].kind == result[far].kind == "hot"


def test_hexagons_on_the_edge_count_with_the_share_inside_the_area() -> None:
    area = {"type": "Polygon", "coordinates": [[[18.05, 59.22], [18.15, 59.22], [18.15, 59.27], [18.05, 59.27],
                                                [18.05, 59.22]]]}
    study = hotspots.study_area({}, 9, area)
    weights = dict(zip(study.cells, study.weights.tolist(), strict=True))
    assert weights[CENTRE] == 1.0
    edge = h3.str_to_int(h3.latlng_to_cell(59.22, 18.10, 9))  # its centre lies near the southern edge
    assert 0.0 < weights[edge] < 1.0
    # The hexagons add up to the area: 5.69 km by 5.56 km, in hexagons of about 0.079 km² here.
    assert abs(study.weights.sum() * h3.cell_area(h3.int_to_str(CENTRE), "km^2") - 5.69 * 5.56) < 1.0


def test_too_small_hexagons_for_the_data_are_made_larger() -> None:
    area = {"type": "Polygon", "coordinates": [[[18.05, 59.22], [18.15, 59.22], [18.15, 59.27], [18.05, 59.27],
                                                [18.05, 59.22]]]}
    small = dict.fromkeys(list(hotspots.study_area({}, 10, area).cells)[:60], 1)
    result = hotspots.find_hotspots(small, 10, area)
    assert result.requested_resolution == 10 and result.resolution < 10
    assert sum(c.count for c in result.cells) == 60
    assert "gjordes större" in services.hotspot_summary(result)


def test_the_false_discovery_rate_is_benjamini_hochberg() -> None:
    # Ranked: 0.001 <= 1/5*0.05, 0.008 <= 2/5*0.05 = 0.02, 0.039 > 0.03, 0.041 > 0.04, 0.3 > 0.05.
    assert hotspots.fdr_threshold(np.array([0.3, 0.041, 0.001, 0.039, 0.008]), 0.05) == 0.008
    assert hotspots.fdr_threshold(np.array([0.5, 0.6]), 0.05) == -1.0


def test_hotspots_are_found_in_the_forums_area_with_its_empty_hexagons(world: World) -> None:
    for _i in range(60):
        world.report(world.police_reporter, lon=18.09, lat=59.244)
    for lon, lat in ((18.06, 59.23), (18.14, 59.26), (18.07, 59.26), (18.13, 59.225)):
        world.report(world.housing_reporter, lon=lon, lat=lat)
    result = services.hotspots(world.coordinator, everything(world), resolution=8)
    assert result.resolution == 8
    assert len(result.cells) > 40  # the area's empty hexagons are in the study area too
    centre8 = h3.str_to_int(h3.latlng_to_cell(59.244, 18.09, 8))
    assert centre8 in {c.cell for c in result.hot}
    hot = len([c for c in result.hot if (c.fdr or 1) <= 0.05])
    cold = len([c for c in result.cold if (c.fdr or 1) <= 0.05])  # with 60 of 64 on one square, the rest is cold
    assert hot >= 1
    assert services.hotspot_summary(result).startswith(
        f"{hot} hexagoner är hotspots och {cold} kalla områden vid en andel falska upptäckter på 5 %")


# --- Hexagons, when, actors ------------------------------------------------------------------------------------

def test_hexagon_counts_follow_the_filter_and_visibility(world: World) -> None:
    world.report(world.police_reporter, lon=18.09, lat=59.244)
    world.report(world.police_reporter, lon=18.09, lat=59.244, visibility="organisation")
    lon, lat = cell_point(neighbour(CENTRE, 3))
    world.report(world.housing_reporter, lon=lon, lat=lat, category="litter")
    assert services.hexagon_counts(everything(world), 9) == {CENTRE: 1, neighbour(CENTRE, 3): 1}
    assert services.hexagon_counts(everything(world, world.police_lead), 9)[CENTRE] == 2
    litter = services.filtered(world.coordinator, deviations.DeviationFilter(categories=["littering"]))
    assert services.hexagon_counts(litter, 9) == {neighbour(CENTRE, 3): 1}
    [feature] = services.hexagon_features({CENTRE: {"count": 1}})
    assert len(feature["geometry"]["coordinates"][0]) == 7  # six corners, closed


def test_the_weekday_hour_grid_is_in_local_time_across_daylight_saving(world: World) -> None:
    # Summer time starts at 02:00 on Sunday 29 March 2026 (UTC+1 becomes UTC+2).
    utc = dt.UTC
    for moment in (dt.datetime(2026, 3, 28, 23, 30, tzinfo=utc),  # Sunday 00:30 local (winter time)
                   dt.datetime(2026, 3, 29, 0, 30, tzinfo=utc),   # Sunday 01:30 local
                   dt.datetime(2026, 3, 29, 1, 30, tzinfo=utc),   # Sunday 03:30 local (summer time)
                   dt.datetime(2026, 3, 29, 12, 0, tzinfo=utc),   # Sunday 14:00 local
                   dt.datetime(2026, 10, 25, 0, 30, tzinfo=utc),  # Sunday 02:30 local, summer time
                   dt.datetime(2026, 10, 25, 1, 30, tzinfo=utc)):  # Sunday 02:30 local again, winter time
        world.report(world.police_reporter, observed_at=moment)
    grid = services.week_hour_grid(everything(world))
    sunday = grid[6]
    assert (sunday[0], sunday[1], sunday[2], sunday[3], sunday[14]) == (1, 1, 2, 1, 1)
    assert sum(map(sum, grid)) == 6


def test_editing_the_time_moves_it_in_the_grid(world: World) -> None:
    deviation = world.report(world.police_reporter, observed_at=dt.datetime(2026, 3, 2, 8, tzinfo=STOCKHOLM))
    deviations.edit_deviation(world.police_reporter, deviation.pk, {"lon": 18.1, "lat": 59.25}, version=1)
    stored = Deviation.objects.get(pk=deviation.pk)
    assert (stored.local_weekday, stored.local_hour, stored.local_month) == (0, 8, 202603)
    assert stored.h3_9 == h3.str_to_int(h3.latlng_to_cell(59.25, 18.1, 9))


def test_the_monthly_trend_compares_with_the_same_months_last_year(world: World) -> None:
    now = dt.datetime(2026, 6, 15, 12, tzinfo=STOCKHOLM)
    for when, category in ((dt.datetime(2026, 6, 1, tzinfo=STOCKHOLM), "graffiti"),
                           (dt.datetime(2026, 5, 31, 23, 30, tzinfo=STOCKHOLM), "graffiti"),  # late on the last of May
                           (dt.datetime(2025, 6, 3, tzinfo=STOCKHOLM), "graffiti"),
                           (dt.datetime(2025, 6, 4, tzinfo=STOCKHOLM), "litter"),
                           (dt.datetime(2024, 6, 4, tzinfo=STOCKHOLM), "litter")):  # two years back: outside
        world.report(world.police_reporter, observed_at=when, category=category)
    trend = services.monthly_trend(world.coordinator, deviations.DeviationFilter(), months=2, now=now)
    assert trend.months == [202605, 202606]
    assert trend.rows == [("damage", "Skadegörelse", [1, 1], [0, 1]), ("littering", "Nedskräpning", [0, 0], [0, 1])]


def test_actors_show_who_reports_what_and_where_they_overlap(world: World) -> None:
    for member, category in ((world.police_reporter, "suspected_dealing"), (world.police_reporter, "graffiti"),
                             (world.housing_reporter, "graffiti"), (world.housing_reporter, "litter")):
        world.report(member, category=category)
    lon, lat = cell_point(neighbour(CENTRE, 4))
    world.report(world.housing_reporter, lon=lon, lat=lat, category="litter")
    result = services.actors(world.coordinator, everything(world))
    assert result.columns[0] == ("damage", "Skadegörelse")
    table = {who: dict(zip([k for k, _n in result.columns], counts, strict=True)) for who, counts, _t in result.rows}
    assert table["Polisen"] == {"damage": 1, "littering": 0, "drugs": 1}
    assert table["Bostadsbolaget"] == {"damage": 1, "littering": 2, "drugs": 0}
    assert result.overlap == [(CENTRE, 2, 4, ["Bostadsbolaget", "Polisen"])]
    kinds = services.actors(world.coordinator, everything(world), by="kind")
    assert [who for who, _c, _t in kinds.rows] == ["Bostadsbolag", "Polis"]


def test_repeat_places_need_many_weeks_not_many_deviations(world: World) -> None:
    now = timezone.now()
    for week in range(5):  # the centre: one a week for five weeks
        world.report(world.police_reporter, observed_at=now - dt.timedelta(days=7 * week + 1))
    lon, lat = cell_point(neighbour(CENTRE, 4))
    for _i in range(10):  # elsewhere: ten in one evening
        world.report(world.police_reporter, lon=lon, lat=lat, observed_at=now - dt.timedelta(days=2))
    found = services.repeat_places(world.coordinator, everything(world), weeks=12, min_weeks=4, now=now)
    assert [(r.cell, r.weeks, r.count) for r in found] == [(CENTRE, 5, 5)]


def test_comparing_with_the_previous_period_and_last_year(world: World) -> None:
    now = dt.datetime(2026, 6, 30, 12, tzinfo=STOCKHOLM)
    start = now - dt.timedelta(days=30)
    for when in (now - dt.timedelta(days=1), now - dt.timedelta(days=2), now - dt.timedelta(days=40),
                 services.a_year_before(now - dt.timedelta(days=3))):
        world.report(world.police_reporter, observed_at=when)
    flt = deviations.DeviationFilter(start=start, end=now)
    previous = services.compare_periods(world.coordinator, flt, "previous", now=now)
    assert previous.total == (2, 1) and previous.cells[CENTRE] == (2, 1)
    assert previous.other == (start - dt.timedelta(days=30), start)
    last_year = services.compare_periods(world.coordinator, flt, "last_year", now=now)
    assert last_year.total == (2, 1)


def test_period_names_as_on_the_map(world: World) -> None:
    now = dt.datetime(2026, 6, 30, 12, tzinfo=STOCKHOLM)
    assert services.period_range(world.forum, "30", None, None, now) == (now - dt.timedelta(days=30), None)
    assert services.period_range(world.forum, "year", None, None, now)[0] == dt.datetime(2026, 1, 1, tzinfo=STOCKHOLM)
    start, end = services.period_range(world.forum, "custom", dt.date(2026, 3, 1), dt.date(2026, 3, 31), now)
    assert (start, end) == (dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM),
                            dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=STOCKHOLM))
    assert services.period_range(world.forum, "all", None, None, now) == (None, None)


# --- API, page and CSV ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "field", "message"), [
    ({"resolution": "7"}, "resolution", "Hexagonernas upplösning måste vara en av 8, 9, 10."),
    ({"resolution": "x"}, "resolution", "resolution måste vara ett tal."),
    ({"from": "2026-03-01T00:00", "to": "2026-02-01T00:00"}, "from", "Periodens början ligger efter dess slut."),
])
def test_bad_pattern_parameters_get_a_clear_error(world: World, query: dict, field: str, message: str) -> None:
    response = world.client(world.coordinator).get("/api/forums/farsta/patterns/hexagons", query)
    assert response.status_code == 422
    assert (response.json()["error"]["field"], response.json()["error"]["message"]) == (field, message)


def test_bad_choices_for_actors_and_comparison(world: World) -> None:
    client = world.client(world.coordinator)
    assert client.get("/api/forums/farsta/patterns/actors", {"by": "colour"}).json()["error"]["field"] == "by"
    assert client.get("/api/forums/farsta/patterns/compare", {"against": "x"}).json()["error"]["field"] == "against"
    page = client.get("/f/farsta/monster/", {"period": "forever"})
    assert page.status_code == 422 and "Okänd period: forever." in page.content.decode()


def test_the_patterns_page_and_its_csv_files(world: World) -> None:
    for _i in range(25):
        world.report(world.police_reporter, lon=18.09, lat=59.244)
    world.report(world.housing_reporter, lon=18.09, lat=59.244, category="litter")
    world.report(world.housing_reporter, lon=18.125, lat=59.232, place_name="Sandsborgsvägen 12, vid kiosken")
    from lagesbild.places import services as places

    places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=18.09, lat=59.244, radius_m=80))
    client = world.client(world.housing_reporter)
    page = client.get("/f/farsta/monster/", {"period": "30", "resolution": "10"}).content.decode()
    for expected in ("Var", "När", "Utveckling", "Vem", "Jämför", "Återkommande platser", "27 avvikelser i filtret.",
                     "Öppna filtret på kartan", "Visa tabell"):
        assert expected in page, expected
    assert 'href="/f/farsta/?period=30"' in page
    # Hexagons go by names people know: the place they lie in, or the street their deviations name.
    assert h3.int_to_str(h3.str_to_int(h3.latlng_to_cell(59.244, 18.09, 10))) not in page
    assert '">Torget</a>' in page and '">Sandsborgsvägen</a>' in page
    # The busiest hexagon opens the map around it, with the same filter.
    assert 'href="/f/farsta/?period=30&amp;bbox=' in page
    csv = client.get("/f/farsta/monster/actors.csv", {"period": "30"})
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("Organisation,")
    assert sorted(lines[1:]) == ["Bostadsbolaget,1,1,2", "Polisen,25,0,25"]
    grid = client.get("/f/farsta/monster/week-hours.csv", {"period": "30"}).content.decode().splitlines()
    assert len(grid) == 8 and grid[1].startswith("måndag,")
    assert client.get("/f/farsta/monster/secrets.csv").status_code == 404


def test_csv_cells_cannot_run_as_formulas() -> None:
    from lagesbild.csvfile import rows_as_csv

    assert rows_as_csv(["a"], [["=HYPERLINK(1)", -3, "@x"]]).splitlines()[1] == "'=HYPERLINK(1),-3,'@x"
