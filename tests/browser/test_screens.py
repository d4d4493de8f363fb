"""Every main page at desktop and phone size, as the coordinator meets it with the basemap on: a screenshot of
each is saved (LAGESBILD_SCREENSHOTS, default var/screenshots/) for a reviewer to look at, and each must keep
its navigation on one line at 1366 px, log no CSP violation and no script error, and have no WCAG 2.1 A or AA
violation that axe-core finds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page

from tests.browser.conftest import PHONE, close_checked, new_page, sign_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(os.environ.get("LAGESBILD_SCREENSHOTS", Path(settings.VAR_DIR) / "screenshots"))
WIDE = {"width": 1366, "height": 768}
PAGES = {
    "karta": "/f/farsta/",
    "monster": "/f/farsta/monster/?period=all",
    "platser": "/f/farsta/platser/",
    "plats": "/f/farsta/platser/{place}/",
    "moten": "/f/farsta/moten/",
    "mote": "/f/farsta/moten/{meeting}/",
    "mote-visning": "/f/farsta/moten/{meeting}/visning/?punkt=1",
    "protokoll": "/f/farsta/moten/{published}/protokoll/",
    "atgarder": "/f/farsta/atgarder/?show=all",
    "vandringar": "/f/farsta/vandringar/",
    "vandring": "/f/farsta/vandringar/{walk}/",
    "vandringsprotokoll": "/f/farsta/vandringar/{walk}/protokoll/",
    "atgard": "/f/farsta/atgarder/{action}/",
    "medlemmar": "/f/farsta/medlemmar/",
    "installningar": "/f/farsta/installningar/",
    "kategorier": "/f/farsta/kategorier/",
    "logg": "/f/farsta/logg/",
    "import": "/f/farsta/import/",
}


def _ids() -> dict[str, Any]:
    from lagesbild.meetings.models import Action, Meeting
    from lagesbild.places.models import Place
    from lagesbild.walks.models import Walk

    published = Meeting.objects.filter(protocols__isnull=False).order_by("-held_at").first()
    upcoming = Meeting.objects.order_by("-held_at").first()
    return {"place": Place.objects.order_by("pk").first().pk, "meeting": upcoming.pk,  # type: ignore[union-attr]
            "published": published.pk, "action": Action.objects.order_by("pk").first().pk,  # type: ignore[union-attr]
            "walk": Walk.objects.filter(ended_at__isnull=False).first().pk}  # type: ignore[union-attr]


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_main_page(site: str, browser: Browser, size: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page: Page = new_page(browser, WIDE if size == "desktop" else PHONE)
    try:
        sign_in(page, site, "samordnare@farsta.demo")
        ids = _ids()
        found = {}
        for name, path in PAGES.items():
            page.goto(site + path.format(**ids))
            if name == "karta":
                page.wait_for_function("() => window.lagesbildMap.loaded() && window.lagesbildMap.areTilesLoaded()")
            if name == "mote-visning":
                page.wait_for_function("() => window.lagesbildScreenMap && window.lagesbildScreenMap.loaded()"
                                       " && window.lagesbildScreenMap.areTilesLoaded()")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
            if size == "desktop":
                header = page.locator(".topbar").bounding_box()
                assert header is not None and header["height"] < 64, f"{name}: the header wraps"
            found[name] = violations(page)
        assert {name: v for name, v in found.items() if v} == {}
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
    finally:
        close_checked(page)
