"""API: the member's saved views and their alerts (the same as the page Sparade vyer)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from lagesbild.alerts import services
from lagesbild.alerts.models import SavedView
from lagesbild.api import Id, answers, member, openapi_body, parse_json_body

router = Router(tags=["saved views"])


class SavedViewIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description=f"At most {services.MAX_NAME} characters, unique among your views")
    query: str = Field("", description="The map's filter as its query string: period, from, to, category, "
                                       "organisation, status, q (anything else is dropped)")
    bbox: str = Field("", description="minLon,minLat,maxLon,maxLat of the view's area; empty for the whole forum")
    frequency: str = Field(SavedView.Frequency.NONE, description="Alerts about new matching deviations: "
                                                                 "none, immediate or daily")
    email: bool = Field(False, description="Alerts by e-mail too (needs a frequency)")


class AlertsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    frequency: str = Field(description="none, immediate or daily")
    email: bool = False


class SavedViewOut(Schema):
    id: int
    name: str
    query: str
    bbox: list[float] | None
    frequency: str
    email: bool
    description: str = Field(description="The filter in words")
    mapUrl: str = Field(description="The map page at the view's filter and area")
    stale: str = Field(description="Why the view no longer matches anything, or empty")


class AlertDeviationOut(Schema):
    id: int
    category: str
    placeName: str
    observedAt: str
    organisation: str


class AlertOut(Schema):
    id: int
    savedView: int
    savedViewName: str
    createdAt: str
    read: bool
    deviation: AlertDeviationOut


def _view(view: SavedView) -> dict[str, Any]:
    return {"id": view.pk, "name": view.name, "query": view.query, "bbox": view.bbox, "frequency": view.frequency,
            "email": view.email, "description": services.describe(view), "mapUrl": services.map_address(view),
            "stale": services.stale(view)}


@router.get("/{forum}/saved-views", response=answers(list[SavedViewOut]), summary="Your saved views")
def list_views(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return [_view(view) for view in services.views_of(membership)]


@router.post("/{forum}/saved-views", response=answers(SavedViewOut, 201), summary="Save a filter of the map",
             openapi_extra=openapi_body(SavedViewIn))
def create_view(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, SavedViewIn)
    view = services.save_view(membership, services.ViewInput(
        name=payload.name, query=payload.query, bbox=payload.bbox, frequency=payload.frequency, email=payload.email))
    return Status(201, _view(view))


@router.patch("/{forum}/saved-views/{view_id}", response=answers(SavedViewOut),
              summary="Change how a saved view alerts you", openapi_extra=openapi_body(AlertsIn))
def change_view(request: HttpRequest, forum: str, view_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, AlertsIn)
    return _view(services.change_alerts(membership, view_id, payload.frequency, payload.email))


@router.delete("/{forum}/saved-views/{view_id}", response=answers(None, 204), summary="Remove a saved view")
def delete_view(request: HttpRequest, forum: str, view_id: Id) -> Status[None]:
    membership = member(request, forum)
    services.delete_view(membership, view_id)
    return Status(204, None)


@router.get("/{forum}/alerts", response=answers(list[AlertOut]),
            summary="Your newest alerts: new deviations that matched your saved views and that you may see")
def list_alerts(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return [_alert(shown) for shown in services.alerts_of(membership)]


def _alert(shown: services.Shown) -> dict[str, Any]:
    alert, deviation = shown.alert, shown.deviation
    return {"id": alert.pk, "savedView": alert.saved_view_id, "savedViewName": alert.saved_view.name,
            "createdAt": alert.created_at.isoformat(), "read": alert.read_at is not None,
            "deviation": {"id": deviation.pk, "category": deviation.category.name, "placeName": deviation.place_name,
                          "observedAt": deviation.observed_at.isoformat(), "organisation": deviation.organisation.name}}


@router.post("/{forum}/alerts/read", response=answers(None, 204), summary="Mark all your alerts as read")
def read_alerts(request: HttpRequest, forum: str) -> Status[None]:
    membership = member(request, forum)
    services.mark_read(membership)
    return Status(204, None)
