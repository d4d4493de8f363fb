"""Vector tiles: decoded as MapLibre reads them, with restricted deviations planted, and sized at city scale."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from types import SimpleNamespace
from typing import Any

import h3
import mapbox_vector_tile
import pytest
import shapely.geometry
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from lagesbild import data_version
from lagesbild.deviations import bulk
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Category, Deviation
from lagesbild.interop import tiles
from lagesbild.interop.tiles import Tile
from tests.conftest import World

pytestmark = pytest.mark.django_db
BASE = "/api/forums/farsta/tiles/WebMercatorQuad"


def tile_of(lon: float, lat: float, z: int) -> Tile:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return Tile(z, x, y)


def fetch(world: World, membership: Any, tile: Tile, **params: Any) -> Any:
    return world.client(membership).get(f"{BASE}/{tile.z}/{tile.x}/{tile.y}", params)


def layers(response: Any) -> dict[str, list[dict[str, Any]]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(response.content) if response.content else {}
    return {name: layer["features"] for name, layer in decoded.items()}


def test_points_from_zoom_13_with_the_restricted_one_for_its_organisation_only(world: World) -> None:
    shared = world.report(world.housing_reporter, category="graffiti", lon=18.09, lat=59.244)
    restricted = world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                              lon=18.0905, lat=59.2442)
    tile = tile_of(18.09, 59.244, 15)
    housing = layers(fetch(world, world.housing_reporter, tile))
    assert set(housing) == {"deviations"}
    [point] = housing["deviations"]
    assert point["properties"] == {"id": shared.pk, "category": "damage", "status": "new"}
    police = {f["properties"]["id"]: f["properties"] for f in layers(fetch(world, world.police_reporter,
                                                                         tile))["deviations"]}
    assert police[restricted.pk] == {"id": restricted.pk, "category": "drugs", "status": "new"}
    assert set(police) == {shared.pk, restricted.pk}
    # The point lies where the deviation is, in the tile's 4096 units (decoded with y up, from the bottom left).
    west, south, east, north = tile.mercator_bounds()
    mx, my = Transformer.from_crs(4326, 3857, always_xy=True).transform(18.09, 59.244)
    x, y = point["geometry"]["coordinates"]
    assert (x, y) == pytest.approx((4096 * (mx - west) / (east - west), 4096 * (my - south) / (north - south)),
                                   abs=1)


def test_low_zooms_carry_hexagons_whose_counts_are_what_the_reader_may_see(world: World) -> None:
    for k in range(5):
        world.report(world.housing_reporter, lon=18.09 + k * 0.0001, lat=59.244)
    world.report(world.police_reporter, visibility="organisation", lon=18.09, lat=59.244)
    tile = tile_of(18.09, 59.244, 10)
    cell = h3.latlng_to_cell(59.244, 18.09, tiles.RESOLUTION[10])
    for membership, expected in ((world.viewer, 5), (world.police_reporter, 6)):
        found = layers(fetch(world, membership, tile))
        assert "deviations" not in found
        counts = {f["properties"]["cell"]: f["properties"]["count"] for f in found["cells"]}
        assert counts == {cell: expected}
        [centre] = found["cell-centres"]
        assert centre["properties"] == {"cell": cell, "count": expected}
    # The hexagon is drawn where H3 has it: its corners and centre in the tile's units (y up as decoded), its
    # outer ring wound as MVT wants it (a positive area with y down, so clockwise once decoded with y up).
    [hexagon] = found["cells"]
    west, south, east, north = tile.mercator_bounds()
    to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)

    def units(lat: float, lon: float) -> tuple[float, float]:
        mx, my = to_mercator.transform(lon, lat)
        return 4096 * (mx - west) / (east - west), 4096 * (my - south) / (north - south)

    [ring] = hexagon["geometry"]["coordinates"]
    assert hexagon["geometry"]["type"] == "Polygon" and ring[0] == ring[-1]
    corners = [units(lat, lon) for lat, lon in h3.cell_to_boundary(cell)]
    assert len(ring) - 1 == len(corners)
    for corner in corners:
        assert min(math.dist(corner, point) for point in ring) <= 1
    assert not shapely.geometry.Polygon(ring).exterior.is_ccw
    assert math.dist(centre["geometry"]["coordinates"], units(*h3.cell_to_latlng(cell))) <= 1


def test_a_hexagon_on_a_tile_edge_has_its_whole_count_in_both_tiles(world: World) -> None:
    """A hexagon is drawn by each tile it meets, with the same count, and labelled once."""
    z = 11
    edge_tile = tile_of(18.09, 59.244, z)
    east = edge_tile.lonlat_bounds()[2]
    # A hexagon that the tile's east edge cuts through, and deviations on both sides of that edge.
    cell = h3.latlng_to_cell(59.244, east, tiles.RESOLUTION[z])
    lat, lon = h3.cell_to_latlng(cell)
    boundary = h3.cell_to_boundary(cell)
    spots = [(p_lon * 0.7 + lon * 0.3, p_lat * 0.7 + lat * 0.3) for p_lat, p_lon in boundary]
    assert any(s[0] < east for s in spots) and any(s[0] > east for s in spots)
    for spot_lon, spot_lat in spots:
        world.report(world.housing_reporter, lon=spot_lon, lat=spot_lat)
    neighbour = Tile(z, edge_tile.x + 1, edge_tile.y)
    left, right = layers(fetch(world, world.viewer, edge_tile)), layers(fetch(world, world.viewer, neighbour))
    for found in (left, right):
        assert {f["properties"]["cell"]: f["properties"]["count"] for f in found["cells"]}[cell] == 6
    labels = [f for found in (left, right) for f in found.get("cell-centres", []) if f["properties"]["cell"] == cell]
    assert len(labels) == 1


def test_a_busy_tile_past_zoom_13_turns_into_fine_hexagons(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiles, "MAX_POINTS", 3)
    for k in range(4):
        world.report(world.housing_reporter, lon=18.09 + k * 0.0002, lat=59.244)
    tile = tile_of(18.09, 59.244, 14)
    found = layers(fetch(world, world.viewer, tile))
    assert "deviations" not in found
    assert sum(f["properties"]["count"] for f in found["cell-centres"]) == 4
    assert all(h3.get_resolution(f["properties"]["cell"]) == tiles.DENSE_RESOLUTION for f in found["cells"])


@pytest.mark.parametrize("z", [13, 14, 16])
def test_a_hexagon_layer_gets_hexagons_at_every_zoom(world: World, z: int) -> None:
    """What the map's hexagon layer asks for: never points, the patterns' hexagon sizes, the reader's counts."""
    for k in range(3):
        world.report(world.housing_reporter, lon=18.09 + k * 0.00002, lat=59.244)
    world.report(world.police_reporter, visibility="organisation", lon=18.09, lat=59.244)
    tile = tile_of(18.09, 59.244, z)
    resolution = 9 if z == 13 else 10
    cell = h3.latlng_to_cell(59.244, 18.09, resolution)
    for membership, expected in ((world.viewer, 3), (world.police_reporter, 4)):
        found = layers(fetch(world, membership, tile, hexagons="true"))
        assert set(found) == {"cells", "cell-centres"}
        assert {f["properties"]["cell"]: f["properties"]["count"] for f in found["cells"]} == {cell: expected}
    assert set(layers(fetch(world, world.viewer, tile))) == {"deviations"}  # without it, points as before


