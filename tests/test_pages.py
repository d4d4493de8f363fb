"""The pages around the map: sign-in redirects, the forum list, 404s and security headers."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import Client

from lagesbild.forums.models import Membership
from lagesbild.forums.services import add_member
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(world: World) -> None:
    for url in ["/", "/f/farsta/"]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/konto/login/")


def test_one_forum_goes_straight_to_its_map(world: World) -> None:
    response = world.client(world.police_reporter).get("/")
    assert (response.status_code, response["Location"]) == (302, "/f/farsta/")


def test_several_forums_are_listed(world: World) -> None:
    add_member(world.other_forum, email=world.police_reporter.user.email,
               organisation=world.outsider.organisation, role="viewer")
    response = world.client(world.police_reporter).get("/")
    assert response.status_code == 200
    assert "Farsta" in response.content.decode() and "Skärholmen" in response.content.decode()


def test_map_page_of_another_forum_is_not_found(world: World) -> None:
    response = world.client(world.outsider).get("/f/farsta/")
    assert response.status_code == 404
    assert "Forumet finns inte." in response.content.decode()
    missing = world.client(world.outsider).get("/f/finns-inte/")
    main = lambda html: re.search(rb"<main.*</main>", html, re.S).group(0)  # type: ignore[union-attr]  # noqa: E731
    assert main(missing.content) == main(response.content)


def test_map_page_has_a_strict_content_security_policy(world: World) -> None:
    response = world.client(world.police_reporter).get("/f/farsta/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    # Every script is a file or JSON data: nothing inline for the policy to block.
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert 'lang="sv"' in html


def test_viewer_gets_no_report_button(world: World) -> None:
    html = world.client(world.viewer).get("/f/farsta/").content.decode()
    assert "Rapportera avvikelse" not in html
    assert "Rapportera avvikelse" in world.client(world.police_reporter).get("/f/farsta/").content.decode()


def test_inactive_membership_loses_access(world: World) -> None:
    Membership.objects.filter(pk=world.police_reporter.pk).update(is_active=False)
    assert world.client(world.police_reporter).get("/f/farsta/").status_code == 404
    assert world.client(world.police_reporter).get("/api/forums/farsta/deviations").status_code == 404


def test_healthz_needs_no_sign_in() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] in {"sqlite", "postgresql"}


def test_sessions_end_after_inactivity_and_each_request_extends_them(world: World) -> None:
    """The idle clock starts again with each request, to the minute: a session that nothing changed is
    written at most once a minute, so that a panning map's reads do not each write."""
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        client = world.client(world.police_reporter)
        response = client.get("/api/forums/farsta/deviations")
        assert response.cookies["sessionid"]["max-age"] == 120 * 60
        written = Session.objects.get().expire_date
        assert written == start + dt.timedelta(minutes=120)
        clock.shift(dt.timedelta(seconds=59))
        again = client.get("/api/forums/farsta")
        assert again.status_code == 200 and "sessionid" not in again.cookies
        assert Session.objects.get().expire_date == written  # not written again within the minute
        clock.shift(dt.timedelta(seconds=2))
        later = client.get("/api/forums/farsta")
        assert later.cookies["sessionid"]["max-age"] == 120 * 60
        assert Session.objects.get().expire_date == start + dt.timedelta(seconds=61, minutes=120)
        # Two hours without a request: signed out.
        clock.shift(dt.timedelta(minutes=120, seconds=1))
        assert client.get("/api/forums/farsta").status_code == 401


def test_a_session_changed_within_the_minute_is_written_at_once(world: World) -> None:
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from lagesbild.middleware import SessionMiddleware

    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        store = SessionStore()
        store[SessionMiddleware.REFRESHED] = int(time.time())
        store.save()
        middleware = SessionMiddleware(lambda request: HttpResponse())
        for change, written in ((False, False), (True, True)):
            clock.shift(dt.timedelta(seconds=10))
            request = RequestFactory().get("/")
            request.session = SessionStore(session_key=store.session_key)
            if change:
                request.session["language"] = "en"
            response = middleware.process_response(request, HttpResponse())
            assert ("sessionid" in response.cookies) is written
            assert ("language" in SessionStore(session_key=store.session_key).load()) is written


def test_passwords_are_hashed_with_argon2(world: World, settings: object) -> None:
    from lagesbild import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS  # type: ignore[attr-defined]
    user = world.viewer.user
    user.set_password("a new and long passphrase")
    user.save()
    assert user.password.startswith("argon2$")
    assert Client().login(username=user.email, password="a new and long passphrase")


@pytest.mark.parametrize(("tiles", "pmtiles", "hosts"), [
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "", ["https://tile.openstreetmap.org"]),
    ("https://api.lantmateriet.se/open/topowebb-ccby/v1/wmts/token/T/1.0.0/topowebb/default/3857/"
     "{TileMatrix}/{TileRow}/{TileCol}.png", "", ["https://api.lantmateriet.se"]),
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "/srv/farsta.pmtiles", []),
    ("", "", []),
])
def test_the_policy_allows_exactly_the_configured_basemap(world: World, settings: Any, tiles: str, pmtiles: str,
                                                          hosts: list[str]) -> None:
    """MapLibre fetches raster tiles with fetch(): their host must be in connect-src as well as img-src, and
    nothing else must be; a self-hosted basemap needs no host at all."""
    settings.LAGESBILD_TILE_URL = tiles
    settings.LAGESBILD_PMTILES_PATH = pmtiles
    response = world.client(world.police_reporter).get("/f/farsta/")
    directives = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    assert directives["connect-src"].split() == ["'self'", *hosts]
    assert directives["img-src"].split() == ["'self'", "data:", "blob:", *hosts]
    config = json.loads(re.search(r'<script id="lagesbild-config" type="application/json">(.*?)</script>',
                                  response.content.decode()).group(1))  # type: ignore[union-attr]
    kind = "pmtiles" if pmtiles else "raster" if tiles else "none"
    assert config["basemap"]["kind"] == kind
    if kind == "raster":
        assert "{z}" in config["basemap"]["tiles"] and "{TileMatrix}" not in config["basemap"]["tiles"]


def test_the_basemap_file_is_read_in_ranges_by_members_only(world: World, settings: Any, tmp_path: Any) -> None:
    path = tmp_path / "b.pmtiles"
    path.write_bytes(bytes(range(256)) * 4)
    settings.LAGESBILD_PMTILES_PATH = str(path)
    assert world.client().get("/basemap/basemap.pmtiles").status_code == 401
    client = world.client(world.viewer)
    part = client.get("/basemap/basemap.pmtiles", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    assert part["Content-Range"] == "bytes 10-19/1024" and part["Cache-Control"] == "private, max-age=86400"
    assert client.get("/basemap/basemap.pmtiles", HTTP_RANGE="bytes=2000-").status_code == 416
    glyphs = client.get("/basemap/fonts/Noto Sans Regular/0-255.pbf")
    assert glyphs.status_code == 200 and b"Noto Sans Regular" in glyphs.content and b"0-255" in glyphs.content
    assert client.get("/basemap/fonts/Noto Sans Regular/3-258.pbf").status_code == 404
