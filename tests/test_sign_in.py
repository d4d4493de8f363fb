"""Signing in: password, lockout, two-factor authentication, password reset, closed sign-up, single sign-on."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from django.core import mail
from django.test import Client

from lagesbild.audit.models import AuditEvent
from lagesbild.forums.models import User
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.django_db
LOGIN = "/konto/login/"


def sign_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, {"login": email, "password": password})


def test_password_sign_in_and_a_clear_message_when_wrong(world: World) -> None:
    client = Client()
    wrong = sign_in(client, "polis@test.se", "not the password")
    assert wrong.status_code == 200
    assert "E-postadressen eller lösenordet är fel" in wrong.content.decode()
    right = sign_in(client, "POLIS@test.se")
    assert right.status_code == 302
    assert client.get("/f/farsta/").status_code == 200


def test_lockout_after_repeated_failures(world: World, settings: Any) -> None:
    client = Client()
    for _ in range(5):
        sign_in(client, "polis@test.se", "guess")
    locked = sign_in(client, "polis@test.se")  # even the right password, for now
    assert locked.status_code in {200, 429}
    assert "För många misslyckade inloggningsförsök" in locked.content.decode()
    assert client.get("/f/farsta/").status_code == 302
    # Another address from the same machine is not locked out by someone else's guessing.
    assert sign_in(Client(), "vicevard@test.se").status_code == 302
    assert AuditEvent.objects.filter(action="sign_in_failed", actor=world.police_reporter.user).count() >= 5


def test_nobody_signs_up_on_their_own(world: World) -> None:
    response = Client().post("/konto/signup/", {"email": "new@example.se", "password1": "a long passphrase 1",
                                                "password2": "a long passphrase 1"})
    assert response.status_code in {200, 403}
    assert not User.objects.filter(email="new@example.se").exists()


def activate_totp(client: Client) -> pyotp.TOTP:
    page = client.get("/konto/2fa/totp/activate/")
    assert page.status_code == 200
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', page.content.decode())
    if secret is None:
        secret = re.search(r'value="([A-Z2-7]{16,})"', page.content.decode())
    assert secret is not None, "the set-up page shows the secret"
    totp = pyotp.TOTP(secret.group(1))
    response = client.post("/konto/2fa/totp/activate/", {"code": totp.now()})
    assert response.status_code == 302, response.content.decode()[:500]
    return totp


def test_forum_that_requires_two_factor_sends_members_to_set_it_up(world: World) -> None:
    world.forum.require_two_factor = True
    world.forum.save()
    client = Client()
    assert sign_in(client, "polis@test.se").status_code == 302
    page = client.get("/f/farsta/")
    assert page.status_code == 302
    assert page["Location"] == "/konto/2fa/totp/activate/"
    api = client.get("/api/forums/farsta/deviations")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "two_factor_required"
    totp = activate_totp(client)
    assert client.get("/f/farsta/").status_code == 200
    # Next time the code is asked for after the password.
    client.post("/konto/logout/")
    second = Client()
    response = sign_in(second, "polis@test.se")
    assert response.status_code == 302
    assert response["Location"].startswith("/konto/2fa/authenticate/")
    assert second.get("/f/farsta/").status_code == 302  # not signed in until the code is given
    wrong = second.post("/konto/2fa/authenticate/", {"code": "000000"})
    assert "Felaktig kod" in wrong.content.decode()
    assert second.post("/konto/2fa/authenticate/", {"code": totp.now()}).status_code == 302
    assert second.get("/f/farsta/").status_code == 200
    # Without the phone, a recovery code works once.
    from allauth.mfa.models import Authenticator

    codes = Authenticator.objects.get(user=world.police_reporter.user, type="recovery_codes").wrap().get_unused_codes()
    for attempt, expected in [(codes[0], 200), (codes[0], 302)]:
        third = Client()
        sign_in(third, "polis@test.se")
        third.post("/konto/2fa/authenticate/", {"code": attempt})
        assert third.get("/f/farsta/").status_code == expected


def test_members_of_relaxed_forums_are_not_asked(world: World) -> None:
    client = Client()
    sign_in(client, "polis@test.se")
    assert client.get("/f/farsta/").status_code == 200


def test_password_reset_by_e_mail(world: World) -> None:
    client = Client()
    response = client.post("/konto/password/reset/", {"email": "polis@test.se"})
    assert response.status_code == 302
    [message] = mail.outbox
    link = re.search(r"https?://[^/\s]+(/konto/password/reset/key/\S+)", message.body)
    assert link is not None
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200
    done = client.post(form.redirect_chain[-1][0] if form.redirect_chain else link.group(1),
                       {"password1": "a fresh long passphrase", "password2": "a fresh long passphrase"})
    assert done.status_code == 302
    assert sign_in(Client(), "polis@test.se", "a fresh long passphrase").status_code == 302
    # An address nobody has gets no e-mail about an account, and the answer does not say so.
    mail.outbox.clear()
    assert Client().post("/konto/password/reset/", {"email": "nobody@example.se"}).status_code == 302
    assert mail.outbox == []


def test_single_sign_on_button_when_configured(world: World, settings: Any) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [{
        "provider_id": "stockholm", "name": "Stockholms stads inloggning", "client_id": "lagesbild",
        "secret": "s3cret", "settings": {"server_url": "https://login.example.se"}}]}}
    page = Client().get(LOGIN).content.decode()
    assert "Logga in med Stockholms stads inloggning" in page
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert "Logga in med" not in Client().get(LOGIN).content.decode()
