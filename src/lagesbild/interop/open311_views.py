"""Open311 GeoReport v2 endpoints: thin views over interop/open311.py, in JSON or XML as the path asks.

Plain Django views rather than the JSON API's: Open311 has its own error shape (a list of code and
description), its own key (`api_key`, in the query or the form) and XML.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from lagesbild.errors import DomainError
from lagesbild.forums.models import ApiToken, Membership
from lagesbild.forums.services import membership_for, token_for_key
from lagesbild.interop import open311


def _key(request: HttpRequest) -> str | None:
    """The API token: `api_key` in the query or form (Open311's way), a bearer token, or the password of HTTP
    Basic authentication (what a client's .netrc sends)."""
    key = request.POST.get("api_key") if request.method == "POST" else None
    key = key or request.GET.get("api_key")
    if key:
        return key
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    if header.startswith("Basic "):
        try:
            return base64.b64decode(header[len("Basic "):].strip()).decode().partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _member(request: HttpRequest, forum: str) -> Membership:
    key = _key(request)
    token: ApiToken | None = None
    if key is not None:
        token = token_for_key(key)
        if token is None:
            raise DomainError(_("The api_key is not a valid API token."), code="unauthenticated")
        return membership_for(token.user, forum, token=token)
    if request.method == "GET" and request.user.is_authenticated:
        return membership_for(request.user, forum)  # a signed-in person reading in the browser
    raise DomainError(_("Send your API token as api_key."), code="unauthenticated")


def _answer(kind: str, fmt: str, data: Any, status: int = 200) -> HttpResponse:
    if fmt == "xml":
        return HttpResponse(open311.to_xml(kind, data), status=status, content_type="text/xml; charset=utf-8")
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def _endpoint(kind: str, work: Callable[..., Any], status: int = 200, methods: tuple[str, ...] = ("GET", "HEAD")
              ) -> Callable[..., HttpResponse]:
    """A view answering `work(request, forum)` as `kind` in the path's format, and every error as Open311 does.

    Exempt from Django's CSRF check, which would answer in its own shape: nothing here writes for a signed-in
    session (posting needs an api_key, which no browser sends by itself).
    """

    @csrf_exempt
    def view(request: HttpRequest, forum: str, fmt: str, **kwargs: Any) -> HttpResponse:
        if fmt not in open311.FORMATS:
            return _answer("errors", "json", [{"code": 404, "description": _("Use .json or .xml.")}], 404)
        if request.method not in methods:
            answer = _answer("errors", fmt, [{"code": 405, "description": _("Use GET or POST.")}], 405)
            answer["Allow"] = ", ".join(methods)
            return answer
        try:
            created = request.method == "POST"
            return _answer(kind, fmt, work(request, forum, **kwargs), 201 if created else status)
        except DomainError as exc:
            code = 401 if exc.code == "unauthenticated" else 400 if exc.status == 422 else exc.status
            return _answer("errors", fmt, [{"code": code, "description": exc.message}], code)

    return view


def _discovery(request: HttpRequest, forum: str) -> Any:
    _member(request, forum)
    return open311.discovery(request.build_absolute_uri(reverse("open311-root", kwargs={"forum": forum})))


def _services(request: HttpRequest, forum: str) -> Any:
    membership = _member(request, forum)
    open311.check_jurisdiction(membership.forum, request.GET)
    return open311.services(membership)


def _definition(request: HttpRequest, forum: str, code: str) -> Any:
    membership = _member(request, forum)
    open311.check_jurisdiction(membership.forum, request.GET)
    return open311.service_definition(membership, code)


def _requests(request: HttpRequest, forum: str) -> Any:
    membership = _member(request, forum)
    if request.method == "POST":
        return open311.post_request(membership, request.POST)
    return open311.requests(membership, request.GET)


def _request(request: HttpRequest, forum: str, request_id: str) -> Any:
    return open311.request(_member(request, forum), request_id, request.GET)


@csrf_exempt
def root(request: HttpRequest, forum: str) -> HttpResponse:
    """The base address itself, which clients are given: points to the discovery document."""
    return _endpoint("discovery", _discovery)(request, forum, "json")


discovery = _endpoint("discovery", _discovery)
services = _endpoint("services", _services)
service_definition = _endpoint("definition", _definition)
requests = _endpoint("requests", _requests, methods=("GET", "HEAD", "POST"))
request = _endpoint("requests", _request)
