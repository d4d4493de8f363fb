"""A saved view as a member uses it: filter the map, save the view with alerts, reopen it, and be told of a
colleague's new report, with the real Content-Security-Policy and the background worker."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_save_a_view_reopen_it_and_get_an_alert(site: str, desktop: Page) -> None:
    from lagesbild.alerts.models import SavedView
    from lagesbild.deviations import services
    from lagesbild.forums.models import Membership

    sign_in(desktop, site, "fastighet@farsta.demo")
    desktop.goto(f"{site}/f/farsta/?period=30")
    desktop.wait_for_selector("body.map-ready")
    desktop.evaluate("() => window.lagesbildMap.jumpTo({zoom: 15, center: [18.0912, 59.2437]})")
    desktop.locator("#tab-filter").click()
    desktop.locator("#view-filter").get_by_label("Ny", exact=True).check()
    expect(desktop).to_have_url(f"{site}/f/farsta/?period=30&status=new")
    desktop.get_by_text("Spara vyn", exact=True).click()
    desktop.get_by_label("Namn", exact=True).fill("Nytt vid torget")
    desktop.get_by_label("Bevakning av nya avvikelser").select_option("immediate")
    desktop.get_by_role("button", name="Spara", exact=True).click()

    expect(desktop.get_by_text("Vyn Nytt vid torget sparades.")).to_be_visible()
    view = SavedView.objects.get(name="Nytt vid torget")
    assert (view.query, view.frequency) == ("period=30&status=new", "immediate")
    west, south, east, north = view.bbox
    assert west < 18.0912 < east and south < 59.2437 < north and east - west < 0.05
    expect(desktop.get_by_role("cell", name="senaste 30 dagarna · Ny · kartutsnittet när vyn sparades")).to_be_visible()

    # Opening it opens the map on its filter and its box.
    desktop.get_by_role("link", name="Nytt vid torget").click()
    desktop.wait_for_selector("body.map-ready")
    assert desktop.locator("#view-filter").get_by_label("Ny", exact=True).is_checked()
    center = desktop.evaluate("() => window.lagesbildMap.getCenter().toArray()")
    assert center == pytest.approx([18.0912, 59.2437], abs=0.002)

    # A police officer reports in the view's box; the worker alerts the housing company's member.
    police = Membership.objects.get(user__email="polis@farsta.demo", forum__slug="farsta")
    reported = services.report_deviation(police, services.DeviationInput(
        category="graffiti", lon=18.0915, lat=59.2439, observed_at=timezone.now() - dt.timedelta(hours=1),
        place_name="Gångtunneln vid torget"))
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    desktop.reload()
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.locator("#nav-saved-views")).to_contain_text("1 oläst bevakningsträff")
    desktop.locator("#nav-saved-views").click()
    alert = desktop.get_by_role("link", name="Klotter, Gångtunneln vid torget")
    expect(alert).to_be_visible()
    assert violations(desktop) == []  # the page meets WCAG 2.1 AA
    alert.click()
    desktop.wait_for_selector("body.map-ready")
    expect(desktop.locator("#view-detail")).to_contain_text("Gångtunneln vid torget")
    assert desktop.url.endswith(f"#deviation-{reported.pk}")
    desktop.goto(f"{site}/f/farsta/bevakningar/")
    desktop.get_by_role("button", name="Markera alla som lästa").click()
    expect(desktop.locator("#nav-saved-views")).not_to_contain_text("oläst")
    assert desktop.js_errors == []  # type: ignore[attr-defined]
