"""The HTTP API: one NinjaAPI, session or bearer-token authentication, one error format.

Every error is JSON `{"error": {"code": ..., "message": ..., "field": ...}}` with a 4xx status and a
message in the request's language (Swedish unless the client asks for English).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Annotated, Any, TypeVar

import orjson
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBearer
from ninja.security.session import SessionAuth
from ninja.utils import check_csrf, normalize_path
from pydantic import AfterValidator, BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from lagesbild.errors import DomainError, Forbidden, InvalidInput, UnsupportedMedia
from lagesbild.forums.models import Membership, User
from lagesbild.forums.services import membership_for, token_for_key
from lagesbild.inputs import FIRST_YEAR, LAST_YEAR, MAX_INT

SchemaT = TypeVar("SchemaT", bound=BaseModel)


# Types for every number, date and time the API reads, so that nothing outside what the database and
# Python's calendar hold gets as far as a query (tests/test_structure.py checks every integer is bounded).
def _in_calendar(value: dt.date) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError("calendar_range", "outside the years {first} to {last}",
                                  {"first": FIRST_YEAR, "last": LAST_YEAR})
    return value


Id = Annotated[int, Field(ge=1, le=MAX_INT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_INT)]
DateTime = Annotated[dt.datetime, AfterValidator(_in_calendar)]
Date = Annotated[dt.date, AfterValidator(_in_calendar)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class TokenAuth(HttpBearer):
    """`Authorization: Bearer lgb_...` for machine clients; see `lagesbild token create`."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        api_token = token_for_key(token)
        if api_token is None:
            return None
        request.user = api_token.user
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token.user


class SignedInSession(SessionAuth):
    """The session of a signed-in person (the pages' own scripts), with Django's CSRF check.

    Someone who is not signed in has no session to forge, so they get 401 rather than a CSRF complaint,
    and a refused CSRF check is explained in the person's language and logged, like a refused form.
    """

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            from lagesbild.views import record_csrf_refusal

            raise Forbidden(record_csrf_refusal(request), code="csrf")
        return request.COOKIES.get(self.param_name)


class ErrorDetail(Schema):
    code: str = Field(description="Stable, for programs: invalid, not_found, forbidden, conflict, ...")
    message: str = Field(description="For people, in the request's language")
    field: str | None = Field(description="The input at fault, where there is one")


class ErrorOut(Schema):
    error: ErrorDetail


# Every operation documents the errors it can answer with, in the one shape they all have.
ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut,
                          415: ErrorOut, 422: ErrorOut}


def answers(ok: Any, status: int = 200) -> dict[int, Any]:
    """The `response=` of an operation: its success schema and the error shape for every error status."""
    return {status: ok, **ERRORS}


def geojson(schema: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for an operation that answers application/geo+json in the shape of `schema`."""
    ref = {"$ref": f"#/components/schemas/{schema.__name__}"}
    # "200" as text replaces ninja's own 200 (an integer) in the document served, so it repeats the description.
    return {"responses": {"200": {"description": "OK", "content": {"application/geo+json": {"schema": ref}}}}}


class PointGeometry(Schema):
    type: str = Field(description="Point")
    coordinates: list[float] = Field(description="[longitude, latitude], WGS84")


class PolygonGeometry(Schema):
    type: str = Field(description="Polygon or MultiPolygon")
    coordinates: list[Any] = Field(description="GeoJSON coordinates, WGS84")


class DeviationGeometry(Schema):
    type: str = Field(description="Point, or LineString or Polygon for a deviation drawn as a line or an area")
    coordinates: list[Any] = Field(description="GeoJSON coordinates, WGS84")


class Link(Schema):
    rel: str
    type: str
    href: str


def member(request: HttpRequest, forum: str) -> Membership:
    """The requesting member of the forum, within the scope of their API token if they sent one."""
    return membership_for(request.user, forum, token=getattr(request, "api_token", None))


class LagesbildAPI(NinjaAPI):
    """NinjaAPI, with its OpenAPI document built once per process and language.

    Building it takes about 0.4 s, and /api/openapi.json is open to anyone: without this, every request for
    it cost the server that much. The routes do not change once the module is imported. The script prefix
    comes with the request (a proxy may pass on SCRIPT_NAME) and changes only the paths' keys, so a document
    for another prefix is the built one with its paths renamed; the 16 most recently asked are kept.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built_document = functools.lru_cache(maxsize=8)(self._built_document)
        self.document_text = functools.lru_cache(maxsize=16)(self._document_text)

    def _built_document(self, language: str | None) -> str:
        return json.dumps(super().get_openapi_schema(path_prefix=""), cls=NinjaJSONEncoder)

    def _document_text(self, path_prefix: str, language: str | None) -> str:
        document = json.loads(self.built_document(language))
        # As ninja joins a prefix to a path, path converters taken out (ninja.openapi.schema.OpenAPISchema.get_paths).
        document["paths"] = {re.sub(r"{[^}:]+:", "{", normalize_path("/" + path_prefix + path)): item
                             for path, item in document["paths"].items()}
        return json.dumps(document)

    def get_openapi_schema(self, *, path_prefix: str | None = None,
                           path_params: dict[str, Any] | None = None) -> Any:
        if path_prefix is None:
            # As ninja works it out: with the request's script prefix.
            path_prefix = self.get_root_path(path_params or {})
        text = self.document_text(path_prefix, translation.get_language())
        return json.loads(text)  # a fresh copy: a caller may change it


api = LagesbildAPI(
    title="Lägesbild API",
    version="1",
    description="Avvikelser, kategorier och organisationer i ett trygghetsforum. GeoJSON för kartdata.",
    auth=[TokenAuth(), SignedInSession()],
    urls_namespace="api",
    docs_url=None,  # The interactive docs load scripts from a CDN, which our CSP and offline use forbid.
)


def error_response(request: HttpRequest, status: int, code: str, message: str, field: str | None = None
                   ) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message, "field": field}}, status=status
    )


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error_response(request, exc.status, exc.code, exc.message, exc.field)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "unauthenticated", _("Sign in, or send a valid API token."))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(request, exc.status_code, "http_error", str(exc))


