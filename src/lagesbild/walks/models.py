"""Safety walks (trygghetsvandringar): a group (residents, housing staff, police, the district) walks a
planned route through an area, stops at places and goes through a checklist at each. The walk's findings
become deviations (source "walk") and proposals for the forum's next meeting."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lagesbild.deviations.models import Category, Deviation
from lagesbild.forums.models import Forum, Organisation
from lagesbild.meetings.models import MeetingFlag


class Walk(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned", _("Planned")
        WALKING = "walking", _("Under way")
        WALKED = "walked", _("Walked")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="walks")
    # The organisation that arranges it; its reporters and the forum's coordinators run it.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("arranged by"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    title = models.CharField(_("title"), max_length=120)
    meeting_point = models.CharField(_("meeting point"), max_length=200, blank=True)
    planned_at = models.DateTimeField(_("planned for"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # The walked track as the phone recorded it: [[lon, lat, seconds since 1970 UTC], ...], oldest first.
    track = models.JSONField(default=list, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when retention removed what could describe a person: participants, notes, the summary and the track.
    anonymised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("safety walk")
        verbose_name_plural = _("safety walks")
        ordering = ["-planned_at", "-pk"]
        indexes = [models.Index(fields=["forum", "planned_at"], name="walk_forum_planned")]

    def __str__(self) -> str:
        return self.title

    @property
    def state(self) -> str:
        if self.ended_at is not None:
            return self.State.WALKED
        return self.State.WALKING if self.started_at is not None else self.State.PLANNED

    def get_state_display(self) -> str:
        return str(self.State(self.state).label)


class WalkParticipant(models.Model):
    """Someone who walks along: a member, or a resident or guest by name only (no account)."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    walk = models.ForeignKey(Walk, on_delete=models.CASCADE, related_name="participants")
    name = models.CharField(_("name"), max_length=120)
    affiliation = models.CharField(_("organisation or role"), max_length=120, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class WalkStop(models.Model):
    """A stop on the route, in the order walked; the planned route runs through the stops."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    walk = models.ForeignKey(Walk, on_delete=models.CASCADE, related_name="stops")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(_("name"), max_length=120)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class WalkCheck(models.Model):
    """One point of a stop's checklist, as the group assessed it. A point not assessed has no row."""

    class Aspect(models.TextChoices):
        LIGHTING = "lighting", _("Lighting")
        SIGHT_LINES = "sight_lines", _("Sight lines")
        VEGETATION = "vegetation", _("Vegetation")
        SIGNAGE = "signage", _("Signage")
        MAINTENANCE = "maintenance", _("Maintenance")
        UNSAFE = "unsafe", _("Feels unsafe")

    class Assessment(models.TextChoices):
        OK = "ok", _("Fine")
        PROBLEM = "problem", _("Shortcoming")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    stop = models.ForeignKey(WalkStop, on_delete=models.CASCADE, related_name="checks")
    aspect = models.CharField(_("aspect"), max_length=12, choices=Aspect.choices)
    assessment = models.CharField(_("assessment"), max_length=8, choices=Assessment.choices)
    note = models.TextField(_("what the group saw"), blank=True)
    proposal = models.CharField(_("proposed action"), max_length=300, blank=True)
    # The category its deviation gets; empty: the one the aspect suggests (walks/services.py).
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # When the finding was recorded (a deviation made, a proposal raised): it is recorded once, even after
    # retention or a withdrawal removes what it became. Until then it can be changed on the walk.
    recorded_at = models.DateTimeField(null=True, blank=True)
    # What the finding became.
    deviation = models.ForeignKey(Deviation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    flag = models.ForeignKey(MeetingFlag, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["stop", "pk"]
        constraints = [models.UniqueConstraint(fields=["stop", "aspect"], name="walk_check_once_per_aspect")]

    def __str__(self) -> str:
        return f"{self.stop}: {self.aspect}"