def test_a_filter_whose_text_looks_like_another_filter_gets_its_own_tile(world: World) -> None:
    """Kept tiles are found by the filter as read: `q=a&status=new` is not the search text `a&status=new`."""
    world.report(world.housing_reporter, description="a")
    tile = tile_of(18.09, 59.244, 12)
    count = lambda **p: sum(f["properties"]["count"] for f in layers(  # noqa: E731
        fetch(world, world.viewer, tile, hexagons="true", **p)).get("cell-centres", []))
    assert count(q="a&status=new") == 0
    assert count(q="a", status="new") == 1


def test_the_filter_applies(world: World) -> None:
    old = world.report(world.housing_reporter, observed_at=timezone.now() - dt.timedelta(days=40))
    new = world.report(world.housing_reporter, category="broken_lighting")
    tile = tile_of(old.lon, old.lat, 16)
    ids = lambda **p: {f["properties"]["id"] for f in layers(fetch(world, world.viewer, tile, **p))  # noqa: E731
                       .get("deviations", [])}
    assert ids() == {old.pk, new.pk}
    assert ids(category="lighting") == {new.pk}
    assert ids(**{"from": (timezone.now() - dt.timedelta(days=7)).isoformat()}) == {new.pk}


def test_the_whole_world_at_zoom_0_and_1(world: World) -> None:
    world.report(world.housing_reporter)
    for tile in (Tile(0, 0, 0), tile_of(18.09, 59.244, 1), tile_of(18.09, 59.244, 2)):
        found = layers(fetch(world, world.viewer, tile))
        assert sum(f["properties"]["count"] for f in found["cell-centres"]) == 1, tile


