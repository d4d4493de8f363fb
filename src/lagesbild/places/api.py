"""API: places as GeoJSON, their history by month, and suggested new places."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from lagesbild.api import Id, Lat, Lon, NonNegativeInt, PolygonGeometry, answers, member, openapi_body, parse_json_body
from lagesbild.deviations import services as deviations
from lagesbild.places import search as place_search
from lagesbild.places import services

router = Router(tags=["places"])


class PlaceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    lon: Lon | None = Field(None, description="Centre of a point-with-radius place")
    lat: Lat | None = None
    radius_m: NonNegativeInt | None = Field(None, description=f"{services.MIN_RADIUS} to {services.MAX_RADIUS} metres")
    area: dict[str, Any] | None = Field(None, description="A GeoJSON Polygon (at most 1,000 corners), instead of a "
                                                          "point and radius")


class PlaceProperties(Schema):
    id: int
    name: str
    shape: str = Field(description="circle or polygon")
    radius_m: int | None
    centre: list[float]
    bbox: list[float]


class PlaceFeature(Schema):
    type: str = Field(description="Feature")
    id: int
    geometry: PolygonGeometry = Field(description="The place's outline (a circle drawn as a polygon)")
    properties: PlaceProperties


class PlaceCollectionOut(Schema):
    type: str = Field(description="FeatureCollection")
    features: list[PlaceFeature]


class MonthRow(Schema):
    category: str
    name: str
    counts: list[int]
    total: int


class PlaceDetailProperties(PlaceProperties):
    description: str
    months: list[str] = Field(description="YYYY-MM, oldest first")
    byCategory: list[MonthRow]


class PlaceDetailOut(Schema):
    type: str
    id: int
    geometry: PolygonGeometry
    properties: PlaceDetailProperties


class SuggestedCategory(Schema):
    name: str
    count: int


class SuggestionOut(Schema):
    lon: float
    lat: float
    radius_m: int
    count: int
    weeks: int
    nameHint: str
    categories: list[SuggestedCategory]
    first: dt.datetime | None
    last: dt.datetime | None


def _input(payload: PlaceIn) -> services.PlaceInput:
    return services.PlaceInput(name=payload.name, description=payload.description, lon=payload.lon,
                               lat=payload.lat, radius_m=payload.radius_m, area=payload.area)


@router.get("/{forum}/places", response=answers(PlaceCollectionOut),
            summary="The forum's places as a GeoJSON FeatureCollection")
def list_places(request: HttpRequest, forum: str) -> dict[str, Any]:
    membership = member(request, forum)
    return {"type": "FeatureCollection",
            "features": [services.as_feature(p) for p in services.forum_places(membership)]}


@router.post("/{forum}/places", response=answers(PlaceFeature, 201), summary="Create a place (coordinators)",
             openapi_extra=openapi_body(PlaceIn))
def create_place(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    place = services.create_place(membership, _input(parse_json_body(request, PlaceIn)))
    return Status(201, services.as_feature(place))


class SuggestionQuery(Schema):
    radius_m: NonNegativeInt = Field(150, description="Deviations within this many metres form a cluster")
    days: NonNegativeInt = Field(90, description="Look back this many days (7 to 730)")
    min_count: NonNegativeInt = Field(5, description="At least this many deviations")
    min_weeks: NonNegativeInt = Field(3, description="In at least this many different weeks")
    limit: int = Field(10, ge=1, le=50, description="At most this many, densest first (1 to 50)")


@router.get("/{forum}/places/suggestions", response=answers(list[SuggestionOut]),
            summary="Where deviations recur with no place drawn yet, from what you may see")
def suggestions(request: HttpRequest, forum: str, params: Query[SuggestionQuery]) -> list[dict[str, Any]]:
    membership = member(request, forum)
    found = services.suggest_places(membership, deviations.visible_deviations(membership), radius_m=params.radius_m,
                                    days=params.days, min_count=params.min_count, min_weeks=params.min_weeks,
                                    limit=params.limit)
    return [{"lon": s.lon, "lat": s.lat, "radius_m": s.radius_m, "count": s.count, "weeks": s.weeks,
             "nameHint": s.name_hint, "categories": [{"name": n, "count": c} for n, c in s.categories],
             "first": s.first, "last": s.last} for s in found]


class SearchQuery(Schema):
    q: str = Field(max_length=1000, description=f"What to look for ({place_search.MIN_QUERY} to "
                                                f"{place_search.MAX_QUERY} characters)")
    addresses: bool = Field(False, description="Also ask the configured geocoder for addresses (one request; "
                                               "not for search-as-you-type)")


class SearchResultOut(Schema):
    kind: str = Field(description="place (a forum place), placeName (deviations' place names) or address")
    label: str
    lon: float
    lat: float
    bbox: list[float] | None = Field(description="minLon, minLat, maxLon, maxLat, where known")
    count: int | None = Field(description="For placeName: how many deviations you may see carry it")
    placeId: int | None


class SearchOut(Schema):
    results: list[SearchResultOut]
    addresses: str = Field(description="off (no geocoder configured), notAsked, ok or unavailable")


@router.get("/{forum}/search", response=answers(SearchOut),
            summary="Search the map: places, place names of deviations you may see, and addresses")
def search(request: HttpRequest, forum: str, params: Query[SearchQuery]) -> dict[str, Any]:
    membership = member(request, forum)
    answer = place_search.search(membership, deviations.visible_deviations(membership), params.q,
                                 addresses=params.addresses)
    return {"addresses": answer.addresses,
            "results": [{"kind": f.kind, "label": f.label, "lon": f.lon, "lat": f.lat,
                         "bbox": list(f.bbox) if f.bbox else None, "count": f.count, "placeId": f.place_id}
                        for f in answer.results]}


@router.get("/{forum}/places/{place_id}", response=answers(PlaceDetailOut),
            summary="A place, with its deviations per category and month (from what you may see)")
def get_place(request: HttpRequest, forum: str, place_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    place = services.get_place(membership, place_id)
    table = services.counts_by_month(place, deviations.visible_deviations(membership))
    feature = services.as_feature(place)
    feature["properties"]["description"] = place.description
    feature["properties"]["months"] = table.months
    feature["properties"]["byCategory"] = [{"category": key, "name": name, "counts": counts, "total": total}
                                           for key, name, counts, total in table.rows]
    return feature


@router.patch("/{forum}/places/{place_id}", response=answers(PlaceFeature), summary="Change a place (coordinators)",
              openapi_extra=openapi_body(PlaceIn))
def patch_place(request: HttpRequest, forum: str, place_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    return services.as_feature(services.update_place(membership, place_id, _input(parse_json_body(request, PlaceIn))))


@router.delete("/{forum}/places/{place_id}", response=answers(None, 204), summary="Delete a place (coordinators)")
def delete_place(request: HttpRequest, forum: str, place_id: Id) -> Status[None]:
    membership = member(request, forum)
    services.delete_place(membership, place_id)
    return Status(204, None)
