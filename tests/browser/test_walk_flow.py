"""A safety walk from plan to protocol PDF, as a coordinator does it on a phone-sized screen: plan it, place its
stops on the map, add a resident by name, start it, record the walked track with the phone's position (also
through a stretch without network), fill a stop's checklist, end it, record the findings, and download the
protocol. With the real Content-Security-Policy and basemap, and axe on the walk's pages."""

from __future__ import annotations

import io
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from lagesbild.deviations.models import Deviation
from lagesbild.meetings.models import MeetingFlag
from lagesbild.walks.models import Walk
from tests.browser.conftest import DESKTOP, close_checked, new_page, sign_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STOPS = [("Gångtunneln", 18.0905, 59.2418), ("Torget", 18.0912, 59.2437)]
# Where the phone is while walking between them, each point about 60 m from the last.
WALKED = [(18.0905, 59.2418), (18.0906, 59.2424), (18.0908, 59.2429), (18.0910, 59.2434)]


def click_map_at(page: Page, lon: float, lat: float) -> None:
    """Pan the map to the place (as a member does), then click it."""
    page.evaluate("([lon, lat]) => window.lagesbildWalkMap.jumpTo({center: [lon, lat], zoom: 15})", [lon, lat])
    page.wait_for_function("() => window.lagesbildWalkMap.loaded() && !window.lagesbildWalkMap.isMoving()")
    point = page.evaluate("([lon, lat]) => { const p = window.lagesbildWalkMap.project([lon, lat]); "
                          "return {x: p.x, y: p.y}; }", [lon, lat])
    page.locator("#walk-map canvas").click(position=point)


def move_to(page: Page, lon: float, lat: float) -> None:
    page.context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": 5})


def track_of(walk: Walk) -> list[Any]:
    walk.refresh_from_db()
    return walk.track


def test_a_walk_from_plan_to_protocol_pdf(site: str, browser: Browser) -> None:
    page = new_page(browser, DESKTOP, geolocation={"longitude": WALKED[0][0], "latitude": WALKED[0][1]},
                    permissions=["geolocation"])
    # The page's clock runs as usual, but the test can move it on: the track is sent every 15 seconds, and the
    # walker's wait for that need not be the test's.
    page.clock.install()
    try:
        _walk_it(site, page)
    finally:
        close_checked(page)


