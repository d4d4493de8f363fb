"""Forum meetings (avstämningsmöten). For now only when they were held: the map's
"since the last meeting" period starts there. Agenda, actions and follow-up come later."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from lagesbild.forums.models import Forum


class Meeting(models.Model):
    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="meetings")
    title = models.CharField(_("title"), max_length=200, blank=True)
    held_at = models.DateTimeField(_("held"))

    class Meta:
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")
        ordering = ["-held_at"]

    def __str__(self) -> str:
        return self.title or f"{self.forum} {self.held_at:%Y-%m-%d}"
