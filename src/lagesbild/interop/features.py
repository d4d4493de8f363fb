"""OGC API Features for a forum: what QGIS, GDAL and the city's GIS read.

Part 1 (Core, GeoJSON), Part 2 (coordinate systems: WGS 84 and SWEREF 99 TM) and Part 3 (queryables and CQL2
filters). Two collections: the deviations the reader may see, and the forum's places. Every page goes through the
one visibility gate (`visible_deviations`), and every restricted deviation it hands out is audited as read, as
when it is opened on the map.

Coordinates follow each coordinate system's own axis order, as Part 2 requires: CRS84 is longitude, latitude;
EPSG:3006 is northing, easting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import shapely.geometry
from django.db.models import Min, Q, QuerySet
from django.utils.translation import gettext as _

from lagesbild import geometry, inputs
from lagesbild.audit import services as audit
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import Forum, Membership, Organisation
from lagesbild.interop import cql
from lagesbild.interop.cql import CRS84, EPSG3006, Queryable
from lagesbild.places import services as places
from lagesbild.places.models import Place

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]
CRS_LIST = [CRS84, EPSG3006]
CRS_ALIASES = {CRS84: CRS84, "[OGC:CRS84]": CRS84, "OGC:CRS84": CRS84, "EPSG:4326": CRS84,
               EPSG3006: EPSG3006, "[EPSG:3006]": EPSG3006, "EPSG:3006": EPSG3006}
COLLECTIONS = ("deviations", "places")
# Query parameters each request understands; anything else is refused, as Part 1 asks, so a misspelt filter
# is not silently ignored. Queryables are accepted as parameters too (`?status=new`).
ITEMS_PARAMETERS = {"bbox", "bbox-crs", "datetime", "limit", "crs", "filter", "filter-lang", "filter-crs",
                    "cursor", "f"}
ITEM_PARAMETERS = {"crs", "f"}
PLAIN_PARAMETERS = {"f"}


def timestamp(value: dt.datetime | None) -> str | None:
    """UTC, to the millisecond: what GDAL and QGIS keep, so a time read through them compares equal."""
    if value is None:
        return None
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.astimezone(dt.UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": media_type}
    if title:
        link["title"] = title
    return link


def check_parameters(params: Iterable[str], allowed: set[str], extra: Iterable[str] = ()) -> None:
    known = allowed | set(extra)
    for name in params:
        if name not in known:
            raise InvalidInput(_("Unknown query parameter: %(name)s. This request takes: %(known)s.") % {
                "name": name[:60], "known": ", ".join(sorted(known))}, field=name[:60])


def check_format(value: str | None) -> None:
    if value not in (None, "", "json", "geojson", "application/json", GEOJSON):
        raise InvalidInput(_("Only JSON is offered (f=json)."), field="f")


def parse_crs(value: str | None, field: str) -> str:
    if value is None or value == "":
        return CRS84
    crs = CRS_ALIASES.get(value.strip())
    if crs is None:
        raise InvalidInput(_("%(field)s must be one of %(known)s.") % {"field": field, "known": ", ".join(CRS_LIST)},
                           field=field)
    return crs


# --- Landing page, conformance, collections ----------------------------------------------------------------

def landing_page(forum: Forum, base: str) -> dict[str, Any]:
    return {
        "title": _("Lägesbild: %(forum)s") % {"forum": forum.name},
        "description": _("The deviations and places of the safety forum %(forum)s, as OGC API Features.") % {
            "forum": forum.name},
        "links": [
            link(base, "self", JSON, _("This page")),
            link(f"{base}/api", "service-desc", OPENAPI, _("This service's OpenAPI description")),
            link(f"{base}/conformance", "conformance", JSON, _("Standards this service conforms to")),
            link(f"{base}/collections", "data", JSON, _("Collections")),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


def collections(membership: Membership, base: str) -> dict[str, Any]:
    return {
        "links": [link(f"{base}/collections", "self", JSON)],
        "collections": [collection(membership, name, base) for name in COLLECTIONS],
        "crs": CRS_LIST,
    }


def collection(membership: Membership, name: str, base: str) -> dict[str, Any]:
    forum = membership.forum
    here = f"{base}/collections/{name}"
    if name == "deviations":
        title, description = _("Deviations"), _("Every deviation you may see, newest first.")
        first = deviations.visible_deviations(membership).aggregate(first=Min("observed_at"))["first"]
    elif name == "places":
        title, description = _("Places"), _("The forum's places, where problems recur and actions follow up.")
        first = None
    else:
        raise no_such_collection()
    bounds = geometry.area_bounds(forum.area) or SWEDEN
    return {
        "id": name,
        "title": title,
        "description": description,
        "itemType": "feature",
        "extent": {
            "spatial": {"bbox": [list(bounds)], "crs": CRS84},
            "temporal": {"interval": [[timestamp(first), None]],
                         "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
        },
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "links": [
            link(here, "self", JSON, title),
            link(f"{here}/items", "items", GEOJSON, title),
            link(f"{here}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables", SCHEMA_JSON,
                  _("What filters can use")),
            # The draft's name for the same link: GDAL up to 3.12 (and so QGIS) looks only for it, and without
            # it filters every page on the client instead of sending the filter.
            link(f"{here}/queryables", "queryables", JSON, _("What filters can use")),
        ],
    }


SWEDEN = (10.0, 55.0, 24.2, 69.1)  # an area-less forum's extent


def openapi_document(forum: Forum, base: str) -> dict[str, Any]:
    """The service description, with paths relative to the landing page as OGC API Features lays them out.

    GIS clients read it to learn the page size and the filter languages: GDAL (and so QGIS) looks for
    `/collections/{collectionId}/items` and sends its filters in CQL2 text only when `filter-lang` lists
    `cql-text`, the draft's name, which is accepted as a synonym of `cql2-text`.
    """
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    def path(name: str, description: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "description": description,
                "schema": {"type": "string"}}

    def answer(media_type: str, description: str) -> dict[str, Any]:
        return {"200": {"description": description, "content": {media_type: {"schema": {"type": "object"}}}},
                "400": {"description": _("A parameter that cannot be used")},
                "401": {"description": _("Not signed in and no valid token")},
                "404": {"description": _("No such forum, collection or item")}}

    collection_id = path("collectionId", _("deviations or places"))
    fmt = query("f", _("json, the only format"), {"type": "string", "enum": ["json"]})
    crs = query("crs", _("Coordinate system of the answer"), {"type": "string", "enum": CRS_LIST})
    return {
        "openapi": "3.0.3",
        "info": {"title": _("Lägesbild: %(forum)s") % {"forum": forum.name}, "version": "1.0"},
        "servers": [{"url": base}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/": {"get": {"summary": _("Landing page"), "parameters": [fmt], "responses": answer(JSON, "")}},
            "/conformance": {"get": {"summary": _("Conformance"), "parameters": [fmt],
                                     "responses": answer(JSON, "")}},
            "/collections": {"get": {"summary": _("Collections"), "parameters": [fmt],
                                     "responses": answer(JSON, "")}},
            "/collections/{collectionId}": {"get": {"summary": _("One collection"),
                                                    "parameters": [collection_id, fmt],
                                                    "responses": answer(JSON, "")}},
            "/collections/{collectionId}/queryables": {"get": {
                "summary": _("What filters can use"), "parameters": [collection_id, fmt],
                "responses": answer(SCHEMA_JSON, "")}},
            "/collections/{collectionId}/items": {"get": {
                "summary": _("Items, newest first"),
                "parameters": [
                    collection_id,
                    query("limit", _("Page size"), {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                                   "default": DEFAULT_LIMIT}),
                    query("bbox", _("minx,miny,maxx,maxy in bbox-crs's axis order"),
                          {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
                    query("bbox-crs", _("Coordinate system of bbox"), {"type": "string", "enum": CRS_LIST}),
                    query("datetime", _("An instant, or an interval start/end with .. for an open end"),
                          {"type": "string"}),
                    crs,
                    query("filter", _("A CQL2 filter"), {"type": "string"}),
                    query("filter-lang", _("The filter's language"),
                          {"type": "string", "enum": FILTER_LANGUAGES, "default": "cql2-text"}),
                    query("filter-crs", _("Coordinate system of the filter's geometries"),
                          {"type": "string", "enum": CRS_LIST}),
                    query("cursor", _("From the previous page's next link"), {"type": "string"}),
                    fmt,
                ],
                "responses": answer(GEOJSON, _("A page of features"))}},
            "/collections/{collectionId}/items/{featureId}": {"get": {
                "summary": _("One item"), "parameters": [collection_id, path("featureId", _("Its id")), crs, fmt],
                "responses": answer(GEOJSON, _("The feature"))}},
        },
    }


FILTER_LANGUAGES = ["cql2-text", "cql2-json", "cql-text"]


# --- Queryables ---------------------------------------------------------------------------------------------

POINT = cql.Geometry(name="geometry", lon="lon", lat="lat", easting="sweref_x", northing="sweref_y",
                     extent=("shape_min_lon", "shape_min_lat", "shape_max_lon", "shape_max_lat"))


def deviation_queryables(forum: Forum) -> dict[str, Queryable]:
    keys = sorted({c.key for c in deviations.forum_categories(forum)})

    def main_category(key: str) -> Q:
        return Q(category__parent__key=key) | Q(category__parent__isnull=True, category__key=key)

    return {q.name: q for q in [
        Queryable("id", "id", cql.INTEGER, _("Id")),
        Queryable("category", "category__key", cql.CHOICE, _("Category (its key)"), keys),
        Queryable("parentCategory", "category__key", cql.CHOICE, _("Main category (its key)"), keys,
                  condition=main_category),
        Queryable("observedAt", "observed_at", cql.TIMESTAMP, _("Observed")),
        Queryable("observedUntil", "observed_until", cql.TIMESTAMP, _("Observed until"), nullable=True),
        Queryable("reportedAt", "reported_at", cql.TIMESTAMP, _("Reported")),
        Queryable("status", "status", cql.CHOICE, _("Status"), Deviation.Status.values),
        Queryable("severity", "severity", cql.CHOICE, _("Severity"), Deviation.Severity.values),
        Queryable("visibility", "visibility", cql.CHOICE, _("Visibility"), Deviation.Visibility.values),
        Queryable("source", "source", cql.CHOICE, _("Source"), Deviation.Source.values),
        Queryable("organisation", "organisation_id", cql.INTEGER, _("Reporting organisation (its id)")),
        Queryable("organisationName", "organisation__name", cql.TEXT, _("Reporting organisation")),
        Queryable("placeName", "place_name", cql.TEXT, _("Place or address")),
        Queryable("description", "description", cql.TEXT, _("Description")),
    ]}


def place_queryables() -> dict[str, Queryable]:
    return {q.name: q for q in [
        Queryable("id", "id", cql.INTEGER, _("Id")),
        Queryable("name", "name", cql.TEXT, _("Name")),
        Queryable("shape", "shape", cql.CHOICE, _("Shape"), Place.Shape.values),
        Queryable("radius", "radius_m", cql.INTEGER, _("Radius (metres)"), nullable=True),
    ]}


def queryables_of(forum: Forum, name: str) -> dict[str, Queryable]:
    if name == "deviations":
        return deviation_queryables(forum)
    if name == "places":
        return place_queryables()
    raise no_such_collection()


def no_such_collection() -> NotFound:
    return NotFound(_("No such collection. There are: %(known)s.") % {"known": ", ".join(COLLECTIONS)})


def queryables_schema(forum: Forum, name: str, here: str) -> dict[str, Any]:
    """Part 3's queryables: a JSON Schema of what a filter may name."""
    properties: dict[str, Any] = {}
    for queryable in queryables_of(forum, name).values():
        schema: dict[str, Any] = {"title": queryable.title}
        if queryable.kind == cql.INTEGER:
            schema["type"] = "integer"
        elif queryable.kind == cql.TIMESTAMP:
            schema.update(type="string", format="date-time")
        else:
            schema["type"] = "string"
            if queryable.choices:
                schema["enum"] = list(queryable.choices)
        if queryable.nullable:
            schema["type"] = [schema["type"], "null"]
        properties[queryable.name] = schema
    if name == "deviations":
        properties["geometry"] = {"title": _("Position"), "format": "geometry-any",
                                  "x-ogc-role": "primary-geometry"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": here, "type": "object",
            "title": _("What filters can use"), "properties": properties, "additionalProperties": False,
            # The draft's list of the same names, which GDAL up to 3.12 reads instead of `properties`.
            "queryables": [{"id": key} for key in properties if key != "geometry"]}


