"""Reporting where there is no network, as a trygghetsvärd does in a stairwell: the reports wait on the device
(IndexedDB), with their photos made smaller, and arrive exactly once when the network is back; also when the
network dropped the server's answer, and after a reload."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from lagesbild.deviations.models import Deviation, Photo
from tests.basemaps import TileServer
from tests.browser.conftest import sign_in
from tests.browser.test_map_page import report_at_centre_by_click

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def camera_photo(path: Path) -> Path:
    """A photo as a phone's camera takes it: 3000 by 2000 pixels."""
    image = Image.new("RGB", (3000, 2000), (90, 120, 160))
    for x in range(0, 3000, 40):  # some detail, so that JPEG cannot make it tiny
        image.paste((200, (x * 7) % 255, 60), (x, (x * 3) % 1900, x + 20, (x * 3) % 1900 + 100))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    path.write_bytes(buffer.getvalue())
    return path


def report(page: Page, description: str, photo: Path | None = None) -> None:
    report_at_centre_by_click(page)
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Kategori").select_option("graffiti")
    dialog.get_by_label("Beskrivning").fill(description)
    if photo is not None:
        dialog.get_by_label("Foton").set_input_files(str(photo))
    dialog.get_by_role("button", name="Spara").click()
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_reports_made_offline_arrive_once_when_the_network_is_back(site: str, desktop: Page, tmp_path: Path
                                                                    ) -> None:
    photo = camera_photo(tmp_path / "IMG_0001.jpg")
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.context.set_offline(True)
    for n in range(3):
        report(desktop, f"Utan nät {n}", photo)
        expect(desktop.locator("#notice")).to_contain_text("Inget nät")
    queue = desktop.locator("#capture-queue")
    expect(queue).to_contain_text("3 väntar på nätet, 0 skickade, 0 nekade.")
    assert not Deviation.objects.filter(description__startswith="Utan nät").exists()

    desktop.context.set_offline(False)  # the browser says "online": what waits is sent
    expect(queue).to_contain_text("0 väntar på nätet, 3 skickade, 0 nekade.")
    sent = Deviation.objects.filter(description__startswith="Utan nät")
    assert sorted(d.description for d in sent) == ["Utan nät 0", "Utan nät 1", "Utan nät 2"]
    photos = Photo.objects.filter(deviation__in=sent)
    assert photos.count() == 3
    # Made smaller on the device before it waited (the server alone would have kept 2560 pixels).
    assert {(p.width, p.height) for p in photos} == {(1600, 1067)}
    queue.get_by_role("button", name="Visa").first.click()
    expect(desktop.locator("#view-detail")).to_contain_text("Utan nät 0")


def test_a_lost_answer_and_a_reload_send_the_report_once(site: str, desktop: Page) -> None:
    """The report reaches the server but its answer is lost: it waits on the device, survives a reload, and
    sent again with its key is recognised, not made twice."""
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")

    lost: list[str] = []

    def lose_the_answer(route: Route) -> None:
        if route.request.method == "POST":
            route.fetch()  # the server makes the deviation ...
            route.abort("connectionreset")  # ... and the phone never hears of it
            lost.append(route.request.url)
        else:
            route.continue_()

    desktop.route("**/api/forums/farsta/deviations", lose_the_answer)
    report(desktop, "Svaret kom bort")
    expect(desktop.locator("#capture-queue")).to_contain_text("1 väntar på nätet")
    assert Deviation.objects.filter(description="Svaret kom bort").count() == 1
    desktop.reload()  # the page tries again as it starts: the answer is lost again
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.locator("#capture-queue")).to_contain_text("1 väntar på nätet")
    for _ in range(150):  # the page's own try after the reload has been answered (lost) before the route goes
        if len(lost) == 2:
            break
        desktop.wait_for_timeout(100)
    assert len(lost) == 2
    desktop.unroute("**/api/forums/farsta/deviations")
    desktop.get_by_role("button", name="Skicka nu").click()
    expect(desktop.locator("#capture-queue")).to_contain_text("0 väntar på nätet, 1 skickade, 0 nekade.")
    assert Deviation.objects.filter(description="Svaret kom bort").count() == 1
    desktop.get_by_role("button", name="Ta bort de skickade ur listan").click()
    expect(desktop.locator("#capture-queue")).to_be_hidden()


