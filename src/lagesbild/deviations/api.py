"""API: deviations as GeoJSON, their detail, comments, photos and history; categories."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status
from pydantic import ConfigDict, StrictBool

from lagesbild import data_version, geometry, personal_data
from lagesbild.api import (
    DateTime,
    DeviationGeometry,
    ErrorOut,
    Id,
    Lat,
    Link,
    Lon,
    NonNegativeInt,
    PointGeometry,
    answers,
    geojson,
    holds_nul,
    member,
    openapi_body,
    parse_json_body,
    validate,
)
from lagesbild.deviations import counts, fields, rounds, services
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.presenters import comments_of, deviation_detail, history_entries, photos_of
from lagesbild.errors import DomainError, InvalidInput, NotFound, UnsupportedMedia
from lagesbild.forums.models import Forum, Membership
from lagesbild.inputs import local_to_aware
from lagesbild.interop import handoff

router = Router(tags=["deviations"])


class FieldDefinition(Schema):
    key: str
    label: str
    kind: str = Field(description="text, number, yes_no or choice")
    choices: list[str]
    required: bool


class FieldValue(Schema):
    key: str
    label: str
    kind: str
    value: str | bool | float | None


class CategoryOut(Schema):
    key: str
    name: str
    nameSv: str
    nameEn: str
    color: str
    parent: str | None
    hidden: bool
    fields: list[FieldDefinition] = Field(description="The forum's own fields of the category's reports (its "
                                                      "main category's included)")


@router.get("/{forum}/categories", response=answers(list[CategoryOut]), summary="Categories (two levels)")
def list_categories(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    membership = member(request, forum)
    hidden = services.hidden_category_ids(membership.forum)
    own: dict[int, list[dict[str, Any]]] = {}
    for definition in fields.forum_fields(membership.forum):
        own.setdefault(definition.category_id, []).append(fields.as_json(definition))
    return [
        {"key": c.key, "name": c.name, "nameSv": c.name_sv, "nameEn": c.name_en, "color": c.color,
         "parent": c.parent.key if c.parent else None, "hidden": c.pk in hidden,
         "fields": own.get(c.parent_id, []) + own.get(c.pk, []) if c.parent_id else own.get(c.pk, [])}
        for c in services.forum_categories(membership.forum)
    ]


class FilterQuery(Schema):
    """The map's filter, as every list, aggregate and export reads it."""

    bbox: str | None = Field(None, description="minLon,minLat,maxLon,maxLat (WGS84)")
    start: DateTime | None = Field(None, alias="from", description="Observed at or after (ISO 8601)")
    end: DateTime | None = Field(None, alias="to", description="Observed at or before (ISO 8601)")
    category: list[str] = Field([], description="Category key; repeatable; a parent includes its children")
    organisation: list[Id] = Field([], description="Reporting organisation id; repeatable")
    status: list[str] = Field([], description="Status; repeatable")
    q: str | None = Field(None, description="Text in the place name or description")
    field: list[str] = Field([], description="One of the forum's own fields, as key:value (yes/no as ja or nej; "
                                             "text matches where contained); repeatable")
    round: Id | None = Field(None, description="Reported on this round (its id)")


class DeviationQuery(FilterQuery):
    limit: NonNegativeInt = Field(services.DEFAULT_LIMIT, description=f"Page size, 1 to {services.MAX_LIMIT}")
    cursor: str | None = Field(None, description="From the previous page's `next` link")


class ListQuery(DeviationQuery):
    count: bool = Field(True, description="false leaves numberMatched out: counting every match of a whole "
                                                "city costs more than the page itself (the map asks "
                                                "/deviations/aggregates for the number)")


def aware(value: dt.datetime | None, forum: Forum, field: str | None = None) -> dt.datetime | None:
    """A time without an offset is read as the forum's local time (one that does not exist is refused)."""
    if value is None:
        return None
    return local_to_aware(value, forum.timezone, field)


def filter_of(params: FilterQuery, forum: Forum, member: Membership | None = None) -> services.DeviationFilter:
    return services.DeviationFilter(
        bbox=geometry.parse_bbox(params.bbox) if params.bbox else None,
        start=aware(params.start, forum, "from"),
        end=aware(params.end, forum, "to"),
        categories=params.category,
        organisations=params.organisation,
        statuses=params.status,
        q=params.q or "",
        round=params.round,
        member=member.user_id if member else None,
        fields=params.field,
    )


