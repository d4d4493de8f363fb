"""What the forum's own pages (members, settings, categories, audit log) share: who may open them."""

from __future__ import annotations

from collections.abc import Collection

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from lagesbild.errors import NotFound
from lagesbild.forums.models import Membership
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
        return render(request, "404.html", {"message": exc.message}, status=404)
    if membership.role not in roles:
        return render(request, "403.html", {"message": refusal}, status=403)
    return membership
