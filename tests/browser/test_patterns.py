"""The map's heat map and hexagon layers, and the patterns page with the map's filter."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, sign_in, violations
from tests.browser.test_accessibility import page  # noqa: F401 - the desktop and phone page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_hexagons_and_heat_map_on_the_map_then_patterns_with_the_same_filter(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.get_by_role("tab", name="Filter").click()
    desktop.get_by_label("Period").select_option("90")
    requested: list[str] = []
    desktop.on("request", lambda request: requested.append(request.url))
    desktop.get_by_label("Hexagoner med antal").check()
    desktop.wait_for_function(
        "() => window.lagesbildMap.getLayoutProperty('hexagon-cells', 'visibility') === 'visible'"
        " && window.lagesbildMap.querySourceFeatures('hexagons', {sourceLayer: 'cells'}).length > 0")
    assert desktop.evaluate("() => window.lagesbildMap.getLayoutProperty('points', 'visibility')") == "none"
    # The hexagons come as vector tiles of the same filter, not as one GeoJSON answer.
    tile_requests = [url for url in requested if "/tiles/WebMercatorQuad/" in url]
    assert tile_requests and all("hexagons=true" in url and "from=" in url for url in tile_requests)
    assert not any("/patterns/hexagons" in url for url in requested)
    # Each hexagon shows its count, and the legend's classes reach the busiest hexagon in view.
    desktop.wait_for_function(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['hexagon-counts']}).length > 0")
    expect(desktop.locator("#hexagon-legend")).to_be_visible()
    # The legend is worked out when the map comes to rest: wait for the rest after the period changed.
    legend_reaches_the_top = """() => {
        const items = [...document.querySelectorAll('#hexagon-legend-classes li')].map((li) => li.innerText.trim());
        const counts = window.lagesbildMap.queryRenderedFeatures({layers: ['hexagon-cells']})
            .map((f) => f.properties.count);
        return items.length >= 2 && counts.length > 0 && items[0].startsWith('1')
            && items[items.length - 1].endsWith(String(Math.max(...counts)));
    }"""
    desktop.wait_for_function(legend_reaches_the_top)
    # A filter that leaves nothing on screen says so, rather than keeping the classes of the last one.
    desktop.get_by_label("Sök text", exact=True).fill("ingen avvikelse har den här texten")
    expect(desktop.locator("#hexagon-legend-classes")).to_have_text("Inga avvikelser matchar filtret i den här vyn.")
    desktop.get_by_label("Sök text", exact=True).fill("")
    desktop.wait_for_function("() => document.querySelectorAll('#hexagon-legend-classes li').length >= 2")
    desktop.get_by_label("Värmekarta").check()
    desktop.wait_for_function("() => window.lagesbildMap.getLayoutProperty('heat', 'visibility') === 'visible'")
    assert desktop.evaluate("() => window.lagesbildMap.getLayoutProperty('hexagon-cells', 'visibility')") == "none"
    assert desktop.evaluate("() => window.lagesbildMap.getLayoutProperty('cluster-counts', 'visibility')") == "none"

    desktop.get_by_role("link", name="Mönster").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Mönster")
    expect(desktop.get_by_label("Period", exact=True)).to_have_value("90")
    for section in ("Var", "När", "Utveckling", "Vem", "Jämför"):
        expect(desktop.get_by_role("heading", name=section, exact=True)).to_be_visible()
    expect(desktop.locator("svg.static-map").first).to_be_visible()
    expect(desktop.locator("svg.chart").first).to_be_visible()
    expect(desktop.get_by_role("table", name="Avvikelser per veckodag och timme (Europe/Stockholm)")).to_contain_text(
        "måndag")
    # The tables behind the figures open on request.
    table = desktop.get_by_role("region", name="Avvikelser per månad")
    expect(table).to_be_hidden()
    desktop.get_by_text("Visa tabell").nth(1).click()
    expect(table).to_be_visible()
    with desktop.expect_download() as download:
        # The link's name ends with its figure (visually hidden), so the eight download links differ.
        desktop.get_by_role("link", name=re.compile(
            r"^Ladda ned siffrorna \(CSV\)\s*: Avvikelser per veckodag och timme$")).click()
    assert download.value.suggested_filename.startswith("week-hours-farsta-")
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_patterns_page_accessibility(site: str, page: Page) -> None:  # noqa: F811 - the axe page fixture
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}/f/farsta/monster/?period=all")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert violations(page) == []
    if page.viewport_size == PHONE:
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
