"""The live picture as members meet it: a colleague's report appears on every open map within two seconds,
a deviation another organisation may not see reaches nobody else's browser in any form, and a tab in the
background holds no connection yet misses nothing when it is shown again."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, close_checked, new_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _follow(page: Page) -> list[dict[str, Any]]:
    """Every server-sent event the page's browser receives, as Chromium's network inspector sees it."""
    received: list[dict[str, Any]] = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on("Network.eventSourceMessageReceived", lambda message: received.append(message))
    return received


def _report(email: str, place: str, **fields: Any) -> int:
    from lagesbild.deviations import services
    from lagesbild.forums.models import Membership

    member = Membership.objects.get(user__email=email, forum__slug="farsta")
    return services.report_deviation(member, services.DeviationInput(
        category="graffiti", lon=18.0915, lat=59.2439, observed_at=timezone.now() - dt.timedelta(minutes=5),
        place_name=place, **fields)).pk


def _arrives(page: Page, received: list[dict[str, Any]], deviation_id: int, seconds: float) -> float:
    """How long until the page's browser had the event of `deviation_id`; fails after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if any(f'"id": {deviation_id},' in m["data"] for m in received):
            return time.monotonic() - start
        page.wait_for_timeout(20)
    raise AssertionError(f"no event of deviation {deviation_id} within {seconds} s: {received}")


def _set_hidden(page: Page, hidden: bool) -> None:
    """The tab goes to the background or comes back, as the browser tells the page."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
        Object.defineProperty(document, "visibilityState", { value: hidden ? "hidden" : "visible",
                                                              configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
    }""", hidden)


def _open_streams_become(count: int) -> None:
    from lagesbild.live.broker import broker

    deadline = time.monotonic() + 10
    while broker.open_count() != count:
        assert time.monotonic() < deadline, f"{broker.open_count()} streams open, not {count}"
        time.sleep(0.05)


def test_a_report_reaches_every_open_map_and_a_restricted_one_only_its_own(site: str, browser: Browser) -> None:
    from lagesbild.live.models import LiveEvent

    school = new_page(browser, DESKTOP)
    housing = new_page(browser, PHONE)
    try:
        seen = {}
        for page, email in ((school, "skola@farsta.demo"), (housing, "fastighet@farsta.demo")):
            seen[email] = _follow(page)
            sign_in(page, site, email)
            expect(page.locator("#live-state")).to_have_text("Kartan uppdateras när avvikelser rapporteras.")
        _open_streams_become(2)

        # The police report one for themselves only, then one for the whole forum.
        hidden = _report("polis@farsta.demo", "Bara polisens port", visibility="organisation")
        public = _report("polis@farsta.demo", "Livetestet vid torget")
        for page, email in ((school, "skola@farsta.demo"), (housing, "fastighet@farsta.demo")):
            assert _arrives(page, seen[email], public, seconds=2.0) <= 2.0
        for page in (school, housing):
            expect(page.locator(f'#deviation-list [data-id="{public}"]')).to_contain_text("Livetestet vid torget")
            expect(page.locator("#notice")).to_have_text("En ny avvikelse har rapporterats.")
            expect(page.locator(f'#deviation-list [data-id="{hidden}"]')).to_have_count(0)
        # Of the restricted one, nothing reached either browser: not its deviation, not its event's number.
        hidden_event = LiveEvent.objects.get(deviation_id=hidden).pk
        for received in seen.values():
            assert all(str(hidden) not in m["data"] and m["eventId"] != str(hidden_event) for m in received)
            assert [m["eventName"] for m in received] == ["deviation"]

        # In the background the school's tab closes its stream; shown again, it catches up.
        _set_hidden(school, True)
        _open_streams_become(1)
        while_away = _report("polis@farsta.demo", "Medan fliken var dold")
        _arrives(housing, seen["fastighet@farsta.demo"], while_away, seconds=5.0)
        _set_hidden(school, False)
        _arrives(school, seen["skola@farsta.demo"], while_away, seconds=5.0)
        expect(school.locator(f'#deviation-list [data-id="{while_away}"]')).to_be_visible()
        _open_streams_become(2)

        # Withdrawn: it leaves the open maps, and a detail someone had open says why it closed.
        school.locator(f'#deviation-list [data-id="{while_away}"]').click()
        expect(school.locator("#view-detail")).to_contain_text("Medan fliken var dold")
        from lagesbild.deviations import services
        from lagesbild.forums.models import Membership

        services.withdraw_deviation(Membership.objects.get(user__email="polis@farsta.demo", forum__slug="farsta"),
                                    while_away)
        expect(school.locator("#notice")).to_contain_text("Avvikelsen du hade öppen har dragits tillbaka")
        expect(school.locator("#view-detail")).to_be_hidden()
        for page in (school, housing):
            expect(page.locator(f'#deviation-list [data-id="{while_away}"]')).to_have_count(0)
            assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        close_checked(school)
        close_checked(housing)
