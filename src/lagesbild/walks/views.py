"""Pages: the forum's safety walks, one walk (plan, walk, checklist, findings) and its protocol (page and PDF)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lagesbild import basemap
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.inputs import parse_float, parse_id, parse_local_datetime
from lagesbild.pages import any_member, member_and
from lagesbild.walks import protocol, services
from lagesbild.walks.models import Walk, WalkCheck

# What the forms of each page can ask for (the field `op`); the authorization matrix has a row for each.
WALKS_PAGE_OPS = ("plan",)
WALK_PAGE_OPS = ("details", "add_stop", "remove_stop", "up", "down", "add_participant", "remove_participant",
                 "start", "end", "checks", "record", "delete")


def _local_input(value: Any, membership: Membership) -> str:
    return value.astimezone(ZoneInfo(membership.forum.timezone)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _walk_input(data: Any, membership: Membership) -> services.WalkInput:
    return services.WalkInput(
        title=data.get("title", ""), meeting_point=data.get("meeting_point", ""), summary=data.get("summary", ""),
        planned_at=parse_local_datetime(data.get("planned_at"), "planned_at", membership.forum.timezone))


def walks_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("op", "plan") not in WALKS_PAGE_OPS:
                raise InvalidInput(_("Unknown request."))
            walk = services.plan_walk(membership, _walk_input(request.POST, membership))
            messages.success(request, _("The walk was planned. Now add its stops and participants."))
            return redirect("walk", forum=forum, walk_id=walk.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    now = timezone.now()
    walks = list(services.forum_walks(membership))
    coming = sorted((w for w in walks if w.ended_at is None and (w.started_at or w.planned_at >= now)),
                    key=lambda w: w.planned_at)
    earlier = [w for w in walks if w not in coming]
    suggested = (timezone.localtime(now, ZoneInfo(membership.forum.timezone)) + dt.timedelta(days=7)).replace(
        hour=18, minute=0, second=0, microsecond=0)
    return render(request, "walks/walks.html", {
        "forum": membership.forum, "membership": membership, "coming": coming, "earlier": earlier,
        "errors": errors, "form": request.POST if errors else {},
        "default_planned_at": _local_input(suggested, membership)}, status=status)


def _checks_from(data: Any) -> list[services.CheckInput]:
    return [services.CheckInput(aspect=aspect, assessment=data.get(f"{aspect}-assessment", ""),
                                note=data.get(f"{aspect}-note", ""), proposal=data.get(f"{aspect}-proposal", ""),
                                category=data.get(f"{aspect}-category", ""))
            for aspect in services.ASPECTS if f"{aspect}-assessment" in data]


def _do(request: HttpRequest, membership: Membership, walk: Walk, op: str) -> str | None:
    """Carry out one of the walk page's operations; the message to show, or None when the walk is gone."""
    data = request.POST
    if op == "details":
        services.change_walk(membership, walk.pk, _walk_input(data, membership))
        return _("The walk was saved.")
    if op == "add_stop":
        stop = services.add_stop(membership, walk.pk, data.get("name", ""), parse_float(data.get("lon"), "lon"),
                                 parse_float(data.get("lat"), "lat"))
        return _("Stop added: %(name)s.") % {"name": stop.name}
    if op == "remove_stop":
        services.remove_stop(membership, walk.pk, parse_id(data.get("stop"), "stop"))
        return _("The stop was removed.")
    if op in ("up", "down"):
        services.move_stop(membership, walk.pk, parse_id(data.get("stop"), "stop"), -1 if op == "up" else 1)
        return _("The route was changed.")
    if op == "add_participant":
        participant = services.add_participant(membership, walk.pk, data.get("participant_name", ""),
                                               data.get("affiliation", ""))
        return _("%(name)s was added.") % {"name": participant.name}
    if op == "remove_participant":
        services.remove_participant(membership, walk.pk, parse_id(data.get("participant"), "participant"))
        return _("The participant was removed.")
    if op == "start":
        services.start_walk(membership, walk.pk)
        return _("The walk has started.")
    if op == "end":
        services.end_walk(membership, walk.pk)
        return _("The walk has ended. Go through the checklists, then record the findings.")
    if op == "checks":
        services.save_checks(membership, walk.pk, parse_id(data.get("stop"), "stop"), _checks_from(data))
        return _("The checklist was saved.")
    if op == "record":
        done = services.record_findings(membership, walk.pk)
        return (ngettext("%(count)d finding became a deviation", "%(count)d findings became deviations",
                         done.deviations) % {"count": done.deviations} + "; "
                + ngettext("%(count)d proposal was raised for the next meeting.",
                           "%(count)d proposals were raised for the next meeting.", done.proposals)
                % {"count": done.proposals})
    if op == "delete":
        services.delete_walk(membership, walk.pk)
        return None
    raise InvalidInput(_("Unknown request."))