class DeviationProperties(Schema):
    id: int
    category: str
    parentCategory: str
    observedAt: dt.datetime
    status: str
    severity: str
    organisation: int
    placeName: str
    visibility: str
    anchor: list[float] | None = Field(None, description="For a line or area: [longitude, latitude] of the "
                                       "point it is marked at (the middle of a line, a point inside an area)")


class DeviationFeature(Schema):
    type: str = Field(description="Feature")
    id: int
    geometry: DeviationGeometry
    properties: DeviationProperties


class DeviationCollectionOut(Schema):
    """A page of deviations as OGC API Features' FeatureCollection."""

    type: str = Field(description="FeatureCollection")
    features: list[DeviationFeature]
    numberMatched: int | None = Field(None, description="How many match the filter, on every page (left out "
                                                        "with count=false)")
    numberReturned: int
    timeStamp: dt.datetime
    links: list[Link] = Field(description="self, and next while there are more pages")


class CellProperties(Schema):
    count: int
    cell: str = Field(description="The H3 hexagon (its id), or with a filter on status, organisation, text, "
                                   "round or own fields the grid cell (column:row)")


class CellFeature(Schema):
    type: str
    geometry: PointGeometry = Field(description="The mean position of what the cell counts")
    properties: CellProperties


class AggregatesOut(Schema):
    type: str = Field(description="FeatureCollection")
    features: list[CellFeature]
    numberMatched: int
    numberReturned: int
    timeStamp: dt.datetime
    links: list[Link]
    cellSize: list[float] = Field(description="Cell width and height in degrees")
    categories: dict[str, int] = Field(description="Main category key: count, for the legend")


def _geojson(request: HttpRequest, features: list[dict[str, Any]] | orjson.Fragment, number_matched: int | None,
             next_cursor: str | None = None, number_returned: int | None = None, **extra: Any) -> dict[str, Any]:
    """A FeatureCollection with OGC API Features' counts and links (its timeStamp is added as it is sent).

    Serialised directly: thousands of features through pydantic would cost more than the query.
    """
    links = [{"rel": "self", "type": "application/geo+json", "href": request.build_absolute_uri()}]
    if next_cursor:
        query = [(key, value) for key, values in request.GET.lists() for value in values if key != "cursor"]
        query.append(("cursor", next_cursor))
        links.append({"rel": "next", "type": "application/geo+json",
                      "href": request.build_absolute_uri(f"{request.path}?{urlencode(query)}")})
    counted = {"numberMatched": number_matched} if number_matched is not None else {}
    returned = len(features) if number_returned is None else number_returned
    return {"type": "FeatureCollection", "features": features, **counted, "numberReturned": returned,
            "links": links, **extra}


def _revalidated(request: HttpRequest, membership: Membership, build: Callable[[], dict[str, Any]]
                 ) -> HttpResponse:
    """The answer `build` makes, with an ETag: kept while the forum's data version stands, and 304 to a reader
    who has it already.

    The ETag is the fingerprint of what the reader sees (everything but the timeStamp), not the version: a
    version alone would move when a deviation they may not see is written, and tell them so.
    """
    version = data_version.data_version(membership.forum_id)
    # By the parameters as parsed (each key and value apart), not the query text.
    key = (f"{request.scheme}://{request.get_host()}{request.path}|{membership.forum_id}|{version}|"
           f"{membership.organisation_id}|{membership.user_id}|{sorted(request.GET.lists())!r}")
    kept = data_version.answers.get(key)
    if kept is None:
        kept = orjson.dumps(build())
        data_version.answers.put(key, kept)
    tag = '"' + hashlib.sha256(kept).hexdigest()[:32] + '"'
    if data_version.has_current(request.headers.get("If-None-Match", ""), tag):
        response = HttpResponse(status=304)
    else:
        stamp = orjson.dumps(timezone.now())
        response = HttpResponse(kept[:-1] + b',"timeStamp":' + stamp + b"}", content_type="application/geo+json")
    response["ETag"] = tag
    response["Vary"] = "Cookie, Authorization"
    return response


