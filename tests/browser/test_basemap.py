"""Streets under the deviations, as users meet them: raster tiles from a tile server, and Lägesbild's own
PMTiles basemap, each requested, drawn (pixels of the basemap's colours on the screen) and allowed by the
Content-Security-Policy (every browser test fails on a CSP violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.basemaps import EARTH_COLOUR, RASTER_COLOUR, WATER_COLOUR, TileServer, share_of_colour
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_tiles(page: Page, name: str = "lagesbildMap") -> None:
    page.wait_for_function(f"() => window.{name} && window.{name}.loaded() && window.{name}.areTilesLoaded()",
                           timeout=30_000)
    page.wait_for_timeout(300)  # the last frame


def test_raster_tiles_from_the_tile_server_are_drawn(site: str, desktop: Page, tile_server: TileServer) -> None:
    before = len(tile_server.requests)
    sign_in(desktop, site, "polis@farsta.demo")
    wait_for_tiles(desktop)
    assert len(tile_server.requests) > before, "no tile was requested"
    shot = desktop.locator("#map").screenshot()
    assert share_of_colour(shot, RASTER_COLOUR) > 0.3, "the tiles were not drawn"
    assert desktop.csp_violations == []  # type: ignore[attr-defined]


def test_the_area_editor_draws_the_basemap_too(site: str, desktop: Page, tile_server: TileServer) -> None:
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.goto(f"{site}/f/farsta/installningar/")
    wait_for_tiles(desktop, "lagesbildAreaMap")
    assert share_of_colour(desktop.locator("#area-map").screenshot(), RASTER_COLOUR) > 0.3


def test_the_self_hosted_vector_basemap_is_drawn(site: str, desktop: Page, settings: Any, pmtiles_path: Path,
                                                 tile_server: TileServer) -> None:
    settings.LAGESBILD_PMTILES_PATH = str(pmtiles_path)
    ranges: list[int] = []
    desktop.on("response", lambda r: ranges.append(r.status) if "/basemap/basemap.pmtiles" in r.url else None)
    before = len(tile_server.requests)
    sign_in(desktop, site, "polis@farsta.demo")
    wait_for_tiles(desktop)
    # Centre on the lake, near enough for streets.
    desktop.evaluate("() => window.lagesbildMap.jumpTo({center: [18.062, 59.236], zoom: 14})")
    wait_for_tiles(desktop)
    assert ranges and set(ranges) == {206}, ranges  # read in ranges from Lägesbild itself
    assert len(tile_server.requests) == before  # and nothing from the raster tile server
    shot = desktop.locator("#map").screenshot()
    assert share_of_colour(shot, WATER_COLOUR) > 0.15, "the lake was not drawn"
    assert share_of_colour(shot, EARTH_COLOUR) > 0.15, "the land was not drawn"
    assert desktop.csp_violations == []  # type: ignore[attr-defined]