def test_an_empty_tile_is_empty_and_bad_tiles_are_404(world: World) -> None:
    response = fetch(world, world.viewer, Tile(10, 0, 0))
    assert response.status_code == 200 and response.content == b""
    for path in ("23/0/0", "3/8/0", "3/0/8", "-1/0/0", "3/x/0"):
        assert world.client(world.viewer).get(f"{BASE}/{path}").status_code in {404, 422}, path
    assert world.client().get(f"{BASE}/3/0/0").status_code == 401
    assert world.client(world.outsider).get(f"{BASE}/3/0/0").status_code == 404


def test_etag_follows_the_forums_data_and_the_reader(world: World) -> None:
    world.report(world.housing_reporter)
    tile = tile_of(18.09, 59.244, 12)
    first = fetch(world, world.viewer, tile)
    assert first["Cache-Control"] == "private, no-cache"
    tag = first["ETag"]
    again = world.client(world.viewer).get(f"{BASE}/{tile.z}/{tile.x}/{tile.y}", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304 and again.content == b""
    # The ETag is the tile's fingerprint: the same for the same content, whoever reads it with whatever filter.
    assert fetch(world, world.police_reporter, tile)["ETag"] == tag
    assert fetch(world, world.viewer, tile, status="new")["ETag"] == tag
    # A deviation the viewer may not see changes nothing for them, not even the ETag; for the police it does.
    world.report(world.police_reporter, visibility="organisation")
    assert fetch(world, world.viewer, tile)["ETag"] == tag
    assert fetch(world, world.police_reporter, tile)["ETag"] != tag
    deviation = world.report(world.housing_reporter)
    changed = fetch(world, world.viewer, tile)["ETag"]
    assert changed != tag
    close = tile_of(18.09, 59.244, 16)
    points = fetch(world, world.viewer, close)["ETag"]
    Deviation.objects.filter(pk=deviation.pk).update(status="resolved")  # any write, however it is made
    assert fetch(world, world.viewer, close)["ETag"] != points  # the point's status is in the tile
    latest = fetch(world, world.viewer, tile)["ETag"]
    assert latest == changed  # the hexagons' counts are not: the same tile, the same ETag
    # `lagesbild retention` shortens the change log without changing any forum's version.
    versions = (data_version.data_version(world.forum.pk), data_version.data_version(world.other_forum.pk))
    data_version.prune()
    assert (data_version.data_version(world.forum.pk), data_version.data_version(world.other_forum.pk)) == versions
    assert fetch(world, world.viewer, tile)["ETag"] == latest


@pytest.mark.django_db(transaction=True)
def test_a_low_zoom_tile_stays_small_whatever_the_number_of_deviations(world: World) -> None:
    """20,000 deviations over the forum's area: the zoom-10 tile holds one feature per hexagon, far under
    300 KB (bench/bench_tiles.py measures it at a million)."""
    rng = random.Random(7)
    now = timezone.now()
    category = Category.objects.get(key="graffiti", forum__isnull=True).pk
    rows = [SimpleNamespace(lon=rng.uniform(18.05, 18.15), lat=rng.uniform(59.22, 59.27), category_id=category,
                            observed_at=now, observed_until=None, reported_at=None, place_name="", description="",
                            organisation_id=world.housing.pk, severity="medium", visibility="forum", status="new")
            for _ in range(20_000)]
    with transaction.atomic(), bulk.Writer(world.housing_reporter, None, "import") as writer:  # type: ignore[arg-type]
        writer.write(rows)
    response = fetch(world, world.viewer, tile_of(18.09, 59.244, 10))
    found = layers(response)
    assert len(response.content) < 300_000
    cells = {f["properties"]["cell"] for f in found["cells"]}
    assert sum(f["properties"]["count"] for f in found["cells"]) == 20_000
    assert len(found["cells"]) == len(cells) < 400


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(lon=18.05, lat=59.22, resolution=9)  # a point on an edge, where a parent is not the cell it lies in
@given(lon=st.floats(18.05, 18.15), lat=st.floats(59.22, 59.27), resolution=st.integers(3, 10))
def test_the_databases_hexagon_parent_is_h3s(world: World, lon: float, lat: float, resolution: int) -> None:
    deviation = world.report(world.housing_reporter, lon=lon, lat=lat)
    parent = (Deviation.objects.filter(pk=deviation.pk)
              .annotate(cell=tiles._parent_expression(resolution)).values_list("cell", flat=True).get())
    # The app's coarser hexagons are the parents of the finest one (deviations/derived.py): at an edge that can
    # be another cell than the one the point lies in at that resolution, so compare with the parent.
    finest = h3.latlng_to_cell(lat, lon, 10)
    assert parent == h3.str_to_int(h3.cell_to_parent(finest, resolution))


def test_hexagon_tiles_read_from_the_counts_equal_counting_the_rows(world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to resolution 8 a hexagon tile reads the pre-aggregated counts. Planted: restricted deviations, one
    shared by name, a withdrawn one, a line and an area (the counts hold them once, the tile in every hexagon
    they cross), times at a day's edge. Every tile must be the same bytes as one counted from the rows."""
    rng = random.Random(14)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    members = [world.coordinator, world.police_reporter, world.housing_reporter]
    for k in range(60):
        lon, lat = 18.051 + rng.random() * 0.098, 59.221 + rng.random() * 0.048
        visibility = rng.choice(["forum", "forum", "forum", "organisation", "named"])
        world.report(members[k % 3], lon=lon, lat=lat, category=rng.choice(["graffiti", "littering", "fire"]),
                     visibility=visibility, shared_with=[world.school.pk] if visibility == "named" else [],
                     observed_at=now - dt.timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23)))
    world.report(world.housing_reporter, lon=18.09, lat=59.244, observed_at=now.replace(hour=0) -
                 dt.timedelta(microseconds=1))  # the last moment of a day
    withdrawn = world.report(world.housing_reporter, lon=18.1, lat=59.25)
    Deviation.objects.filter(pk=withdrawn.pk).update(withdrawn_at=now)
    line = {"type": "LineString", "coordinates": [[18.07, 59.235], [18.11, 59.25]]}
    area = {"type": "Polygon", "coordinates": [[[18.06, 59.23], [18.08, 59.23], [18.08, 59.24], [18.06, 59.24],
                                                [18.06, 59.23]]]}
    world.report(world.housing_reporter, shape=line, lon=0.0, lat=0.0)
    world.report(world.police_reporter, shape=area, lon=0.0, lat=0.0, visibility="organisation")
    filters = [deviations.DeviationFilter(),
               deviations.DeviationFilter(start=now - dt.timedelta(days=20, hours=5), end=now - dt.timedelta(hours=3)),
               deviations.DeviationFilter(categories=["graffiti", "fire"])]
    counted_from_rows = tiles._counted_cell_counts
    compared = 0
    for z in (6, 8, 10, 11):
        centre = tile_of(18.09, 59.24, z)
        for tile in (centre, Tile(z, centre.x + 1, centre.y), Tile(z, centre.x, centre.y - 1)):
            for reader in (world.viewer, world.police_reporter, world.housing_reporter):
                for flt in filters:
                    def not_from_rows(*args: Any) -> Any:
                        raise AssertionError("read from the rows")
                    monkeypatch.setattr(tiles, "_counted_cell_counts", not_from_rows)
                    kept = tiles.build(reader, flt, tile, hexagons=True)
                    monkeypatch.setattr(tiles, "_counted_cell_counts", counted_from_rows)
                    monkeypatch.setattr(tiles, "_kept_cell_counts", counted_from_rows)
                    rows = tiles.build(reader, flt, tile, hexagons=True)
                    monkeypatch.undo()
                    assert kept == rows, (z, tile, reader.organisation.name, flt)
                    compared += bool(rows)
    assert compared >= 40  # most of the tiles hold hexagons