def _visible_and_filtered(request: HttpRequest, forum: str, params: DeviationQuery
                          ) -> tuple[Membership, services.DeviationFilter, QuerySet[Deviation]]:
    membership = member(request, forum)
    flt = filter_of(params, membership.forum, membership)
    return membership, flt, services.apply_filter(services.visible_deviations(membership), membership.forum, flt)


@router.get("/{forum}/deviations", response=answers(DeviationCollectionOut),
            summary="Deviations as a GeoJSON FeatureCollection, newest first",
            openapi_extra=geojson(DeviationCollectionOut))
def list_deviations(request: HttpRequest, forum: str, params: Query[ListQuery]) -> HttpResponse:
    membership, _flt, queryset = _visible_and_filtered(request, forum, params)

    def build() -> dict[str, Any]:
        page = services.page_of_features(queryset, limit=params.limit, cursor=params.cursor, count=params.count)
        # The features as the database wrote them (deviations.feature_json), not read into Python again.
        return _geojson(request, orjson.Fragment(page.features), page.number_matched, page.next_cursor,
                        page.number_returned)

    return _revalidated(request, membership, build)


class AggregateQuery(DeviationQuery):
    bbox: str = Field(description="minLon,minLat,maxLon,maxLat (WGS84); required")  # type: ignore[assignment]
    cells: NonNegativeInt = Field(32, description="About how many grid cells across the box, 4 to 128")


@router.get("/{forum}/deviations/aggregates", response=answers(AggregatesOut), openapi_extra=geojson(AggregatesOut),
            summary="Counts per hexagon for the same filters, for views with too many points",
            description="A box, a period and categories are answered from pre-aggregated counts: one point per "
                        "H3 hexagon (at its centre) whose centre lies in the box (every hexagon of the forum when "
                        "the box holds its whole area), at the resolution nearest to `cells` hexagons across it. "
                        "Other filters count the rows, in a square grid. "
                        "`numberMatched` is how many deviations the cells hold: ask this first, and fetch the "
                        "points only when it is small.")
def aggregate_deviations(request: HttpRequest, forum: str, params: Query[AggregateQuery]) -> HttpResponse:
    membership, flt, queryset = _visible_and_filtered(request, forum, params)

    def build() -> dict[str, Any]:
        if counts.simple_enough(flt):  # a box, a period, categories: from the pre-aggregated counts
            aggregates = counts.hexagon_aggregates(membership, flt, params.cells)
        else:
            aggregates = services.grid_aggregates(queryset, membership.forum, flt.bbox or (0, 0, 0, 0),
                                                  params.cells)
        return _geojson(request, aggregates.features, sum(aggregates.by_category.values()),
                        cellSize=list(aggregates.cell_size), categories=aggregates.by_category)

    return _revalidated(request, membership, build)


class DeviationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    category: str = Field(description="Category key, e.g. 'graffiti' or 'damage'")
    lon: Lon | None = Field(None, description="WGS84 longitude (needed unless a shape is drawn)")
    lat: Lat | None = Field(None, description="WGS84 latitude (needed unless a shape is drawn)")
    shape: dict[str, Any] | None = Field(
        None, description="A line (GeoJSON LineString) or an area (Polygon, without holes) instead of a point: "
        "at most 500 corners, a line up to 5 km, an area up to 2 km² with an outline up to 10 km, stretching over "
        "at most 5 km, inside the forum's area. lon and lat are "
        "then worked out from it (the middle of a line, a point inside an area); in a form, as a JSON object")
    observed_at: DateTime | None = Field(None, description="When it was noticed (2000 or later); defaults to now")
    observed_until: DateTime | None = None
    place_name: str = ""
    description: str = ""
    severity: str = Deviation.Severity.MEDIUM
    visibility: str = Deviation.Visibility.FORUM
    shared_with: list[Id] = Field([], description="Organisation ids, when visibility is 'named'")
    round: str | None = Field(None, description="The key of your round it was reported on (PUT /rounds/{key} "
                                                "first)")
    fields: dict[str, Any] | None = Field(None, description="The forum's own fields of the category, by key "
                                                            "(see /categories); in a form, as a JSON object")


class RoundIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the round is called, e.g. 'Kvällsrundan'")
    startedAt: DateTime = Field(description="When it started (ISO 8601)")
    endedAt: DateTime | None = Field(None, description="When it ended; once set, it stays")


class RoundOut(Schema):
    id: int
    key: str
    name: str
    startedAt: dt.datetime
    endedAt: dt.datetime | None


class RoundListed(RoundOut):
    count: int = Field(description="Its deviations that you may see")


class DeviationPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    version: NonNegativeInt = Field(description="The version you read; a stale version gives 409")
    category: str | None = None
    lon: Lon | None = None
    lat: Lat | None = None
    observed_at: DateTime | None = None
    observed_until: DateTime | None = None
    place_name: str | None = None
    description: str | None = None
    severity: str | None = None
    visibility: str | None = None
    shared_with: list[Id] | None = None
    status: str | None = None
    fields: dict[str, Any] | None = Field(None, description="All of the forum's own fields at once, by key")
    shape: dict[str, Any] | None = Field(None, description="A new line or area (see POST); null makes the "
                                                           "deviation a point at its anchor")


class Named(Schema):
    id: int
    name: str


class CategoryRef(Schema):
    key: str
    name: str


class CategoryDetail(Schema):
    key: str
    name: str
    color: str
    parent: CategoryRef | None


class PhotoOut(Schema):
    id: int
    width: int
    height: int
    url: str
    thumbnailUrl: str


class CommentOut(Schema):
    id: int
    body: str
    createdAt: dt.datetime
    author: str | None = Field(description="Named only within the author's own organisation")
    organisation: str


class HistoryEntryOut(Schema):
    action: str
    actionLabel: str
    at: dt.datetime
    organisation: str | None
    actor: str | None = Field(description="Named only within the actor's own organisation")
    changes: dict[str, Any] = Field(description="Field: [before, after], or what was created")


class Permissions(Schema):
    flagForPolice: bool
    recordPoliceReport: bool
    edit: bool
    changeStatus: bool
    comment: bool


class PoliceOut(Schema):
    flaggedAt: dt.datetime | None = Field(description="When it was marked to be reported to the police")
    flaggedBy: str | None = Field(description="The organisation that marked it")
    reportReference: str | None = Field(description="The police report's reference, once one is recorded")
    reportedAt: dt.datetime | None


class PoliceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    flagged: StrictBool | None = Field(None, description="Mark it to be reported to the police, or take the mark away")
    reportReference: str | None = Field(None, max_length=200, description="Record that a police report was made, "
                                                                         "with its reference")


class HandOffOut(Schema):
    system: str = Field(description="The fault-report system it was passed to")
    externalId: str | None = Field(description="Its id there (none while the system has only given a token)")
    status: str = Field(description="pending, open or closed: as the system last said")
    statusLabel: str
    statusNotes: str = Field(description="The system's own words on its status")
    handedOffAt: dt.datetime
    checkedAt: dt.datetime | None = Field(description="When the system was last asked")
    updatedThereAt: dt.datetime | None


class HandOffIn(Schema):
    model_config = ConfigDict(extra="forbid")

    system: Id = Field(description="The fault-report system's id, from the detail's faultSystems")


class Sweref(Schema):
    x: float
    y: float


class LinkedPlace(Schema):
    id: int
    name: str
    url: str


class LinkedAction(Schema):
    id: int
    title: str
    statusLabel: str
    url: str


class Warning(Schema):
    code: str = Field(description="What it looks like: personal_number, phone, email, registration")
    field: str
    text: str
    message: str


