"""The pages around the map: sign-in redirects, the forum list, 404s and security headers."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from lagesbild.forums.models import Membership
from lagesbild.forums.services import add_member
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(world: World) -> None:
    for url in ["/", "/f/farsta/"]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/konto/login/")


def test_one_forum_goes_straight_to_its_map(world: World) -> None:
    response = world.client(world.police_reporter).get("/")
    assert (response.status_code, response["Location"]) == (302, "/f/farsta/")


def test_several_forums_are_listed(world: World) -> None:
    add_member(world.other_forum, email=world.police_reporter.user.email,
               organisation=world.outsider.organisation, role="viewer")
    response = world.client(world.police_reporter).get("/")
    assert response.status_code == 200
    assert "Farsta" in response.content.decode() and "Skärholmen" in response.content.decode()


def test_map_page_of_another_forum_is_not_found(world: World) -> None:
    response = world.client(world.outsider).get("/f/farsta/")
    assert response.status_code == 404
    assert "Forumet finns inte." in response.content.decode()
    missing = world.client(world.outsider).get("/f/finns-inte/")
    main = lambda html: re.search(rb"<main.*</main>", html, re.S).group(0)  # type: ignore[union-attr]  # noqa: E731
    assert main(missing.content) == main(response.content)


def test_map_page_has_a_strict_content_security_policy(world: World) -> None:
    response = world.client(world.police_reporter).get("/f/farsta/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    # Every script is a file or JSON data: nothing inline for the policy to block.
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert 'lang="sv"' in html


def test_viewer_gets_no_report_button(world: World) -> None:
    html = world.client(world.viewer).get("/f/farsta/").content.decode()
    assert "Rapportera avvikelse" not in html
    assert "Rapportera avvikelse" in world.client(world.police_reporter).get("/f/farsta/").content.decode()


def test_inactive_membership_loses_access(world: World) -> None:
    Membership.objects.filter(pk=world.police_reporter.pk).update(is_active=False)
    assert world.client(world.police_reporter).get("/f/farsta/").status_code == 404
    assert world.client(world.police_reporter).get("/api/forums/farsta/deviations").status_code == 404


def test_healthz_needs_no_sign_in() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] in {"sqlite", "postgresql"}


def test_sessions_end_after_inactivity_and_each_request_extends_them(world: World, settings: object) -> None:
    client = world.client(world.police_reporter)
    response = client.get("/api/forums/farsta/deviations")
    assert response.cookies["sessionid"]["max-age"] == 120 * 60
    again = client.get("/api/forums/farsta")
    assert "sessionid" in again.cookies  # the idle clock starts again with every request


def test_passwords_are_hashed_with_argon2(world: World, settings: object) -> None:
    from lagesbild import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS  # type: ignore[attr-defined]
    user = world.viewer.user
    user.set_password("a new and long passphrase")
    user.save()
    assert user.password.startswith("argon2$")
    assert Client().login(username=user.email, password="a new and long passphrase")
