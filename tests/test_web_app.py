"""The installable web app: its manifest and icons, and the service worker's rules about what it keeps."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from PIL import Image

pytestmark = pytest.mark.django_db


def test_the_manifest_has_what_installing_needs() -> None:
    response = Client().get("/manifest.webmanifest")
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert (manifest["name"], manifest["start_url"], manifest["scope"], manifest["display"]) == (
        "Lägesbild", "/", "/", "standalone")
    assert manifest["lang"] == "sv" and "lägesbild" in manifest["description"].lower()
    sizes = set()
    for icon in manifest["icons"]:
        path = finders.find(icon["src"].removeprefix("/static/"))
        assert path, icon["src"]
        with Image.open(path) as image:
            assert icon["sizes"] == f"{image.width}x{image.height}" and image.format == "PNG"
        sizes.add((icon["sizes"], icon["purpose"]))
    assert {("192x192", "any"), ("512x512", "any"), ("192x192", "maskable"), ("512x512", "maskable")} <= sizes
    page = Client().get("/konto/login/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page


def test_the_service_worker_is_served_for_the_whole_site_and_keeps_no_deviations() -> None:
    response = Client().get("/sw.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert {"no-cache", "no-store"} & {part.strip() for part in response["Cache-Control"].split(",")}
    script = response.content.decode()
    for asset in re.findall(r'"(/static/[^"]+)"', script):  # every file it keeps exists
        assert finders.find(asset.removeprefix("/static/")), asset
    kept = re.search(r"const FORUM_DATA = /(.+)/;", script)
    assert kept is not None
    forum_data = re.compile(kept.group(1).replace("\\/", "/"))
    assert forum_data.match("/api/forums/farsta/categories") and forum_data.match("/api/forums/farsta")
    for path in ("/api/forums/farsta/deviations", "/api/forums/farsta/deviations/1", "/api/forums/farsta/photos/1",
                 "/api/forums/farsta/tiles/WebMercatorQuad/10/1/1", "/api/forums/farsta/alerts",
                 "/api/forums/farsta/places/1", "/api/forums/farsta/export"):
        assert not forum_data.match(path), path


def test_the_basemap_is_offered_for_use_without_network_only_where_the_operator_allows_it(settings: object,
                                                                                        world: object) -> None:
    from tests.conftest import World

    assert isinstance(world, World)
    client = world.client(world.housing_reporter)
    settings.LAGESBILD_TILE_URL = "https://tiles.example.se/{z}/{x}/{y}.png"  # type: ignore[attr-defined]
    settings.LAGESBILD_TILE_OFFLINE_ZOOM = 0  # type: ignore[attr-defined]  # the default
    assert 'const TILE_ORIGIN = "" ?' in client.get("/sw.js").content.decode()
    assert 'id="offline-map"' not in client.get("/f/farsta/").content.decode()
    settings.LAGESBILD_TILE_OFFLINE_ZOOM = 16  # type: ignore[attr-defined]
    assert 'const TILE_ORIGIN = "https://tiles.example.se" ?' in client.get("/sw.js").content.decode()
    page = client.get("/f/farsta/").content.decode()
    assert 'id="offline-map"' in page and '"offlineZoom": 16' in page
    settings.LAGESBILD_TILE_MAXZOOM = 15  # type: ignore[attr-defined]  # never past what the tile server has
    assert '"offlineZoom": 15' in client.get("/f/farsta/").content.decode()
    settings.LAGESBILD_TILE_OFFLINE_ZOOM = 5  # type: ignore[attr-defined]  # kept from zoom 10 down, always
    assert '"offlineZoom": 10' in client.get("/f/farsta/").content.decode()


@pytest.mark.parametrize(("error", "status"), [
    ("unable to open database file", 503),  # SQLite's file gone (a disk unmounted)
    ("no such column: deviations_deviation.nothing", 500),  # a fault of ours, not an outage
])
@pytest.mark.parametrize("path", ["/api/forums/farsta/deviations", "/karta/farsta/"])
def test_an_unreachable_database_is_a_503_to_try_again_and_other_errors_stay_500(error: str, status: int,
                                                                                  path: str) -> None:
    """PostgreSQL restarting is tested for real in test_faults.py; here the other kinds of database error."""
    from django.db import OperationalError
    from django.test import RequestFactory

    from lagesbild.views import server_error

    try:
        raise OperationalError(error)
    except OperationalError:
        response = server_error(RequestFactory().get(path))
    assert response.status_code == status
    if status == 503:
        assert response["Retry-After"] == "10"
        text = response.content.decode()
        assert "Inget sparades" in text and "databas" in text
        assert error not in text  # the database's own words stay in the log


def test_a_misused_connection_that_is_still_open_stays_a_500() -> None:
    """psycopg's InterfaceError also names faults of ours (a cursor used after closing): only a closed
    connection is an outage."""
    from django.db import InterfaceError, connection
    from django.test import RequestFactory

    from lagesbild.views import server_error

    connection.ensure_connection()
    try:
        raise InterfaceError("the cursor is closed")
    except InterfaceError:
        response = server_error(RequestFactory().get("/api/forums/farsta/deviations"))
    assert response.status_code == 500


def test_the_static_files_are_found_once_per_process_and_served_by_every_instance() -> None:
    from django.http import HttpResponse

    from lagesbild.middleware import StaticFilesMiddleware

    first, second = (StaticFilesMiddleware(lambda request: HttpResponse(status=404)) for _ in range(2))
    url = "/static/vendor/maplibre-gl/maplibre-gl.js"
    assert second.files[url] is first.files[url]  # the second instance did not look for the files again
    response = Client().get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert b"maplibre" in b"".join(response.streaming_content)[:5000].lower()