def test_a_report_the_server_refuses_says_why_and_can_be_removed(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.context.set_offline(True)
    report(desktop, "Ring 070-123 45 67")  # personal data, which this forum is set to refuse below
    from lagesbild.forums.models import Forum

    Forum.objects.filter(slug="farsta").update(block_personal_data=True)
    desktop.context.set_offline(False)
    queue = desktop.locator("#capture-queue")
    expect(queue).to_contain_text("0 väntar på nätet, 0 skickade, 1 nekade.")
    expect(queue).to_contain_text("nekad: ")
    assert not Deviation.objects.filter(description="Ring 070-123 45 67").exists()
    queue.get_by_role("button", name="Ta bort: Klotter").click()
    expect(queue).to_be_hidden()


def test_on_a_shared_device_each_member_sends_only_their_own(site: str, desktop: Page) -> None:
    """A caretaker's report waits on the office's tablet; the next person who signs in there neither sees nor
    sends it under their name. It goes, as the caretaker's, when the caretaker is back."""
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.route("**/api/forums/farsta/deviations",
                  lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    report(desktop, "Vicevärdens rapport")
    expect(desktop.locator("#capture-queue")).to_contain_text("1 väntar på nätet")
    desktop.context.clear_cookies()  # signed out
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.unroute("**/api/forums/farsta/deviations")
    desktop.reload()
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.locator("#capture-queue")).to_be_hidden()
    assert not Deviation.objects.filter(description="Vicevärdens rapport").exists()
    desktop.context.clear_cookies()
    sign_in(desktop, site, "vicevard@farsta.demo")
    queue = desktop.locator("#capture-queue")
    expect(queue).to_contain_text("0 väntar på nätet, 1 skickade")
    assert Deviation.objects.get(description="Vicevärdens rapport").reporter.email == "vicevard@farsta.demo"


def test_a_strange_answer_keeps_the_report_and_saving_again_is_the_same_report(site: str, desktop: Page) -> None:
    """A captive portal answers "200" with its own page: the report is kept, not announced as saved. And when the
    server saved a report but the answer was a gateway error, pressing Spara again makes no second one."""
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    portal = "**/api/forums/farsta/deviations"
    desktop.route(portal, lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Wi-Fi</h1>")
                  if route.request.method == "POST" else route.continue_())
    report(desktop, "Bakom portalen")
    expect(desktop.locator("#capture-queue")).to_contain_text("1 väntar på nätet")
    desktop.unroute(portal)
    desktop.get_by_role("button", name="Skicka nu").click()
    expect(desktop.locator("#capture-queue")).to_contain_text("0 väntar på nätet, 1 skickade")
    assert Deviation.objects.filter(description="Bakom portalen").count() == 1

    def gateway_error(route: Route) -> None:
        route.fetch()  # saved ...
        route.fulfill(status=502, content_type="application/json",
                      body='{"error": {"code": "bad_gateway", "message": "Bad gateway", "field": null}}')

    desktop.route(portal, lambda route: gateway_error(route) if route.request.method == "POST"
                  else route.continue_())
    report_at_centre_by_click(desktop)
    dialog = desktop.get_by_role("dialog")
    dialog.get_by_label("Kategori").select_option("graffiti")
    dialog.get_by_label("Beskrivning").fill("Gatewayfel")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Bad gateway")
    desktop.unroute(portal)
    dialog.get_by_role("button", name="Spara").click()
    expect(desktop.get_by_role("dialog")).to_be_hidden()
    assert Deviation.objects.filter(description="Gatewayfel").count() == 1


def test_the_app_installs_and_opens_without_network(site: str, desktop: Page, tmp_path: Path) -> None:
    """The round of issue 13: the app is installable; with the network gone, the page reloads from the device,
    takes a report with a photo, reloads again with it waiting, and sends it once when the network is back."""
    desktop.clock.install()  # runs as usual; the test moves it on past the 15-second retry below
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    # Chromium's own installability check (Lighthouse uses the same). A test browser's context is always
    # "incognito", which no real phone's is; every other reason counts.
    cdp = desktop.context.new_cdp_session(desktop)
    errors = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
    assert errors - {"in-incognito"} == set(), errors
    # The map page asked to be kept as the worker took over.
    desktop.wait_for_function("() => caches.match('/f/farsta/').then((page) => !!page)")

    desktop.context.set_offline(True)
    desktop.reload()
    desktop.wait_for_selector("body.map-ready")
    # The deviations themselves are never kept on the device.
    expect(desktop.locator("#summary")).to_contain_text("kunde inte hämtas")
    report(desktop, "Helt utan nät", camera_photo(tmp_path / "IMG_0002.jpg"))
    desktop.reload()
    desktop.wait_for_selector("body.map-ready")
    queue = desktop.locator("#capture-queue")
    expect(queue).to_contain_text("1 väntar på nätet")
    assert not Deviation.objects.filter(description="Helt utan nät").exists()
    # A page that opened without network hears no "online" event: the retry every 15 seconds sends it.
    desktop.context.set_offline(False)
    desktop.clock.fast_forward("00:16")
    expect(queue).to_contain_text("0 väntar på nätet, 1 skickade")
    assert Deviation.objects.filter(description="Helt utan nät").count() == 1
    kept = desktop.evaluate("""async () => {
        const urls = [];
        for (const name of await caches.keys()) {
            for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
        }
        return urls;
    }""")
    assert "/f/farsta/" in kept and "/api/forums/farsta/categories" in kept
    assert [url for url in kept if "/deviations" in url or "/photos" in url or "/tiles/" in url] == []
    # Signing out takes the kept pages with it; so does a sign-in page (a session that ran out, someone else).
    is_kept = "() => caches.keys().then((names) => Promise.all(names.map((n) => caches.open(n)))).then(" \
              "(all) => Promise.all(all.map((c) => c.match('/f/farsta/')))).then((found) => found.some(Boolean))"
    desktop.get_by_role("button", name="Logga ut").click()
    desktop.wait_for_url("**/konto/**")
    desktop.wait_for_function(f"() => ({is_kept})().then((kept) => !kept)")
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.wait_for_selector("body.map-ready")
    desktop.wait_for_function(is_kept)
    desktop.goto(f"{site}/konto/login/")
    desktop.wait_for_function(f"() => ({is_kept})().then((kept) => !kept)")


def test_a_round_started_online_and_ended_offline_keeps_its_reports(site: str, desktop: Page) -> None:
    """A security host's evening: the round starts at the office, the reports and the end of the round are made
    in the garage without network; back in signal, the round and its reports arrive, in that order, once."""
    from lagesbild.deviations.models import Round

    sign_in(desktop, site, "vicevard@farsta.demo")
    round_box = desktop.locator("#round")
    round_box.get_by_label("Rundans namn").fill("Kvällsrundan Farsta strand")
    with desktop.expect_response(lambda r: "/rounds/" in r.url and r.request.method == "PUT") as started_on_server:
        round_box.get_by_role("button", name="Starta runda").click()
    assert started_on_server.value.status == 201
    expect(round_box).to_contain_text("Runda pågår: Kvällsrundan Farsta strand")
    expect(round_box).to_contain_text("Rapporter på den från den här enheten: 0.")
    started = Round.objects.get(name="Kvällsrundan Farsta strand")
    assert started.ended_at is None

    report(desktop, "På rundan med nät")
    desktop.context.set_offline(True)
    report(desktop, "På rundan utan nät")
    expect(round_box).to_contain_text("Rapporter på den från den här enheten: 2.")
    desktop.locator("#tab-list").click()  # the report sent at once opened its detail; the round is by the list
    round_box.get_by_role("button", name="Avsluta rundan").click()
    expect(desktop.locator("#notice")).to_contain_text("Rundan Kvällsrundan Farsta strand har avslutats, med 2")
    expect(round_box.get_by_role("button", name="Starta runda")).to_be_visible()
    desktop.reload()  # the end of the round waits on the device as the report does
    desktop.wait_for_selector("body.map-ready")
    started.refresh_from_db()
    assert started.ended_at is None

    desktop.context.set_offline(False)
    expect(desktop.locator("#capture-queue")).to_contain_text("0 väntar på nätet, 1 skickade, 0 nekade.")
    on_round = Deviation.objects.filter(round=started).order_by("observed_at")
    assert [d.description for d in on_round] == ["På rundan med nät", "På rundan utan nät"]
    for _ in range(50):  # the end is sent with the waiting report, or by the next try
        started.refresh_from_db()
        if started.ended_at is not None:
            break
        desktop.wait_for_timeout(200)
    assert started.ended_at is not None
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_the_map_of_the_forums_area_is_kept_for_use_without_network(site: str, settings: Any, desktop: Page,
                                                                     tile_server: TileServer) -> None:
    """Where the operator allows it, a member keeps the basemap of the forum's area: offline, its tiles come
    from the device (others do not), and signing out removes them."""
    settings.LAGESBILD_TILE_OFFLINE_ZOOM = 14
    sign_in(desktop, site, "vicevard@farsta.demo")
    desktop.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    desktop.reload()  # now under the service worker, which serves the tiles
    desktop.wait_for_selector("body.map-ready")
    desktop.wait_for_function("() => !!navigator.serviceWorker.controller")
    box = desktop.locator("#offline-map")
    box.get_by_text("Kartan utan nät").click()
    box.get_by_role("button", name="Spara kartan för användning utan nät").click()
    status = box.locator("#offline-map-status")
    expect(status).to_contain_text("Kartan över forumets område är sparad på den här enheten", timeout=60_000)
    match = re.search(r"\((\d+) kartrutor, ner till zoomnivå 14\)", status.inner_text())
    assert match is not None, status.inner_text()
    kept = desktop.evaluate("() => caches.open('lagesbild-tiles').then((c) => c.keys()).then("
                            "(keys) => keys.map((k) => k.url))")
    assert len(kept) == int(match.group(1)) > 20
    assert all(url.startswith(tile_server.root + "/") for url in kept)

    fetch = "(url) => fetch(url, {mode: 'cors'}).then((r) => r.status, () => 0)"
    inside, outside = (f"{tile_server.root}/14/{x}/{y}.png" for x, y in (_tile(18.0912, 59.2437, 14),
                                                                         _tile(11.97, 57.71, 14)))
    desktop.context.set_offline(True)
    assert desktop.evaluate(fetch, inside) == 200  # from the device
    assert desktop.evaluate(fetch, outside) == 0  # never kept: Gothenburg is not the forum's area
    desktop.context.set_offline(False)
    # Another day: the page says the map is kept already.
    desktop.reload()
    desktop.wait_for_selector("body.map-ready")
    box.get_by_text("Kartan utan nät").click()
    expect(status).to_contain_text(f"Kartan är redan sparad på den här enheten ({len(kept)} kartrutor).")

    desktop.get_by_role("button", name="Logga ut").click()
    desktop.wait_for_url("**/konto/**")
    desktop.wait_for_function("() => caches.has('lagesbild-tiles').then((has) => !has)")
    assert desktop.js_errors == []  # type: ignore[attr-defined]
