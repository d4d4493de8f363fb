"""A line and an area drawn on the map, from the drawing tool to the export: by mouse, and from the keyboard with
the cross."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from playwright.sync_api import Page, expect
from shapely.geometry import shape

from lagesbild.deviations.models import Deviation
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def drawn_features(page: Page, layer: str) -> set[int]:
    return set(page.evaluate(
        f"() => window.lagesbildMap.queryRenderedFeatures({{layers: ['{layer}']}}).map(f => f.properties.id)"))


def start_drawing(page: Page, site: str, email: str, kind: str) -> None:
    """Signed in, over Farsta centrum, with the report's drawing tool open for `kind`."""
    sign_in(page, site, email)
    page.wait_for_function("() => document.body.classList.contains('map-ready')")
    page.evaluate("() => window.lagesbildMap.jumpTo({center: [18.0912, 59.2433], zoom: 16})")
    page.get_by_role("button", name="Rapportera avvikelse").click()
    page.get_by_label(kind).check()


def test_a_line_and_an_area_from_the_drawing_tool_to_the_export(site: str, desktop: Page) -> None:
    page = desktop
    # A line, by clicking three corners of a path on the map.
    start_drawing(page, site, "vicevard@farsta.demo", "en linje")
    expect(page.get_by_role("button", name="Klar")).to_be_disabled()
    box = page.locator("#map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Below the banner, which covers the top of the map.
    for dx, dy in ((-150, 60), (0, 140), (120, 80)):
        page.mouse.click(cx + dx, cy + dy)
    expect(page.locator("#draw-status")).to_have_text("3 hörn. En linje behöver minst 2.")
    page.get_by_role("button", name="Ångra hörn").click()
    expect(page.locator("#draw-status")).to_contain_text("2 hörn")
    page.mouse.click(cx + 120, cy + 80)
    page.get_by_role("button", name="Klar").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#report-position")).to_have_text("En linje med 3 hörn")
    dialog.get_by_label("Kategori").select_option("dark_place")
    dialog.get_by_label("Beskrivning").fill("Mörk gångväg, webbtest linje")
    # Drawn again from the form, which keeps what was typed: a fourth corner further along the path.
    dialog.get_by_role("button", name="Rita om").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#draw-status")).to_have_text("3 hörn. En linje behöver minst 2.")
    # The corners drawn before are on the map again (after the form's close, which clears the drawing).
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['drawing-corners']}).length === 3")
    page.mouse.click(cx + 200, cy + 60)
    page.mouse.dblclick(cx + 200, cy + 60)  # a double click on the same spot is no new corner
    expect(page.locator("#draw-status")).to_have_text("4 hörn. En linje behöver minst 2.")
    page.get_by_role("button", name="Klar").click()
    expect(dialog.locator("#report-position")).to_have_text("En linje med 4 hörn")
    expect(dialog.get_by_label("Beskrivning")).to_have_value("Mörk gångväg, webbtest linje")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog).to_be_hidden()
    detail = page.locator("#view-detail")
    expect(detail).to_contain_text("Mörk gångväg, webbtest linje")
    expect(detail).to_contain_text(" m)")  # "(Linje, 240 m)"
    line = Deviation.objects.get(description="Mörk gångväg, webbtest linje")
    assert line.shape is not None and line.shape["type"] == "LineString"
    assert len(line.shape["coordinates"]) == 4
    # The anchor lies on the line, halfway along it.
    assert shape(line.shape).distance(shapely.Point(line.lon, line.lat)) < 1e-6

    # An area, from the keyboard: move the map, add a corner at the cross, three times.
    page.get_by_role("button", name="Rapportera avvikelse").click()
    page.get_by_label("ett område").check()
    expect(page.get_by_role("button", name="Hörn vid krysset")).to_be_visible()
    expect(page.get_by_role("button", name="Använd krysset")).to_be_hidden()
    for lon, lat in ((18.0890, 59.2440), (18.0900, 59.2440), (18.0900, 59.2446)):
        page.evaluate(f"() => window.lagesbildMap.jumpTo({{center: [{lon}, {lat}]}})")
        page.get_by_role("button", name="Hörn vid krysset").focus()
        page.keyboard.press("Enter")
    expect(page.locator("#draw-status")).to_have_text("3 hörn. Ett område behöver minst 3.")
    page.get_by_role("button", name="Klar").click()
    expect(dialog.locator("#report-position")).to_have_text("Ett område med 3 hörn")
    dialog.get_by_label("Kategori").select_option("overgrown_vegetation")
    dialog.get_by_label("Beskrivning").fill("Igenvuxen slänt, webbtest område")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog).to_be_hidden()
    area = Deviation.objects.get(description="Igenvuxen slänt, webbtest område")
    assert area.shape is not None and area.shape["type"] == "Polygon"
    corners = area.shape["coordinates"][0]
    assert corners[0] == corners[-1] and len(corners) == 4
    assert corners[1] == pytest.approx([18.09, 59.244], abs=1e-6)

    # Both are drawn on the map as themselves, and a click on the line opens it.
    page.evaluate("() => window.lagesbildMap.jumpTo({center: [18.0905, 59.2438], zoom: 16})")
    page.wait_for_function(
        f"() => window.lagesbildMap.queryRenderedFeatures({{layers: ['shape-fills']}})"
        f".some(f => f.properties.id === {area.pk})")
    assert line.pk in drawn_features(page, "shape-lines")
    assert area.pk in drawn_features(page, "shape-fills")

    # The export carries them with their true geometry.
    page.locator("#view-detail").get_by_role("button", name="Tillbaka till listan").click()
    page.get_by_text("Exportera filtret som fil").click()
    page.get_by_label("Format").select_option("geojson")
    with page.expect_download() as download:
        page.get_by_role("button", name="Ladda ner").click()
    features = {f["id"]: f for f in json.loads(Path(download.value.path()).read_text())["features"]}
    assert features[line.pk]["geometry"] == line.shape
    assert features[area.pk]["geometry"] == area.shape
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_a_line_drawn_on_a_phone(site: str, phone: Page) -> None:
    page = phone
    start_drawing(page, site, "trygghetsvard@farsta.demo", "en linje")
    expect(page.locator("#pick-help")).to_contain_text("klicka på kartan vid varje hörn")
    box = page.locator("#map").bounding_box()
    assert box is not None
    bottom = box["y"] + box["height"]
    page.mouse.click(box["x"] + box["width"] * 0.2, bottom - 200)
    # Once drawing, the instructions give way to the count, and the banner leaves the lower half of the map free.
    expect(page.locator("#draw-status")).to_have_text("1 hörn. En linje behöver minst 2.")
    expect(page.locator("#pick-help")).to_be_hidden()
    banner = page.locator("#pick-banner").bounding_box()
    assert banner is not None
    assert banner["y"] + banner["height"] < box["y"] + box["height"] / 2
    page.mouse.click(box["x"] + box["width"] * 0.7, bottom - 250)  # above the sign-in notice
    page.get_by_role("button", name="Klar").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#report-position")).to_have_text("En linje med 2 hörn")
    dialog.get_by_label("Kategori").select_option("moped")
    dialog.get_by_label("Beskrivning").fill("Mopedåkning på gångvägen, webbtest telefon")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog).to_be_hidden()
    saved = Deviation.objects.get(description="Mopedåkning på gångvägen, webbtest telefon")
    assert saved.shape is not None and len(saved.shape["coordinates"]) == 2
    assert page.js_errors == []  # type: ignore[attr-defined]