# --- Items --------------------------------------------------------------------------------------------------

ID = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits only: str.isdigit() takes "²", which int() does not
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass
class ItemsQuery:
    limit: int = DEFAULT_LIMIT
    crs: str = CRS84
    bbox: tuple[float, ...] | None = None
    bbox_crs: str = CRS84
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    condition: Q | None = None
    cursor: str | None = None


def items_query(forum: Forum, name: str, params: Mapping[str, str], names: Iterable[str]) -> ItemsQuery:
    """The items request's parameters, each checked, with the filter turned into a condition."""
    queryables = queryables_of(forum, name)
    check_parameters(names, ITEMS_PARAMETERS, queryables)
    check_format(params.get("f"))
    query = ItemsQuery(crs=parse_crs(params.get("crs"), "crs"), cursor=params.get("cursor") or None)
    if params.get("limit") not in (None, ""):
        limit = inputs.parse_int(params["limit"], "limit", minimum=1)
        query.limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    query.bbox_crs = parse_crs(params.get("bbox-crs"), "bbox-crs")
    if params.get("bbox"):
        query.bbox = parse_bbox(params["bbox"], query.bbox_crs)
    elif params.get("bbox-crs"):
        raise InvalidInput(_("bbox-crs needs a bbox."), field="bbox-crs")
    if params.get("datetime"):
        query.start, query.end = parse_datetime(params["datetime"], forum.timezone)
    context = cql.Context(queryables=queryables, geometry=POINT if name == "deviations" else None,
                          timezone=forum.timezone, filter_crs=parse_crs(params.get("filter-crs"), "filter-crs"))
    conditions = []
    if params.get("filter") is not None:
        conditions.append(cql.to_condition(cql.parse(params["filter"], params.get("filter-lang")), context))
    elif params.get("filter-lang") or params.get("filter-crs"):
        raise InvalidInput(_("filter-lang and filter-crs need a filter."), field="filter")
    for key in queryables:
        if key in params:
            try:
                conditions.append(cql.to_condition(_equals(queryables[key], params[key]), context))
            except InvalidInput as exc:
                raise InvalidInput(exc.message, field=key) from exc
    for condition in conditions:
        query.condition = condition if query.condition is None else query.condition & condition
    return query