@api.exception_handler(SuspiciousOperation)
@api.exception_handler(MultiPartParserError)
def on_unreadable_request(request: HttpRequest, exc: Exception) -> HttpResponse:
    from lagesbild.middleware import bad_request

    status, code, message = bad_request(exc) or (400, "bad_request", _("The request could not be read."))
    return error_response(request, status, code, message)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    return error_response(request, 422, "invalid", explain(first), field_of(first))


# Pydantic's own messages are English and technical; these say the same in words people use.
def explain(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    field = field_of(error) or _("the input")
    if kind == "missing":
        return _("%(field)s is required.") % {"field": field}
    if kind in {"greater_than_equal", "greater_than"}:
        return _("%(field)s must be at least %(limit)s.") % {
            "field": field, "limit": ctx.get("ge", ctx.get("gt"))}
    if kind in {"less_than_equal", "less_than"}:
        return _("%(field)s must be at most %(limit)s.") % {"field": field, "limit": ctx.get("le", ctx.get("lt"))}
    if kind == "finite_number":
        return _("%(field)s must be a finite number.") % {"field": field}
    if kind == "calendar_range":
        return _("%(field)s must be between the years %(first)s and %(last)s.") % {
            "field": field, "first": ctx.get("first"), "last": ctx.get("last")}
    if kind.startswith(("float", "int")):
        return _("%(field)s must be a number.") % {"field": field}
    if kind.startswith(("datetime", "date")):
        return _("%(field)s is not a valid date and time (use ISO 8601, e.g. 2026-03-01T14:30+01:00).") % {
            "field": field
        }
    if kind == "string_too_long":
        return _("%(field)s is too long (at most %(max)s characters).") % {
            "field": field, "max": ctx.get("max_length")}
    if kind.startswith("string"):
        return _("%(field)s must be text.") % {"field": field}
    if kind.startswith("list"):
        return _("%(field)s must be a list.") % {"field": field}
    if kind.startswith("bool"):
        return _("%(field)s must be true or false.") % {"field": field}
    if kind in {"extra_forbidden"}:
        return _("%(field)s is not a field that can be set.") % {"field": field}
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return _("The request body must be a JSON object.")
    return _("%(field)s is not valid.") % {"field": field}


def field_of(error: dict[str, Any]) -> str | None:
    loc = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
    loc = [part for part in loc if part not in {"body", "query", "path", "payload", "form", "file"}]
    return loc[-1] if loc else None


def parse_json_body(request: HttpRequest, schema: type[SchemaT]) -> SchemaT:
    """Parse a JSON request body into a schema, with our error format for every way it can be wrong."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise UnsupportedMedia(_("Send the request body as application/json."))
    try:
        # orjson refuses nesting past 1,024 levels and lone surrogates, which would fail later otherwise.
        data = orjson.loads(request.body or b"null")
    except orjson.JSONDecodeError as exc:
        raise DomainError(_("The request body is not valid JSON."), code="malformed_json") from exc
    if holds_nul(data):
        raise DomainError(_("Text may not contain the NUL character."), code="bad_request")
    return validate(schema, data)


def holds_nul(value: Any) -> bool:
    """Whether parsed JSON holds a NUL character anywhere (PostgreSQL cannot store one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


def validate(schema: type[SchemaT], data: Any) -> SchemaT:
    if not isinstance(data, dict):
        raise DomainError(_("The request body must be a JSON object."), code="malformed_json")
    try:
        return schema.model_validate(data)
    except PydanticValidationError as exc:
        first: dict[str, Any] = dict(exc.errors()[0])
        raise InvalidInput(explain(first), field=field_of(first)) from exc


def openapi_body(schema: type[BaseModel], multipart: bool = False) -> dict[str, Any]:
    """Describe a body we parse ourselves, so the OpenAPI document still shows it."""
    json_schema = schema.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": json_schema}}
    if multipart:
        form_schema = json.loads(json.dumps(json_schema))
        form_schema.setdefault("properties", {})["photos"] = {
            "type": "array", "items": {"type": "string", "format": "binary"}}
        content["multipart/form-data"] = {"schema": form_schema}
    return {"requestBody": {"required": True, "content": content}}


def _register_routers() -> None:
    from lagesbild.alerts.api import router as alerts_router
    from lagesbild.analysis.api import router as analysis_router
    from lagesbild.deviations.api import router as deviations_router
    from lagesbild.forums.api import router as forums_router
    from lagesbild.interop.api import ogc as ogc_router
    from lagesbild.interop.api import router as interop_router
    from lagesbild.meetings.api import router as meetings_router
    from lagesbild.places.api import router as places_router
    from lagesbild.walks.api import router as walks_router

    api.add_router("/forums", forums_router)
    api.add_router("/forums", deviations_router)
    api.add_router("/forums", places_router)
    api.add_router("/forums", meetings_router)
    api.add_router("/forums", analysis_router)
    api.add_router("/forums", interop_router)
    api.add_router("/forums", ogc_router)
    api.add_router("/forums", alerts_router)
    api.add_router("/forums", walks_router)


_register_routers()
