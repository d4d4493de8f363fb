"""The forum's own fields as a coordinator defines them and a reporter meets them: added on the categories
page, asked for in the report form when their category is chosen, refused clearly when a required one is
empty, shown in the detail and changed by editing; with the real Content-Security-Policy, and axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from lagesbild.deviations.models import Deviation
from tests.browser.conftest import sign_in, violations
from tests.browser.test_map_page import report_at_centre_by_click

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_field_from_the_categories_page_to_the_report_and_its_detail(site: str, desktop: Page) -> None:
    sign_in(desktop, site, "samordnare@farsta.demo")
    desktop.goto(f"{site}/f/farsta/kategorier/")
    for label, kind, required in (("Antal personer", "Tal", True), ("Polisen tillkallad", "Ja eller nej", False)):
        desktop.get_by_label("Kategori", exact=True).select_option(label="Samlingar/ordningsstörning")
        desktop.get_by_label("Fältets namn").fill(label)
        desktop.get_by_label("Typ", exact=True).select_option(label=kind)
        desktop.get_by_label("Måste fyllas i").set_checked(required)
        desktop.get_by_role("button", name="Lägg till fältet").click()
        expect(desktop.get_by_text(f"Fältet {label} lades till i Samlingar/ordningsstörning.")).to_be_visible()
    expect(desktop.get_by_role("cell", name="Antal personer (obligatoriskt)")).to_be_visible()
    assert violations(desktop) == []

    desktop.goto(f"{site}/f/farsta/")
    desktop.wait_for_selector("body.map-ready")
    report_at_centre_by_click(desktop)
    dialog = desktop.get_by_role("dialog")
    expect(dialog.get_by_label("Antal personer")).to_have_count(0)  # no category chosen yet
    dialog.get_by_label("Kategori").select_option("gathering")
    dialog.get_by_label("Beskrivning").fill("Samling vid busshållplatsen")
    dialog.get_by_label("Polisen tillkallad").select_option(label="Ja")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Fyll i Antal personer.")
    expect(dialog.get_by_label("Antal personer")).to_have_attribute("aria-invalid", "true")
    assert not Deviation.objects.filter(description="Samling vid busshållplatsen").exists()
    dialog.get_by_label("Antal personer (obligatoriskt)").fill("12")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog).to_be_hidden()
    saved = Deviation.objects.get(description="Samling vid busshållplatsen")
    assert saved.fields == {"antal_personer": 12, "polisen_tillkallad": True}
    detail = desktop.locator("#view-detail")
    expect(detail.locator("[data-field=ownFields]")).to_contain_text("Antal personer12")
    expect(detail.locator("[data-field=ownFields]")).to_contain_text("Polisen tillkalladJa")

    detail.get_by_role("button", name="Redigera").click()
    expect(dialog.get_by_label("Antal personer (obligatoriskt)")).to_have_value("12")
    dialog.get_by_label("Antal personer (obligatoriskt)").fill("15,5")
    dialog.get_by_role("button", name="Spara").click()
    expect(dialog).to_be_hidden()
    expect(detail.locator("[data-field=ownFields]")).to_contain_text("Antal personer15.5")
    saved.refresh_from_db()
    assert saved.fields == {"antal_personer": 15.5, "polisen_tillkallad": True}
    assert desktop.js_errors == []  # type: ignore[attr-defined]