class DeviationOut(Schema):
    """One deviation in full, as the member asking may see it."""

    id: int
    version: int
    category: CategoryDetail
    lon: float
    lat: float
    shape: DeviationGeometry | None = Field(description="The line or area drawn, or null for a point")
    shapeSize: str = Field(description="A line's length or an area's size, in words; empty for a point")
    whereabouts: str = Field(description="Where it lies, in words, from the forum's places ('near Torget')")
    sweref99tm: Sweref
    placeName: str
    observedAt: dt.datetime
    observedUntil: dt.datetime | None
    reportedAt: dt.datetime
    updatedAt: dt.datetime
    organisation: Named
    reporter: str | None
    description: str
    severity: str
    severityLabel: str
    visibility: str
    visibilityLabel: str
    sharedWith: list[Named]
    status: str
    statusLabel: str
    source: str
    police: PoliceOut = Field(description="Whether it is to be reported to the police, and the report's reference")
    sourceLabel: str = Field(description="How it came in, in words; to its importing organisation, which import")
    fields: list[FieldValue] = Field(description="The forum's own fields of its category, filled in or not")
    photos: list[PhotoOut]
    comments: list[CommentOut]
    history: list[HistoryEntryOut]
    handOff: HandOffOut | None = Field(description="Passed to an owner's fault-report system: its id and status there")
    faultSystems: list[Named] = Field(description="Fault-report systems you may pass it to")
    permissions: Permissions
    sameOrganisation: bool
    places: list[LinkedPlace]
    actions: list[LinkedAction]
    warnings: list[Warning] | None = Field(None, description="After a change: text that looks like personal data")


class CommentCreatedOut(CommentOut):
    warnings: list[Warning]


def _multipart_payload(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: v for k, v in request.POST.items() if k not in {"shared_with", "csrfmiddlewaretoken"}
    }
    data["shared_with"] = request.POST.getlist("shared_with")
    if data.get("shape"):  # a drawn line or area, as one JSON object
        try:
            data["shape"] = orjson.loads(data["shape"])
        except orjson.JSONDecodeError:
            raise InvalidInput(_("The line or area is not valid GeoJSON."), field="shape") from None
    if data.get("fields"):  # a form carries the forum's own fields as one JSON object
        try:
            data["fields"] = orjson.loads(data["fields"])
        except orjson.JSONDecodeError:
            raise InvalidInput(_("The fields are given as an object of field names and values."),
                               field="fields") from None
        if not isinstance(data["fields"], dict):
            raise InvalidInput(_("The fields are given as an object of field names and values."), field="fields")
        if holds_nul(data["fields"]):  # "\u0000" in the JSON text is a NUL once read, which PostgreSQL refuses
            raise DomainError(_("Text may not contain the NUL character."), code="bad_request")
    # Empty form fields mean "not given".
    return {k: v for k, v in data.items() if v not in ("", [])}


@router.post("/{forum}/deviations", response={**answers(DeviationOut, 201), 200: DeviationOut},
             summary="Report a deviation",
             description="With an `Idempotency-Key` header (8 to 64 letters, digits, '-' or '_', new for each "
                         "capture), sending the same report again gives the deviation already made (200) "
                         "instead of a second one (201): for retries after a lost answer, and offline queues.",
             openapi_extra=openapi_body(DeviationIn, multipart=True))
