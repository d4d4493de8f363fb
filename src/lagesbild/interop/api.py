"""API: the map's filter exported as CSV, XLSX, GeoJSON or GeoPackage; OGC API Features for GIS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router

from lagesbild import data_version
from lagesbild.api import NonNegativeInt, answers, member
from lagesbild.deviations.api import FilterQuery, filter_of
from lagesbild.errors import InvalidInput, InvalidParameter, NotFound
from lagesbild.forums.models import Membership
from lagesbild.interop import export, features, tiles
from lagesbild.middleware import REVALIDATED

router = Router(tags=["export"])


class ExportQuery(FilterQuery):
    format: str = Field("csv", description="csv (Swedish Excel: UTF-8 with BOM, semicolons, decimal commas), "
                                           "xlsx, geojson or gpkg (GeoPackage)")
    crs: int = Field(4326, ge=0, le=99999, description="4326 (WGS 84 longitude, latitude) or 3006 "
                                                        "(SWEREF 99 TM easting, northing in metres)")


class TileQuery(FilterQuery):
    hexagons: bool = Field(False, description="Hexagons with counts at every zoom, never points (a hexagon layer)")


@router.get("/{forum}/export", summary="The deviations of the filter that you may see, as a file (audited)",
            response=answers(None),
            openapi_extra={"responses": {200: {"description": "The file", "content": {
                content_type: {"schema": {"type": "string", "format": "binary"}}
                for content_type in export.CONTENT_TYPES.values()}}}})
def export_deviations(request: HttpRequest, forum: str, params: Query[ExportQuery]
                      ) -> StreamingHttpResponse | FileResponse:
    membership = member(request, forum)
    result = export.export_deviations(membership, filter_of(params, membership.forum, membership), params.format,
                                      params.crs)
    response: StreamingHttpResponse | FileResponse
    if result.file is not None:
        response = FileResponse(result.file, content_type=result.content_type, as_attachment=True,
                                filename=result.filename)
    else:
        assert result.chunks is not None
        response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
        response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response["X-Total-Count"] = str(result.count)
    return response


@router.get("/{forum}/tiles/WebMercatorQuad/{z}/{x}/{y}", response=answers(None),
            summary="A vector tile (MVT) of the filter: hexagons with counts, points from zoom 13",
            openapi_extra={"responses": {200: {"description": "The tile (empty when nothing is in it)",
                                               "content": {tiles.MEDIA_TYPE: {"schema": {"type": "string",
                                                                                          "format": "binary"}}}},
                                         304: {"description": "Not modified since the ETag sent"}}})
def vector_tile(request: HttpRequest, forum: str, z: NonNegativeInt, x: NonNegativeInt, y: NonNegativeInt,
                params: Query[TileQuery]
                ) -> HttpResponse:
    membership = member(request, forum)
    tile = tiles.Tile(z, x, y)
    flt = filter_of(params, membership.forum, membership)
    data, tag = tiles.tile_for(membership, flt, tile, hexagons=params.hexagons)
    if data_version.has_current(request.headers.get("If-None-Match", ""), tag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(data, content_type=tiles.MEDIA_TYPE)
    response["ETag"] = tag
    # Revalidated on every use: cheap while the forum's data has not moved (the tile is kept), never stale.
    response["Cache-Control"] = REVALIDATED
    response["Vary"] = "Cookie, Authorization"
    return response


# --- OGC API Features ---------------------------------------------------------------------------------------
# Thin: each endpoint checks its parameters, asks `features`, and answers JSON with the headers Part 2 asks for.

ogc = Router(tags=["OGC API Features"])


def _base(request: HttpRequest, forum: str) -> str:
    return request.build_absolute_uri(reverse("api:ogc-landing", kwargs={"forum": forum}))


def _json(body: dict[str, Any], content_type: str = features.JSON, crs: str | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), content_type=content_type)
    if crs:
        response["Content-Crs"] = f"<{crs}>"
    return response


@contextlib.contextmanager
def _parameters_checked() -> Iterator[None]:
    """OGC API Features answers a parameter it cannot use with 400 (the rest of the API says 422)."""
    try:
        yield
    except InvalidParameter:
        raise
    except InvalidInput as exc:
        raise InvalidParameter(exc.message, field=exc.field) from exc


def _parameters(*specs: tuple[str, str, dict[str, Any]], answers_in: tuple[str, ...] = ()) -> dict[str, Any]:
    """openapi_extra: the query parameters read from request.GET, and the media types of the 200 answer."""
    extra: dict[str, Any] = {"parameters": [{"name": name, "in": "query", "required": False,
                                             "description": description, "schema": schema}
                                            for name, description, schema in specs]}
    if answers_in:
        # "200" as text replaces ninja's own 200 (an integer) in the document served: so the description again.
        extra["responses"] = {"200": {"description": "OK", "content": {media_type: {"schema": {"type": "object"}}
                                                                       for media_type in answers_in}}}
    return extra


def _reader(request: HttpRequest, forum: str) -> Membership:
    """The member asking, for a request that takes no parameters but `f`."""
    membership = member(request, forum)
    with _parameters_checked():
        features.check_parameters(request.GET, features.PLAIN_PARAMETERS)
        features.check_format(request.GET.get("f"))
    return membership


FORMAT = ("f", "json (the only format)", {"type": "string", "enum": ["json"]})
CRS = ("crs", "Coordinate system of the answer: CRS84 (the default) or EPSG:3006 (northing, easting)",
       {"type": "string", "enum": features.CRS_LIST})


@ogc.get("/{forum}/ogc", url_name="ogc-landing", summary="OGC API Features: landing page",
         response=answers(dict[str, Any]), openapi_extra=_parameters(FORMAT))
def ogc_landing(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _reader(request, forum)
    return _json(features.landing_page(membership.forum, _base(request, forum)))


@ogc.get("/{forum}/ogc/", include_in_schema=False)
def ogc_landing_with_slash(request: HttpRequest, forum: str) -> HttpResponse:
    """The landing page also where a person typing the address ends it with a slash."""
    return ogc_landing(request, forum)


@ogc.get("/{forum}/ogc/api", summary="OGC API Features: the service's own OpenAPI description",
         response=answers(dict[str, Any]), openapi_extra=_parameters(FORMAT, answers_in=(features.OPENAPI,)))
def ogc_openapi(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _reader(request, forum)
    return _json(features.openapi_document(membership.forum, _base(request, forum)), features.OPENAPI)


@ogc.get("/{forum}/ogc/conformance", summary="OGC API Features: the standards it conforms to",
         response=answers(dict[str, Any]), openapi_extra=_parameters(FORMAT))
def ogc_conformance(request: HttpRequest, forum: str) -> HttpResponse:
    _reader(request, forum)
    return _json(features.conformance())


@ogc.get("/{forum}/ogc/collections", summary="OGC API Features: collections",
         response=answers(dict[str, Any]), openapi_extra=_parameters(FORMAT))
def ogc_collections(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _reader(request, forum)
    return _json(features.collections(membership, _base(request, forum)))


@ogc.get("/{forum}/ogc/collections/{collection}", summary="OGC API Features: one collection",
         response=answers(dict[str, Any]), openapi_extra=_parameters(FORMAT))
def ogc_collection(request: HttpRequest, forum: str, collection: str) -> HttpResponse:
    membership = _reader(request, forum)
    return _json(features.collection(membership, collection, _base(request, forum)))


@ogc.get("/{forum}/ogc/collections/{collection}/queryables",
         summary="OGC API Features: what a filter may name, as JSON Schema",
         response=answers(dict[str, Any]),
         openapi_extra=_parameters(FORMAT, answers_in=(features.SCHEMA_JSON, features.JSON)))
def ogc_queryables(request: HttpRequest, forum: str, collection: str) -> HttpResponse:
    membership = _reader(request, forum)
    here = request.build_absolute_uri(request.path)
    # JSON Schema's own media type, unless the client asks for plain JSON only (as GDAL does).
    accept = request.headers.get("Accept", "")
    media_type = features.JSON if features.JSON in accept and features.SCHEMA_JSON not in accept \
        and "*/*" not in accept else features.SCHEMA_JSON
    return _json(features.queryables_schema(membership.forum, collection, here), media_type)


@ogc.get("/{forum}/ogc/collections/{collection}/items",
         summary="OGC API Features: items, newest first, with bbox, datetime, CQL2 filter and paging",
         response=answers(dict[str, Any]), openapi_extra=_parameters(
             ("bbox", "minx,miny,maxx,maxy in bbox-crs's axis order", {"type": "string"}),
             ("bbox-crs", "CRS84 (the default) or EPSG:3006", {"type": "string", "enum": features.CRS_LIST}),
             ("datetime", "An instant or an interval start/end, '..' for open (RFC 3339)", {"type": "string"}),
             ("limit", f"Page size, 1 to {features.MAX_LIMIT} (larger asks are cut to it)",
              {"type": "integer", "minimum": 1, "maximum": features.MAX_LIMIT, "default": features.DEFAULT_LIMIT}),
             CRS,
             ("filter", "A CQL2 filter, e.g. status = 'new' AND observedAt >= DATE('2026-03-01')",
              {"type": "string"}),
             ("filter-lang", "cql2-text (the default) or cql2-json",
              {"type": "string", "enum": ["cql2-text", "cql2-json"]}),
             ("filter-crs", "Coordinate system of the filter's geometries",
              {"type": "string", "enum": features.CRS_LIST}),
             ("cursor", "From the previous page's next link", {"type": "string"}),
             FORMAT, answers_in=(features.GEOJSON,)))
def ogc_items(request: HttpRequest, forum: str, collection: str) -> HttpResponse:
    membership = member(request, forum)
    params = {key: request.GET.get(key, "") for key in request.GET}
    with _parameters_checked():
        query = features.items_query(membership.forum, collection, params, request.GET)
        if collection == "deviations":
            page = features.deviation_items(membership, query)
        else:
            page = features.place_items(membership, query)
    here = request.build_absolute_uri(request.path)
    links = [features.link(request.build_absolute_uri(), "self", features.GEOJSON),
             features.link(here.rsplit("/items", 1)[0], "collection", features.JSON)]
    if page.next_cursor:
        kept = [(key, value) for key, values in request.GET.lists() for value in values if key != "cursor"]
        kept.append(("cursor", page.next_cursor))
        links.append(features.link(f"{here}?{urlencode(kept)}", "next", features.GEOJSON))
    body = {"type": "FeatureCollection", "features": page.features, "numberMatched": page.number_matched,
            "numberReturned": len(page.features), "timeStamp": features.timestamp(timezone.now()),
            "links": links}
    return _json(body, features.GEOJSON, query.crs)


@ogc.get("/{forum}/ogc/collections/{collection}/items/{feature}", summary="OGC API Features: one item",
         response=answers(dict[str, Any]), openapi_extra=_parameters(CRS, FORMAT, answers_in=(features.GEOJSON,)))
def ogc_item(request: HttpRequest, forum: str, collection: str, feature: str) -> HttpResponse:
    membership = member(request, forum)
    with _parameters_checked():
        features.check_parameters(request.GET, features.ITEM_PARAMETERS)
        features.check_format(request.GET.get("f"))
        crs = features.parse_crs(request.GET.get("crs"), "crs")
    if collection not in features.COLLECTIONS:
        raise features.no_such_collection()
    if not features.ID.fullmatch(feature):
        raise NotFound(_("No such feature."))
    pk = int(feature)
    if collection == "deviations":
        body = features.deviation_item(membership, pk, crs)
    else:
        body = features.place_item(membership, pk, crs)
    here = request.build_absolute_uri(request.path)
    body["links"] = [features.link(request.build_absolute_uri(), "self", features.GEOJSON),
                     features.link(here.rsplit("/items/", 1)[0], "collection", features.JSON)]
    return _json(body, features.GEOJSON, crs)

