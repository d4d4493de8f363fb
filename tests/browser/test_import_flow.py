"""An import as an organisation lead does it: upload an old spreadsheet, map its columns and categories, see
the dry run's problems, import, and undo; with the real Content-Security-Policy and the background worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def work() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


def test_an_old_spreadsheet_from_upload_to_the_map_and_back(site: str, desktop: Page, tmp_path: Path) -> None:
    from lagesbild.deviations.models import Deviation

    # Saved by Swedish Excel as "CSV (semikolonavgränsad)": Windows-1252, semicolons, decimal commas.
    sheet = tmp_path / "nattvandring 2023.csv"
    sheet.write_bytes("Datum;Klockslag;Vad;Plats;Öst;Nord\r\n"
                      "2023-09-01;22:15;Tagg;Gångtunneln vid Förskolan;18,0912;59,2437\r\n"
                      "2023-09-02;23:40;Krossat glas;Perrongen;18,0950;59,2450\r\n".encode("cp1252"))
    sign_in(desktop, site, "polis@farsta.demo")
    desktop.goto(f"{site}/f/farsta/import/")
    desktop.get_by_label("Fil", exact=True).set_input_files(sheet)
    desktop.get_by_role("button", name="Ladda upp och koppla kolumnerna").click()
    expect(desktop.get_by_role("heading", name="Vad varje kolumn innehåller")).to_be_visible()
    expect(desktop.get_by_text("läst som cp1252")).to_be_visible()
    expect(desktop.get_by_label("Klockslag")).to_have_value("observed_time")
    desktop.get_by_label("Vad", exact=True).select_option("category")
    desktop.get_by_label("Öst", exact=True).select_option("x")
    desktop.get_by_label("Nord", exact=True).select_option("y")
    desktop.get_by_role("button", name="Kontrollera filen (inget importeras)").click()
    expect(desktop.get_by_role("heading", name="Varje rad kontrolleras")).to_be_visible()
    work()
    # The page follows the worker by itself, and shows each row's problem.
    expect(desktop.get_by_role("heading", name="Resultat av kontrollen")).to_be_visible()
    expect(desktop.get_by_text("1 rad har problem")).to_be_visible()
    expect(desktop.get_by_role("cell", name="Tagg", exact=True)).to_be_visible()
    # This page, with its mapping, categories and problems, meets WCAG 2.1 AA, as does the list of imports.
    assert violations(desktop) == []
    checked = desktop.url
    desktop.goto(f"{site}/f/farsta/import/")
    assert violations(desktop) == []
    desktop.goto(checked)
    desktop.get_by_label("Tagg", exact=True).select_option("graffiti")
    desktop.get_by_role("button", name="Kontrollera igen").click()
    work()
    import_button = desktop.get_by_role("button", name="Importera 2 avvikelser")
    expect(import_button).to_be_visible()
    import_button.click()
    work()
    expect(desktop.get_by_text("2 avvikelser importerades")).to_be_visible()
    imported = Deviation.objects.filter(source="import", withdrawn_at__isnull=True)
    assert sorted(imported.values_list("place_name", flat=True)) == ["Gångtunneln vid Förskolan", "Perrongen"]
    desktop.get_by_role("button", name="Ångra importen").click()
    expect(desktop.get_by_text("Importen ångrades")).to_be_visible()
    assert not imported.exists()
    assert desktop.js_errors == []  # type: ignore[attr-defined]
    assert desktop.csp_violations == []  # type: ignore[attr-defined]