def create_deviation(request: HttpRequest, forum: str,
                     idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    if (request.content_type or "") == "multipart/form-data":
        payload = validate(DeviationIn, _multipart_payload(request))
        photos = request.FILES.getlist("photos")
    elif (request.content_type or "") == "application/json":
        payload = parse_json_body(request, DeviationIn)
        photos = []
    else:
        raise UnsupportedMedia(_("Send the deviation as application/json or multipart/form-data."))
    if payload.shape is None and (payload.lon is None or payload.lat is None):
        raise InvalidInput(_("Give the position (lon and lat), or draw a line or an area (shape)."), field="lon")
    data = services.DeviationInput(
        category=payload.category,
        # With a shape the position is its anchor, worked out when it is checked.
        lon=payload.lon if payload.lon is not None else 0.0,
        lat=payload.lat if payload.lat is not None else 0.0,
        shape=payload.shape,
        observed_at=aware(payload.observed_at, membership.forum, "observed_at") or timezone.now(),
        observed_until=aware(payload.observed_until, membership.forum, "observed_until"),
        place_name=payload.place_name,
        description=payload.description,
        severity=payload.severity,
        visibility=payload.visibility,
        shared_with=payload.shared_with,
        round=payload.round or "",
        fields=payload.fields,
    )
    if idempotency_key is None:
        deviation = services.report_deviation(membership, data, photos)
        return Status(201, _with_warnings(membership, deviation.pk))
    deviation, created = services.report_once(membership, data, photos, idempotency_key)
    return Status(201 if created else 200, _with_warnings(membership, deviation.pk))


@router.get("/{forum}/rounds", response=answers(list[RoundListed]), summary="Your rounds, newest first")
def list_rounds(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    return rounds.rounds_of(member(request, forum))


@router.put("/{forum}/rounds/{key}", response={**answers(RoundOut, 201), 200: RoundOut},
            summary="Start or end your round",
            description="The phone makes the key (8 to 64 letters, digits, '-' or '_'). Sending the same start again "
                        "gives the round already started (200); `endedAt` ends it, once.",
            openapi_extra=openapi_body(RoundIn))
def put_round(request: HttpRequest, forum: str, key: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, RoundIn)
    found, created = rounds.save_round(membership, key, rounds.RoundInput(
        name=payload.name, started_at=aware(payload.startedAt, membership.forum, "startedAt"),  # type: ignore[arg-type]
        ended_at=aware(payload.endedAt, membership.forum, "endedAt")))
    return Status(201 if created else 200, rounds.as_json(found))


@router.get("/{forum}/deviations/{deviation_id}", response=answers(DeviationOut), summary="One deviation in full")
def get_deviation(request: HttpRequest, forum: str, deviation_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    return deviation_detail(membership, services.read_deviation(membership, deviation_id))


@router.patch("/{forum}/deviations/{deviation_id}", response=answers(DeviationOut),
              summary="Change a deviation (optimistic concurrency through `version`)",
              openapi_extra=openapi_body(DeviationPatch))
def patch_deviation(request: HttpRequest, forum: str, deviation_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, DeviationPatch)
    changes = payload.model_dump(exclude_unset=True)
    version = changes.pop("version")
    for name in ("observed_at", "observed_until"):
        if name in changes:
            changes[name] = aware(changes[name], membership.forum, name)
    for name in ("category", "lon", "lat", "observed_at", "place_name", "description", "severity",
                 "visibility", "shared_with", "status", "fields"):
        if name in changes and changes[name] is None:
            changes.pop(name)  # null means "leave as it is" except for observed_until
    services.edit_deviation(membership, deviation_id, changes, version)
    return _with_warnings(membership, deviation_id)


@router.delete("/{forum}/deviations/{deviation_id}", response=answers(None, 204), summary="Withdraw a deviation")
def delete_deviation(request: HttpRequest, forum: str, deviation_id: Id) -> Status[None]:
    membership = member(request, forum)
    services.withdraw_deviation(membership, deviation_id)
    return Status(204, None)


def _with_warnings(membership: Membership, deviation_id: int) -> dict[str, Any]:
    """The deviation in full, with a warning for anything in its text that looks like personal data."""
    detail = deviation_detail(membership, services.get_visible_deviation(membership, deviation_id))
    detail["warnings"] = personal_data.warnings_for(
        {"place_name": detail["placeName"], "description": detail["description"],
         **{f"fields.{f['key']}": f["value"] for f in detail["fields"] if isinstance(f["value"], str)}})
    return detail


class PersonalDataCheckIn(Schema):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str] = Field(description="Field name -> text, e.g. {'description': '...'}")


class PersonalDataCheckOut(Schema):
    warnings: list[Warning]
    blocking: bool = Field(description="Whether the forum refuses such text rather than warning")


@router.post("/{forum}/personal-data-check", response=answers(PersonalDataCheckOut),
             summary="Warnings for text that looks like personal data, before it is saved",
             openapi_extra=openapi_body(PersonalDataCheckIn))
def check_personal_data(request: HttpRequest, forum: str) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, PersonalDataCheckIn)
    if len(payload.fields) > 10 or any(len(text) > services.MAX_DESCRIPTION for text in payload.fields.values()):
        raise InvalidInput(_("Too much text to check at once."), field="fields")
    return {"warnings": personal_data.warnings_for(payload.fields), "blocking": membership.forum.block_personal_data}


class CommentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    body: str


@router.post("/{forum}/deviations/{deviation_id}/police", response=answers(DeviationOut),
             summary="Mark a deviation to be reported to the police, or record the police report (audited)",
             openapi_extra=openapi_body(PoliceIn))
def police_report(request: HttpRequest, forum: str, deviation_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, PoliceIn)
    if payload.flagged is None and payload.reportReference is None:
        raise InvalidInput(_("Say whether it is to be reported, or give the report's reference."), field="flagged")
    if payload.reportReference is not None:
        if payload.flagged is False:
            raise InvalidInput(_("A recorded police report keeps the mark."), field="flagged")
        services.record_police_report(membership, deviation_id, payload.reportReference)
    elif payload.flagged is not None:
        services.set_police_flag(membership, deviation_id, payload.flagged)
    return deviation_detail(membership, services.read_deviation(membership, deviation_id))


@router.post("/{forum}/deviations/{deviation_id}/hand-off", response={**answers(DeviationOut, 201), 502: ErrorOut},
             summary="Pass a physical defect to its owner's fault-report system over Open311 (audited)",
             openapi_extra=openapi_body(HandOffIn))
def hand_off(request: HttpRequest, forum: str, deviation_id: Id) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, HandOffIn)
    handoff.hand_off(membership, deviation_id, payload.system)
    return Status(201, deviation_detail(membership, services.read_deviation(membership, deviation_id)))


