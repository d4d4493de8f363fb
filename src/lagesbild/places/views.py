"""Pages: the forum's places (with suggested new ones) and one place's page."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import basemap, geometry, staticmap
from lagesbild.deviations import services as deviations
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.inputs import loads_json, parse_float, parse_int
from lagesbild.meetings import actions as action_services
from lagesbild.meetings import effect
from lagesbild.meetings.models import Action, FollowUp
from lagesbild.pages import any_member, member_and
from lagesbild.places import services
from lagesbild.places.models import Place

RECENT = dt.timedelta(days=90)


def _editor_config(membership: Membership) -> dict[str, Any]:
    return {"basemap": basemap.client_config(),
            "workerUrl": settings.STATIC_URL + "vendor/maplibre-gl/maplibre-gl-csp-worker.js",
            "area": membership.forum.area}


def _editor_strings() -> dict[str, str]:
    return {"corners": _("%(count)s corners. Click the next one, or choose Done."),
            "tooFew": _("An area needs at least three corners."),
            "ready": _("The area is drawn. Save to keep it."),
            "centre": _("The centre is set. Choose a radius and save.")}


def _place_input(data: Any) -> services.PlaceInput:
    area = None
    if data.get("area_drawn"):
        area = loads_json(data["area_drawn"], "area", _("The area is not a valid GeoJSON polygon."))
        if not isinstance(area, dict):
            raise InvalidInput(_("The area is not a valid GeoJSON polygon."), field="area")
    return services.PlaceInput(name=data.get("name", ""), description=data.get("description", ""),
                               lon=parse_float(data.get("lon"), "lon"), lat=parse_float(data.get("lat"), "lat"),
                               radius_m=parse_int(data.get("radius_m"), "radius_m"), area=area)


PLACE_PAGE_OPS = ("edit", "delete")  # the field `op` of the place page's forms


def places_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            place = services.create_place(membership, _place_input(request.POST))
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
        else:
            messages.success(request, _("The place %(name)s was saved.") % {"name": place.name})
            return redirect("place", forum=forum, place_id=place.pk)
    visible = deviations.visible_deviations(membership)
    since = timezone.now() - RECENT
    listed = services.forum_places(membership).annotate(
        open_actions=Count("actions", filter=Q(actions__status__in=Action.OPEN)))
    recent = visible.filter(observed_at__gte=since)
    rows = [(place, services.deviations_at(place, recent, selective=False).count(), place.open_actions)
            for place in listed]
    suggestions = []
    if membership.is_coordinator:
        suggestions = services.suggest_places(membership, visible)
    return render(request, "places/places.html", {
        "forum": membership.forum, "membership": membership, "rows": rows, "suggestions": suggestions,
        "suggestions_map": _suggestions_map(membership, suggestions, [place for place, *_ in rows]),
        "errors": errors, "form": request.POST if errors else {}, "map_config": _editor_config(membership),
        "area_strings": _editor_strings(), "radius_default": 100}, status=status)


def _suggestions_map(membership: Membership, suggestions: list[services.Suggestion], places: list[Place]) -> str:
    """The suggestions, numbered as listed, among the places already drawn, on the forum's area."""
    if not suggestions:
        return ""
    boxes = [services.circle_bbox(s.lon, s.lat, s.radius_m) for s in suggestions]
    area = geometry.area_bounds(membership.forum.area)
    if area:
        boxes.append(area)
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    frame = staticmap.Frame(staticmap.padded(bbox, 0.04), 640, 420)
    return staticmap.svg(
        frame, title=_("Map of the suggested places, numbered as in the list, and the places already drawn"),
        area=membership.forum.area, outlines=[(p.name, services.outline(p)) for p in places],
        circles=[(s.lon, s.lat, s.radius_m, str(number),
                  _("Suggestion %(number)s: %(count)s deviations") % {"number": number, "count": s.count})
                 for number, s in enumerate(suggestions, start=1)])


def place_page(request: HttpRequest, forum: str, place_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: services.get_place(m, place_id))
    if isinstance(found, HttpResponse):
        return found
    membership, place = found
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "delete":
                services.delete_place(membership, place.pk)
                messages.success(request, _("The place %(name)s was deleted.") % {"name": place.name})
                return redirect("places", forum=forum)
            if op == "edit":
                data = request.POST.copy()
                if place.shape == place.Shape.POLYGON and not data.get("area_drawn"):
                    data["area_drawn"] = json.dumps(place.area)
                elif not data.get("lon"):
                    data["lon"], data["lat"] = str(place.lon), str(place.lat)
                place = services.update_place(membership, place.pk, _place_input(data))
                messages.success(request, _("The place was saved."))
                return redirect("place", forum=forum, place_id=place.pk)
            raise InvalidInput(_("Unknown request."))
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    visible = deviations.visible_deviations(membership)
    at_place = services.deviations_at(place, visible)
    table = services.counts_by_month(place, visible)
    # Newest first through the time index, which stops at the fiftieth match.
    recent = list(services.deviations_at(place, visible, selective=False)
                  .select_related("category", "category__parent", "organisation").order_by("-observed_at")[:50])
    actions = list(place.actions.select_related("organisation", "responsible").order_by("-created_at"))
    timeline = sorted(
        [("deviation", d.observed_at, d) for d in recent]
        + [("action", a.created_at, a) for a in actions]
        + [("follow_up", f.created_at, f) for f in FollowUp.objects.filter(action__in=actions)
           .select_related("organisation")],
        key=lambda entry: entry[1], reverse=True)[:80]
    effects = [(a, effect.action_effect(membership, a)) for a in actions if a.status == Action.Status.DONE]
    frame = staticmap.Frame(staticmap.padded(place.bbox, 0.6), 640, 360)
    colours = {c.key: c.color for c in deviations.forum_categories(membership.forum)}
    points = [(d.lon, d.lat, colours.get(d.category.parent.key if d.category.parent else d.category.key, "#555"))
              for d in recent]
    svg = staticmap.svg(frame, title=_("Map of %(name)s with its latest deviations") % {"name": place.name},
                        outlines=[(place.name, services.outline(place))], points=points)
    return render(request, "places/place.html", {
        "forum": membership.forum, "membership": membership, "place": place, "table": table,
        "timeline": timeline, "actions": actions, "effects": effects, "svg": svg, "count": at_place.count(),
        "map_url": _map_link(membership, place),
        "can_create_action": membership.can_create_actions,
        "organisations": membership.forum.organisations.all(), "today": action_services.today(membership),
        "errors": errors, "form": request.POST if errors else {}}, status=status)


def _map_link(membership: Membership, place: Any) -> str:
    from lagesbild.meetings.services import map_url

    now = timezone.now()
    return map_url(membership.forum, now - dt.timedelta(days=365), now + dt.timedelta(seconds=1), place.bbox)
