"""Security headers that Django 5.2 does not set by itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError, transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from whitenoise.middleware import WhiteNoiseMiddleware


def content_security_policy() -> str:
    """A strict policy: no inline scripts, no third-party scripts; images and data only from us and the
    basemap's tile host, if one is configured (MapLibre fetches raster tiles with fetch(), so the host is
    needed in connect-src as well as img-src)."""
    from lagesbild.basemap import configured

    tile_hosts = configured().hosts
    img_sources = ["'self'", "data:", "blob:", *tile_hosts]
    connect_sources = ["'self'", *tile_hosts]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # MapLibre sets element styles from script; those are allowed without 'unsafe-inline'.
            "style-src 'self'",
            f"img-src {' '.join(img_sources)}",
            f"connect-src {' '.join(connect_sources)}",
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

    # The service worker and manifest too: a worker's script may not be redirected, or it never installs.
    OPEN_PREFIXES = ("/konto/", "/i18n/", "/static/", "/healthz", "/sw.js", "/manifest.webmanifest")

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


def bad_request(exception: Exception) -> tuple[int, str, str] | None:
    """The status, code and message for a request Django could not even read, or None if it is not one."""
    if isinstance(exception, RequestDataTooBig):
        return 413, "too_large", str(_("The request is too large."))
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return 400, "bad_request", str(_("The request has too many fields or files."))
    if isinstance(exception, MultiPartParserError):
        return 400, "bad_request", str(_("The request's form data could not be read (multipart/form-data needs "
                                         "a boundary)."))
    if isinstance(exception, SuspiciousOperation):
        return 400, "bad_request", str(_("The request could not be read."))
    return None


class ApiErrorsAsJsonMiddleware:
    """Answers under /api/ that Django or the router produced as HTML or plain text (an unknown path, a
    method the path does not take, a server error) get the API's JSON error shape as well. A request that
    cannot even be read (too large, broken form data) gets its own 4xx: JSON in the API, a page elsewhere."""

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
        if response.get("Content-Type", "").startswith(("application/json", "text/xml")):
            return response  # the API's own answer (Open311 answers its errors in XML when asked to)
        message, code = self.MESSAGES[response.status_code]
        replacement = JsonResponse({"error": {"code": code, "message": str(message), "field": None}},
                                   status=response.status_code)
        if "Allow" in response:
            replacement["Allow"] = response["Allow"]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        known = bad_request(exception)
        if known is None:
            return None
        return error_answer(request, *known)


def error_answer(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    """The error in the API's JSON shape under /api/, as a page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": code, "message": message, "field": None}}, status=status)
    return render(request, "400.html", {"message": message}, status=status)


