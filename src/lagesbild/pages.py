"""What the forum's own pages (members, settings, categories, audit log, places, meetings, actions) share:
who may open them, and how a form's domain error is shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from lagesbild.errors import DomainError, NotFound
from lagesbild.forums.models import Membership
from lagesbild.forums.services import membership_for


def member_who(request: HttpRequest, forum: str, may: Callable[[Membership], bool], refusal: str
               ) -> Membership | HttpResponse:
    """The signed-in member if `may(membership)` says they may open the page; otherwise the page to answer
    with instead (sign in, 404 for a forum they are not in, or 403 with `refusal`).

    The page is then shown in the forum's time zone.
    """
    if not request.user.is_authenticated:
        return redirect(f"/konto/login/?next={request.path}")
    try:
        membership = membership_for(request.user, forum)
    except NotFound as exc:
        return not_found(request, exc)
    if not may(membership):
        return render(request, "403.html", {"message": refusal}, status=403)
    # lagesbild.middleware.ForumTimeZoneMiddleware deactivates it when the request ends.
    timezone.activate(ZoneInfo(membership.forum.timezone))
    return membership


T = TypeVar("T")


def member_and(request: HttpRequest, forum: str, find: Callable[[Membership], T],
               may: Callable[[Membership], bool] = lambda membership: True, refusal: str = ""
               ) -> tuple[Membership, T] | HttpResponse:
    """The signed-in member and what `find` looks up for them (a place, a meeting, an import), or the page to
    answer with instead: sign in, 403 with `refusal`, or 404 saying what is not there."""
    membership = member_who(request, forum, may, refusal)
    if isinstance(membership, HttpResponse):
        return membership
    try:
        return membership, find(membership)
    except DomainError as exc:
        return not_found(request, exc)


def not_found(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(request, "404.html", {"message": exc.message}, status=404)


def any_member(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    """The signed-in member of the forum, whatever their role."""
    return member_who(request, forum, lambda membership: True, "")
