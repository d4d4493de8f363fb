"""Sign-in in the browser: two-factor set-up and use, and the lockout after guessing."""

from __future__ import annotations

import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from lagesbild.forums.models import Forum
from tests.browser.conftest import sign_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code_with_time_left(totp: pyotp.TOTP) -> str:
    """The current code, once it has at least 5 of its 30 seconds left: one about to change could be refused
    by the time the server checks it (as a person would wait for the next one)."""
    left = totp.interval - time.time() % totp.interval
    if left < 5:
        time.sleep(left + 0.2)
    return totp.now()


def test_two_factor_set_up_then_required_at_sign_in(site: str, desktop: Page) -> None:
    Forum.objects.filter(slug="farsta").update(require_two_factor=True)
    desktop.goto(f"{site}/")
    desktop.get_by_label("E-postadress").fill("polis@farsta.demo")
    desktop.get_by_label("Lösenord").fill("lagesbild-demo")
    desktop.get_by_role("button", name="Logga in").click()
    # Straight to setting up an authenticator app, with the reason said.
    expect(desktop).to_have_url(f"{site}/konto/2fa/totp/activate/")
    expect(desktop.get_by_role("status")).to_contain_text("kräver tvåfaktorsautentisering")
    assert violations(desktop) == []
    secret = desktop.locator("#authenticator_secret").input_value()
    totp = pyotp.TOTP(secret)
    desktop.get_by_label("Autentiseringskod").fill(code_with_time_left(totp))
    desktop.get_by_role("button", name="Aktivera").click()
    # Recovery codes are offered; the map is reachable now.
    desktop.goto(f"{site}/f/farsta/")
    desktop.wait_for_selector("body.map-ready")
    desktop.get_by_role("button", name="Logga ut").click()

    desktop.get_by_label("E-postadress").fill("polis@farsta.demo")
    desktop.get_by_label("Lösenord").fill("lagesbild-demo")
    desktop.get_by_role("button", name="Logga in").click()
    expect(desktop).to_have_url(f"{site}/konto/2fa/authenticate/")
    assert violations(desktop) == []
    desktop.get_by_label("Kod").fill("000000")
    desktop.get_by_role("button", name="Logga in").click()
    expect(desktop.locator("body")).to_contain_text("Felaktig kod")
    # The authenticator's code of this moment, the same as at activation or not: activating does not use a
    # code up (signing in does).
    desktop.get_by_label("Kod").fill(code_with_time_left(totp))
    desktop.get_by_role("button", name="Logga in").click()
    desktop.wait_for_selector("body.map-ready")
    assert desktop.js_errors == []  # type: ignore[attr-defined]


def test_lockout_after_guessing(site: str, desktop: Page) -> None:
    desktop.goto(f"{site}/")
    for _ in range(5):
        desktop.get_by_label("E-postadress").fill("samordnare@farsta.demo")
        desktop.get_by_label("Lösenord").fill("gissning")
        desktop.get_by_role("button", name="Logga in").click()
        expect(desktop.get_by_role("alert")).to_be_visible()
    desktop.get_by_label("E-postadress").fill("samordnare@farsta.demo")
    desktop.get_by_label("Lösenord").fill("lagesbild-demo")
    desktop.get_by_role("button", name="Logga in").click()
    expect(desktop.get_by_role("alert")).to_contain_text("För många misslyckade inloggningsförsök")
    # Someone else is not locked out.
    sign_in(desktop, site, "polis@farsta.demo")
