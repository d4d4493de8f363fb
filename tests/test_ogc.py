"""OGC API Features: read through the test client the way a GIS asks, and filtered with CQL2.

GDAL's own OAPIF driver reads the service in tests/test_ogc_gdal.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import ApiToken
from lagesbild.places import services as places
from tests.conftest import MARKER, World

pytestmark = pytest.mark.django_db
BASE = "/api/forums/farsta/ogc"
WHEN = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def planted(world: World) -> dict[str, Deviation]:
    """Five forum-wide deviations a day apart, and the police's restricted one with the marker."""
    made = {}
    for day, (category, status, lon) in enumerate([("graffiti", "new", 18.06), ("broken_lighting", "new", 18.08),
                                                   ("graffiti", "resolved", 18.10),
                                                   ("litter", "reviewed", 18.12), ("dumping", "new", 18.14)]):
        deviation = world.report(world.housing_reporter if day % 2 else world.coordinator, category=category,
                                 lon=lon, lat=59.24, observed_at=WHEN + dt.timedelta(days=day),
                                 place_name=f"Plats {day}", description=f"Beskrivning {day}")
        if status != "new":
            Deviation.objects.filter(pk=deviation.pk).update(status=status)
        made[f"d{day}"] = deviation
    made["restricted"] = world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                                      place_name=f"Port {MARKER}", description=MARKER, lon=18.1, lat=59.25,
                                      observed_at=WHEN + dt.timedelta(days=2, hours=1))
    return made


def get(world: World, membership: Any, path: str, **params: Any) -> Any:
    return world.client(membership).get(f"{BASE}{path}", params)


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [f["id"] for f in response.json()["features"]]


