"""The pre-aggregated counts: equal to counting the rows, for every reader, period and category, over random
writes, withdrawals, visibility changes and deletions; and what the map's aggregates make of them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import h3
import pytest
from django.db import connection
from h3.api import basic_int as h3_int
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lagesbild import geometry
from lagesbild.deviations import counts, services
from lagesbild.deviations.derived import derived_fields
from lagesbild.deviations.models import Category, Deviation, DeviationCount, DeviationShare
from tests.conftest import INSIDE, MARKER, World

pytestmark = pytest.mark.django_db
BASE = dt.datetime(2026, 3, 29, 22, 30, tzinfo=dt.UTC)  # a few days before a month's end, near midnight
SPREAD_MINUTES = 80 * 24 * 60
# Times that fall on or right beside a day's or a month's edge (in minutes after BASE), where an error of one
# would show: midnight UTC, the end of March and of April, and a microsecond either side of them.
EDGES = [90, 89, 91, 90 + 1440, 90 + 2 * 1440, 90 + 32 * 1440, 90 + 33 * 1440 - 1]
CATEGORIES = ["graffiti", "damage", "littering", "suspected_dealing", "fire"]
VISIBILITIES = ["forum", "forum", "organisation", "named"]


def moment(minutes: int, nudge: int = 0) -> dt.datetime:
    """`nudge` moves it by microseconds (-1, 0, 1) off the minute."""
    return BASE + dt.timedelta(minutes=minutes, microseconds=nudge)


minutes = st.one_of(st.integers(0, SPREAD_MINUTES), st.sampled_from(EDGES))


def expected(membership: Any, start: dt.datetime | None, end: dt.datetime | None,
             category_ids: frozenset[int] | None, resolution: int) -> Counter[tuple[int, int]]:
    """Counting the rows the member may see, the slow and obvious way."""
    rows = services.visible_deviations(membership)
    if start:
        rows = rows.filter(observed_at__gte=start)
    if end:
        rows = rows.filter(observed_at__lte=end)
    if category_ids is not None:
        rows = rows.filter(category_id__in=category_ids)
    result: Counter[tuple[int, int]] = Counter()
    for h3_10, category in rows.values_list("h3_10", "category_id"):
        result[(h3_int.cell_to_parent(h3_10, resolution) if resolution else 0, category)] += 1
    return result


FIELDS = ("forum_id", "resolution", "span", "period", "area", "cell", "category", "count")


def kept_counts() -> dict[tuple[Any, ...], int]:
    return {key[:-1]: key[-1] for key in DeviationCount.objects.exclude(count=0).values_list(*FIELDS)}


operation = st.one_of(
    st.tuples(st.just("report"), st.integers(0, 2), st.sampled_from(CATEGORIES), st.sampled_from(VISIBILITIES),
              st.integers(-40, 40), st.integers(-25, 25), minutes, st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("withdraw"), st.integers(0, 50)),
    st.tuples(st.just("restore"), st.integers(0, 50)),
    st.tuples(st.just("visibility"), st.integers(0, 50), st.sampled_from(VISIBILITIES)),
    st.tuples(st.just("category"), st.integers(0, 50), st.sampled_from(CATEGORIES)),
    st.tuples(st.just("move"), st.integers(0, 50), st.integers(-40, 40), st.integers(-25, 25), minutes),
    st.tuples(st.just("delete"), st.integers(0, 50)),
)
question = st.tuples(
    st.integers(0, 3),  # the reader: the district, the police, the housing company, the school (shared with)
    st.one_of(st.none(), minutes),  # from
    st.one_of(st.none(), minutes),  # to
    st.sampled_from([-1, 0, 1]),  # microseconds off the minute, for both
    st.one_of(st.none(), st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3)),
    st.sampled_from([0, 6, 8, 9, 10]),
)


def _position(dx: int, dy: int) -> tuple[float, float]:
    return INSIDE[0] + dx * 0.0005, INSIDE[1] + dy * 0.0004  # up to 2 km apart: many hexagons, some shared


# Not shrunk: each example writes through the services, and shrinking one would take many minutes; the
# failing example is printed whole instead.
@settings(max_examples=25, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=14), questions=st.lists(question, min_size=3,
                                                                                    max_size=6))
def test_the_counts_equal_counting_the_rows(world: World, operations: list[tuple[Any, ...]],
                                            questions: list[tuple[Any, ...]]) -> None:
    Deviation.objects.all().delete()
    assert kept_counts() == {}  # every count went down to nothing with its deviations
    members = [world.coordinator, world.police_reporter, world.housing_reporter, world.viewer]
    category = {c.key: c for c in Category.objects.filter(forum__isnull=True)}
    made: list[int] = []
    for op in operations:
        kind = op[0]
        if kind == "report":
            _kind, who, key, visibility, dx, dy, when, nudge = op
            lon, lat = _position(dx, dy)
            shared = [world.school.pk] if visibility == "named" else []
            made.append(world.report(members[who], category=key, lon=lon, lat=lat, observed_at=moment(when, nudge),
                                     visibility=visibility, shared_with=shared).pk)
            continue
        if not made:
            continue
        pk = made[op[1] % len(made)]
        rows = Deviation.objects.filter(pk=pk)
        if kind == "withdraw":
            rows.update(withdrawn_at=BASE)
        elif kind == "restore":
            rows.update(withdrawn_at=None)
        elif kind == "visibility":
            rows.update(visibility=op[2])
            if op[2] == "named":
                DeviationShare.objects.get_or_create(deviation_id=pk, organisation=world.school,
                                                     defaults={"forum": world.forum})
        elif kind == "category":
            rows.update(category=category[op[2]])
        elif kind == "move":
            lon, lat = _position(op[2], op[3])
            rows.update(lon=lon, lat=lat, observed_at=moment(op[4]),
                        **derived_fields(lon, lat, moment(op[4]), "Europe/Stockholm"))
        elif kind == "delete":
            rows.delete()
            made.remove(pk)  # a later operation would share a deviation that is gone (a dangling row)
    kept = kept_counts()
    rebuilt = {key[:-1]: key[-1] for key in _rebuilt()}
    assert kept == rebuilt, ("the triggers kept other counts than the rows", operations)
    for who, start, end, nudge, keys, resolution in questions:
        membership = members[who]
        since = moment(start, nudge) if start is not None else None
        until = moment(end, nudge) if end is not None else None
        if since and until and since > until:
            since, until = until, since
        ids = frozenset(services.category_ids_with_children(world.forum, keys)) if keys else None
        asked = counts.Question(membership, since, until, ids, resolution)
        want = expected(membership, since, until, ids, resolution)
        about = (who, since, until, keys, resolution, operations)
        assert +counts.cell_counts(asked) == want, about
        if resolution:
            totals: Counter[int] = Counter()
            for (cell, _category), n in want.items():
                totals[cell] += n
            assert +counts.cell_totals(asked) == totals, about


def test_the_edges_of_days_months_and_periods_count_exactly(world: World) -> None:
    """Deviations a microsecond either side of midnight and of a month's end, read over periods that begin and
    end exactly there (the period's end is inclusive)."""
    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    moments = ["2026-03-31T23:59:59.999999", "2026-04-01T00:00:00", "2026-04-01T00:00:00.000001",
               "2026-04-30T23:59:59.999999", "2026-05-01T00:00:00", "2026-05-01T00:00:00.000001"]
    for text in moments:
        world.report(world.housing_reporter, category="graffiti", observed_at=at(text))
        world.report(world.police_reporter, category="graffiti", observed_at=at(text), visibility="organisation")
    periods = [("2026-04-01T00:00:00", "2026-04-30T23:59:59.999999"), ("2026-03-31T23:59:59.999999",
               "2026-05-01T00:00:00"), ("2026-04-01T00:00:00.000001", "2026-04-01T00:00:00.000001"),
               ("2026-04-01T00:00:00", "2026-05-01T00:00:00"), ("2026-03-01T00:00:00", "2026-04-30T23:59:59.999998")]
    for start, end in periods:
        for membership in (world.housing_reporter, world.police_reporter):
            for resolution in (0, 8, 10):
                asked = counts.Question(membership, at(start), at(end), None, resolution)
                want = expected(membership, at(start), at(end), None, resolution)
                assert sum(want.values()) > 0
                assert +counts.cell_counts(asked) == want, (start, end, membership, resolution)


def _rebuilt() -> list[tuple[Any, ...]]:
    """The counts as rebuilt from the rows (in a savepoint, rolled back, so the kept ones stay as they were)."""
    from django.db import transaction

    class Undo(Exception):
        pass

    rows: list[tuple[Any, ...]] = []
    try:
        with transaction.atomic():
            counts.rebuild(connection)
            rows = list(DeviationCount.objects.exclude(count=0).values_list(*FIELDS))
            raise Undo
    except Undo:
        pass
    return rows


@pytest.mark.parametrize(("start", "end", "months", "days", "rows"), [
    # within one day: all from the rows
    ("2026-03-10T08:00", "2026-03-10T20:00", None, [], [("2026-03-10T08:00", "2026-03-10T20:00:00.000001")]),
    # a whole day exactly (the end inclusive, to the last microsecond)
    ("2026-03-10T00:00", "2026-03-10T23:59:59.999999", None, [("2026-03-10", "2026-03-11")], []),
    # a day and a bit either side
    ("2026-03-09T22:00", "2026-03-11T01:00", None, [("2026-03-10", "2026-03-11")],
     [("2026-03-09T22:00", "2026-03-10T00:00"), ("2026-03-11T00:00", "2026-03-11T01:00:00.000001")]),
    # whole months, whole days either side, hours either side
    ("2026-01-30T12:00", "2026-04-02T06:00", ("2026-02", "2026-04"),
     [("2026-01-31", "2026-02-01"), ("2026-04-01", "2026-04-02")],
     [("2026-01-30T12:00", "2026-01-31T00:00"), ("2026-04-02T00:00", "2026-04-02T06:00:00.000001")]),
    # exactly one month
    ("2026-02-01T00:00", "2026-02-28T23:59:59.999999", ("2026-02", "2026-03"), [], []),
])
def test_a_period_is_cut_into_months_days_and_hours(start: str, end: str, months: Any, days: Any,
                                                    rows: Any) -> None:
    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    def day(text: str) -> int:
        return counts.day_of(at(text))

    def month(text: str) -> int:
        year, number = map(int, text.split("-"))
        return year * 12 + number - 1

    part = counts.split(at(start), at(end))
    assert part.months == (tuple(month(m) for m in months) if months else None)
    assert part.days == [(day(a), day(b)) for a, b in days]
    assert part.rows == [(at(a), at(b)) for a, b in rows]


def test_the_map_aggregates_count_a_restricted_one_only_for_those_who_may_see_it(world: World) -> None:
    world.report(world.housing_reporter, category="graffiti")
    world.report(world.housing_reporter, category="littering", lon=INSIDE[0] + 0.01)
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                 description=MARKER)
    params = {"bbox": "18.05,59.22,18.15,59.27", "cells": 32}
    url = "/api/forums/farsta/deviations/aggregates"
    police = world.client(world.police_reporter).get(url, params).json()
    housing = world.client(world.housing_reporter).get(url, params).json()
    assert police["numberMatched"] == 3
    assert housing["numberMatched"] == 2
    assert housing["categories"] == {"damage": 1, "littering": 1}
    assert police["categories"]["drugs"] == 1
    assert sum(f["properties"]["count"] for f in housing["features"]) == 2
    # each feature is an H3 hexagon at its centre
    for feature in police["features"]:
        lat, lon = h3.cell_to_latlng(feature["properties"]["cell"])
        assert feature["geometry"]["coordinates"] == [round(lon, 6), round(lat, 6)]
    # a box that leaves out the hexagon of the first two leaves them out
    far = world.client(world.housing_reporter).get(url, {**params, "bbox": "18.12,59.26,18.15,59.27"}).json()
    assert far["numberMatched"] == 0 and far["features"] == []


