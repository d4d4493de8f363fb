"""A forum meeting in the browser, from the agenda to the protocol PDF, and the pages around it."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_meeting_from_agenda_to_protocol_pdf(site: str, desktop: Page) -> None:
    page = desktop
    sign_in(page, site, "samordnare@farsta.demo")
    page.get_by_role("link", name="Möten").click()
    page.get_by_text("Planera ett möte").click()
    page.get_by_role("button", name="Planera", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Mötet är inplanerat")

    page.get_by_role("button", name="Bygg dagordningen").click()
    agenda = page.locator("ol.agenda")
    expect(agenda).to_contain_text("Uppföljning av åtgärder:")
    expect(agenda).to_contain_text("Nya avvikelser per kategori")
    expect(agenda.locator("h3", has_text="Plats:").first).to_be_visible()

    # Notes and a decision on the categories item, then an action decided from it.
    item = page.locator("li.agenda-item", has=page.locator("h3", has_text="Nya avvikelser per kategori"))
    item.get_by_text("Anteckningar, beslut och åtgärder").click()
    item.get_by_label("Anteckningar").fill("Klottret ökar vid torget.")
    item.get_by_label("Beslut").fill("Fastighetsägarna sanerar inom ett dygn.")
    item.get_by_role("button", name="Spara anteckningar").click()
    expect(page.get_by_role("status")).to_contain_text("Anteckningarna sparades")
    item = page.locator("li.agenda-item", has=page.locator("h3", has_text="Nya avvikelser per kategori"))
    item.get_by_text("Anteckningar, beslut och åtgärder").click()
    item.get_by_label("Vad ska göras").fill("Sanera klotter vid torget")
    item.get_by_label("Ansvarig organisation").select_option(label="Farsta Fastigheter")
    item.get_by_label("Klart senast").fill((timezone.localdate() + dt.timedelta(days=14)).isoformat())
    item.get_by_role("button", name="Skapa åtgärden").click()
    expect(page.get_by_role("status")).to_contain_text("Åtgärden skapades")

    # The item moves to the top of the agenda.
    while page.locator("li.agenda-item").first.locator("h3").inner_text() != "Nya avvikelser per kategori":
        item = page.locator("li.agenda-item", has=page.locator("h3", has_text="Nya avvikelser per kategori"))
        item.get_by_text("Anteckningar, beslut och åtgärder").click()
        item.get_by_role("button", name="Flytta upp").click()

    # Meeting mode: one item at a time on the shared screen, with its map; the keys move through the agenda.
    page.get_by_role("link", name="Visa på den gemensamma skärmen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nya avvikelser per kategori")
    page.wait_for_function("() => window.lagesbildScreenMap && window.lagesbildScreenMap.loaded()")
    expect(page.get_by_label("Beslut")).to_have_value("Fastighetsägarna sanerar inom ett dygn.")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".present-where")).to_contain_text("punkt 2 av")
    notes = page.get_by_role("textbox", name="Anteckningar")
    notes.fill("Belysningen vid porten är lagad.")
    page.get_by_role("button", name="Spara anteckningar").click()
    expect(page.get_by_role("status")).to_contain_text("Anteckningarna sparades")
    expect(notes).to_have_value("Belysningen vid porten är lagad.")
    page.get_by_role("link", name="Tillbaka till dagordningen").click()
    page.get_by_role("group", name="Organisationer").get_by_label("Lokalpolisområde Farsta").check()
    page.get_by_role("button", name="Spara närvaro").click()
    expect(page.get_by_role("status")).to_contain_text("Närvaron sparades")

    page.get_by_role("button", name="Publicera protokollet").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 av protokollet publicerades")
    expect(page.get_by_role("button", name="Rätta protokollet")).to_be_visible()
    expect(page.get_by_label("Anteckningar")).to_have_count(0)  # locked

    page.get_by_role("link", name="version 1").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Protokoll: Avstämningsmöte")
    expect(page.locator("ol.agenda li").first).to_contain_text("Klottret ökar vid torget.")
    expect(page.locator("svg.static-map")).to_be_visible()
    pdf_url = page.get_by_role("link", name="Ladda ned som PDF").get_attribute("href")
    response = page.request.get(f"{site}{pdf_url}")
    assert response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert "Protokoll: Avstämningsmöte" in text
    assert "Närvarande\nLokalpolisområde Farsta" in text
    assert "1. Nya avvikelser per kategori" in text
    assert "Beslut: Fastighetsägarna sanerar inom ett dygn." in text
    assert "Sanera klotter vid torget" in text and "Farsta Fastigheter" in text
    assert "Karta över perioden" in text
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_the_housing_company_follows_up_its_action(site: str, desktop: Page) -> None:
    page = desktop
    sign_in(page, site, "fastighet@farsta.demo")
    page.get_by_role("link", name="Åtgärder").click()
    expect(page.get_by_role("link", name="Öppna åtgärder för Farsta Fastigheter")).to_have_attribute(
        "aria-current", "page")
    page.get_by_role("link", name="Forumets alla åtgärder").click()
    page.get_by_role("link", name="Byta trasig belysning längs gångvägen").click()
    expect(page.get_by_role("heading", name="Före och efter: Byta trasig belysning längs gångvägen")).to_be_visible()
    expect(page.locator(".effect table")).to_contain_text("Vid platsen")
    expect(page.get_by_label("Hur går det?")).to_have_count(0)  # the district's action, not theirs


def test_a_place_page_shows_its_history(site: str, desktop: Page) -> None:
    page = desktop
    sign_in(page, site, "polis@farsta.demo")
    page.get_by_role("link", name="Platser").click()
    page.get_by_role("link", name="Parken vid Farstaviken").click()
    expect(page.get_by_role("heading", name="Avvikelser per kategori och månad")).to_be_visible()
    expect(page.locator("svg.static-map circle").first).to_be_attached()
    page.get_by_role("link", name="Öppna platsen på kartan (senaste 12 månaderna)").click()
    page.wait_for_selector("body.map-ready")
    bounds = page.evaluate("() => window.lagesbildMap.getBounds().toArray()")
    # The map opens around the park, not the whole district.
    assert bounds[1][0] - bounds[0][0] < 0.03
    expect(page.get_by_label("Period")).to_have_value("custom")
