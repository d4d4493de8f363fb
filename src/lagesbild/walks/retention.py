"""Retention for safety walks, by the forum's rule for deviations: a walk that took place before the cutoff
is deleted, or loses what could describe a person (its participants, the group's notes and proposals, the
summary, the meeting point and the walked track) and keeps its route and assessments."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from lagesbild.forums.models import Forum
from lagesbild.walks.models import Walk, WalkCheck, WalkParticipant


def expired_walks(forum: Forum, cutoff: dt.datetime) -> QuerySet[Walk]:
    walks = Walk.objects.filter(forum=forum).annotate(
        took_place=Coalesce("ended_at", "started_at", "planned_at")).filter(took_place__lt=cutoff)
    if forum.retention_action == Forum.Retention.ANONYMISE:
        walks = walks.filter(anonymised_at__isnull=True)
    return walks


def apply_walk_retention(forum: Forum, cutoff: dt.datetime) -> int:
    """Delete or anonymise the forum's walks from before the cutoff; returns how many. Runs in the caller's
    transaction."""
    ids = list(expired_walks(forum, cutoff).values_list("pk", flat=True))
    if not ids:
        return 0
    if forum.retention_action == Forum.Retention.DELETE:
        Walk.objects.filter(pk__in=ids).delete()
        return len(ids)
    WalkParticipant.objects.filter(walk_id__in=ids).delete()
    WalkCheck.objects.filter(stop__walk_id__in=ids).update(note="", proposal="")
    Walk.objects.filter(pk__in=ids).update(summary="", meeting_point="", track=[], created_by=None,
                                           anonymised_at=timezone.now())
    return len(ids)
