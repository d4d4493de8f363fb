"""Security headers that Django 5.2 does not set by itself."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _


def content_security_policy() -> str:
    """A strict policy: no inline scripts, no third-party scripts, images only from us and the tile host."""
    img_sources = ["'self'", "data:", "blob:"]
    tile_url = settings.LAGESBILD_TILE_URL
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        img_sources.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # MapLibre sets element styles from script; those are allowed without 'unsafe-inline'.
            "style-src 'self'",
            f"img-src {' '.join(img_sources)}",
            "connect-src 'self'",
            "worker-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class AuditContextMiddleware:
    """Makes the client's address available to the audit log for the length of the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from lagesbild.audit.services import client_ip

        token = client_ip.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            client_ip.reset(token)


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address a trusted reverse proxy passed on (LAGESBILD_PROXY_COUNT proxies)."""
    proxies = settings.LAGESBILD_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


class TwoFactorRequiredMiddleware:
    """Members of a forum that requires two-factor authentication set up an authenticator app first.

    Until they have, pages send them to the set-up page and the API answers 403; signing in and out,
    the account pages, language choice and static files stay reachable.
    """

    OPEN_PREFIXES = ("/konto/", "/i18n/", "/static/", "/healthz")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(self.OPEN_PREFIXES):
            from lagesbild.forums.services import needs_two_factor_setup

            if needs_two_factor_setup(user):  # type: ignore[arg-type]
                message = _("Your forum requires two-factor authentication. Set up an authenticator app first.")
                if request.path.startswith("/api/"):
                    return JsonResponse({"error": {"code": "two_factor_required", "message": str(message),
                                                   "field": None}}, status=403)
                messages.info(request, message)
                return redirect("mfa_activate_totp")
        return self.get_response(request)


class ApiErrorsAsJsonMiddleware:
    """Answers under /api/ that Django or the router produced as HTML or plain text (an unknown path, a
    method the path does not take, a server error) get the API's JSON error shape as well."""

    MESSAGES = {
        404: (_("No such address in the API."), "not_found"),
        405: (_("That method is not allowed here."), "method_not_allowed"),
        500: (_("Something went wrong on our side. Nothing was saved. Try again in a while."), "server_error"),
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code not in self.MESSAGES:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        message, code = self.MESSAGES[response.status_code]
        replacement = JsonResponse({"error": {"code": code, "message": str(message), "field": None}},
                                   status=response.status_code)
        if "Allow" in response:
            replacement["Allow"] = response["Allow"]
        return replacement


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=()")
        return response
