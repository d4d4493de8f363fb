"""Forum meetings (avstämningsmöten), their agenda, the actions (åtgärder) they decide, follow-up of those
actions, and the published protocol."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import Forum, Organisation, User
from lagesbild.places.models import Place


class Meeting(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned", _("Planned")
        PUBLISHED = "published", _("Protocol published")
        CORRECTING = "correcting", _("Protocol being corrected")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="meetings")
    title = models.CharField(_("title"), max_length=200, blank=True)
    held_at = models.DateTimeField(_("held"))
    location = models.CharField(_("where"), max_length=200, blank=True)
    # The period the meeting reviews: from period_start up to, not including, period_end.
    period_start = models.DateTimeField(_("period from"))
    period_end = models.DateTimeField(_("period until"))
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.PLANNED)
    # The agenda item (its number, from 1) the coordinator is showing on the shared screen; others follow it.
    presenting = models.PositiveSmallIntegerField(null=True, blank=True)
    attending_organisations: models.ManyToManyField[Organisation, AttendingOrganisation] = models.ManyToManyField(
        Organisation, blank=True, related_name="+", through="AttendingOrganisation")
    attendees: models.ManyToManyField[User, Attendee] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", through="Attendee")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")
        ordering = ["-held_at"]
        indexes = [models.Index(fields=["forum", "held_at"], name="meeting_forum_held")]

    def __str__(self) -> str:
        return self.title or f"{self.forum} {self.held_at:%Y-%m-%d}"

    @property
    def is_locked(self) -> bool:
        """A published protocol is not edited; a correction is started first and becomes a new version."""
        return self.state == self.State.PUBLISHED


class AttendingOrganisation(models.Model):
    """An organisation that attended a meeting. With the forum's id, as everything a forum owns (a national
    installation spreads its data over machines by forum)."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "meetings_meeting_attending_organisations"
        unique_together = [("meeting", "organisation")]

    def __str__(self) -> str:
        return f"{self.meeting_id}: {self.organisation_id}"


class Attendee(models.Model):
    """A person who attended a meeting (see AttendingOrganisation)."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "meetings_meeting_attendees"
        unique_together = [("meeting", "user")]

    def __str__(self) -> str:
        return f"{self.meeting_id}: {self.user_id}"


class MeetingFlag(models.Model):
    """Something a member wants the next meeting to take up: a deviation, a place, or just a question."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    place = models.ForeignKey(Place, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    text = models.CharField(_("what to take up"), max_length=500)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Set when an agenda takes the flag up, so the next agenda does not take it up again.
    meeting = models.ForeignKey(Meeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="flags")

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.text[:60]


class AgendaItem(models.Model):
    class Kind(models.TextChoices):
        ACTIONS_DUE = "actions_due", _("Actions due or overdue")
        PLACE = "place", _("Place")
        CATEGORIES = "categories", _("New deviations by category")
        FLAGGED = "flagged", _("Raised by a member")
        POLICE = "police", _("To report to the police")
        OTHER = "other", _("Other item")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.OTHER)
    title = models.CharField(_("title"), max_length=200)
    # What an automatic item is about. Its figures are computed when shown, never stored, so that nobody
    # reads in an item what their organisation may not see.
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    place = models.ForeignKey(Place, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    flag = models.ForeignKey(MeetingFlag, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    notes = models.TextField(_("notes"), blank=True)
    decision = models.TextField(_("decision"), blank=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title


class Action(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN = (Status.PLANNED, Status.IN_PROGRESS)

    class Execution(models.TextChoices):
        """How the action was carried out, told when it is done or cancelled: an action that was not carried out
        says nothing about whether it would have worked."""
        FULLY = "fully", _("Carried out in full")
        PARTLY = "partly", _("Carried out in part")
        NOT_AT_ALL = "not_at_all", _("Not carried out")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="actions")
    title = models.CharField(_("what will be done"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    place = models.ForeignKey(Place, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions")
    # Where, when there is no place: a point (from the deviations it was created from, or chosen).
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="actions",
                                     verbose_name=_("responsible organisation"))
    responsible = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", verbose_name=_("responsible person"))
    due_date = models.DateField(_("due"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PLANNED)
    result = models.TextField(_("result"), blank=True)
    execution = models.CharField(_("carried out"), max_length=12, choices=Execution.choices, blank=True)
    execution_note = models.TextField(_("how it was carried out"), blank=True)
    meeting = models.ForeignKey(Meeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions")
    agenda_item = models.ForeignKey(AgendaItem, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="actions")
    deviations: models.ManyToManyField[Deviation, ActionDeviation] = models.ManyToManyField(
        Deviation, through="ActionDeviation", related_name="actions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        ordering = ["due_date", "pk"]
        indexes = [models.Index(fields=["forum", "status", "due_date"], name="action_forum_status_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class ActionDeviation(models.Model):
    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE)
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "deviation"], name="action_deviation_unique")]

    def __str__(self) -> str:
        return f"{self.action_id} → #{self.deviation_id}"


class FollowUp(models.Model):
    """A note on how an action is going, with the status it moved to, if it moved."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="follow_ups")
    body = models.TextField(_("follow-up"), blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Action.Status.choices, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.body[:60]


class Protocol(models.Model):
    """One published version of a meeting's protocol: a snapshot that never changes.

    A correction is published as the next version; earlier versions stay readable.
    """

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="protocols")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    correction_reason = models.TextField(blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                     related_name="+")
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["meeting", "-version"]
        constraints = [models.UniqueConstraint(fields=["meeting", "version"], name="protocol_unique_version")]

    def __str__(self) -> str:
        return f"{self.meeting} v{self.version}"


class Reminder(models.Model):
    """A reminder e-mail that was sent, so the daily run sends each one once (per due date)."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Due soon")
        OVERDUE = "overdue", _("Overdue")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    due_date = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "kind", "due_date"], name="reminder_once_per_due_date")
        ]

    def __str__(self) -> str:
        return f"{self.action_id} {self.kind} {self.due_date}"