def walk_page(request: HttpRequest, forum: str, walk_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: services.get_walk(m, walk_id))
    if isinstance(found, HttpResponse):
        return found
    membership, walk = found
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            message = _do(request, membership, walk, op)
            if message is None:
                messages.success(request, _("The walk %(title)s was deleted.") % {"title": walk.title})
                return redirect("walks", forum=forum)
            messages.success(request, message)
            anchor = {"checks": f"#stop-{request.POST.get('stop', '')}", "add_stop": "#route",
                      "remove_stop": "#route", "up": "#route", "down": "#route", "add_participant": "#participants",
                      "remove_participant": "#participants", "record": "#findings"}.get(op, "")
            return redirect(reverse("walk", kwargs={"forum": forum, "walk_id": walk.pk}) + anchor)
        except DomainError as exc:
            message = exc.message
            stop_id = request.POST.get("stop", "")
            stop = walk.stops.filter(pk=int(stop_id)).first() \
                if op == "checks" and stop_id.isascii() and stop_id.isdigit() and len(stop_id) < 18 else None
            if stop is not None:  # say which stop's checklist, on a page of several
                message = f"{stop.name}: {message}"
            errors = {exc.field or "__all__": message}
            status = exc.status
            walk = services.get_walk(membership, walk.pk)
    return render(request, "walks/walk.html", _walk_context(request, membership, walk, errors), status=status)


