"""API: the forums a user belongs to, and their organisations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from lagesbild import geometry
from lagesbild.api import PolygonGeometry, answers, member
from lagesbild.forums.models import Forum
from lagesbild.forums.services import memberships_of
from lagesbild.meetings.services import last_meeting_at

router = Router(tags=["forums"])


class MembershipOut(Schema):
    organisation: int
    organisationName: str
    role: str
    canReport: bool


class ForumOut(Schema):
    slug: str
    name: str
    timezone: str
    area: PolygonGeometry | None
    bounds: list[float] | None
    lastMeetingAt: dt.datetime | None
    membership: MembershipOut


class OrganisationOut(Schema):
    id: int
    name: str
    kind: str
    kindLabel: str


def forum_out(forum: Forum, membership: Any) -> dict[str, Any]:
    bounds = geometry.area_bounds(forum.area)
    return {
        "slug": forum.slug,
        "name": forum.name,
        "timezone": forum.timezone,
        "area": forum.area,
        "bounds": list(bounds) if bounds else None,
        "lastMeetingAt": last_meeting_at(forum),
        "membership": {
            "organisation": membership.organisation_id,
            "organisationName": membership.organisation.name,
            "role": membership.role,
            "canReport": membership.can_report,
        },
    }


@router.get("", response=answers(list[ForumOut]), summary="The forums you are a member of")
def list_forums(request: HttpRequest) -> list[dict[str, Any]]:
    memberships = memberships_of(request.user)  # type: ignore[arg-type]
    token = getattr(request, "api_token", None)
    if token is not None:
        memberships = memberships.filter(forum_id=token.forum_id, organisation_id=token.organisation_id)
    return [forum_out(m.forum, m) for m in memberships]


@router.get("/{forum}", response=answers(ForumOut), summary="One forum")
def get_forum(request: HttpRequest, forum: str) -> dict[str, Any]:
    membership = member(request, forum)
    return forum_out(membership.forum, membership)


@router.get("/{forum}/organisations", response=answers(list[OrganisationOut]),
            summary="The forum's member organisations")
def list_organisations(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return [
        {"id": o.pk, "name": o.name, "kind": o.kind, "kindLabel": o.get_kind_display()}
        for o in membership.forum.organisations.all()
    ]