def _equals(queryable: Queryable, text: str) -> dict[str, Any]:
    """`?status=new` as the filter status = 'new'."""
    value: Any = text
    if queryable.kind == cql.INTEGER:
        value = inputs.parse_int(text, queryable.name)
    elif queryable.kind == cql.TIMESTAMP:
        value = {"date": text} if len(text) == 10 else {"timestamp": text}
    return {"op": "=", "args": [{"property": queryable.name}, value]}


def parse_bbox(text: str, crs: str) -> tuple[float, ...]:
    parts = text.split(",")
    numbers = [float(p) for p in parts] if all(NUMBER.fullmatch(p.strip()) for p in parts) else []
    if len(numbers) not in (4, 6) or not all(abs(n) < 1e9 for n in numbers):
        raise InvalidInput(_("bbox must be four numbers (or six, with heights) in the order of bbox-crs's axes."),
                           field="bbox")
    box = (numbers[0], numbers[1], numbers[3], numbers[4]) if len(numbers) == 6 else tuple(numbers)
    if crs == CRS84:
        return geometry.parse_bbox(",".join(repr(n) for n in box))
    if box[0] > box[2] or box[1] > box[3]:
        raise InvalidInput(_("bbox minimum must not be greater than its maximum."), field="bbox")
    return box