@pytest.mark.parametrize(("bbox", "cells"), [
    ("17.9,59.1,18.3,59.4", 8), ("18.05,59.22,18.15,59.27", 4), ("18.05,59.22,18.15,59.27", 16),
    ("18.07,59.235,18.10,59.25", 16), ("18.085,59.24,18.095,59.245", 16),
    ("16.8,59.3,19.2,59.55", 4)])  # resolution 4 (the outside case: test_a_hexagon_larger_than_the_boxs_areas...)
def test_the_map_hexagons_and_legend_equal_counting_the_rows_by_hand(world: World, bbox: str, cells: int) -> None:
    """The forum's whole area and a city's box (hexagons from the counts), districts' (finer hexagons, from the
    rows): each hexagon whose centre is in the box (every hexagon, for a box around the whole area) holds the
    deviations the reader may see there, and the legend adds them up by main category. Restricted ones
    planted, of another organisation and the reader's own."""
    import random

    rng = random.Random(3)
    for n in range(120):
        who = world.police_reporter if n % 4 == 0 else world.housing_reporter
        world.report(who, category=rng.choice(CATEGORIES), lon=rng.uniform(18.06, 18.14),
                     lat=rng.uniform(59.225, 59.265), observed_at=moment(rng.randrange(0, 20 * 1440)),
                     visibility="organisation" if n % 3 == 0 else "forum")
    # At the area's corners, where a hexagon's centre can lie outside a box around the whole area (found from
    # outside): the number and the legend must count what the hexagons show, no more.
    for lon, lat in ((18.0505, 59.2205), (18.1495, 59.2695)):
        world.report(world.housing_reporter, lon=lon, lat=lat, observed_at=moment(60))
        world.report(world.police_reporter, lon=lon, lat=lat, observed_at=moment(60), visibility="organisation")
    west, south, east, north = map(float, bbox.split(","))
    bounds = geometry.area_bounds(world.forum.area)
    whole = bounds is not None and geometry.bbox_contains((west, south, east, north), bounds)
    for reader in (world.housing_reporter, world.police_reporter, world.viewer):
        answer = world.client(reader).get("/api/forums/farsta/deviations/aggregates", {
            "bbox": bbox, "cells": cells, "from": BASE.isoformat(), "to": moment(20 * 1440).isoformat()}).json()
        resolution = h3.get_resolution(answer["features"][0]["properties"]["cell"])
        by_cell: Counter[str] = Counter()
        by_main: Counter[str] = Counter()
        for h3_10, category in services.visible_deviations(reader).values_list("h3_10", "category__key"):
            cell = h3.cell_to_parent(h3_int.int_to_str(h3_10), resolution)
            lat, lon = h3.cell_to_latlng(cell)
            if whole or (west <= lon <= east and south <= lat <= north):  # the whole area: every hexagon
                by_cell[cell] += 1
                parent = Category.objects.get(key=category, forum__isnull=True).parent
                by_main[parent.key if parent else category] += 1
        got = {f["properties"]["cell"]: f["properties"]["count"] for f in answer["features"]}
        assert got == dict(by_cell), (reader, resolution)
        assert answer["categories"] == dict(by_main) and answer["numberMatched"] == sum(by_cell.values())