def test_landing_conformance_and_collections_link_to_each_other(world: World) -> None:
    landing = get(world, world.viewer, "")
    assert landing.status_code == 200
    assert get(world, world.viewer, "/").json() == landing.json()  # typed with a slash
    rels = {link["rel"]: link["href"] for link in landing.json()["links"]}
    assert set(rels) == {"self", "service-desc", "conformance", "data"}
    service = world.client(world.viewer).get(urlsplit(rels["service-desc"]).path)
    assert service["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    description = service.json()
    assert description["servers"] == [{"url": f"http://testserver{BASE}"}]
    items = description["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    limit = next(p for p in items if p["name"] == "limit")["schema"]
    assert (limit["default"], limit["maximum"]) == (100, 5000)
    assert "cql-text" in next(p for p in items if p["name"] == "filter-lang")["schema"]["enum"]
    conformance = world.client(world.viewer).get(urlsplit(rels["conformance"]).path).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conformance
    collections = world.client(world.viewer).get(urlsplit(rels["data"]).path).json()["collections"]
    assert [c["id"] for c in collections] == ["deviations", "places"]
    deviations = collections[0]
    assert deviations["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                                 "http://www.opengis.net/def/crs/EPSG/0/3006"]
    assert deviations["extent"]["spatial"]["bbox"] == [[18.05, 59.22, 18.15, 59.27]]
    assert {link["rel"] for link in deviations["links"]} >= {"self", "items",
                                                             "http://www.opengis.net/def/rel/ogc/1.0/queryables"}


def test_the_temporal_extent_is_what_the_reader_may_see(world: World) -> None:
    world.report(world.police_reporter, visibility="organisation", observed_at=WHEN - dt.timedelta(days=300))
    world.report(world.housing_reporter, observed_at=WHEN)
    extent = lambda m: get(world, m, "/collections/deviations").json()["extent"]["temporal"]["interval"]  # noqa: E731
    assert extent(world.viewer) == [["2026-03-10T12:00:00Z", None]]
    assert extent(world.police_reporter)[0][0].startswith("2025-05-14")


def test_items_page_through_everything_the_reader_may_see(world: World, planted: dict[str, Deviation]) -> None:
    first = get(world, world.viewer, "/collections/deviations/items", limit=2)
    assert first["Content-Type"] == "application/geo+json"
    assert first["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = first.json()
    assert body["numberMatched"] == 5 and body["numberReturned"] == 2
    seen = ids(first)
    next_link = next(link["href"] for link in body["links"] if link["rel"] == "next")
    while next_link:
        page = world.client(world.viewer).get(next_link.replace("http://testserver", ""))
        seen += ids(page)
        next_link = next((link["href"] for link in page.json()["links"] if link["rel"] == "next"), None)
    expected = [planted[f"d{day}"].pk for day in (4, 3, 2, 1, 0)]
    assert seen == expected  # newest first, each once, the restricted one not among them
    feature = get(world, world.viewer, f"/collections/deviations/items/{planted['d1'].pk}").json()
    assert feature["properties"]["categoryName"] == "Trasig belysning"
    assert feature["properties"]["organisationName"] == "Bostadsbolaget"
    assert feature["properties"]["observedAt"] == "2026-03-11T12:00:00Z"
    assert feature["geometry"]["coordinates"] == [18.08, 59.24]


def test_restricted_deviations_reach_only_those_who_may_see_them_and_are_audited(
        world: World, planted: dict[str, Deviation]) -> None:
    restricted = planted["restricted"]
    for membership in (world.viewer, world.housing_reporter, world.coordinator):
        everything = get(world, membership, "/collections/deviations/items", limit=100)
        assert MARKER not in everything.content.decode()
        assert everything.json()["numberMatched"] == 5
        # Filtering on what only the restricted one holds counts nothing, not even its number.
        probe = get(world, membership, "/collections/deviations/items", filter=f"description LIKE '%{MARKER}%'")
        assert probe.json()["numberMatched"] == 0 and MARKER not in probe.content.decode()
        single = get(world, membership, f"/collections/deviations/items/{restricted.pk}")
        assert single.status_code == 404 and MARKER not in single.content.decode()
    assert get(world, world.outsider, "/collections/deviations/items").status_code in {403, 404}
    before = AuditEvent.objects.filter(action=AuditEvent.Action.READ, object_id=restricted.pk).count()
    police = get(world, world.police_reporter, "/collections/deviations/items",
                 filter=f"description LIKE '%{MARKER}%'")
    assert ids(police) == [restricted.pk]
    reads = AuditEvent.objects.filter(action=AuditEvent.Action.READ, object_id=restricted.pk)
    assert reads.count() == before + 1
    assert reads.latest("pk").changes == {"via": "OGC API Features"}


def test_sweref_99_tm_is_northing_then_easting_both_ways(world: World, planted: dict[str, Deviation]) -> None:
    d2 = Deviation.objects.get(pk=planted["d2"].pk)
    response = get(world, world.viewer, "/collections/deviations/items",
                   crs="http://www.opengis.net/def/crs/EPSG/0/3006")
    assert response["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3006>"
    feature = next(f for f in response.json()["features"] if f["id"] == d2.pk)
    assert feature["geometry"]["coordinates"] == [round(d2.sweref_y, 3), round(d2.sweref_x, 3)]
    # A box around d2 alone, in SWEREF 99 TM's own axis order.
    box = f"{d2.sweref_y - 50},{d2.sweref_x - 50},{d2.sweref_y + 50},{d2.sweref_x + 50}"
    inside = get(world, world.viewer, "/collections/deviations/items", bbox=box,
                 **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3006"})
    assert ids(inside) == [d2.pk]
    swapped = f"{d2.sweref_x - 50},{d2.sweref_y - 50},{d2.sweref_x + 50},{d2.sweref_y + 50}"
    assert ids(get(world, world.viewer, "/collections/deviations/items", bbox=swapped,
                   **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3006"})) == []
    assert ids(get(world, world.viewer, "/collections/deviations/items", bbox="18.09,59.2,18.11,59.3")) == [d2.pk]


def test_datetime_instants_intervals_and_open_ends(world: World, planted: dict[str, Deviation]) -> None:
    def at(value: str) -> list[int]:
        return ids(get(world, world.viewer, "/collections/deviations/items", datetime=value))

    pk = {day: planted[f"d{day}"].pk for day in range(5)}
    assert at("2026-03-11T12:00:00Z") == [pk[1]]
    assert at("2026-03-11T12:00:00Z/2026-03-12T12:00:00Z") == [pk[2], pk[1]]
    assert at("../2026-03-11T12:00:00Z") == [pk[1], pk[0]]
    assert at("2026-03-13T00:00:00Z/..") == [pk[4], pk[3]]
    assert at("2026-03-12") == [pk[2]]  # a date is its whole day in Stockholm


@pytest.mark.parametrize(("cql", "expected"), [
    ("category = 'graffiti'", [2, 0]),
    ("parentCategory = 'damage'", [2, 0]),
    ("status = 'new' AND NOT category = 'graffiti'", [4, 1]),
    ("status IN ('resolved', 'reviewed')", [3, 2]),
    ("observedAt >= TIMESTAMP('2026-03-12T12:00:00Z') AND observedAt < DATE('2026-03-14')", [3, 2]),
    ("observedAt = DATE('2026-03-11')", [1]),
    ("observedAt >= '2026-03-13'", [4, 3]),  # how GDAL and QGIS write times
    ("(category = 'graffiti') AND (observedAt < '2026-03-12T00:00:00Z')", [0]),
    ("observedAt BETWEEN TIMESTAMP('2026-03-11T00:00:00Z') AND TIMESTAMP('2026-03-12T23:00:00Z')", [2, 1]),
    ("placeName LIKE 'Plats _'", [4, 3, 2, 1, 0]),
    ("placeName LIKE '%3'", [3]),
    ("observedUntil IS NULL AND S_INTERSECTS(geometry, BBOX(18.07, 59.2, 18.11, 59.3))", [2, 1]),
    ("S_INTERSECTS(geometry, POINT(18.12 59.24))", [3]),
    ("reportedAt > TIMESTAMP('2000-01-01T00:00:00Z') AND id > 0 AND severity <> 'high'", [4, 3, 2, 1, 0]),
    ("observedAt >= '2026-03-13T'", [4, 3]),  # how GDAL 3.12 writes a date
    ("observedAt = '2026-03-11T12:00:00'", [1]),  # a time without an offset is UTC, as the service gives them
    ("NOT TRUE", []),
    ("TRUE", [4, 3, 2, 1, 0]),
    ("NOT (status = 'new' OR FALSE)", [3, 2]),
])
def test_cql2_text_filters(world: World, planted: dict[str, Deviation], cql: str, expected: list[int]) -> None:
    response = get(world, world.viewer, "/collections/deviations/items", filter=cql)
    assert ids(response) == [planted[f"d{day}"].pk for day in expected]
    assert response.json()["numberMatched"] == len(expected)


def test_cql2_json_organisation_filter_and_queryable_parameters(world: World, planted: dict[str, Deviation]
                                                                ) -> None:
    expression = {"op": "=", "args": [{"property": "organisation"}, world.housing.pk]}
    housing = get(world, world.viewer, "/collections/deviations/items", filter=json.dumps(expression),
                  **{"filter-lang": "cql2-json"})
    assert ids(housing) == [planted["d3"].pk, planted["d1"].pk]
    assert ids(get(world, world.viewer, "/collections/deviations/items", status="resolved")) == [planted["d2"].pk]


def test_queryables_name_every_filterable_property(world: World) -> None:
    response = get(world, world.viewer, "/collections/deviations/queryables")
    assert response["Content-Type"] == "application/schema+json"
    schema = response.json()
    assert {"category", "observedAt", "organisation", "status", "geometry"} <= set(schema["properties"])
    assert "graffiti" in schema["properties"]["category"]["enum"]
    assert schema["properties"]["observedAt"]["format"] == "date-time"


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"filter": "status = "}, "filter", "kunde inte läsas"),
    ({"filter": "colour = 'red'"}, "filter", "Okänd egenskap i filtret: colour"),
    ({"filter": "status = 'open'"}, "filter", "Okänt värde för status"),
    ({"filter": "organisation = 'Polisen'"}, "filter", "heltal"),
    ({"filter": "category = 3"}, "filter", "enkla citattecken"),
    ({"filter": "observedAt > 'yesterday'"}, "filter", "ingen giltig TIMESTAMP"),
    ({"filter": "observedAt > 3"}, "filter", "TIMESTAMP"),
    ({"filter": "observedAt > TIMESTAMP('2026-13-01T00:00:00Z')"}, "filter", None),
    ({"filter": "T_AFTER(observedAt, TIMESTAMP('2026-01-01T00:00:00Z'))"}, "filter", "Tidsfunktioner"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((18 59, 19 59, 19 60, 18 59)))"}, "filter", "BBOX eller en POINT"),
    ({"filter": "status = 'new'", "filter-lang": "sql"}, "filter-lang", None),
    ({"filter": "{", "filter-lang": "cql2-json"}, "filter", None),
    ({"colour": "red"}, "colour", "Okänd parameter"),
    ({"bbox": "1,2,3"}, "bbox", None),
    ({"bbox": "18,59,19,60", "bbox-crs": "EPSG:4258"}, "bbox-crs", None),
    ({"crs": "EPSG:3857"}, "crs", None),
    ({"datetime": "yesterday"}, "datetime", None),
    ({"datetime": "2026-03-12T00:00:00Z/2026-03-01T00:00:00Z"}, "datetime", None),
    ({"limit": "0"}, "limit", None),
    ({"limit": "many"}, "limit", None),
    ({"cursor": "not-a-cursor"}, "cursor", None),
    ({"f": "html"}, "f", None),
    ({"filter": "(" * 2000 + "id = 1" + ")" * 2000}, "filter", "för djupt"),  # it once crashed the process
    ({"filter": "[" * 2000 + "]" * 2000, "filter-lang": "cql2-json"}, "filter", "för djupt"),
    ({"filter": " OR ".join(["id=1"] * 1000)}, "filter", "för många villkor"),
    ({"filter": "parentCategory IN (" + ", ".join(["'damage'"] * 400) + ")"}, "filter", "för många villkor"),
    ({"datetime": "20260101"}, "datetime", None),
    ({"datetime": "../.."}, "datetime", None),
    ({"bbox": "1_8,59,19,60"}, "bbox", None),
    ({"observedUntil": ""}, "observedUntil", "TIMESTAMP"),
])
def test_bad_requests_say_what_is_wrong(world: World, params: dict[str, str], field: str, words: str | None) -> None:
    response = get(world, world.viewer, "/collections/deviations/items", **params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field
    if words:
        assert words in error["message"]


def test_an_empty_or_matches_nothing_and_an_empty_and_everything(world: World, planted: dict[str, Deviation]
                                                                  ) -> None:
    for op, expected in (("or", 0), ("and", 5)):
        response = get(world, world.viewer, "/collections/deviations/items", filter=json.dumps({"op": op, "args": []}),
                       **{"filter-lang": "cql2-json"})
        assert response.json()["numberMatched"] == expected


def test_unknown_collections_and_features_are_404(world: World) -> None:
    assert get(world, world.viewer, "/collections/people").status_code == 404
    assert get(world, world.viewer, "/collections/people/items").status_code == 404
    assert get(world, world.viewer, "/collections/deviations/items/abc").status_code == 404
    assert get(world, world.viewer, "/collections/deviations/items/999999999999999999999").status_code == 404
    for odd in ("²", "٣", "0", "-1"):  # digits to str.isdigit(), or not ids
        assert get(world, world.viewer, f"/collections/deviations/items/{odd}").status_code == 404


def test_places_are_polygons_in_both_systems(world: World) -> None:
    place = places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=18.09, lat=59.244,
                                                                     radius_m=100))
    body = get(world, world.viewer, "/collections/places/items").json()
    [feature] = body["features"]
    assert feature["geometry"]["type"] == "Polygon" and feature["properties"]["name"] == "Torget"
    sweref = get(world, world.viewer, f"/collections/places/items/{place.pk}",
                 crs="http://www.opengis.net/def/crs/EPSG/0/3006").json()
    northing, easting = sweref["geometry"]["coordinates"][0][0]
    assert 6_560_000 < northing < 6_590_000 and 670_000 < easting < 690_000
    assert ids(get(world, world.viewer, "/collections/places/items", filter="name LIKE 'Tor%'")) == [place.pk]
    assert ids(get(world, world.viewer, "/collections/places/items", bbox="10,55,11,56")) == []


def test_a_bearer_token_reads_the_forum_it_was_made_for(world: World, planted: dict[str, Deviation]) -> None:
    _token, key = ApiToken.issue(world.police_lead, "qgis")
    client = world.client()
    response = client.get(f"{BASE}/collections/deviations/items", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200 and planted["restricted"].pk in ids(response)
    assert client.get(f"{BASE}/collections/deviations/items").status_code == 401


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from([*"()'\",.%_\\ =<>!-:TZ0123456789abcdeNOTANDORLIKEIN",
    "status", "observedAt", "category", "TIMESTAMP(", "DATE(", "S_INTERSECTS(", "geometry", "BBOX(", " AND ",
    " OR ", " NOT ", "IS NULL", "BETWEEN", "'graffiti'", "organisation", "ISNULL"]), max_size=30).map("".join))
def test_no_filter_text_gets_a_server_error(world: World, text: str) -> None:
    response = get(world, world.viewer, "/collections/deviations/items", filter=text)
    assert response.status_code in {200, 400}, (text, response.content)
    if response.status_code == 400:
        assert response.json()["error"]["field"] == "filter"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=st.text(alphabet=st.sampled_from(list("%_\\*?[]^a")), max_size=12))
def test_like_means_the_same_on_every_database(world: World, pattern: str) -> None:
    """CQL2 LIKE against Python's reading of the same pattern, on the place names planted."""
    import re

    names = ["a", "a%", "a_b", "*a?", "[a]", "a\\", "", "aaa"]
    if not Deviation.objects.exists():
        for name in names:
            world.report(world.housing_reporter, place_name=name)
    quoted = pattern.replace("'", "''")
    response = get(world, world.viewer, "/collections/deviations/items", filter=f"placeName LIKE '{quoted}'")
    assert response.status_code == 200, response.content
    found = sorted(f["properties"]["placeName"] for f in response.json()["features"])
    regex, escaped = "", False
    for char in pattern:
        if escaped:
            regex += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
    if escaped:
        regex += re.escape("\\")
    assert found == sorted(n for n in names if re.fullmatch(regex, n, flags=re.DOTALL))