def parse_datetime(text: str, timezone: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """An instant, or an interval 'start/end' with '..' (or nothing) for an open end; a date is its whole day."""
    parts = text.split("/")
    if len(parts) > 2 or (len(parts) == 2 and all(p.strip() in ("", "..") for p in parts)):
        raise InvalidInput(_("datetime is a time or an interval start/end."), field="datetime")
    if len(parts) == 1:
        start, end = _moment(parts[0], timezone, first=True), _moment(parts[0], timezone, first=False)
        if start is None:
            raise InvalidInput(_("datetime is a time or an interval start/end."), field="datetime")
        return start, end
    start, end = _moment(parts[0], timezone, first=True), _moment(parts[1], timezone, first=False)
    if start and end and start > end:
        raise InvalidInput(_("The start of the period is after its end."), field="datetime")
    return start, end


def _moment(text: str, timezone: str, first: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if DATE.fullmatch(text):
            day = inputs.check_date(dt.date.fromisoformat(text), "datetime")
            moment = dt.datetime.combine(day, dt.time(), ZoneInfo(timezone))
            if not first:
                moment = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), ZoneInfo(timezone)) \
                    - dt.timedelta(microseconds=1)
            return moment.astimezone(dt.UTC)
        return inputs.check_datetime(cql.parse_timestamp(text), "datetime")
    except ValueError:
        raise InvalidInput(_("datetime must be RFC 3339, e.g. 2026-03-01T00:00:00Z/.. (got %(value)s).") % {
            "value": text[:40]}, field="datetime") from None


