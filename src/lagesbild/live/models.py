"""The live picture's events: what changed on the map, kept for a day so that a map that lost its
connection can be told what it missed."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class LiveEvent(models.Model):
    """A deviation was reported, changed or removed (or an import changed many), and who is to hear of it.

    Who hears is worked out when the change is made, from the visibility rule, and kept here: the
    organisations that may see the deviation now (`seen`, or the whole forum), and those that could see it
    before and no longer can (`lost`, or everyone outside `seen`), who are told to take it off their map.
    An organisation in neither hears nothing, not even that the event exists.
    """

    class Kind(models.TextChoices):
        REPORTED = "reported"
        CHANGED = "changed"
        REMOVED = "removed"
        RELOAD = "reload"  # many at once (an import): the map loads again

    id = models.BigAutoField(primary_key=True)
    # No database constraints: events are a day's notes, written after the change has committed, and must
    # not hold up deleting a forum or a deviation.
    forum = models.ForeignKey("forums.Forum", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    deviation_id = models.BigIntegerField(null=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    seen_all = models.BooleanField(default=False)
    seen = models.JSONField(default=list)
    lost_all = models.BooleanField(default=False)
    lost = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["forum", "id"], name="live_event_forum_id")]

    def __str__(self) -> str:
        return f"{self.kind} {self.deviation_id} ({self.pk})"