def _walk_context(request: HttpRequest, membership: Membership, walk: Walk, errors: dict[str, str]
                  ) -> dict[str, Any]:
    stops = services.stops_of(walk)
    checks = [c for s in stops for c in s.checks.all()]
    visible = services.visible_findings(membership, checks)
    categories = services.usable_categories(membership)
    failed_stop = request.POST.get("stop", "") if errors and request.POST.get("op") == "checks" else ""
    stop_rows: list[dict[str, Any]] = []
    for number, stop in enumerate(stops, start=1):
        by_aspect = {c.aspect: c for c in stop.checks.all()}
        rows = []
        for aspect in services.ASPECTS:
            check = by_aspect.get(aspect)
            suggested = services.suggested_category(categories, aspect)
            posted = failed_stop == str(stop.pk)  # keep what was typed when the form was refused
            rows.append({
                "aspect": aspect, "label": WalkCheck.Aspect(aspect).label, "check": check,
                "assessment": request.POST.get(f"{aspect}-assessment", "") if posted else (
                    check.assessment if check else ""),
                "note": request.POST.get(f"{aspect}-note", "") if posted else (check.note if check else ""),
                "proposal": request.POST.get(f"{aspect}-proposal", "") if posted else (
                    check.proposal if check else ""),
                "category": request.POST.get(f"{aspect}-category", "") if posted else (
                    check.category.key if check and check.category else ""),
                "suggested": suggested.name if suggested else "",
                "locked": bool(check and check.recorded_at),
                "invalid": next((part for part in ("assessment", "note", "proposal", "category")
                                 if posted and f"{aspect}-{part}" in errors), ""),
                "deviation": check.deviation_id if check and check.deviation_id in visible else None,
            })
        stop_rows.append({"stop": stop, "number": number, "rows": rows,
                          "problems": sum(1 for c in stop.checks.all()
                                          if c.assessment == WalkCheck.Assessment.PROBLEM)})
    pending = sum(1 for c in checks if c.recorded_at is None and (
        c.assessment == WalkCheck.Assessment.PROBLEM or c.proposal))
    config = {
        "basemap": basemap.client_config(), "language": request.LANGUAGE_CODE,
        "workerUrl": settings.STATIC_URL + "vendor/maplibre-gl/maplibre-gl-csp-worker.js",
        "area": membership.forum.area, "walk": walk.pk, "state": walk.state,
        # The phone's queue of track points is kept per forum, member and walk (a shared device).
        "queueKey": f"lagesbild:{membership.forum.slug}:{membership.user_id}:walk-{walk.pk}",
        "mayRun": services.may_run(membership, walk),
        "trackUrl": reverse("api:walk_track", kwargs={"forum": membership.forum.slug, "walk_id": walk.pk}),
        "stops": [{"number": r["number"], "name": r["stop"].name, "lon": r["stop"].lon, "lat": r["stop"].lat}
                  for r in stop_rows],
        "track": services.track_lines(walk.track or []),
    }
    return {
        "forum": membership.forum, "membership": membership, "walk": walk, "errors": errors,
        "form": request.POST if errors else {}, "may_run": services.may_run(membership, walk),
        "stops": stop_rows, "participants": list(walk.participants.all()), "pending": pending,
        "heading": services.walk_heading(walk.title), "failed_stop": failed_stop,
        "categories": sorted(categories.values(), key=lambda c: c.name),
        "assessments": WalkCheck.Assessment.choices,
        "planned_at_input": _local_input(walk.planned_at, membership),
        "track_length": round(services.track_length_m(walk.track or [])), "map_config": config,
        "strings": {
            "stopChosen": _("The position is chosen. Give the stop a name and add it."),
            "recording": _("Recording your track. Keep this page open."),
            "saved": _("Points of the track saved: %(count)s."),
            "waiting": _("Points waiting to be sent: %(count)s. They are sent when the network returns."),
            "ignored": _("Points left out, from outside the walk's time or far from the forum's area: %(count)s."),
            "signIn": _("You are signed out. Sign in again and open this page anew; the points wait on this "
                        "phone."),
            "sending": _("Sending the last points of the track…"),
            "refused": _("Some points were not taken: %(reason)s"),
            "endRefused": _("The walk was not ended: the last points of the track were refused."),
            "forbidden": _("The track is not saved: %(reason)s Recording stopped."),
            "otherTab": _("The track is being recorded in another tab or window."),
            "endWaiting": _("Some points of the track have not been sent yet. End the walk when the network is "
                            "back, so that the track is whole."),
            "confirmEnd": _("End the walk? The checklists stay open, but the route can no longer change."),
            "noPosition": _("The phone did not give a position: %(reason)s"),
            "stopped": _("Recording stopped."),
            "noGeolocation": _("This browser cannot give a position."),
            "mapLabel": _("Map of the walk"),
        },
    }


def walk_protocol(request: HttpRequest, forum: str, walk_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: services.get_walk(m, walk_id))
    if isinstance(found, HttpResponse):
        return found
    membership, walk = found
    c = protocol.content(walk, membership)
    return render(request, "walks/protocol.html", {"forum": membership.forum, "membership": membership,
                                                   "walk": walk, "c": c, "svg": protocol.map_svg(c)})


def walk_protocol_pdf(request: HttpRequest, forum: str, walk_id: int) -> HttpResponse:
    """The protocol in the forum's language (Swedish), as the forum's record."""
    found = member_and(request, forum, lambda m: services.get_walk(m, walk_id))
    if isinstance(found, HttpResponse):
        return found
    membership, walk = found
    with translation.override(settings.LANGUAGE_CODE):
        body = protocol.pdf_bytes(protocol.content(walk, membership))
    response = HttpResponse(body, content_type="application/pdf")
    name = slugify(f"trygghetsvandring-{walk.title}")[:80] or "trygghetsvandring"
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response