@dataclass
class ItemsPage:
    features: list[dict[str, Any]]
    number_matched: int
    next_cursor: str | None


def deviation_items(membership: Membership, query: ItemsQuery) -> ItemsPage:
    """A page of the deviations the member may see, newest first; restricted ones on it are audited as read."""
    forum = membership.forum
    bbox = None
    if query.bbox is not None:
        bbox = query.bbox if query.bbox_crs == CRS84 else cql.bbox_to_wgs84(query.bbox, query.bbox_crs)
    flt = deviations.DeviationFilter(bbox=bbox, start=query.start, end=query.end)  # type: ignore[arg-type]
    queryset = deviations.apply_filter(deviations.visible_deviations(membership), forum, flt)
    if query.bbox is not None and query.bbox_crs == EPSG3006:
        min_n, min_e, max_n, max_e = query.bbox
        # Points exactly in SWEREF 99 TM; the few lines and areas in the box around it, by their shape.
        sweref_box = shapely.geometry.box(min_e, min_n, max_e, max_n)
        drawn = [pk for pk, shape in queryset.filter(shape_min_lon__isnull=False).values_list("pk", "shape")
                 if geometry.sweref99tm_shape(shapely.geometry.shape(shape)).intersects(sweref_box)]
        queryset = queryset.filter(Q(shape_min_lon__isnull=True, sweref_x__gte=min_e, sweref_x__lte=max_e,
                                     sweref_y__gte=min_n, sweref_y__lte=max_n) | Q(pk__in=drawn))
    if query.condition is not None:
        queryset = queryset.filter(query.condition)
    number_matched = queryset.count()
    ordered = queryset.order_by("-observed_at", "-id")
    if query.cursor:
        after_time, after_id = deviations.decode_cursor(query.cursor)
        ordered = ordered.filter(Q(observed_at__lt=after_time) | Q(observed_at=after_time, id__lt=after_id))
    rows = list(ordered.values_list(*DEVIATION_FIELDS)[: query.limit + 1])
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        next_cursor = deviations.encode_cursor(rows[-1][7], rows[-1][0])
    restricted = [row[0] for row in rows if row[12] != Deviation.Visibility.FORUM]
    if restricted:
        audit.record_reads(membership, "deviation", restricted, {"via": "OGC API Features"})
    names = _names(forum)
    return ItemsPage([_deviation_feature(row, query.crs, names) for row in rows], number_matched, next_cursor)


DEVIATION_FIELDS = ("id", "lon", "lat", "sweref_x", "sweref_y", "category__key", "category__parent__key",
                    "observed_at", "observed_until", "reported_at", "status", "severity", "visibility", "source",
                    "organisation_id", "place_name", "description", "shape")


