"""Deviations drawn as lines and areas: checked on the way in, found where the shape lies (map view, places,
hexagons, tiles, OGC API), exported with their true geometry, and never shown to those who may not see them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sqlite3
from typing import Any

import h3
import mapbox_vector_tile
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from lagesbild.analysis import services as analysis
from lagesbild.deviations import services, shapes
from lagesbild.deviations.models import Deviation, DeviationCell
from lagesbild.errors import InvalidInput
from lagesbild.geometry import sweref99tm_shape, to_sweref99tm
from lagesbild.places import services as places
from tests.conftest import AREA, MARKER, World
from tests.test_tiles import layers, tile_of

pytestmark = pytest.mark.django_db

# A footpath that bends: east along 59.240, then north along 18.100 (about 580 m and 560 m).
BENT = {"type": "LineString", "coordinates": [[18.09, 59.24], [18.10, 59.24], [18.10, 59.245]]}
# A slope of about 110 by 110 m.
SLOPE = {"type": "Polygon", "coordinates": [[[18.08, 59.25], [18.082, 59.25], [18.082, 59.251], [18.08, 59.251],
                                             [18.08, 59.25]]]}


def report(world: World, membership: Any, drawn: dict[str, Any], **overrides: Any) -> Deviation:
    return world.report(membership, shape=drawn, lon=0.0, lat=0.0, **overrides)


def api_list(world: World, membership: Any, **params: Any) -> dict[str, Any]:
    response = world.client(membership).get("/api/forums/farsta/deviations", params)
    assert response.status_code == 200, response.content[:300]
    return dict(response.json())


# --- On the way in ---------------------------------------------------------------------------------------

def test_a_line_is_anchored_halfway_along_it_and_an_area_inside_it() -> None:
    line = shapes.parse(BENT)
    metric = sweref99tm_shape(shape(BENT))
    anchor = sweref99tm_shape(shapely.Point(line.lon, line.lat))
    # Halfway measured along the bend, within a metre; not the middle of its box (which lies off the path).
    assert metric.project(anchor) == pytest.approx(metric.length / 2, abs=1.0)
    assert metric.distance(anchor) < 0.5
    assert line.extent == (18.09, 59.24, 18.10, 59.245)
    # An L-shaped area's centroid lies outside it: the anchor is still inside.
    ell = {"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.09, 59.24], [18.09, 59.2405], [18.0805, 59.2405],
                                               [18.0805, 59.245], [18.08, 59.245], [18.08, 59.24]]]}
    area = shapes.parse(ell)
    assert shape(ell).covers(shapely.Point(area.lon, area.lat))
    assert area.area_m2 > 0 and line.area_m2 == 0


@pytest.mark.parametrize(("drawn", "message"), [
    ({"type": "Point", "coordinates": [18.09, 59.24]}, "LineString"),
    ({"type": "MultiPolygon", "coordinates": []}, "LineString"),
    ("inte json", "inte giltig GeoJSON"),
    ([1, 2], "LineString"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24]]}, "för kort"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [18.09, 59.24]]}, "för kort"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [18.0900001, 59.24]]}, "för kort"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], ["18.1", 59.24]]}, "inte giltig"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [True, 59.24]]}, "inte giltig"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [float("nan"), 59.24]]}, "inte giltig"),
    ({"type": "LineString", "coordinates": "18,59"}, "inte giltig"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [200, 59.24]]}, "WGS84"),
    ({"type": "LineString", "coordinates": [[18.06, 59.23], [18.14, 59.26]]}, "längre än 5 km"),
    ({"type": "LineString", "coordinates": [[18.09 + i * 1e-5, 59.24 + (i % 2) * 1e-5] for i in range(501)]},
     "för många hörn"),
    ({"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.09, 59.25], [18.09, 59.24], [18.08, 59.25],
                                          [18.08, 59.24]]]}, "korsar sig själv"),
    ({"type": "Polygon", "coordinates": [[[18.06, 59.23], [18.14, 59.23], [18.14, 59.26], [18.06, 59.23]]]},
     "större än 2 km²"),
    ({"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.09, 59.24], [18.08, 59.24]]]}, "för litet"),
    ({"type": "Polygon", "coordinates": [[[18.08, 59.24], [18.09, 59.24], [18.10, 59.24], [18.08, 59.24]]]},
     "för litet"),  # corners on one line
    ({"type": "Polygon", "coordinates": [SLOPE["coordinates"][0], SLOPE["coordinates"][0]]}, "utan hål"),
    ({"type": "Polygon", "coordinates": []}, "inte giltig"),
    # A thin winding area: under 2 km², but its outline would put it in hexagons all over the district.
    ({"type": "Polygon", "coordinates": [[*[[18.07 + i * 0.0004, 59.23 + (i % 2) * 0.03] for i in range(150)],
                                          *[[18.07 + i * 0.0004 + 0.00005, 59.23 + (i % 2) * 0.03]
                                            for i in reversed(range(150))], [18.07, 59.23]]]}, "kontur"),
    # Far from any forum's area it is still bounded (a forum without an area accepts any place).
    ({"type": "LineString", "coordinates": [[10.0, 55.0], [18.0, 65.0]]}, "sträcker sig över mer än 5 km"),
    # Round the pole, or across the 180th meridian: short in metres, but all round the globe in degrees.
    ({"type": "LineString", "coordinates": [[-179.0, 89.99], [179.0, 89.99]]}, "sträcker sig över mer än 5 km"),
    ({"type": "LineString", "coordinates": [[179.99, 60.0], [-179.99, 60.0]]}, "sträcker sig över mer än 5 km"),
    ({"type": "LineString", "coordinates": [[18.0, 86.0], [18.001, 86.0]]}, "sträcker sig över mer än 5 km"),
    ({"type": "LineString", "coordinates": [[18.09, 59.24], [18.16, 59.24]]}, "utanför forumets område"),
])
def test_a_bad_shape_is_refused_with_the_reason(world: World, drawn: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        shapes.parse(drawn, AREA)
    assert message in str(refused.value.message)
    assert refused.value.field == "shape"


def test_the_api_takes_a_shape_instead_of_a_position(world: World) -> None:
    client = world.client(world.housing_reporter)
    response = client.post("/api/forums/farsta/deviations", {"category": "lighting", "shape": BENT},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    detail = response.json()
    assert detail["shape"] == BENT
    assert detail["shapeSize"] == "Linje, 1\u00a0130 m"
    expected = shapes.parse(BENT)
    assert (detail["lon"], detail["lat"]) == (expected.lon, expected.lat)
    # The hexagons it lies in, at every kept resolution, are stored with it.
    stored = set(DeviationCell.objects.filter(deviation_id=detail["id"]).values_list("resolution", "cell"))
    assert stored == {(r, c) for r, found in shapes.cells(BENT).items() for c in found}
    assert len([c for r, c in stored if r == 10]) >= 10
    # Sent as a form (the map's report form), the shape travels as JSON text.
    form = client.post("/api/forums/farsta/deviations", {"category": "lighting", "shape": json.dumps(SLOPE)})
    assert form.status_code == 201, form.content
    assert form.json()["shape"]["type"] == "Polygon"


@pytest.mark.parametrize(("payload", "field", "message"), [
    ({"category": "lighting"}, "lon", "rita en linje eller ett område"),
    ({"category": "lighting", "shape": {"type": "LineString", "coordinates": [[18.09, 59.24], [18.16, 59.24]]}},
     "shape", "utanför forumets område"),
    ({"category": "lighting", "shape": {"type": "Feature"}}, "shape", "LineString"),
])
def test_the_api_refuses_a_report_without_a_usable_position(world: World, payload: dict[str, Any], field: str,
                                                          message: str) -> None:
    response = world.client(world.housing_reporter).post("/api/forums/farsta/deviations", payload,
                                                         content_type="application/json")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert message in response.json()["error"]["message"]
    assert not Deviation.objects.exists()


def test_a_form_with_broken_shape_json_is_refused(world: World) -> None:
    response = world.client(world.housing_reporter).post("/api/forums/farsta/deviations",
                                                         {"category": "lighting", "shape": "{nope"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "shape"
    assert not Deviation.objects.exists()


def test_editing_a_shape_moves_it_and_its_hexagons_and_null_makes_it_a_point(world: World) -> None:
    deviation = report(world, world.housing_reporter, BENT)
    client = world.client(world.housing_reporter)
    url = f"/api/forums/farsta/deviations/{deviation.pk}"
    # The anchor as the list gives it (6 decimals) is no move.
    same = client.patch(url, {"version": 1, "lon": round(deviation.lon, 6), "lat": round(deviation.lat, 6),
                              "description": "Mörk"}, content_type="application/json")
    assert same.status_code == 200, same.content
    assert same.json()["shape"] == BENT
    moved = client.patch(url, {"version": 2, "lon": 18.09, "lat": 59.244}, content_type="application/json")
    assert moved.status_code == 422
    assert "rita den igen" in moved.json()["error"]["message"]
    changed = client.patch(url, {"version": 2, "shape": SLOPE}, content_type="application/json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["shape"]["type"] == "Polygon"
    cells = set(DeviationCell.objects.filter(deviation=deviation, resolution=10).values_list("cell", flat=True))
    assert cells == shapes.cells(SLOPE)[10]
    deviation.refresh_from_db()
    assert deviation.shape_min_lat == 59.25
    point = client.patch(url, {"version": 3, "shape": None}, content_type="application/json")
    assert point.status_code == 200, point.content
    deviation.refresh_from_db()
    assert deviation.shape is None and deviation.shape_min_lon is None
    assert not DeviationCell.objects.filter(deviation=deviation).exists()
    # Still at the area's anchor, and now a point that can be moved.
    assert shape(SLOPE).covers(shapely.Point(deviation.lon, deviation.lat))
    assert client.patch(url, {"version": 4, "lon": 18.09, "lat": 59.244},
                        content_type="application/json").status_code == 200


# --- Found where it lies -----------------------------------------------------------------------------------

def test_the_map_view_finds_a_line_where_it_crosses_and_not_where_only_its_box_does(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    point = world.report(world.housing_reporter, lon=18.095, lat=59.2401)
    # A box around the path's first stretch, away from its anchor (which lies near the bend).
    crossing = "18.091,59.2395,18.093,59.2405"
    assert {f["id"] for f in api_list(world, world.viewer, bbox=crossing)["features"]} == {line.pk}
    # Inside the bend: within the line's box, but the line does not pass through it.
    inside_bend = "18.096,59.242,18.099,59.244"
    assert api_list(world, world.viewer, bbox=inside_bend)["features"] == []
    found = api_list(world, world.viewer, bbox="18.094,59.2399,18.096,59.2402")["features"]
    assert {f["id"] for f in found} == {line.pk, point.pk}
    [drawn] = [f for f in found if f["id"] == line.pk]
    assert drawn["geometry"] == BENT
    assert drawn["properties"]["anchor"] == [round(line.lon, 6), round(line.lat, 6)]
    assert "anchor" not in next(f for f in found if f["id"] == point.pk)["properties"]


def test_a_short_period_read_by_time_finds_shapes_the_same_way(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    bounds = (18.091, 59.2395, 18.093, 59.2405)
    visible = services.visible_deviations(world.viewer)
    from lagesbild.spatial_index import filter_bbox

    assert list(filter_bbox(visible, bounds, selective=False).values_list("pk", flat=True)) == [line.pk]
    assert list(filter_bbox(visible, bounds, selective=True).values_list("pk", flat=True)) == [line.pk]
    assert not filter_bbox(visible, (18.096, 59.242, 18.099, 59.244), selective=False).exists()


def test_a_place_holds_a_line_or_area_that_meets_it(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    area = report(world, world.housing_reporter, SLOPE)
    # A square over the path's west end: the anchor is far from it.
    square = {"type": "Polygon", "coordinates": [[[18.089, 59.239], [18.092, 59.239], [18.092, 59.241],
                                                  [18.089, 59.241], [18.089, 59.239]]]}
    park = places.create_place(world.coordinator, places.PlaceInput(name="Parken", area=square))
    visible = services.visible_deviations(world.coordinator)
    assert list(places.deviations_at(park, visible).values_list("pk", flat=True)) == [line.pk]
    # A circle of 50 m whose centre is 40 m north of the path's north end; and one 70 m off the slope.
    north_end = places.create_place(world.coordinator, places.PlaceInput(
        name="Trappan", lon=18.10, lat=59.245 + 40 / 111_320, radius_m=50))
    assert list(places.deviations_at(north_end, visible).values_list("pk", flat=True)) == [line.pk]
    off_slope = places.create_place(world.coordinator, places.PlaceInput(
        name="Bänken", lon=18.082 + 70 / 56_900, lat=59.2505, radius_m=50))
    assert not places.deviations_at(off_slope, visible).exists()
    near_slope = places.create_place(world.coordinator, places.PlaceInput(
        name="Lekplatsen", lon=18.082 + 30 / 56_900, lat=59.2505, radius_m=50))
    assert list(places.deviations_at(near_slope, visible).values_list("pk", flat=True)) == [area.pk]
    detail = world.client(world.viewer).get(f"/api/forums/farsta/deviations/{line.pk}").json()
    assert {p["name"] for p in detail["places"]} == {"Parken", "Trappan"}


def test_hexagons_count_a_line_in_each_it_crosses_and_hotspots_once_at_its_anchor(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    world.report(world.housing_reporter, lon=18.09, lat=59.2401)
    visible = services.visible_deviations(world.viewer)
    counts = analysis.hexagon_counts(visible, 9)
    crossed = shapes.cells(BENT)[9]
    assert len(crossed) >= 4
    assert all(counts[cell] >= 1 for cell in crossed)
    point_cell = h3.str_to_int(h3.latlng_to_cell(59.2401, 18.09, 9))
    assert counts[point_cell] == 2  # the point and the path through its hexagon
    assert sum(counts.values()) == len(crossed) + 1
    anchors = analysis.anchor_counts(visible, 9)
    assert sum(anchors.values()) == 2
    assert anchors[line.h3_9] >= 1


def test_tiles_draw_the_line_and_count_it_in_every_hexagon_it_crosses(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    z15 = layers(world.client(world.viewer).get(
        f"/api/forums/farsta/tiles/WebMercatorQuad/15/{tile_of(18.095, 59.24, 15).x}/{tile_of(18.095, 59.24, 15).y}"))
    [feature] = z15["deviations"]
    assert feature["properties"]["id"] == line.pk
    assert feature["geometry"]["type"] == "LineString"
    tile = tile_of(18.095, 59.2425, 12)
    counts = {f["properties"]["cell"]: f["properties"]["count"] for f in layers(world.client(world.viewer).get(
        f"/api/forums/farsta/tiles/WebMercatorQuad/12/{tile.x}/{tile.y}"))["cells"]}
    expected = {h3.int_to_str(c) for c in shapes.cells(BENT)[9]}
    assert expected <= set(counts)
    assert all(counts[c] == 1 for c in expected)
    # At a coarse zoom the line's many fine cells are one hexagon, counted once.
    coarse = tile_of(18.095, 59.2425, 6)
    raw = world.client(world.viewer).get(f"/api/forums/farsta/tiles/WebMercatorQuad/6/{coarse.x}/{coarse.y}")
    decoded = mapbox_vector_tile.decode(raw.content)
    assert sum(f["properties"]["count"] for f in decoded["cell-centres"]["features"]) == 1


# --- Out again -----------------------------------------------------------------------------------------

def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("crs", [4326, 3006])
def test_exports_carry_the_true_geometry(world: World, tmp_path: Any, crs: int) -> None:
    line = report(world, world.housing_reporter, BENT)
    area = report(world, world.housing_reporter, SLOPE)
    world.report(world.housing_reporter, lon=18.09, lat=59.244)
    client = world.client(world.viewer)
    expected = {line.pk: shape(BENT), area.pk: shape(SLOPE)}
    if crs == 3006:
        expected = {pk: sweref99tm_shape(g) for pk, g in expected.items()}
    collection = json.loads(body(client.get("/api/forums/farsta/export", {"format": "geojson", "crs": crs})))
    by_id = {f["id"]: f for f in collection["features"]}
    for pk, geom in expected.items():
        assert shape(by_id[pk]["geometry"]).equals_exact(geom, 0.01)
        assert "shape" not in by_id[pk]["properties"]
    assert len({f["geometry"]["type"] for f in collection["features"]}) == 3
    # CSV (and XLSX) carry the shape as WKT beside the anchor's x and y.
    rows = list(csv.reader(io.StringIO(body(client.get("/api/forums/farsta/export", {
        "format": "csv", "crs": crs})).decode("utf-8-sig")), delimiter=";"))
    column = rows[0].index("Linje eller område (WKT)")
    wkt = {int(r[0]): r[column] for r in rows[1:]}
    assert shapely.from_wkt(wkt[line.pk]).equals_exact(expected[line.pk], 0.01)
    assert sum(1 for v in wkt.values() if v == "") == 1
    # GeoPackage: one layer of any geometry, read by GDAL.
    path = tmp_path / "export.gpkg"
    path.write_bytes(body(client.get("/api/forums/farsta/export", {"format": "gpkg", "crs": crs})))
    info = pyogrio.read_info(path)
    assert info["features"] == 3 and info["crs"] == f"EPSG:{crs}"
    meta, _fids, geometries, fields = pyogrio.raw.read(path)
    ids = list(fields[meta["fields"].tolist().index("id")])
    read = {pk: shapely.from_wkb(g) for pk, g in zip(ids, geometries, strict=True)}
    assert read[line.pk].equals_exact(expected[line.pk], 0.01)
    assert read[area.pk].geom_type == "Polygon"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT geometry_type_name FROM gpkg_geometry_columns").fetchone() == ("GEOMETRY",)


def test_ogc_api_items_carry_the_shape_in_the_crs_asked_for(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    client = world.client(world.viewer)
    base = "/api/forums/farsta/ogc/collections/deviations/items"
    item = client.get(f"{base}/{line.pk}").json()
    assert item["geometry"] == BENT
    sweref = client.get(f"{base}/{line.pk}", {"crs": "http://www.opengis.net/def/crs/EPSG/0/3006"}).json()
    northing, easting = sweref["geometry"]["coordinates"][0]
    assert (easting, northing) == pytest.approx(to_sweref99tm(18.09, 59.24), abs=0.01)
    # A box in SWEREF 99 TM (northing first) inside the bend finds nothing; one over the first stretch finds it.
    def sweref_box(west: float, south: float, east: float, north: float) -> str:
        (e1, n1), (e2, n2) = to_sweref99tm(west, south), to_sweref99tm(east, north)
        return f"{n1},{e1},{n2},{e2}"

    epsg = "http://www.opengis.net/def/crs/EPSG/0/3006"
    inside_bend = client.get(base, {"bbox": sweref_box(18.096, 59.2415, 18.0985, 59.2435), "bbox-crs": epsg})
    assert inside_bend.status_code == 200 and inside_bend.json()["features"] == []
    crossing = client.get(base, {"bbox": sweref_box(18.091, 59.2395, 18.093, 59.2405), "bbox-crs": epsg}).json()
    assert [f["id"] for f in crossing["features"]] == [line.pk]
    # A CQL2 box over the path's west end, away from its anchor.
    found = client.get(base, {"filter": "S_INTERSECTS(geometry, BBOX(18.089, 59.239, 18.092, 59.241))"}).json()
    assert [f["id"] for f in found["features"]] == [line.pk]


# --- Only for those who may see it -----------------------------------------------------------------------

def test_a_restricted_area_reaches_nobody_else_by_any_derived_path(world: World) -> None:
    secret = report(world, world.police_reporter, SLOPE, visibility="organisation", description=MARKER,
                    category="suspected_dealing")
    assert secret.shape is not None
    viewer = world.viewer
    visible = services.visible_deviations(viewer)
    assert analysis.hexagon_counts(visible, 10) == {}
    assert api_list(world, viewer, bbox="18.0,59.2,18.2,59.3")["numberMatched"] == 0
    export = body(world.client(viewer).get("/api/forums/farsta/export", {"format": "csv"})).decode("utf-8-sig")
    assert MARKER not in export and "POLYGON" not in export
    tile = tile_of(18.081, 59.2505, 15)
    response = world.client(viewer).get(f"/api/forums/farsta/tiles/WebMercatorQuad/15/{tile.x}/{tile.y}")
    assert response.status_code == 200 and response.content == b""
    # The police see it, in the same places.
    police = services.visible_deviations(world.police_lead)
    assert sum(analysis.hexagon_counts(police, 10).values()) == len(shapes.cells(SLOPE)[10])


def test_withdrawing_a_shape_takes_it_out_of_the_hexagons(world: World) -> None:
    line = report(world, world.housing_reporter, BENT)
    services.withdraw_deviation(world.housing_reporter, line.pk)
    assert analysis.hexagon_counts(services.visible_deviations(world.coordinator), 9) == {}


def test_cells_of_a_thin_area_include_those_its_outline_passes(world: World) -> None:
    # 2 m wide and 300 m long: no hexagon's centre lies inside it, yet it lies in several.
    thin = {"type": "Polygon", "coordinates": [[[18.09, 59.24], [18.0954, 59.24], [18.0954, 59.24002],
                                                [18.09, 59.24002], [18.09, 59.24]]]}
    drawn = shapes.parse(thin)
    found = shapes.cells(drawn.geojson)[10]
    assert len(found) >= 3
    for lon in (18.0905, 18.092, 18.095):
        assert h3.str_to_int(h3.latlng_to_cell(59.24001, lon, 10)) in found
    assert math.isclose(drawn.area_m2, 300 * 2.2, rel_tol=0.2)


def test_the_effect_of_an_action_counts_a_line_that_passes_its_point(world: World) -> None:
    from lagesbild.meetings import actions, effect

    line = report(world, world.housing_reporter, BENT)
    # 100 m south of the path's west end: the path's anchor is about 570 m away, outside the action's circle.
    action = actions.create_action(world.coordinator, actions.ActionInput(
        title="Ny belysning", organisation_id=world.district.pk, due_date=dt.date(2027, 1, 15), lon=18.09,
        lat=59.24 - 100 / 111_320))
    area = effect.action_area(action)
    assert area is not None
    visible = services.visible_deviations(world.coordinator)
    assert list(places.deviations_at(area, visible).values_list("pk", flat=True)) == [line.pk]
    assert not places.deviations_at(area, visible.filter(shape_min_lon__isnull=True)).exists()


def test_a_point_just_outside_the_box_is_not_in_it(world: World) -> None:
    """PostGIS's && compares boxes of 32-bit floats rounded outwards: the points are then tested exactly."""
    point = world.report(world.housing_reporter, lon=18.09, lat=59.248721)
    visible = services.visible_deviations(world.viewer)
    from lagesbild.spatial_index import filter_bbox

    for selective in (True, False):
        assert not filter_bbox(visible, (18.08, 59.24, 18.10, 59.2487165), selective=selective).exists()
        assert list(filter_bbox(visible, (18.08, 59.24, 18.10, 59.248721), selective=selective)
                    .values_list("pk", flat=True)) == [point.pk]
