"""The map page in a real browser: sign in, filter, report by clicking the map, detail, on desktop and phone."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lagesbild.deviations.models import Deviation
from tests.browser.conftest import sign_in
from tests.conftest import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rendered_points(page: Page) -> int:
    return int(page.evaluate(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['points', 'clusters']}).length"))


def list_titles(page: Page) -> list[str]:
    return page.locator("#deviation-list .item-title").all_inner_texts()


def test_sign_in_shows_the_picture(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "polis@farsta.demo")
    expect(desktop).to_have_url(re.compile(r"/f/farsta/"))
    expect(desktop.locator("#summary")).to_contain_text("avvikelser i vyn")
    assert desktop.locator("#deviation-list li").count() > 0
    expect(desktop.locator("#legend")).to_contain_text("Skadegörelse")
    desktop.wait_for_function(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['points', 'clusters']}).length > 0")
    assert rendered_points(desktop) > 0
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_wrong_password_gives_a_swedish_message(site: str, desktop: Page) -> None:
    desktop.goto(f"{site}/")
    desktop.get_by_label("E-postadress").fill("polis@farsta.demo")
    desktop.get_by_label("Lösenord").fill("fel lösenord")
    desktop.get_by_role("button", name="Logga in").click()
    expect(desktop.get_by_role("alert")).to_contain_text("E-postadressen eller lösenordet är fel")
    expect(desktop.get_by_label("E-postadress")).to_have_value("polis@farsta.demo")


def test_filter_by_category_and_period(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.get_by_role("tab", name="Filter").click()
    with desktop.expect_response(lambda r: "/deviations?" in r.url) as everything:
        desktop.get_by_label("Period").select_option("all")
    before = everything.value.json()["numberMatched"]
    expect(desktop.locator("#summary")).to_contain_text(f"{before} avvikelser i vyn")
    with desktop.expect_response(lambda r: "/deviations?" in r.url and "category=drugs" in r.url) as drugs:
        desktop.get_by_label("Narkotika").check()
    after = drugs.value.json()["numberMatched"]
    assert 0 < after < before
    expect(desktop.locator("#summary")).to_contain_text(f"{after} avvikelser i vyn")
    desktop.get_by_role("tab", name="Lista").click()
    titles = set(list_titles(desktop))
    assert titles, "the filter should leave some drug deviations"
    assert titles <= {"Narkotika", "Misstänkt försäljning", "Användning", "Tillhåll"}
    assert "category=drugs" in desktop.url  # the filter can be shared as a link
    desktop.get_by_role("tab", name="Filter").click()
    desktop.get_by_role("button", name="Rensa filter").click()
    desktop.get_by_role("tab", name="Lista").click()
    expect(desktop.locator("#deviation-list .item-title").first).to_be_visible()


def report_at_centre_by_click(page: Page) -> None:
    page.get_by_role("button", name="Rapportera avvikelse").click()
    expect(page.locator("#pick-banner")).to_be_visible()
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2 + 7, box["y"] + box["height"] / 2 + 5)
    expect(page.get_by_role("dialog")).to_be_visible()


def test_report_by_clicking_the_map(site: str, desktop: Page, tmp_path: Path) -> None:
    sign_in(desktop, site, "vicevard@farsta.demo")
    report_at_centre_by_click(desktop)
    dialog = desktop.get_by_role("dialog")
    expect(dialog.get_by_label("Upptäckt")).not_to_have_value("")  # defaults to now
    dialog.get_by_label("Kategori").select_option("graffiti")
    dialog.get_by_label("Plats eller adress").fill("Gången bakom Ica")
    dialog.get_by_label("Beskrivning").fill("Nytt klotter på elskåpet, webbtest")
    dialog.get_by_label("Hög").check()
    photo = tmp_path / "klotter.jpg"
    photo.write_bytes(image_bytes(exif_gps=True))
    dialog.get_by_label("Foton").set_input_files(str(photo))
    dialog.get_by_role("button", name="Spara").click()
    expect(desktop.get_by_role("dialog")).to_be_hidden()
    detail = desktop.locator("#view-detail")
    expect(detail.get_by_role("heading", level=2)).to_have_text("Skadegörelse: Klotter")
    expect(detail).to_contain_text("Nytt klotter på elskåpet, webbtest")
    expect(detail.locator(".photos img")).to_have_count(1)
    saved = Deviation.objects.get(description="Nytt klotter på elskåpet, webbtest")
    assert saved.severity == "high"
    assert saved.photos.count() == 1
    assert saved.organisation.name == "Bostadsbolaget Söderhem"
    # It is on the map and in the list at once.
    detail.get_by_role("button", name="Tillbaka till listan").click()
    expect(desktop.locator(f'.list-item[data-id="{saved.pk}"]')).to_be_visible()
    desktop.wait_for_function(
        f"() => window.lagesbildMap.querySourceFeatures('deviations').some(f => f.properties.id === {saved.pk}"
        " || f.properties.cluster)")


def test_report_errors_are_explained_and_input_kept(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "vicevard@farsta.demo")
    report_at_centre_by_click(desktop)
    dialog = desktop.get_by_role("dialog")
    dialog.get_by_label("Beskrivning").fill("Text som inte får försvinna")
    dialog.get_by_role("button", name="Spara").click()  # no category chosen
    expect(dialog.get_by_role("alert")).to_contain_text("Avvikelsen sparades inte")
    expect(dialog.get_by_label("Kategori")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Kategori").select_option("litter")
    tomorrow = (dt.datetime.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    dialog.get_by_label("Upptäckt").fill(tomorrow)
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog.get_by_role("alert")).to_contain_text("kan inte ligga i framtiden")
    expect(dialog.get_by_label("Beskrivning")).to_have_value("Text som inte får försvinna")
    assert not Deviation.objects.filter(description="Text som inte får försvinna").exists()


def test_detail_comment_and_status_change(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.locator("#deviation-list .list-item").first.click()
    detail = desktop.locator("#view-detail")
    expect(detail.get_by_role("heading", level=2)).to_be_visible()
    expect(detail).to_contain_text("Rapporterad av")
    detail.get_by_label("Skriv en kommentar").fill("Tas upp på nästa möte.")
    detail.get_by_role("button", name="Kommentera").click()
    expect(detail.locator(".comments")).to_contain_text("Tas upp på nästa möte.")
    detail.get_by_label("Ändra status").select_option("in_progress")
    expect(detail.locator(".badge")).to_have_text("Åtgärd pågår")
    expect(detail.locator(".history")).to_contain_text("Ändrad")
    # To report to the police: marked, then the report's reference recorded (a bad one explained first).
    expect(detail.get_by_text("Inte markerad för polisanmälan.")).to_be_visible()
    detail.get_by_role("button", name="Markera: ska polisanmälas").click()
    expect(detail.get_by_text("Ska polisanmälas: markerad av Farsta stadsdelsförvaltning")).to_be_visible()
    reference = detail.get_by_label("Polisanmälans diarienummer")
    reference.fill("<K1>")
    detail.get_by_role("button", name="Registrera polisanmälan").click()
    expect(detail.locator("#d-police-error")).to_contain_text("bokstäver, siffror")
    expect(reference).to_have_attribute("aria-invalid", "true")
    detail.get_by_label("Polisanmälans diarienummer").fill("5000-K123456-26")
    detail.get_by_role("button", name="Registrera polisanmälan").click()
    expect(detail.get_by_text("Polisanmäld, diarienummer 5000-K123456-26")).to_be_visible()
    expect(detail.get_by_role("button", name="Ta bort markeringen")).to_be_hidden()
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_a_broken_lamp_is_sent_to_the_owners_fault_system(site: str, desktop: Page) -> None:
    """The fault system is a real Open311 endpoint: the forum's own, served by the same live server."""
    from django.utils import timezone

    from lagesbild.deviations import services
    from lagesbild.forums.models import ApiToken, Membership
    from lagesbild.interop.models import FaultSystem, HandOff

    coordinator = Membership.objects.get(user__email="samordnare@farsta.demo", forum__slug="farsta")
    caretaker = Membership.objects.get(user__email="vicevard@farsta.demo", forum__slug="farsta")
    lamp = services.report_deviation(caretaker, services.DeviationInput(
        category="broken_lighting", lon=18.0912, lat=59.2437, observed_at=timezone.now(),
        place_name="Gångtunneln vid torget"))
    FaultSystem.objects.create(forum=coordinator.forum, organisation=coordinator.organisation,
                               name="Stadens felanmälan", endpoint=f"{site}/api/forums/farsta/open311/v2/",
                               api_key=ApiToken.issue(coordinator, "felanmälan")[1],
                               services={"broken_lighting": "broken_lighting"})
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.locator(f'#deviation-list .list-item[data-id="{lamp.pk}"]').click()
    detail = desktop.locator("#view-detail")
    detail.get_by_role("button", name="Skicka till Stadens felanmälan").click()
    expect(detail.get_by_text("Skickad till Stadens felanmälan")).to_be_visible()
    expect(detail.get_by_text("Status där: Öppen")).to_be_visible()
    expect(detail.get_by_role("button", name="Skicka till Stadens felanmälan")).to_have_count(0)
    assert HandOff.objects.get(deviation=lamp).external_id
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_clicking_a_point_opens_its_detail(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.goto(f"{site}/f/farsta/?period=all")
    desktop.wait_for_selector("body.map-ready")
    desktop.evaluate("() => window.lagesbildMap.jumpTo({zoom: 17, center: [18.0912, 59.2437]})")
    desktop.wait_for_function(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['points']}).length > 0")
    x, y = desktop.evaluate("""() => {
        const map = window.lagesbildMap;
        const [feature] = map.queryRenderedFeatures({layers: ['points']});
        const point = map.project(feature.geometry.coordinates);
        const rect = map.getCanvas().getBoundingClientRect();
        return [rect.left + point.x, rect.top + point.y];
    }""")
    desktop.mouse.click(x, y)
    expect(desktop.locator("#view-detail").get_by_role("heading", level=2)).to_be_visible()


