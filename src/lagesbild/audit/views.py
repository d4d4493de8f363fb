"""The audit log pages for coordinators: the list with filters, and its CSV export."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.audit import services
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.services import hidden_deviation_ids
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.inputs import check_date, parse_id
from lagesbild.pages import member_who

PAGE_SIZE = 50


def _coordinator(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    return member_who(request, forum, lambda m: m.can_administer_forum,
                      _("Only the forum's coordinators can read the audit log."))


def _day(value: str, field: str, end: bool = False) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = check_date(dt.date.fromisoformat(value), field)
    except ValueError as exc:
        raise InvalidInput(_("Write the date as YYYY-MM-DD."), field=field) from exc
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
    return timezone.make_aware(moment)


def _filter(request: HttpRequest) -> services.AuditFilter:
    return services.AuditFilter(
        start=_day(request.GET.get("from", ""), "from"),
        end=_day(request.GET.get("to", ""), "to", end=True),
        actions=[a for a in request.GET.getlist("action") if a],
        organisation=parse_id(request.GET.get("organisation"), "organisation"),
    )


def _without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def log_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _coordinator(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    context = {
        "forum": membership.forum,
        "membership": membership,
        "actions": AuditEvent.Action.choices,
        "organisations": membership.forum.organisations.all(),
        "query": _without_page(request),
    }
    try:
        events = services.forum_log(membership.forum, _filter(request), hidden_deviation_ids(membership))
    except InvalidInput as exc:
        return render(request, "audit/log.html", {**context, "error": exc.message, "page": None}, status=400)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page.object_list:
        event.object_label, event.object_url = _object_of(event, membership.forum.slug)
    return render(request, "audit/log.html", {**context, "page": page})


def _object_of(event: AuditEvent, slug: str) -> tuple[str, str]:
    """What an event is about, in words, and a link to it where it has a page of its own."""
    labels = {
        "deviation": _("Deviation"), "place": _("Place"), "meeting": _("Meeting"), "action": _("Action"),
        "agendaitem": _("Agenda item"), "meetingflag": _("Raised for a meeting"), "forum": _("Forum"),
        "membership": _("Membership"), "invitation": _("Invitation"), "organisation": _("Organisation"),
        "category": _("Category"), "user": _("User"), "importbatch": _("Import"),
    }
    pages = {"deviation": lambda pk: f"{reverse('map', kwargs={'forum': slug})}?period=all#deviation-{pk}",
             "place": lambda pk: reverse("place", kwargs={"forum": slug, "place_id": pk}),
             "meeting": lambda pk: reverse("meeting", kwargs={"forum": slug, "meeting_id": pk}),
             "action": lambda pk: reverse("action", kwargs={"forum": slug, "action_id": pk})}
    label = f"{labels.get(event.object_type, event.object_type)} {event.object_id or ''}".strip()
    page = pages.get(event.object_type)
    return label, page(event.object_id) if page and event.object_id else ""


@login_required
def log_csv(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _coordinator(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    try:
        flt = _filter(request)
        events = list(services.forum_log(membership.forum, flt, hidden_deviation_ids(membership)))
    except InvalidInput as exc:
        return render(request, "403.html", {"message": exc.message}, status=400)
    # The export is itself an event: who took a copy of the log, and of what.
    # Not how many rows: other coordinators read this event, and the count includes events about deviations
    # only this coordinator's organisation may see.
    services.record(membership, AuditEvent.Action.EXPORT, membership.forum,
                    {"what": "audit_log", "filter": request.GET.urlencode()})
    response = HttpResponse(services.as_csv(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="handelselogg-{membership.forum.slug}-{stamp}.csv"'
    return response