def test_a_hexagon_larger_than_the_boxs_areas_counts_all_it_holds(world: World) -> None:
    """Found from outside: at resolution 4 a hexagon whose centre is in the box reaches far past the areas the
    box meets; its kept counts from there were left out, while the reader's restricted one was counted."""
    at = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    world.report(world.housing_reporter, category="graffiti", lon=18.0505, lat=59.2205, observed_at=at)
    world.report(world.housing_reporter, category="graffiti", lon=18.0505, lat=59.2205, observed_at=at,
                 visibility="organisation")
    answer = world.client(world.housing_reporter).get("/api/forums/farsta/deviations/aggregates", {
        "bbox": "16.8,59.3,19.2,59.55", "cells": 4}).json()
    cell = h3.latlng_to_cell(59.2205, 18.0505, 4)
    assert [(f["properties"]["cell"], f["properties"]["count"]) for f in answer["features"]] == [(cell, 2)]
    assert answer["numberMatched"] == 2


def test_a_filter_the_counts_cannot_answer_counts_the_rows(world: World) -> None:
    world.report(world.housing_reporter, category="graffiti")
    done = world.report(world.housing_reporter, category="graffiti")
    Deviation.objects.filter(pk=done.pk).update(status="done")
    answer = world.client(world.housing_reporter).get("/api/forums/farsta/deviations/aggregates", {
        "bbox": "18.05,59.22,18.15,59.27", "status": "new"}).json()
    assert answer["numberMatched"] == 1
    assert ":" in answer["features"][0]["properties"]["cell"]  # the square grid's column:row


