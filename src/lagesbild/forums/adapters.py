"""django-allauth adapters: nobody signs up on their own; people join a forum by invitation."""

from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

SIGNED_IN_AT = "lagesbild_signed_in_at"
FRESH_SIGN_IN_SECONDS = 300


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": _("The e-mail address or the password is wrong. Check both and try again."),
        "too_many_login_attempts": _(
            "Too many failed sign-in attempts with this address. Wait 15 minutes and try again, "
            "or reset your password."
        ),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # Minutes after signing in on this very session (a forum that requires two-factor authentication
        # sends people straight to setting it up), asking for the password again only gets in the way.
        signed_in_at = self.request.session.get(SIGNED_IN_AT) if self.request is not None else None
        if signed_in_at is not None and time.time() - signed_in_at < FRESH_SIGN_IN_SECONDS:
            return False
        return bool(super().is_reauthentication_required(app=app, **kwargs))


def remember_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Note when this session signed in (connected to Django's user_logged_in in ForumsConfig.ready)."""
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = time.time()


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Single sign-on signs in people who already have an account with the same e-mail address."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return False
