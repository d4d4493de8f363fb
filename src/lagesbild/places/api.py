"""API: places as GeoJSON, their history by month, and suggested new places."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from lagesbild.api import member, openapi_body, parse_json_body
from lagesbild.deviations import services as deviations
from lagesbild.places import services

router = Router(tags=["places"])


class PlaceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    lon: float | None = Field(None, description="Centre of a point-with-radius place")
    lat: float | None = None
    radius_m: int | None = Field(None, description=f"{services.MIN_RADIUS} to {services.MAX_RADIUS} metres")
    area: dict[str, Any] | None = Field(None, description="A GeoJSON Polygon, instead of a point and radius")


def _input(payload: PlaceIn) -> services.PlaceInput:
    return services.PlaceInput(name=payload.name, description=payload.description, lon=payload.lon,
                               lat=payload.lat, radius_m=payload.radius_m, area=payload.area)


@router.get("/{forum}/places", response=dict[str, Any], summary="The forum's places as a GeoJSON FeatureCollection")
def list_places(request: HttpRequest, forum: str) -> dict[str, Any]:
    membership = member(request, forum)
    return {"type": "FeatureCollection",
            "features": [services.as_feature(p) for p in services.forum_places(membership)]}


@router.post("/{forum}/places", response={201: dict[str, Any]}, summary="Create a place (coordinators)",
             openapi_extra=openapi_body(PlaceIn))
def create_place(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    place = services.create_place(membership, _input(parse_json_body(request, PlaceIn)))
    return Status(201, services.as_feature(place))


class SuggestionQuery(Schema):
    radius_m: int = Field(150, description="Deviations within this many metres form a cluster")
    days: int = Field(90, description="Look back this many days")
    min_count: int = Field(5, description="At least this many deviations")
    min_weeks: int = Field(3, description="In at least this many different weeks")
    limit: int = Field(10, ge=1, le=50, description="At most this many, densest first (1 to 50)")


@router.get("/{forum}/places/suggestions", response=list[dict[str, Any]],
            summary="Where deviations recur with no place drawn yet, from what you may see")
def suggestions(request: HttpRequest, forum: str, params: Query[SuggestionQuery]) -> list[dict[str, Any]]:
    membership = member(request, forum)
    found = services.suggest_places(membership, deviations.visible_deviations(membership), radius_m=params.radius_m,
                                    days=params.days, min_count=params.min_count, min_weeks=params.min_weeks,
                                    limit=params.limit)
    return [{"lon": s.lon, "lat": s.lat, "radius_m": s.radius_m, "count": s.count, "weeks": s.weeks,
             "nameHint": s.name_hint, "categories": [{"name": n, "count": c} for n, c in s.categories],
             "first": s.first, "last": s.last} for s in found]


@router.get("/{forum}/places/{place_id}", response=dict[str, Any],
            summary="A place, with its deviations per category and month (from what you may see)")
def get_place(request: HttpRequest, forum: str, place_id: int) -> dict[str, Any]:
    membership = member(request, forum)
    place = services.get_place(membership, place_id)
    table = services.counts_by_month(place, deviations.visible_deviations(membership))
    feature = services.as_feature(place)
    feature["properties"]["description"] = place.description
    feature["properties"]["months"] = table.months
    feature["properties"]["byCategory"] = [{"category": key, "name": name, "counts": counts, "total": total}
                                           for key, name, counts, total in table.rows]
    return feature


@router.patch("/{forum}/places/{place_id}", response=dict[str, Any], summary="Change a place (coordinators)",
              openapi_extra=openapi_body(PlaceIn))
def patch_place(request: HttpRequest, forum: str, place_id: int) -> dict[str, Any]:
    membership = member(request, forum)
    return services.as_feature(services.update_place(membership, place_id, _input(parse_json_body(request, PlaceIn))))


@router.delete("/{forum}/places/{place_id}", response={204: None}, summary="Delete a place (coordinators)")
def delete_place(request: HttpRequest, forum: str, place_id: int) -> Status[None]:
    membership = member(request, forum)
    services.delete_place(membership, place_id)
    return Status(204, None)
