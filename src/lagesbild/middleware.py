"""Security headers that Django 5.2 does not set by itself."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=()")
        return response
