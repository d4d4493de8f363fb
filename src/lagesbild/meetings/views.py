"""Pages: meetings, the meeting's shared screen, the protocol (page and PDF), actions and one action."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from lagesbild import basemap
from lagesbild.deviations import services as deviations
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.inputs import parse_date, parse_float, parse_id, parse_ids, parse_int, parse_local_datetime
from lagesbild.meetings import actions as action_services
from lagesbild.meetings import effect, protocol, services
from lagesbild.meetings.api import protocol_pdf_response
from lagesbild.meetings.models import Action, Meeting
from lagesbild.pages import any_member, member_and, not_found
from lagesbild.places.services import forum_places


def _local_input(value: Any, membership: Membership) -> str:
    return value.astimezone(ZoneInfo(membership.forum.timezone)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _meeting_input(data: Any, tz: str) -> services.MeetingInput:
    """The meeting form's fields; times are the forum's local time."""
    return services.MeetingInput(
        held_at=parse_local_datetime(data.get("held_at"), "held_at", tz), title=data.get("title", ""),
        location=data.get("location", ""),
        period_start=parse_local_datetime(data.get("period_start"), "period_start", tz),
        period_end=parse_local_datetime(data.get("period_end"), "period_end", tz))


def meetings_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    tz = membership.forum.timezone
    if request.method == "POST":
        data = request.POST
        try:
            if data.get("op", "schedule") not in MEETINGS_PAGE_OPS:
                raise InvalidInput(_("Unknown request."))
            if data.get("op") == "flag":
                services.flag_for_meeting(membership, data.get("text", ""),
                                          parse_id(data.get("deviation"), "deviation"),
                                          parse_id(data.get("place"), "place"))
                messages.success(request, _("Thank you. It will be on the next meeting's agenda."))
                return redirect("meetings", forum=forum)
            meeting = services.schedule_meeting(membership, _meeting_input(data, tz))
            messages.success(request, _("The meeting was scheduled."))
            return redirect("meeting", forum=forum, meeting_id=meeting.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    upcoming, past = services.upcoming_and_past(membership)
    suggested = services.suggested_next(membership.forum)
    start, end = services.default_period(membership.forum, suggested)
    return render(request, "meetings/meetings.html", {
        "forum": membership.forum, "membership": membership, "upcoming": upcoming, "past": past,
        "flags": services.open_flags(membership.forum_id), "errors": errors,
        "form": request.POST if errors else {},
        "defaults": {"held_at": _local_input(suggested, membership), "period_start": _local_input(start, membership),
                     "period_end": _local_input(end, membership)},
        "flag_deviation": request.GET.get("deviation", ""), "flag_place": request.GET.get("place", ""),
        "places": forum_places(membership)}, status=status)


# What the forms of each page can ask for (the field `op`); the authorization matrix has a row for each.
MEETINGS_PAGE_OPS = ("schedule", "flag")
MEETING_PAGE_OPS = ("build", "add_item", "save_item", "up", "down", "remove_item", "attendance", "details", "action",
                    "follow_up", "publish", "delete", "correct")
ACTION_PAGE_OPS = ("edit", "follow_up")


def _meeting_op(request: HttpRequest, membership: Membership, meeting: Meeting) -> str:
    """Carry out one change from the meeting page; return the confirmation to show."""
    data = request.POST
    op = data.get("op", "")
    tz = membership.forum.timezone
    item_id = parse_id(data.get("item"), "item")
    if op == "build":
        services.build_agenda(membership, meeting.pk)
        return _("The agenda was built.")
    if op == "add_item":
        services.add_item(membership, meeting.pk, data.get("title", ""), parse_id(data.get("place"), "place"))
        return _("The item was added.")
    if op == "save_item" and item_id:
        services.update_item(membership, meeting.pk, item_id, notes=data.get("notes", ""),
                             decision=data.get("decision", ""))
        return _("The notes were saved.")
    if op in {"up", "down"} and item_id:
        services.move_item(membership, meeting.pk, item_id, -1 if op == "up" else 1)
        return _("The agenda was reordered.")
    if op == "remove_item" and item_id:
        services.remove_item(membership, meeting.pk, item_id)
        return _("The item was removed.")
    if op == "attendance":
        services.set_attendance(membership, meeting.pk, parse_ids(data.getlist("organisations"), "organisations"),
                                parse_ids(data.getlist("people"), "people"))
        return _("Attendance was saved.")
    if op == "details":
        services.update_meeting(membership, meeting.pk, _meeting_input(data, tz))
        return _("The meeting was saved.")
    if op == "action":
        action_services.create_action(membership, action_services.ActionInput(
            title=data.get("title", ""), organisation_id=parse_id(data.get("organisation"), "organisation"),
            due_date=parse_date(data.get("due_date"), "due_date"), agenda_item_id=item_id, meeting_id=meeting.pk))
        return _("The action was created.")
    if op == "follow_up":
        action_services.follow_up(membership, parse_id(data.get("action"), "action") or 0, data.get("body", ""),
                                  data.get("status") or None, meeting_id=meeting.pk)
        return _("The follow-up was saved.")
    if op == "publish":
        published = services.publish_protocol(membership, meeting.pk, data.get("correction_reason", ""))
        return _("Version %(version)d of the protocol was published. Members are sent a summary.") % {
            "version": published.version}
    if op == "delete":
        services.delete_meeting(membership, meeting.pk)
        return _("The meeting was deleted.")
    if op == "correct":
        services.start_correction(membership, meeting.pk)
        return _("The protocol can be corrected now. Publishing it again makes a new version.")
    raise InvalidInput(_("Unknown request."))


def _member_and_meeting(request: HttpRequest, forum: str, meeting_id: int
                        ) -> tuple[Membership, Meeting] | HttpResponse:
    """The member and the meeting a page is about, or the page that says why not (sign in, or not found)."""
    return member_and(request, forum, lambda m: services.get_meeting(m, meeting_id))


def meeting_page(request: HttpRequest, forum: str, meeting_id: int) -> HttpResponse:
    found = _member_and_meeting(request, forum, meeting_id)
    if isinstance(found, HttpResponse):
        return found
    membership, meeting = found
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            messages.success(request, _meeting_op(request, membership, meeting))
            if request.POST.get("op") == "delete":
                return redirect("meetings", forum=forum)
            anchor = f"#item-{request.POST['item']}" if request.POST.get("item") else ""
            return redirect(f"{request.path}{anchor}")
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
            meeting.refresh_from_db()
    forum_obj = membership.forum
    return render(request, "meetings/meeting.html", {
        "forum": forum_obj, "membership": membership, "meeting": meeting,
        "editable": membership.is_coordinator, "open": not meeting.is_locked,
        "agenda": services.agenda(meeting, membership), "errors": errors, "form": request.POST if errors else {},
        "organisations": forum_obj.organisations.all(),
        "attending": set(meeting.attending_organisations.values_list("pk", flat=True)),
        "people": forum_obj.memberships.filter(is_active=True).select_related("user", "organisation")
        .order_by("organisation__name", "user__first_name", "pk"),
        "present": set(meeting.attendees.values_list("pk", flat=True)),
        "protocols": meeting.protocols.order_by("-version"), "places": forum_places(membership),
        "statuses": Action.Status.choices, "today": action_services.today(membership),
        "period_map": services.map_url(forum_obj, meeting.period_start, meeting.period_end),
        "details": {"held_at": _local_input(meeting.held_at, membership),
                    "period_start": _local_input(meeting.period_start, membership),
                    "period_end": _local_input(meeting.period_end, membership)},
        "period_last_day": meeting.period_end - services.dt.timedelta(seconds=1),
    }, status=status)


def _version(request: HttpRequest) -> int | None:
    return parse_int(request.GET.get("version"), "version", minimum=1)


def present_page(request: HttpRequest, forum: str, meeting_id: int) -> HttpResponse:
    """Meeting mode: one agenda item at a time, full width, with its map and figures, for the shared screen.
    The coordinator moves through the items and writes notes and decisions; everyone else follows."""
    found = _member_and_meeting(request, forum, meeting_id)
    if isinstance(found, HttpResponse):
        return found
    membership, meeting = found
    try:
        requested = parse_int(request.GET.get("punkt"), "punkt", minimum=1)
    except DomainError as exc:
        return not_found(request, exc)
    views = services.agenda(meeting, membership)
    number = min(max(requested or meeting.presenting or 1, 1), max(len(views), 1))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST" and views:
        try:
            # The only form of the shared screen: the coordinator's notes and decision on the item shown.
            services.update_item(membership, meeting.pk, views[number - 1].item.pk,
                                 notes=request.POST.get("notes", ""), decision=request.POST.get("decision", ""))
            messages.success(request, _("The notes were saved."))
            return redirect(f"{request.path}?punkt={number}")
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    if requested is not None:
        services.show_item(membership, meeting, number)
    view = views[number - 1] if views else None
    config = {"basemap": basemap.client_config(), "language": request.LANGUAGE_CODE,
              "workerUrl": settings.STATIC_URL + "vendor/maplibre-gl/maplibre-gl-csp-worker.js",
              "number": number, "count": len(views),
              "current": reverse("meeting-screen-current", kwargs={"forum": forum, "meeting_id": meeting.pk}),
              "colours": {c.key: c.color for c in deviations.forum_categories(membership.forum)},
              "map": services.screen_map(meeting, view) if view else None}
    return render(request, "meetings/present.html", {
        "forum": membership.forum, "membership": membership, "meeting": meeting, "view": view, "number": number,
        "count": len(views), "numbers": range(1, len(views) + 1), "titles": [v.item.title for v in views],
        "editable": membership.can_administer_forum and not meeting.is_locked, "today": action_services.today(
            membership), "config": config, "errors": errors}, status=status)


def present_current(request: HttpRequest, forum: str, meeting_id: int) -> HttpResponse:
    """Which item the shared screen shows now, for those following the meeting on their own screens."""
    found = _member_and_meeting(request, forum, meeting_id)
    if isinstance(found, HttpResponse):
        return found
    return JsonResponse({"item": found[1].presenting})


def protocol_page(request: HttpRequest, forum: str, meeting_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: services.get_protocol(m, meeting_id, _version(request)))
    if isinstance(found, HttpResponse):
        return found
    membership, published = found
    return render(request, "meetings/protocol.html", {
        "forum": membership.forum, "membership": membership, "protocol": published, "c": published.content,
        "svg": protocol.map_svg(published.content),
        "versions": published.meeting.protocols.order_by("-version")})


def protocol_pdf(request: HttpRequest, forum: str, meeting_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: services.get_protocol(m, meeting_id, _version(request)))
    if isinstance(found, HttpResponse):
        return found
    _member, published = found
    return protocol_pdf_response(published)


def actions_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = request.POST
        try:
            action = action_services.create_action(membership, action_services.ActionInput(
                title=data.get("title", ""), organisation_id=parse_id(data.get("organisation"), "organisation"),
                due_date=parse_date(data.get("due_date"), "due_date"), description=data.get("description", ""),
                responsible_id=parse_id(data.get("responsible"), "responsible"),
                place_id=parse_id(data.get("place"), "place"),
                lon=parse_float(data.get("lon"), "lon"), lat=parse_float(data.get("lat"), "lat"),
                deviation_ids=parse_ids(data.getlist("deviations"), "deviations")))
            messages.success(request, _("The action was created."))
            return redirect("action", forum=forum, action_id=action.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    show = request.GET.get("show", "mine")
    queryset = action_services.my_open_actions(membership) if show == "mine" else \
        action_services.forum_actions(membership).order_by("status", "due_date")
    # Ids that are not numbers are left out of a prefill rather than refusing the page.
    prefill_deviations = [int(v) for v in request.GET.getlist("deviation") if v.isascii() and v.isdigit()
                          and len(v) < 19]
    visible_prefill = list(deviations.visible_deviations(membership).filter(pk__in=prefill_deviations)
                           .select_related("category"))
    organisations = membership.forum.organisations.all()
    if not membership.is_coordinator:
        organisations = organisations.filter(pk=membership.organisation_id)
    return render(request, "meetings/actions.html", {
        "forum": membership.forum, "membership": membership, "actions": list(queryset[:500]), "show": show,
        "today": action_services.today(membership), "errors": errors, "form": request.POST if errors else {},
        "can_create": membership.can_create_actions,
        "organisations": organisations, "places": forum_places(membership),
        "people": membership.forum.memberships.filter(is_active=True, organisation__in=organisations)
        .select_related("user", "organisation").order_by("organisation__name", "user__first_name", "pk"),
        "prefill_place": request.GET.get("place", ""), "prefill_deviations": visible_prefill}, status=status)


def action_page(request: HttpRequest, forum: str, action_id: int) -> HttpResponse:
    found = member_and(request, forum, lambda m: action_services.get_action(m, action_id))
    if isinstance(found, HttpResponse):
        return found
    membership, action = found
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = request.POST
        try:
            if data.get("op", "follow_up") not in ACTION_PAGE_OPS:
                raise InvalidInput(_("Unknown request."))
            if data.get("op") == "edit":
                action_services.update_action(membership, action.pk, {
                    "title": data.get("title", ""), "description": data.get("description", ""),
                    "due_date": parse_date(data.get("due_date"), "due_date"),
                    "organisation_id": parse_id(data.get("organisation"), "organisation"),
                    "responsible_id": parse_id(data.get("responsible"), "responsible")})
                messages.success(request, _("The action was saved."))
            else:
                action_services.follow_up(membership, action.pk, data.get("body", ""), data.get("status") or None,
                                          data.get("result") if "result" in data else None,
                                          resolve_deviations=data.get("resolve_deviations") == "on",
                                          execution=data.get("execution") or None,
                                          execution_note=data.get("execution_note") if "execution_note" in data
                                          else None)
                messages.success(request, _("The follow-up was saved."))
            return redirect("action", forum=forum, action_id=action.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    return render(request, "meetings/action.html", {
        "forum": membership.forum, "membership": membership, "action": action,
        "deviations": action_services.linked_deviations(membership, action),
        "follow_ups": action.follow_ups.select_related("author", "organisation"),
        "can_follow_up": action_services.can_follow_up(membership, action),
        "statuses": Action.Status.choices, "executions": Action.Execution.choices,
        "effect": effect.action_effect(membership, action),
        "today": action_services.today(membership), "organisations": membership.forum.organisations.all(),
        "people": membership.forum.memberships.filter(organisation=action.organisation, is_active=True)
        .select_related("user").order_by("user__first_name", "pk"), "errors": errors,
        "form": request.POST if errors else {}}, status=status)