def _names(forum: Forum) -> dict[str, dict[Any, str]]:
    return {
        "category": {c.key: c.name for c in deviations.forum_categories(forum)},
        "organisation": dict(Organisation.objects.filter(forum=forum).values_list("pk", "name")),
    }


def _deviation_feature(row: tuple[Any, ...], crs: str, names: dict[str, dict[Any, str]]) -> dict[str, Any]:
    (pk, lon, lat, x, y, key, parent, observed_at, observed_until, reported_at, status, severity, visibility,
     source, organisation, place_name, description, drawn) = row
    coordinates = [round(lon, 7), round(lat, 7)] if crs == CRS84 else [round(y, 3), round(x, 3)]
    geom = {"type": "Point", "coordinates": coordinates}
    if drawn:  # a line or area, in the CRS asked for
        geom = drawn if crs == CRS84 else {"type": drawn["type"], "coordinates": _in_sweref(drawn["coordinates"])}
    return {
        "type": "Feature",
        "id": pk,
        "geometry": geom,
        "properties": {
            "id": pk,
            "category": key,
            "categoryName": names["category"].get(key, key),
            "parentCategory": parent or key,
            "observedAt": timestamp(observed_at),
            "observedUntil": timestamp(observed_until),
            "reportedAt": timestamp(reported_at),
            "status": status,
            "severity": severity,
            "visibility": visibility,
            "source": source,
            "organisation": organisation,
            "organisationName": names["organisation"].get(organisation, ""),
            "placeName": place_name,
            "description": description,
        },
    }


def deviation_item(membership: Membership, deviation_id: int, crs: str) -> dict[str, Any]:
    """One deviation; a restricted one is audited as read (`read_deviation`)."""
    deviation = deviations.read_deviation(membership, deviation_id)
    row = deviations.visible_deviations(membership).filter(pk=deviation.pk).values_list(*DEVIATION_FIELDS).get()
    return _deviation_feature(row, crs, _names(membership.forum))


def place_items(membership: Membership, query: ItemsQuery) -> ItemsPage:
    """The forum's places, in the order they were made; a box selects those whose extent meets it."""
    queryset: QuerySet[Place] = places.forum_places(membership)
    if query.bbox is not None:
        west, south, east, north = (query.bbox if query.bbox_crs == CRS84
                                    else cql.bbox_to_wgs84(query.bbox, query.bbox_crs))
        queryset = queryset.filter(max_lon__gte=west, min_lon__lte=east, max_lat__gte=south, min_lat__lte=north)
    if query.start or query.end:
        raise InvalidInput(_("Places have no time; leave out datetime."), field="datetime")
    if query.condition is not None:
        queryset = queryset.filter(query.condition)
    number_matched = queryset.count()
    ordered = queryset.order_by("id")
    if query.cursor:
        after = inputs.parse_id(query.cursor, "cursor")
        ordered = ordered.filter(id__gt=after)
    rows = list(ordered[: query.limit + 1])
    next_cursor = str(rows[query.limit - 1].pk) if len(rows) > query.limit else None
    return ItemsPage([place_feature(place, query.crs) for place in rows[: query.limit]], number_matched,
                     next_cursor)


def place_feature(place: Place, crs: str) -> dict[str, Any]:
    outline = places.outline(place)
    if crs == EPSG3006:
        outline = {"type": outline["type"], "coordinates": _in_sweref(outline["coordinates"])}
    return {"type": "Feature", "id": place.pk, "geometry": outline,
            "properties": {"id": place.pk, "name": place.name, "description": place.description,
                           "shape": place.shape, "radius": place.radius_m}}


def _in_sweref(coordinates: list[Any]) -> list[Any]:
    """GeoJSON coordinates (of a ring, polygon or multipolygon) in SWEREF 99 TM, northing first."""
    if coordinates and isinstance(coordinates[0], (int, float)):
        easting, northing = geometry.to_sweref99tm(coordinates[0], coordinates[1])
        return [northing, easting]
    return [_in_sweref(part) for part in coordinates]


def place_item(membership: Membership, place_id: int, crs: str) -> dict[str, Any]:
    return place_feature(places.get_place(membership, place_id), crs)

