from __future__ import annotations

import datetime as dt

from django.utils import timezone

from lagesbild.forums.models import Forum
from lagesbild.meetings.models import Meeting


def last_meeting_at(forum: Forum) -> dt.datetime | None:
    """When the forum last met, for the map's "since the last meeting" period."""
    return (
        Meeting.objects.filter(forum=forum, held_at__lte=timezone.now())
        .order_by("-held_at")
        .values_list("held_at", flat=True)
        .first()
    )