def _walk_it(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    page.get_by_role("navigation").get_by_role("link", name="Vandringar").click()
    page.get_by_text("Planera en vandring").click()
    page.get_by_label("Rubrik").fill("Kvällsvandring vid centrum")
    page.get_by_role("button", name="Planera vandringen").click()
    expect(page.get_by_text("Vandringen är planerad.")).to_be_visible()
    walk = Walk.objects.get(title="Kvällsvandring vid centrum")
    page.wait_for_selector("body.walk-map-ready")

    # The route: two stops placed by clicking the map.
    for name, lon, lat in STOPS:
        page.wait_for_selector("body.walk-map-ready")
        click_map_at(page, lon, lat)
        expect(page.locator("#stop-status")).to_contain_text("Positionen är vald")
        page.get_by_label("Namn", exact=True).first.fill(name)
        page.get_by_role("button", name="Lägg till stoppet").click()
        expect(page.get_by_text(f"Stopp tillagt: {name}.")).to_be_visible()
    stops = list(walk.stops.all())
    assert [s.name for s in stops] == ["Gångtunneln", "Torget"]
    for stop, (_name, lon, lat) in zip(stops, STOPS, strict=True):
        assert abs(stop.lon - lon) < 0.0002 and abs(stop.lat - lat) < 0.0001  # where it was clicked
    participant = page.locator("#participant-form")
    participant.get_by_label("Namn").fill("Boende Bo")
    participant.get_by_label("Organisation eller roll (valfritt)").fill("Brf Tallkronan")
    participant.get_by_role("button", name="Lägg till").click()
    expect(page.get_by_text("Boende Bo lades till.")).to_be_visible()

    # Walking: the phone's positions become the track, also those taken without network.
    page.get_by_role("button", name="Starta vandringen").click()
    expect(page.get_by_text("Vandringen har börjat.")).to_be_visible()
    page.get_by_role("button", name="Registrera min sträcka").click()
    # Where the walk starts goes at once; the next points wait for the following batch.
    expect(page.locator("#track-status")).to_contain_text("Sparade punkter av sträckan: 1.")
    queue = f"lagesbild:farsta:{walk.created_by_id}:walk-{walk.pk}:track"
    for lon, lat in WALKED[1:3]:
        move_to(page, lon, lat)
        page.wait_for_timeout(300)
    page.clock.fast_forward("00:16")  # the batch is due
    page.wait_for_function(f"() => !localStorage.getItem('{queue}')")
    assert len(track_of(walk)) == 3
    page.context.set_offline(True)
    move_to(page, *WALKED[3])
    page.clock.fast_forward("00:16")
    expect(page.locator("#track-status")).to_contain_text("väntar")
    assert [p[:2] for p in track_of(walk)][-1] != list(WALKED[3])
    page.context.set_offline(False)  # back online, what waits is sent
    page.wait_for_function(f"() => !localStorage.getItem('{queue}')")
    walked = [p[:2] for p in track_of(walk)]
    assert walked[-1] == list(WALKED[3]) and len(walked) == len({tuple(p) for p in walked})  # each point once

    # The checklist at the first stop.
    section = page.locator(f"#stop-{stops[0].pk}")
    lighting = section.get_by_role("group", name="Belysning")
    lighting.get_by_role("radio", name="Brist").check()
    lighting.get_by_label("Vad gruppen såg").fill("Två lampor släckta i tunneln")
    lighting.get_by_label("Föreslagen åtgärd (valfritt)").fill("Byt armaturerna")
    section.get_by_role("group", name="Sikt och överblick").get_by_role("radio", name="Bra").check()
    section.get_by_role("button", name="Spara checklistan för Gångtunneln").click()
    expect(page.get_by_text("Checklistan sparades.")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())  # "End the walk?"
    page.get_by_role("button", name="Avsluta vandringen").click()
    expect(page.get_by_text("Vandringen är avslutad.")).to_be_visible()
    page.get_by_role("button", name="Registrera iakttagelserna").click()
    expect(page.get_by_text("1 iakttagelse blev en avvikelse; 1 förslag togs upp till nästa möte.")).to_be_visible()
    finding = Deviation.objects.get(source=Deviation.Source.WALK, place_name="Gångtunneln",
                                    description__contains="Två lampor släckta")
    assert finding.category.key == "dark_place"
    assert MeetingFlag.objects.filter(deviation=finding, text__contains="Byt armaturerna").exists()

    page.get_by_role("link", name="Läs protokollet").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kvällsvandring vid centrum")
    expect(page.get_by_role("link", name=f"#{finding.pk}")).to_be_visible()
    expect(page.locator("svg.static-map polyline")).to_have_count(2)  # the route and the track
    with page.expect_download() as download:
        page.get_by_role("link", name="Ladda ned som PDF").click()
    path = download.value.path()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages)
    for expected in ("Trygghetsvandring: Kvällsvandring vid centrum", "Boende Bo (Brf Tallkronan)",
                     "1. Gångtunneln", "2. Torget", "Två lampor släckta i tunneln", "Byt armaturerna",
                     f"Registrerad som avvikelse #{finding.pk} (Mörk plats)", "Registrerad sträcka"):
        assert expected in text, expected
    assert page.js_errors == []  # type: ignore[attr-defined]

    for path_ in (f"/f/farsta/vandringar/{walk.pk}/", f"/f/farsta/vandringar/{walk.pk}/protokoll/"):
        page.goto(site + path_)
        page.wait_for_load_state("networkidle")
        assert violations(page) == [], path_


def test_one_tab_records_and_the_walk_ends_only_with_its_whole_track(site: str, browser: Browser) -> None:
    """A second tab of the same walk does not record too; ending the walk without network waits, with the
    walk still under way, until the waiting points can be sent."""
    from django.utils import timezone

    from lagesbild.forums.models import Membership
    from lagesbild.walks import services

    coordinator = Membership.objects.get(user__email="samordnare@farsta.demo", forum__slug="farsta")
    walk = services.plan_walk(coordinator, services.WalkInput(title="Kvällsrundan", planned_at=timezone.now()))
    services.add_stop(coordinator, walk.pk, "Torget", *STOPS[1][1:])
    services.start_walk(coordinator, walk.pk)
    page = new_page(browser, DESKTOP, geolocation={"longitude": WALKED[0][0], "latitude": WALKED[0][1]},
                    permissions=["geolocation"])
    try:
        sign_in(page, site, "samordnare@farsta.demo")
        page.goto(f"{site}/f/farsta/vandringar/{walk.pk}/")
        page.get_by_role("button", name="Registrera min sträcka").click()
        status = page.locator("#track-status")
        expect(status).to_contain_text("Sparade punkter av sträckan: 1.")
        other = page.context.new_page()
        other.goto(f"{site}/f/farsta/vandringar/{walk.pk}/")
        expect(other.locator("#track-status")).to_contain_text("registreras redan i en annan flik")
        other.close()

        page.context.set_offline(True)
        move_to(page, *WALKED[1])
        page.wait_for_function("() => Object.keys(localStorage).some((key) => key.endsWith(':track'))")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Avsluta vandringen").click()
        expect(status).to_contain_text("Avsluta vandringen när nätet är tillbaka")
        walk.refresh_from_db()
        assert walk.ended_at is None and len(walk.track) == 1

        page.context.set_offline(False)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Avsluta vandringen").click()
        expect(page.get_by_text("Vandringen är avslutad.")).to_be_visible()
        walk.refresh_from_db()
        assert walk.ended_at is not None and [p[:2] for p in walk.track] == [list(WALKED[0]), list(WALKED[1])]
        assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        close_checked(page)
