"""GDAL's OAPIF driver (the one QGIS uses) reads the OGC API Features service over HTTP, with a bearer token.

GDAL runs in a child process (pyogrio ships it): it blocks while it waits for the test server, which serves
from a thread of this one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any
from urllib.parse import unquote

import pytest

from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import ApiToken
from lagesbild.places import services as places
from tests.conftest import MARKER, World, make_world

pytestmark = pytest.mark.django_db(transaction=True)
WHEN = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)

READER = r"""
import json, sys
import pyogrio
url, key, crs, where, layer = sys.argv[1:6]
options = {"CRS": crs} if crs else {}
if layer == "-":
    print(json.dumps({"layers": [str(name) for name, _ in pyogrio.list_layers(url)]}))
    sys.exit()
frame = pyogrio.read_dataframe(url, layer=layer, where=where or None, **options)
print(json.dumps({
    "crs": frame.crs.to_string() if frame.crs else None,
    "columns": [c for c in frame.columns if c != "geometry"],
    "rows": json.loads(frame.drop(columns="geometry").to_json(orient="records", date_format="iso")),
    "xy": [[g.x, g.y] if g.geom_type == "Point" else list(g.exterior.coords[0]) for g in frame.geometry],
}))
"""


def gdal(url: str, key: str, layer: str = "-", crs: str = "", where: str = "") -> dict[str, Any]:
    # GDAL's own way to send a bearer token (docs/ogc.md tells GIS users the same).
    env = {**os.environ, "GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": key, "GDAL_HTTP_TIMEOUT": "60",
           "CPL_DEBUG": "ON"}
    done = subprocess.run([sys.executable, "-c", READER, f"OAPIF:{url}", key, crs, where, layer],
                          capture_output=True, text=True, timeout=180, check=False, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # With CPL_DEBUG on, GDAL logs every address it fetches.
    result["fetched"] = [line.split("Fetch(", 1)[1].rstrip(")") for line in done.stderr.splitlines()
                         if "HTTP: Fetch(" in line]
    return result


@pytest.fixture
def served(live_server: Any) -> tuple[World, str, str]:
    world = make_world()
    for day in range(7):
        world.report(world.housing_reporter if day % 2 else world.coordinator,
                     category=("graffiti", "broken_lighting", "litter")[day % 3], lon=18.06 + day / 100, lat=59.24,
                     observed_at=WHEN + dt.timedelta(days=day), place_name=f"Plats {day}", description=f"Text {day}")
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                 description=MARKER, observed_at=WHEN)
    places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=18.09, lat=59.244, radius_m=80))
    _token, key = ApiToken.issue(world.housing_reporter, "qgis")
    return world, f"{live_server.url}/api/forums/farsta/ogc", key


def api_items(world: World, path: str, **params: Any) -> dict[str, Any]:
    response = world.client(world.housing_reporter).get(f"/api/forums/farsta/ogc{path}", {"limit": 5000, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_gdal_reads_every_collection_as_the_api_gives_it(served: tuple[World, str, str]) -> None:
    world, url, key = served
    assert gdal(url, key)["layers"] == ["deviations", "places"]
    for crs, coordinates in (("", lambda g: g["coordinates"]), ("EPSG:3006", lambda g: g["coordinates"][::-1])):
        read = gdal(url, key, "deviations", crs)
        assert read["crs"] == (crs or "OGC:CRS84")
        expected = api_items(world, "/collections/deviations/items",
                             **({"crs": "http://www.opengis.net/def/crs/EPSG/0/3006"} if crs else {}))
        assert len(read["rows"]) == expected["numberMatched"] == 7  # not the police's restricted one
        by_id = {f["id"]: f for f in expected["features"]}
        for row, xy in zip(read["rows"], read["xy"], strict=True):
            feature = by_id[row["id"]]
            # GDAL gives easting, northing (x, y) whatever the axis order on the wire.
            assert xy == pytest.approx(coordinates(feature["geometry"]), abs=1e-6)
            for name, value in feature["properties"].items():
                if name in {"observedAt", "reportedAt", "observedUntil"}:
                    got = row[name]
                    assert (got is None and value is None) or dt.datetime.fromisoformat(got.replace("Z", "+00:00")) \
                        == dt.datetime.fromisoformat(value.replace("Z", "+00:00")), name
                else:
                    assert row[name] == value, name
        assert MARKER not in json.dumps(read)
    places_read = gdal(url, key, "places", "EPSG:3006")
    assert [r["name"] for r in places_read["rows"]] == ["Torget"]
    assert 670_000 < places_read["xy"][0][0] < 690_000  # easting first, as GIS expects


def test_gdal_sends_attribute_filters_as_cql2(served: tuple[World, str, str]) -> None:
    world, url, key = served
    read = gdal(url, key, "deviations",
                where="category = 'graffiti' AND organisation > 0 AND observedAt >= '2026-03-10'")
    expected = api_items(world, "/collections/deviations/items", filter="category = 'graffiti'")
    assert sorted(r["id"] for r in read["rows"]) == sorted(f["id"] for f in expected["features"])
    assert len(read["rows"]) == 3
    # GDAL sent the filter to the server in CQL2 rather than reading everything and filtering itself.
    items = next(address for address in read["fetched"] if "filter=" in address)
    assert "filter=" in items and "graffiti" in unquote(items), read["fetched"]
    assert Deviation.objects.filter(category__key="graffiti").count() == 3