def test_phone_report_with_my_position(site: str, phone: Page) -> None:
    sign_in(phone, site, "trygghetsvard@farsta.demo")
    phone.get_by_role("button", name="Lista och filter").click()
    expect(phone.locator("#deviation-list .list-item").first).to_be_visible()
    phone.get_by_role("button", name="Visa kartan").click()
    phone.get_by_role("button", name="Rapportera avvikelse").click()
    phone.get_by_role("button", name="Använd min position").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#report-position")).to_contain_text("59.24370, 18.09120")
    dialog.get_by_label("Kategori").select_option("youth_groups")
    dialog.get_by_label("Beskrivning").fill("Grupp vid entrén, mobiltest")
    dialog.get_by_role("button", name="Spara").click()
    expect(phone.locator("#view-detail")).to_contain_text("Grupp vid entrén, mobiltest")
    saved = Deviation.objects.get(description="Grupp vid entrén, mobiltest")
    assert (round(saved.lon, 4), round(saved.lat, 4)) == (18.0912, 59.2437)
    # On a phone the dialog fills the screen and nothing is wider than it.
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 375


def test_english_interface(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.get_by_role("button", name="English").click()
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.get_by_role("button", name="Report deviation")).to_be_visible()
    expect(desktop.locator("#legend")).to_contain_text("Vandalism")


