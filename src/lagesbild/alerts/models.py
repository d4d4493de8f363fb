"""A member's saved views of the map (a filter under a name) and the alerts they get about new deviations
that match one."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import Forum, Membership


class SavedView(models.Model):
    """A filter of the map under a name, saved by one member for themselves."""

    class Frequency(models.TextChoices):
        NONE = "none", _("No alerts")
        IMMEDIATE = "immediate", _("At once")
        DAILY = "daily", _("Once a day")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(_("name"), max_length=80)
    # The map's filter as its address's query string (period, from, to, category, organisation, status, q),
    # so that opening the view is opening the map at that address.
    query = models.CharField(max_length=2000, blank=True)
    # The map's view when it was saved, [minLon, minLat, maxLon, maxLat]; empty for the whole forum.
    bbox = models.JSONField(null=True, blank=True)
    frequency = models.CharField(_("alerts"), max_length=10, choices=Frequency.choices, default=Frequency.NONE)
    email = models.BooleanField(_("also by e-mail"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # The daily e-mail has told of every alert created up to here.
    digest_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["membership", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """A new deviation that matched a saved view, for its member: shown in the app, and sent by e-mail at
    once or in the day's digest if they asked for that."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    saved_view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="alerts")
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [models.UniqueConstraint(fields=["saved_view", "deviation"], name="alert_once_per_view")]
        indexes = [models.Index(fields=["saved_view", "created_at"], name="alert_view_created")]

    def __str__(self) -> str:
        return f"{self.saved_view_id}: {self.deviation_id}"