class UnreadableRequestMiddleware:
    """Refuses, before anything else looks at it, a request whose form data cannot be read, or whose address,
    query or form fields hold a NUL character (which no one types, and PostgreSQL cannot store)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            texts = [request.path, *(v for _k, values in request.GET.lists() for v in [_k, *values])]
            if request.method == "POST":
                texts.extend(v for _k, values in request.POST.lists() for v in [_k, *values])
        except Exception as exc:
            known = bad_request(exc)
            if known is None:
                raise
            return error_answer(request, *known)
        if any("\x00" in text for text in texts):
            return error_answer(request, 400, "bad_request", str(_("Text may not contain the NUL character.")))
        return self.get_response(request)


# Requests that wait for another system (a fault-report system) before they write: their service writes in one
# transaction of its own after the call, so that no lock is held while another server answers (on SQLite, a
# write transaction would stop every other writer for as long).
CALLS_OUT = ("/hand-off",)


def database_busy(exception: BaseException) -> bool:
    """Whether SQLite gave up waiting for its one writer (a large import holds it for as long as it writes)."""
    return isinstance(exception, OperationalError) and "database is locked" in str(exception)


def database_unreachable(exception: BaseException) -> bool:
    """Whether the database could not be reached or went away mid-request (PostgreSQL restarting, a lost
    connection), rather than refusing a statement: the kind of error that trying again a little later cures."""
    if isinstance(exception, InterfaceError):
        # The connection closed under the request; any other misuse of a connection is a fault of ours.
        from django.db import connection

        return connection.connection is None or bool(getattr(connection.connection, "closed", False))
    if not isinstance(exception, OperationalError):
        return False
    cause = exception.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if type(cause).__module__.startswith("psycopg"):
        # No SQLSTATE: no answer from the server at all. Class 08 is a connection exception; 57P01 to 57P03
        # are the server shutting down, crashing, or not yet accepting connections; 53300, too many
        # connections.
        return sqlstate is None or sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03", "53300"}
    return any(text in str(exception) for text in ("unable to open database file", "disk I/O error"))


def busy_answer(request: HttpRequest) -> HttpResponse:
    response = error_answer(request, 503, "busy", str(_(
        "Lägesbild is busy saving another large change (an import, for example). Nothing was saved. "
        "Try again in a minute.")))
    response["Retry-After"] = "30"
    return response


class WriteTransactionMiddleware:
    """A request that changes something (POST, PUT, PATCH, DELETE) is one transaction. If it answers with an
    error, 4xx or 5xx, nothing it wrote is kept, except the audit log's record of a refused attempt.

    Services validate before they write, so this is the net under them: no request can leave half of a
    change behind, or a change behind an error message saying nothing was saved. The sign-in pages
    (django-allauth, under /konto/) keep their own rate-limit counters and sign-in events, so they are left
    to themselves.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in {"GET", "HEAD", "OPTIONS", "TRACE"} or (
                request.path.startswith("/konto/") and not request.path.startswith("/konto/inbjudan/")) \
                or request.path.endswith(CALLS_OUT):
            return self.get_response(request)
        from lagesbild.audit.services import refusals_kept

        try:
            with refusals_kept(), transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
        except OperationalError as exc:  # the transaction could not even begin
            if not database_busy(exc):
                raise
            return busy_answer(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # A write that waited too long inside a view; the transaction above rolls back for the 503.
        return busy_answer(request) if database_busy(exception) else None


class ForumTimeZoneMiddleware:
    """Pages of a forum are shown in its time zone (activated where the member is looked up); this puts the
    default back when the request ends, so the next request on the thread does not inherit it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


REVALIDATED = "private, no-cache"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith((settings.STATIC_URL, "/basemap/")) \
                and response.headers.get("Cache-Control") != REVALIDATED:
            # Pages, API answers and photos carry forum data: no browser or proxy keeps a copy. The one
            # exception opts in by name: vector tiles (positions, categories and statuses, no text), which the
            # browser keeps and revalidates against the forum's data version on every use.
            response.headers["Cache-Control"] = "private, no-store"
        # Worked out for each response (it is a few string joins), so it follows the settings as they are.
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=()")
        return response


class CompressionMiddleware(GZipMiddleware):
    """gzip for pages and API answers (a district's list of deviations shrinks about tenfold), except where it
    would do harm: a live stream (gzip would hold its events back until a buffer fills), and JPEG photos and
    other files that are compressed already.

    Django's GZipMiddleware pads each answer with random bytes against BREACH, and CSRF tokens are masked
    afresh for every page."""

    ALREADY_COMPRESSED = ("image/", "application/zip", "application/geopackage", "application/pdf",
                          "application/vnd.openxmlformats", "application/gzip", "application/octet-stream",
                          "font/woff", "application/wasm")

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        content_type = response.get("Content-Type", "")
        # A range of a file (the PMTiles basemap) is sent as it is: its Content-Range counts the file's bytes.
        if response.status_code == 206 or content_type.startswith(("text/event-stream", *self.ALREADY_COMPRESSED)):
            return response
        return super().process_response(request, response)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, with two exceptions to "every request moves the end of the session forward":

    - A request marked `passive` (following the map live) is not activity: a map left open on an unattended
      device, reconnecting its stream now and then, must still be signed out after the idle time.
    - A session that nothing changed is written again at most once a minute. A panning map asks several
      times a second, and writing the session for each made every read a write: on SQLite, a wait for its
      one writer. The idle time is then kept to the minute.
    """

    REFRESH_SECONDS = 60
    REFRESHED = "_lagesbild_refreshed"  # when the session was last written, in seconds since the epoch

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, "passive", False):
            return response
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty():
            now = int(time.time())
            if not session.modified and 0 <= now - session.get(self.REFRESHED, 0) < self.REFRESH_SECONDS:
                patch_vary_headers(response, ("Cookie",))  # as Django does for an answer that read the session
                return response
            if not session.is_empty():  # reading it may have found it gone (expired, or signed out elsewhere)
                session[self.REFRESHED] = now
        return super().process_response(request, response)


# The static files found, once per process (None: not yet, or a setting WhiteNoise reads has changed).
_static_files: dict[str, Any] | None = None
_STATIC_SETTINGS = {"DEBUG", "INSTALLED_APPS", "STATIC_URL", "STATIC_ROOT", "STATICFILES_DIRS", "STATICFILES_FINDERS",
                    "STORAGES", "FORCE_SCRIPT_NAME"}


@receiver(setting_changed)
def _forget_static_files(setting: str, **kwargs: Any) -> None:
    """A test that changes a setting WhiteNoise reads gets a fresh scan."""
    global _static_files
    if setting in _STATIC_SETTINGS or setting.startswith("WHITENOISE_"):
        _static_files = None


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, scanning the static files once per process rather than once per middleware instance.

    The scan (every file's path, size and headers) takes tens of milliseconds; the test client builds the
    middleware anew for every client, so the suite paid it over a thousand times. The files do not change
    while a process runs unless WHITENOISE_AUTOREFRESH is on, and then WhiteNoise does not scan at all.
    """

    def add_files_from_finders(self) -> None:
        global _static_files
        if _static_files is None:
            before = dict(self.files)
            super().add_files_from_finders()
            _static_files = {url: file for url, file in self.files.items() if before.get(url) is not file}
        else:
            self.files.update(_static_files)