def test_too_many_points_become_counts_per_area(site: str, desktop: Page, settings: object) -> None:
    settings.LAGESBILD_MAP_POINT_LIMIT = 20  # type: ignore[attr-defined]
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.goto(f"{site}/f/farsta/?period=all")
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.locator("#summary")).to_contain_text("antal per område")
    desktop.wait_for_function(
        "() => window.lagesbildMap.queryRenderedFeatures({layers: ['aggregate-cells']}).length > 0")
    # A source's features can repeat across the tiles they touch: count each cell once.
    total = desktop.evaluate("""() => {
        const cells = new Map();
        for (const f of window.lagesbildMap.querySourceFeatures('aggregates')) cells.set(f.properties.cell, f);
        return [...cells.values()].reduce((sum, f) => sum + f.properties.count, 0);
    }""")
    summary = desktop.locator("#summary").inner_text()
    shown = int(re.search(r"(\d+) avvikelser i vyn", summary).group(1))  # type: ignore[union-attr]
    assert total == shown
    # The list holds a page of the newest, not every point; the next page comes when asked for.
    assert desktop.locator("#deviation-list li").count() == 100
    desktop.locator("#list-more").click()
    expect(desktop.locator("#deviation-list li")).to_have_count(200)
    assert desktop.locator("#summary").inner_text().startswith(f"200 av {shown}")
    assert rendered_points(desktop) == 0


