"""The page of a member's saved views and alerts. Views are saved from the map's filter (its form posts here)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from lagesbild.alerts import services
from lagesbild.alerts.models import SavedView
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.inputs import parse_id
from lagesbild.pages import any_member

SAVED_VIEWS_OPS = ("save", "alerts", "delete", "read")  # the field `op` of the page's forms


def saved_views_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = request.POST
        op = data.get("op")
        try:
            if op == "save":
                view = services.save_view(membership, services.ViewInput(
                    name=data.get("name", ""), query=data.get("query", ""), bbox=data.get("bbox", ""),
                    frequency=data.get("frequency", SavedView.Frequency.NONE), email=data.get("email") == "on"))
                messages.success(request, _("The view %(name)s was saved.") % {"name": view.name})
            elif op == "alerts":
                view = services.change_alerts(membership, _view_id(data), data.get("frequency", ""),
                                              data.get("email") == "on")
                messages.success(request, _("The alerts of %(name)s were changed.") % {"name": view.name})
            elif op == "delete":
                view = services.get_view(membership, _view_id(data))
                services.delete_view(membership, view.pk)
                messages.success(request, _("The view %(name)s was removed.") % {"name": view.name})
            elif op == "read":
                services.mark_read(membership)
            else:
                raise InvalidInput(_("Unknown request."))
            return redirect("saved-views", forum=forum)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    views = list(services.views_of(membership))
    return render(request, "alerts/saved_views.html", {
        "forum": membership.forum, "membership": membership, "errors": errors,
        "failed_save": request.POST if errors and request.POST.get("op") == "save" else None,
        "views": [(view, services.map_address(view), services.describe(view), services.stale(view)) for view in views],
        "alerts": services.alerts_of(membership), "unread": services.unread_count(membership),
        "frequencies": SavedView.Frequency.choices}, status=status)


def _view_id(data: QueryDict) -> int:
    view_id = parse_id(data.get("view"), "view")
    if view_id is None:
        raise InvalidInput(_("Choose a saved view."), field="view")
    return view_id