@pytest.mark.parametrize("z", [0, 3, 12, 20])
def test_a_hexagon_across_the_antimeridian_is_drawn_whole_on_one_side(world: World, z: int) -> None:
    """Its corners lie near +180 and -180: taken as they come, the hexagon would be a band round the world,
    and at zoom 20 its coordinates would not fit in a tile at all."""
    world.report(world.outsider, lon=179.99995, lat=-17.0)  # the other forum has no area
    tile = tile_of(179.99995, -17.0, z)
    response = world.client(world.outsider).get(
        f"/api/forums/skarholmen/tiles/WebMercatorQuad/{z}/{tile.x}/{tile.y}", {"hexagons": "true"})
    found = layers(response)
    [hexagon] = found["cells"]
    assert hexagon["properties"]["count"] == 1
    [ring] = hexagon["geometry"]["coordinates"]
    polygon = shapely.geometry.Polygon(ring)
    assert polygon.is_valid
    # As wide as it is tall (give or take Mercator's stretch), not the width of the world.
    west, south, east, north = polygon.bounds
    assert east - west < 3 * (north - south)


def test_a_city_tile_reads_the_counts_and_the_restricted_rows_from_their_indexes(world: World) -> None:
    """A hexagon tile at zoom 10 reads the kept counts and counts the reader's restricted rows. Each query needs
    no column that its index does not hold, so the database can answer it from the index alone (on PostgreSQL
    an index-only scan, which makes a city's tiles quick at a million deviations: docs/architecture.md; on
    SQLite a covering index). Each is run here against a table cut down to its index's columns: a column added
    to either query and not to its index (count(id) for count(*), say) makes it fail."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world.report(world.housing_reporter, category="graffiti")
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation")
    tile = tile_of(18.09, 59.24, 10)
    with CaptureQueriesContext(connection) as captured:
        found = layers(fetch(world, world.police_reporter, tile, hexagons="true"))
    assert sum(feature["properties"]["count"] for feature in found["cell-centres"]) == 2
    kept = [q["sql"] for q in captured.captured_queries if 'FROM "deviations_deviationcount"' in q["sql"]]
    restricted = [q["sql"] for q in captured.captured_queries
                  if "'organisation', 'named'" in q["sql"] and '"organisation_id" = ' in q["sql"]
                  and "deviationshare" not in q["sql"]]
    assert len(kept) == 1 and len(restricted) == 1
    with connection.cursor() as cursor:
        for sql, table, index in ((kept[0], "deviations_deviationcount", "deviation_count_category"),
                                  (restricted[0], "deviations_deviation", "deviation_restricted")):
            if connection.vendor == "postgresql":  # the key's columns and the included ones
                cursor.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                               "AND a.attnum = ANY(i.indkey) WHERE i.indexrelid = %s::regclass", [index])
            else:
                cursor.execute(f"SELECT name FROM pragma_index_info('{index}')")
            columns = ", ".join(connection.ops.quote_name(row[0]) for row in cursor.fetchall())
            cursor.execute(sql)
            answer = Counter(cursor.fetchall())
            # Every place the query reads the table, so that no join or subquery can reach its other columns.
            only_the_index = f'(SELECT {columns} FROM "{table}") AS "{table}"'
            cut_down = sql.replace(f'FROM "{table}"', f"FROM {only_the_index}").replace(
                f'JOIN "{table}"', f"JOIN {only_the_index}")
            assert cut_down != sql
            cursor.execute(cut_down)
            assert Counter(cursor.fetchall()) == answer != Counter()
