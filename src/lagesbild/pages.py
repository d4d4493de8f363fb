"""What the forum's own pages (members, settings, categories, audit log, places, meetings, actions) share:
who may open them, and how a form's domain error is shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from lagesbild.errors import DomainError, InvalidInput, NotFound
from lagesbild.forums.models import Membership, Role
from lagesbild.forums.services import membership_for


def member_with_role(request: HttpRequest, forum: str, roles: Collection[str], refusal: str
                     ) -> Membership | HttpResponse:
    """The signed-in member if their role is one of `roles`; otherwise the page to answer with instead
    (sign in, 404 for a forum they are not in, or 403 with `refusal`)."""
    if not request.user.is_authenticated:
        return redirect(f"/konto/login/?next={request.path}")
    try:
        membership = membership_for(request.user, forum)
    except NotFound as exc:
        return not_found(request, exc)
    if membership.role not in roles:
        return render(request, "403.html", {"message": refusal}, status=403)
    return membership


def not_found(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(request, "404.html", {"message": exc.message}, status=404)


def any_member(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    """The signed-in member of the forum, whatever their role."""
    return member_with_role(request, forum, set(Role.values), "")


def form_int(value: str | None) -> int | None:
    """An id from a form field; empty means none, anything else that is not a number is refused."""
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidInput(_("%(value)s is not a number.") % {"value": value}) from exc


def form_float(value: str | None, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value).replace(",", "."))
    except ValueError as exc:
        raise InvalidInput(_("%(value)s is not a number.") % {"value": value}, field=field) from exc


def form_date(value: str | None, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(_("Write the date as YYYY-MM-DD."), field=field) from exc


def form_datetime(value: str | None, field: str, tz: str) -> dt.datetime | None:
    """A date and time from a form (datetime-local, the forum's time zone)."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(_("Write the date and time as YYYY-MM-DD HH:MM."), field=field) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))
