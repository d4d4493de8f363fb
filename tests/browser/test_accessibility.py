"""WCAG 2.1 A and AA checks with axe-core (from npm) in the browser: no violation of any impact, in the states
the map page and the patterns page open into, on the pages before signing in and on forms, at desktop and phone
sizes. Every main page as it opens is checked in test_screens.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, close_checked, new_page, sign_in, violations
from tests.browser.test_screens import PAGES, _ids

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def page(browser: Browser, request: Any) -> Iterator[Page]:
    page = new_page(browser, request.param)
    yield page
    close_checked(page)


def test_the_states_pages_open_into(site: str, page: Page) -> None:
    """What a page shows after a click, and the meeting screen as a member following it. (Each main page as it
    opens is checked in test_screens.py, beside its screenshot.)"""
    sign_in(page, site, "samordnare@farsta.demo")
    ids = _ids()
    found = {}
    page.goto(f"{site}/f/farsta/monster/?period=all")
    for summary in page.locator("main details summary").all():
        summary.click()
    found["monster, tabeller"] = violations(page)
    page.goto(f"{site}/f/farsta/")
    page.wait_for_function("() => document.body.classList.contains('map-ready')")
    page.get_by_label("Sök efter en plats eller en adress").fill("farsta")
    expect(page.get_by_role("list", name="Sökträffar")).to_be_visible()
    found["karta, sökning"] = violations(page)
    page.locator(".search-result").first.click()
    expect(page.locator("#map-search-chosen")).to_be_visible()
    found["karta, vald plats"] = violations(page)
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Lista och filter").click()
    page.get_by_role("tab", name="Filter").click()
    page.get_by_label("Hexagoner med antal").check()
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Visa kartan").click()
    expect(page.locator("#hexagon-legend")).to_be_visible()
    found["karta, hexagoner"] = violations(page)
    page.goto(f"{site}/f/farsta/finns-inte/")
    found["404"] = violations(page)
    page.context.clear_cookies()
    sign_in(page, site, "skola@farsta.demo")
    page.goto(site + PAGES["mote-visning"].format(**ids))
    found["mote-visning, medlem"] = violations(page)
    assert {name: v for name, v in found.items() if v} == {}


def test_pages_before_signing_in(site: str, page: Page) -> None:
    found = {}
    for path in ("/konto/login/", "/konto/password/reset/", "/konto/inbjudan/ingen-sadan/"):
        page.goto(site + path)
        found[path] = violations(page)
    assert {name: v for name, v in found.items() if v} == {}


def test_sign_in_page(site: str, page: Page) -> None:
    page.goto(f"{site}/konto/login/")
    assert violations(page) == []


def test_map_page_filter_and_list(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    assert violations(page) == []
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Lista och filter").click()
    page.get_by_role("tab", name="Filter").click()
    assert violations(page, "#panel") == []


def test_report_form_and_detail(site: str, page: Page) -> None:
    sign_in(page, site, "polis@farsta.demo")
    page.get_by_role("button", name="Rapportera avvikelse").click()
    page.get_by_role("button", name="Använd krysset").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert violations(page, "#report-dialog") == []
    page.get_by_role("dialog").get_by_role("button", name="Spara").click()  # shows the error state too
    expect(page.get_by_role("dialog").get_by_role("alert")).to_be_visible()
    assert violations(page, "#report-dialog") == []
    page.get_by_role("dialog").get_by_role("button", name="Avbryt").click()
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Lista och filter").click()
    page.locator("#deviation-list .list-item").first.click()
    expect(page.locator("#view-detail h2")).to_be_visible()
    assert violations(page, "#view-detail") == []


def test_drawing_a_line_or_area(site: str, page: Page) -> None:
    sign_in(page, site, "polis@farsta.demo")
    page.get_by_role("button", name="Rapportera avvikelse").click()
    page.get_by_label("ett område").check()
    page.get_by_role("button", name="Hörn vid krysset").click()
    expect(page.locator("#draw-status")).to_contain_text("1 hörn")
    assert violations(page, "#pick-banner") == []


def test_members_page(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}/f/farsta/medlemmar/")
    expect(page.get_by_role("heading", name="Medlemmar", exact=True).first).to_be_visible()
    page.get_by_label("E-postadress").fill("ny.medlem@example.se")
    page.get_by_role("button", name="Skicka inbjudan").click()
    expect(page.get_by_role("status")).to_contain_text("En inbjudan skickades till ny.medlem@example.se")
    assert violations(page) == []