def test_edit_and_withdraw_own_deviation(site: str, desktop: Page) -> None:
    from django.utils import timezone

    from lagesbild.deviations import services
    from lagesbild.forums.models import Membership

    membership = Membership.objects.select_related("forum", "organisation").get(user__email="vicevard@farsta.demo")
    mine = services.report_deviation(membership, services.DeviationInput(
        category="broken_lighting", lon=18.0912, lat=59.2437, observed_at=timezone.now(),
        description="Lampan i porten är trasig"))
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.locator(f'.list-item[data-id="{mine.pk}"]').click()
    detail = desktop.locator("#view-detail")
    detail.get_by_role("button", name="Redigera").click()
    dialog = desktop.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Redigera avvikelse")
    expect(dialog.get_by_label("Beskrivning")).to_have_value("Lampan i porten är trasig")
    dialog.get_by_label("Beskrivning").fill("Lampan i porten är trasig, och den i källaren")
    dialog.get_by_role("button", name="Spara").click()
    expect(detail.locator(".description")).to_have_text("Lampan i porten är trasig, och den i källaren")
    expect(detail.locator(".history")).to_contain_text("Ändrad")
    expect(detail.locator(".history")).to_contain_text("beskrivning")
    expect(detail.locator(".history")).not_to_contain_text("iakttagen")  # the time was not touched
    mine.refresh_from_db()
    assert mine.version == 2
    desktop.once("dialog", lambda confirm: confirm.accept())
    detail.get_by_role("button", name="Dra tillbaka").click()
    expect(desktop.locator("#notice")).to_have_text("Avvikelsen drogs tillbaka.")
    expect(desktop.locator(f'.list-item[data-id="{mine.pk}"]')).to_have_count(0)
    mine.refresh_from_db()
    assert mine.withdrawn_at is not None


def test_personal_data_warning_before_saving(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "nattvandrare@farsta.demo")
    report_at_centre_by_click(desktop)
    dialog = desktop.get_by_role("dialog")
    dialog.get_by_label("Kategori").select_option("drunkenness")
    dialog.get_by_label("Beskrivning").fill("Berusad man, ring hans fru på 070-123 45 67")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog.locator("#report-warnings")).to_contain_text("ser ut som ett telefonnummer")
    assert not Deviation.objects.filter(description__contains="070-123").exists()
    # Having read the warning, the reporter may still save the text as it is.
    dialog.get_by_role("button", name="Spara ändå").click()
    expect(desktop.get_by_role("dialog")).to_be_hidden()
    assert Deviation.objects.filter(description__contains="070-123 45 67").exists()


def test_a_link_opens_one_deviation(site: str, desktop: Page) -> None:
    deviation = Deviation.objects.filter(visibility="forum").order_by("observed_at").first()
    assert deviation is not None
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.goto(f"{site}/f/farsta/?period=all#deviation-{deviation.pk}")
    desktop.wait_for_selector("body.map-ready")  # set once the linked deviation is open
    detail = desktop.locator("#view-detail")
    expect(detail.get_by_role("heading", level=2)).to_contain_text(deviation.category.name_sv)
    expect(detail).to_contain_text(deviation.organisation.name)


