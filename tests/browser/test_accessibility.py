"""WCAG 2.1 AA checks with axe-core (from npm) in the browser: no serious or critical violations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, new_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.NODE_MODULES) / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def page(browser: Browser, request: Any) -> Iterator[Page]:
    # axe is injected as an inline script, which the page's Content-Security-Policy rightly forbids.
    page = new_page(browser, request.param, bypass_csp=True)
    yield page
    page.context.close()


def serious_violations(page: Page, include: str | None = None) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}; run `npm ci` (make test does).")
    page.add_script_tag(path=str(AXE))
    context = f"'{include}'" if include else "document"
    results = page.evaluate(
        f"async () => await axe.run({context}, {{runOnly: {{type: 'tag', values: {TAGS}}}}})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def test_sign_in_page(site: str, page: Page) -> None:
    page.goto(f"{site}/konto/login/")
    assert serious_violations(page) == []


def test_map_page_filter_and_list(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    assert serious_violations(page) == []
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Lista och filter").click()
    page.get_by_role("tab", name="Filter").click()
    assert serious_violations(page, "#panel") == []


def test_report_form_and_detail(site: str, page: Page) -> None:
    sign_in(page, site, "polis@farsta.demo")
    page.get_by_role("button", name="Rapportera avvikelse").click()
    page.get_by_role("button", name="Använd krysset").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert serious_violations(page, "#report-dialog") == []
    page.get_by_role("dialog").get_by_role("button", name="Spara").click()  # shows the error state too
    expect(page.get_by_role("dialog").get_by_role("alert")).to_be_visible()
    assert serious_violations(page, "#report-dialog") == []
    page.get_by_role("dialog").get_by_role("button", name="Avbryt").click()
    if page.viewport_size == PHONE:
        page.get_by_role("button", name="Lista och filter").click()
    page.locator("#deviation-list .list-item").first.click()
    expect(page.locator("#view-detail h2")).to_be_visible()
    assert serious_violations(page, "#view-detail") == []


def test_audit_log_page(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}/f/farsta/logg/")
    expect(page.get_by_role("heading", name="Händelselogg")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("Inloggad")
    assert serious_violations(page) == []


def test_members_page(site: str, page: Page) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}/f/farsta/medlemmar/")
    expect(page.get_by_role("heading", name="Medlemmar", exact=True).first).to_be_visible()
    page.get_by_label("E-postadress").fill("ny.medlem@example.se")
    page.get_by_role("button", name="Skicka inbjudan").click()
    expect(page.get_by_role("status")).to_contain_text("En inbjudan skickades till ny.medlem@example.se")
    assert serious_violations(page) == []


@pytest.mark.parametrize("path", ["/f/farsta/installningar/", "/f/farsta/kategorier/"])
def test_coordinator_pages(site: str, page: Page, path: str) -> None:
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}{path}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert serious_violations(page) == []


@pytest.mark.parametrize("path", ["/f/farsta/platser/", "/f/farsta/moten/", "/f/farsta/atgarder/?show=all"])
def test_meeting_and_place_pages(site: str, page: Page, path: str) -> None:
    """The lists, and the first place, meeting, protocol and action they link to."""
    sign_in(page, site, "samordnare@farsta.demo")
    page.goto(f"{site}{path}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert serious_violations(page) == []
    link = {"/f/farsta/platser/": "table a", "/f/farsta/moten/": "main ul a[href*='/moten/']",
            "/f/farsta/atgarder/?show=all": "table a[href*='/atgarder/']"}[path]
    page.locator(link).first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert serious_violations(page) == []
    if path == "/f/farsta/moten/":
        page.goto(f"{site}/f/farsta/moten/")
        page.get_by_role("link", name="Protokoll").first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Protokoll")
        assert serious_violations(page) == []
