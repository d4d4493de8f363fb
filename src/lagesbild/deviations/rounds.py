"""Rounds: a member's evening or night on foot (a security host's round, night walkers' weekend), and the
deviations they report on it. The phone starts and ends a round, often without network, so both are
idempotent under a key the phone makes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.deviations.models import Round
from lagesbild.deviations.services import (
    CAPTURE_KEY,
    CLOCK_SKEW,
    EARLIEST_OBSERVED,
    visible_deviations,
)
from lagesbild.errors import Forbidden, InvalidInput, NotFound
from lagesbild.forums.models import Membership
from lagesbild.inputs import visible_text

MAX_NAME = 80
LISTED = 50  # a member's newest rounds, on the map page and in the API


@dataclass
class RoundInput:
    name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None


def save_round(membership: Membership, key: str, data: RoundInput) -> tuple[Round, bool]:
    """Start the member's round under the phone's key, or end it (`ended_at`). Sending the same again changes
    nothing, and a round is ended once. Returns the round and whether it is new."""
    if not membership.can_report:
        raise Forbidden(_("Your role does not allow reporting deviations."))
    if not CAPTURE_KEY.fullmatch(key):
        raise InvalidInput(_("A round's key must be 8 to 64 letters, digits, '-' or '_'."), field="key")
    name = visible_text(data.name)
    if not name:
        raise InvalidInput(_("Give the round a name."), field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(_("A round's name is at most %(max)s characters.") % {"max": MAX_NAME}, field="name")
    latest = timezone.now() + CLOCK_SKEW
    if not EARLIEST_OBSERVED <= data.started_at <= latest:
        raise InvalidInput(_("A round cannot start in the future or before 2000."), field="startedAt")
    if data.ended_at is not None and not data.started_at <= data.ended_at <= latest:
        raise InvalidInput(_("A round ends after it starts, and not in the future."), field="endedAt")
    fields = {"organisation_id": membership.organisation_id, "name": name, "started_at": data.started_at}
    try:
        with transaction.atomic():
            found, created = Round.objects.get_or_create(forum_id=membership.forum_id, started_by_id=membership.user_id,
                                                         key=key, defaults=fields)
    except IntegrityError:  # the same start, sent twice at once: the other request made it
        found, created = round_of(membership, key), False
    if data.ended_at is not None and found.ended_at is None:
        if data.ended_at < found.started_at:
            raise InvalidInput(_("A round ends after it starts, and not in the future."), field="endedAt")
        Round.objects.filter(pk=found.pk, ended_at__isnull=True).update(ended_at=data.ended_at)
        found.refresh_from_db()
    return found, created


def round_of(membership: Membership, key: str) -> Round:
    """The member's own round with this key. Someone else's is not found, like one that does not exist."""
    found = Round.objects.filter(forum_id=membership.forum_id, started_by_id=membership.user_id, key=key).first()
    if found is None:
        raise NotFound(_("No such round."))
    return found


def rounds_of(membership: Membership) -> list[dict[str, Any]]:
    """The member's newest rounds, each with how many of its deviations they may see."""
    visible = visible_deviations(membership).values("pk")
    rounds = (Round.objects.filter(forum_id=membership.forum_id, started_by_id=membership.user_id)
              .annotate(count=Count("deviations", filter=Q(deviations__in=visible)))[:LISTED])
    return [as_json(found) | {"count": found.count} for found in rounds]


def as_json(found: Round) -> dict[str, Any]:
    return {"id": found.pk, "key": found.key, "name": found.name, "startedAt": found.started_at,
            "endedAt": found.ended_at}