@router.get("/{forum}/deviations/{deviation_id}/comments", response=answers(list[CommentOut]),
            summary="Comments on a deviation")
def list_comments(request: HttpRequest, forum: str, deviation_id: Id) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return comments_of(services.get_visible_deviation(membership, deviation_id))


@router.post("/{forum}/deviations/{deviation_id}/comments", response=answers(CommentCreatedOut, 201),
             summary="Comment on a deviation", openapi_extra=openapi_body(CommentIn))
def create_comment(request: HttpRequest, forum: str, deviation_id: Id) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, CommentIn)
    comment = services.add_comment(membership, deviation_id, payload.body)
    created = next(c for c in comments_of(comment.deviation) if c["id"] == comment.pk)
    return Status(201, {**created, "warnings": personal_data.warnings_for({"body": comment.body})})


@router.get("/{forum}/deviations/{deviation_id}/history", response=answers(list[HistoryEntryOut]),
            summary="A deviation's change history")
def list_history(request: HttpRequest, forum: str, deviation_id: Id) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return history_entries(membership, services.get_visible_deviation(membership, deviation_id))


@router.post("/{forum}/deviations/{deviation_id}/photos", response=answers(list[PhotoOut], 201),
             summary="Add photos (multipart field 'photos', repeatable)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "properties": {"photos": {"type": "array", "items": {
                     "type": "string", "format": "binary"}}}}}}}})
def upload_photos(request: HttpRequest, forum: str, deviation_id: Id) -> Status[list[dict[str, Any]]]:
    membership = member(request, forum)
    if (request.content_type or "") != "multipart/form-data":
        raise UnsupportedMedia(_("Upload photos as multipart/form-data."))
    created = services.add_photos(membership, deviation_id, request.FILES.getlist("photos"))
    photos = photos_of(membership, created[0].deviation)
    ids = {p.pk for p in created}
    return Status(201, [p for p in photos if p["id"] in ids])


JPEG = {"responses": {"200": {"description": "The image", "content": {"image/jpeg": {
    "schema": {"type": "string", "format": "binary"}}}}}}


def _photo_file(membership: Membership, photo_id: int, thumbnail: bool) -> FileResponse:
    photo = services.get_visible_photo(membership, photo_id)
    path = photo.thumbnail if thumbnail else photo.image
    if not default_storage.exists(path):
        raise NotFound(_("No such photo."))
    response = FileResponse(default_storage.open(path, "rb"), content_type="image/jpeg")
    return response


@router.get("/{forum}/photos/{photo_id}", summary="A photo (JPEG, metadata removed)",
            response=answers(None), openapi_extra=JPEG)
def get_photo(request: HttpRequest, forum: str, photo_id: Id) -> FileResponse:
    return _photo_file(member(request, forum), photo_id, thumbnail=False)


@router.get("/{forum}/photos/{photo_id}/thumbnail", summary="A photo's thumbnail (JPEG)",
            response=answers(None), openapi_extra=JPEG)
def get_photo_thumbnail(request: HttpRequest, forum: str, photo_id: Id) -> FileResponse:
    return _photo_file(member(request, forum), photo_id, thumbnail=True)