def test_coordinator_draws_the_forum_area(site: str, desktop: Page) -> None:
    from lagesbild.forums.models import Forum

    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.goto(f"{site}/f/farsta/installningar/")
    desktop.wait_for_selector("body.area-map-ready")
    desktop.get_by_role("button", name="Rita nytt område").click()
    box = desktop.locator("#area-map").bounding_box()
    assert box is not None
    for dx, dy in [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7)]:
        desktop.mouse.click(box["x"] + box["width"] * dx, box["y"] + box["height"] * dy)
    expect(desktop.locator("#area-status")).to_contain_text("3 hörn")
    desktop.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    desktop.get_by_role("button", name="Ta bort sista hörnet").click()
    desktop.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    desktop.get_by_role("button", name="Klar").click()
    expect(desktop.locator("#area-status")).to_contain_text("Spara för att behålla")
    desktop.get_by_label("Forumet möts").select_option("biweekly")
    desktop.get_by_role("button", name="Spara").click()
    expect(desktop.get_by_role("status").first).to_contain_text("Forumets inställningar sparades")
    forum = Forum.objects.get(slug="farsta")
    ring = forum.area["coordinates"][0]
    assert forum.area["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
    assert forum.meeting_cadence == "biweekly"


def map_centre(page: Page) -> tuple[float, float]:
    centre = page.evaluate("() => window.lagesbildMap.getCenter().toArray()")
    return centre[0], centre[1]


def test_search_finds_a_place_as_you_type_and_an_address_on_enter_and_puts_the_cross_there(
        site: str, desktop: Page) -> None:
    from tests.basemaps import ADDRESS, ADDRESS_POSITION

    sign_in(desktop, site, "polis@farsta.demo")
    desktop.wait_for_function("() => document.body.classList.contains('map-ready')")
    search = desktop.get_by_label("Sök efter en plats eller en adress")
    # As you type: the forum's places and place names, and no address yet.
    search.fill("hökar")
    results = desktop.get_by_role("list", name="Sökträffar")
    expect(results.get_by_role("button").first).to_contain_text("Hökarängsplan")
    expect(results).to_contain_text("Plats i forumet")
    expect(desktop.locator("#map-search-status")).to_contain_text("Tryck Enter för att söka adresser också")
    # Arrow down into the results, Enter chooses: the map goes there.
    search.press("ArrowDown")
    desktop.keyboard.press("Enter")
    desktop.wait_for_function("() => !window.lagesbildMap.isMoving()")
    lon, lat = map_centre(desktop)
    assert (lon, lat) == pytest.approx((18.0822, 59.2574), abs=2e-4)
    expect(desktop.locator("#map-search-chosen")).to_contain_text("Visar Hökarängsplan")
    # An address, from the geocoder, once Enter is pressed; then report there with the cross on it.
    search.fill("farstavägen 10")
    search.press("Enter")
    address = results.get_by_role("button", name=re.compile(ADDRESS))
    expect(address).to_contain_text("Adress")
    desktop.get_by_role("button", name="Rapportera avvikelse").click()
    address.click()
    desktop.wait_for_function("() => !window.lagesbildMap.isMoving()")
    assert map_centre(desktop) == pytest.approx(ADDRESS_POSITION, abs=1e-5)
    expect(desktop.get_by_role("button", name="Använd krysset")).to_be_focused()
    desktop.get_by_role("button", name="Använd krysset").click()
    expect(desktop.get_by_role("dialog")).to_be_visible()
    assert float(desktop.locator("input[name=lon]").input_value()) == pytest.approx(ADDRESS_POSITION[0], abs=1e-5)
    assert float(desktop.locator("input[name=lat]").input_value()) == pytest.approx(ADDRESS_POSITION[1], abs=1e-5)
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_search_on_a_phone_reports_at_what_it_found(site: str, phone: Page) -> None:
    sign_in(phone, site, "polis@farsta.demo")
    phone.wait_for_function("() => document.body.classList.contains('map-ready')")
    search = phone.get_by_label("Sök efter en plats eller en adress")
    search.fill("tunnelbane")
    results = phone.get_by_role("list", name="Sökträffar")
    results.get_by_role("button", name=re.compile("Farsta tunnelbanestation")).click()
    phone.get_by_role("button", name="Rapportera här").click()
    expect(phone.locator("#pick-banner")).to_be_visible()
    phone.wait_for_function("() => !window.lagesbildMap.isMoving()")
    assert map_centre(phone) == pytest.approx((18.0937, 59.2443), abs=2e-4)
    phone.get_by_role("button", name="Använd krysset").click()
    expect(phone.get_by_role("dialog")).to_be_visible()
    search_box = phone.locator("#map-search").bounding_box()
    assert search_box is not None and search_box["width"] <= 390
    assert phone.js_errors == []  # type: ignore[attr-defined]


def test_export_downloads_the_filter_as_excel_reads_it(site: str, desktop: Page) -> None:
    import csv
    import io

    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.wait_for_function("() => document.body.classList.contains('map-ready')")
    desktop.get_by_role("tab", name="Filter").click()
    # 90 days rather than "since the last meeting", which on some days of the month holds no drug deviation.
    desktop.get_by_label("Period").select_option("90")
    desktop.get_by_label("Narkotika").check()
    desktop.get_by_role("tab", name="Lista").click()
    desktop.get_by_text("Exportera filtret som fil").click()
    desktop.get_by_label("Format").select_option("csv")
    with desktop.expect_download() as download:
        desktop.get_by_role("button", name="Ladda ner").click()
    assert re.fullmatch(r"farsta-avvikelser-\d{4}-\d\d-\d\d\.csv", download.value.suggested_filename)
    text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][1] == "Kategori"
    # The map's filter, in the whole forum (not only the view): as many as the API's list counts for it.
    assert "category=drugs" in download.value.url and "bbox" not in download.value.url
    listed = desktop.request.get(download.value.url.replace("/export?", "/deviations?") + "&limit=1").json()
    assert len(rows) - 1 == listed["numberMatched"] > 0
    assert {row[3] for row in rows[1:]} == {"Narkotika"}
    # A filter the server refuses is explained beside the button; the map stays.
    desktop.get_by_role("tab", name="Filter").click()
    desktop.get_by_label("Period").select_option("custom")
    desktop.locator("#f-from").fill("2026-05-10")
    desktop.locator("#f-to").fill("2026-05-01")
    desktop.get_by_role("tab", name="Lista").click()
    desktop.get_by_role("button", name="Ladda ner").click()
    expect(desktop.locator("#export-error")).to_have_text("Periodens början ligger efter dess slut.")
    assert desktop.url.startswith(f"{site}/f/farsta/")
    assert desktop.js_errors == []  # type: ignore[attr-defined]