def test_taking_a_deviation_away_never_makes_a_count(world: World) -> None:
    """Deleting whole forums' data may remove the counts before the deviations: taking the deviations away
    then lowers nothing, and adds no count of -1 pointing at what is gone."""
    deviation = world.report(world.housing_reporter, category="graffiti")
    # resolution 8, day and month, its category and all; and its category in the whole forum, day and month
    assert DeviationCount.objects.filter(forum=world.forum, count=1).count() == 6
    DeviationCount.objects.all().delete()
    Deviation.objects.filter(pk=deviation.pk).delete()
    assert not DeviationCount.objects.exists()


def test_wrong_cells_and_periods_are_refused_clearly(world: World) -> None:
    client = world.client(world.housing_reporter)
    url = "/api/forums/farsta/deviations/aggregates"
    answer = client.get(url, {"bbox": "18.05,59.22,18.15,59.27", "cells": 200})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "cells"
    answer = client.get(url, {"bbox": "18.05,59.22,18.15,59.27", "from": "2026-03-02T00:00:00Z",
                              "to": "2026-03-01T00:00:00Z"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "from"
    answer = client.get(url, {"bbox": "18.05,59.22,18.15,59.27", "category": "no-such"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "category"


def test_a_list_may_leave_out_its_count(world: World) -> None:
    """The map takes the number from the aggregates when there are too many to draw, and spares the list
    counting a city."""
    for _ in range(3):
        world.report(world.housing_reporter, category="graffiti")
    client = world.client(world.housing_reporter)
    counted = client.get("/api/forums/farsta/deviations", {"limit": 2}).json()
    assert counted["numberMatched"] == 3 and counted["numberReturned"] == 2
    uncounted = client.get("/api/forums/farsta/deviations", {"limit": 2, "count": "false"}).json()
    assert "numberMatched" not in uncounted
    assert uncounted["features"] == counted["features"]
    assert any(link["rel"] == "next" for link in uncounted["links"])


@pytest.mark.django_db(transaction=True)
def test_a_bulk_load_adds_its_rows_to_the_counts_as_counting_them_by_hand_does(world: World) -> None:
    """An import's rows are counted at once after the load (on SQLite, with the row triggers off): at times on
    a day's and a month's edge, restricted ones among them (not counted), onto counts that exist already."""
    import random
    from types import SimpleNamespace

    from django.db import transaction

    from lagesbild.deviations import bulk

    world.report(world.housing_reporter, category="graffiti", observed_at=moment(EDGES[0]))  # counts to add to
    rng = random.Random(5)
    category = {key: Category.objects.get(key=key, forum__isnull=True).pk for key in CATEGORIES}
    rows = [SimpleNamespace(lon=INSIDE[0] + rng.uniform(-0.02, 0.02), lat=INSIDE[1] + rng.uniform(-0.01, 0.01),
                            category_id=category[rng.choice(CATEGORIES)],
                            observed_at=moment(rng.choice(EDGES), rng.choice([-1, 0, 1])), observed_until=None,
                            reported_at=None, place_name="", description="", organisation_id=world.housing.pk,
                            severity="medium", visibility=rng.choice(["forum", "forum", "organisation"]),
                            status="new") for _ in range(600)]
    with transaction.atomic(), bulk.Writer(world.housing_reporter, None, "import") as writer:  # type: ignore[arg-type]
        writer.write(rows)

    by_hand: Counter[tuple[Any, ...]] = Counter()
    counted = Deviation.objects.filter(forum=world.forum, visibility="forum", withdrawn_at__isnull=True)
    for h3_8, category_id, observed_at in counted.values_list("h3_8", "category_id", "observed_at"):
        day = counts.day_of(observed_at)
        month = observed_at.year * 12 + observed_at.month - 1
        area = h3_int.cell_to_parent(h3_8, counts.AREA_RESOLUTION)
        for span, period in ((counts.DAY, day), (counts.MONTH, month)):
            for key in (category_id, counts.ALL):
                by_hand[(world.forum.pk, 8, span, period, area, h3_8, key)] += 1
            by_hand[(world.forum.pk, 0, span, period, 0, 0, category_id)] += 1
    assert counted.count() > 300
    assert kept_counts() == dict(by_hand)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("rows", "vacuumed"), [(300, True), (299, False)])
def test_a_big_load_is_vacuumed_once_committed_so_its_counts_are_read_from_their_indexes(
        world: World, monkeypatch: pytest.MonkeyPatch, rows: int, vacuumed: bool) -> None:
    """PostgreSQL reads a table's rows from an index alone only on pages its visibility map marks all visible,
    and only VACUUM marks them. A bulk load of at least VACUUM_ROWS (300 here) vacuums the deviations and their
    counts once it has committed; a smaller one is left to autovacuum. (Whether VACUUM can mark the new pages
    depends on what other transactions are open, so this counts the vacuums rather than the pages.)"""
    from types import SimpleNamespace

    from django.db import transaction

    from lagesbild.deviations import bulk

    monkeypatch.setattr(bulk, "VACUUM_ROWS", 300)
    category = Category.objects.get(key="graffiti", forum__isnull=True).pk
    staged = [SimpleNamespace(lon=INSIDE[0] + n * 1e-5, lat=INSIDE[1], category_id=category, observed_at=moment(n),
                              observed_until=None, reported_at=None, place_name="", description="",
                              organisation_id=world.housing.pk, severity="medium", visibility="forum",
                              status="new") for n in range(rows)]

    def vacuums() -> list[tuple[str, int]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the figures as they are now
            cursor.execute("SELECT relname, vacuum_count FROM pg_stat_user_tables "
                           "WHERE relname IN ('deviations_deviation', 'deviations_deviationcount') ORDER BY relname")
            return cursor.fetchall()

    before = vacuums()
    with transaction.atomic(), bulk.Writer(world.housing_reporter, None, "import") as writer:  # type: ignore[arg-type]
        writer.write(staged)
    assert vacuums() == [(name, n + vacuumed) for name, n in before]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("left_behind", ["a finished new index", "an invalid new index", "nothing"])
def test_the_covering_index_migration_run_again_after_an_interruption_ends_with_the_covering_index(
        left_behind: str) -> None:
    """The migration builds each index beside the old one (CREATE INDEX CONCURRENTLY, outside a transaction),
    so it can be cut off half-way: after the old index is dropped and before the new one takes its name, or
    while the new one is built (which leaves it invalid). Run again, it ends with the covering index either
    way, and keeps a finished one rather than building it again."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("lagesbild.deviations.migrations.0019_covering_indexes")
    name, table = "deviation_restricted", "deviations_deviation"
    new = f"{name}_new"
    with connection.cursor() as cursor:
        if left_behind != "nothing":  # cut off after building: the old one dropped, the new one not renamed
            cursor.execute(f"ALTER INDEX {name} RENAME TO {new}")
            if left_behind == "an invalid new index":  # as a build cut off half-way leaves it
                cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [new])
        cursor.execute("SELECT oid FROM pg_class WHERE relname = %s", [new])
        before = cursor.fetchone()
    with connection.schema_editor(atomic=False) as editor:
        migration._swap(migration.COVERING)(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.oid, c.relname, i.indisvalid, pg_get_indexdef(c.oid) FROM pg_index i "
                       "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
                       "AND c.relname LIKE %s", [table, f"{name}%"])
        found = cursor.fetchall()
    assert [(relname, valid) for _oid, relname, valid, _definition in found] == [(name, True)]
    assert "INCLUDE (withdrawn_at, h3_8, category_id)" in found[0][3]
    # A finished one is kept as it was; an invalid one is built again.
    kept = before is not None and found[0][0] == before[0]
    assert kept == (left_behind == "a finished new index")
