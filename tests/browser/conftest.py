"""Browser fixtures: Debian's Chromium driven by Playwright against Django's live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.basemaps import TileServer, make_pmtiles

# Playwright's sync API keeps an event loop on the test thread; Django's ORM calls there are still
# synchronous, so the async-safety guard does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("LAGESBILD_CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
# CI runs this pass beside the two database passes on two cores, where a map with WebGL in software
# can take longer than expect()'s own 5 s to draw. Waiting longer changes no assertion.
expect.set_options(timeout=15_000)
AXE = Path(settings.NODE_MODULES) / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}. `make test` installs Debian's chromium package.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def pmtiles_path(tmp_path_factory: Any) -> Path:
    return make_pmtiles(tmp_path_factory.mktemp("basemap") / "farsta.pmtiles")


@pytest.fixture
def site(live_server: Any, settings: Any, tile_server: TileServer) -> str:
    """A live server with a small demo forum, and raster basemap tiles from the local tile server."""
    import datetime as dt

    from django.utils import timezone

    from lagesbild.demo import create_demo_forum
    from lagesbild.meetings.models import Meeting

    settings.LAGESBILD_TILE_URL = tile_server.url
    settings.LAGESBILD_PMTILES_PATH = ""
    # A closed map's stream is noticed at its next keepalive: soon, so that none outlives its test.
    settings.LAGESBILD_LIVE_KEEPALIVE_SECONDS = 0.5
    forum = create_demo_forum(count=400)
    # The map opens on "since the last meeting". Whatever today's date, let that be three weeks, so the
    # first view always holds some deviations.
    latest = Meeting.objects.filter(forum=forum).order_by("-held_at").first()
    held = (timezone.now() - dt.timedelta(days=21)).replace(second=0, microsecond=0)
    Meeting.objects.filter(forum=forum, held_at__gte=held - dt.timedelta(days=30)).exclude(
        pk=getattr(latest, "pk", None)).delete()
    if latest is not None:
        Meeting.objects.filter(pk=latest.pk).update(held_at=held, period_end=held, title="Senaste mötet")
    else:
        Meeting.objects.create(forum=forum, held_at=held, title="Senaste mötet",
                               period_start=held - dt.timedelta(days=30), period_end=held)
    return str(live_server.url)


def new_page(browser: Browser, viewport: dict[str, int], **options: Any) -> Page:
    context = browser.new_context(viewport=viewport, locale="sv-SE", timezone_id="Europe/Stockholm",
                                  has_touch=viewport == PHONE, **options)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors  # type: ignore[attr-defined]
    # Every Content-Security-Policy violation, as the browser reports it on the console.
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.csp_violations = violations  # type: ignore[attr-defined]
    return page


def close_checked(page: Page) -> None:
    """Close the page's context; no page of any browser test may have logged a CSP violation."""
    violations = list(page.csp_violations)  # type: ignore[attr-defined]
    page.context.close()
    assert violations == [], violations[:3]


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    page = new_page(browser, DESKTOP)
    yield page
    close_checked(page)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    page = new_page(browser, PHONE, geolocation={"latitude": 59.2437, "longitude": 18.0912},
                    permissions=["geolocation"])
    yield page
    close_checked(page)


def sign_in(page: Page, site: str, email: str, password: str = "lagesbild-demo") -> None:
    page.goto(f"{site}/")
    page.get_by_label("E-postadress").fill(email)
    page.get_by_label("Lösenord").fill(password)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_selector("body.map-ready", timeout=45_000)  # the first map of a session, on a busy machine


def violations(page: Page, include: str | None = None) -> list[dict[str, Any]]:
    """Every WCAG 2.1 A/AA violation axe finds, whatever its impact (minor ones too).

    axe is evaluated by the test rather than added as a script tag, so the page keeps its own
    Content-Security-Policy (which rightly refuses inline scripts) and is checked as users get it."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}; run `npm ci` (make test does).")
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    context = f"'{include}'" if include else "document"
    results = page.evaluate(
        f"async () => await axe.run({context}, {{runOnly: {{type: 'tag', values: {TAGS}}}}})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
    ]
