"""Forums (tenants), their member organisations, users and memberships."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from functools import lru_cache
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person. People sign in with their e-mail address; there is no separate user name."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("e-mail address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[assignment,misc]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names this installation knows (from the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    # Every report and figure converts times to the forum's zone: a wrong name would break them all.
    if value not in time_zone_names():
        raise ValidationError(_("%(value)s is not a time zone name, such as Europe/Stockholm."),
                              params={"value": value}, code="invalid_time_zone")


class Forum(models.Model):
    """A safety forum (trygghetsforum): the tenant every other forum-owned row belongs to."""

    slug = models.SlugField(_("short name"), unique=True, max_length=60)
    name = models.CharField(_("name"), max_length=120)
    # The forum's area as a GeoJSON Polygon or MultiPolygon in WGS84. Deviations must lie inside it.
    area = models.JSONField(_("area"), null=True, blank=True)
    timezone = models.CharField(_("time zone"), max_length=60, default="Europe/Stockholm",
                                validators=[validate_time_zone])
    # Off: the form and the API warn about what looks like personal data. On: they refuse it.
    block_personal_data = models.BooleanField(_("refuse personal data in free text"), default=False)
    # Every member can be named in a restricted deviation's visibility, so every member can read restricted
    # data: in a forum that requires it, nobody gets in without an authenticator app. Off only for demos.
    require_two_factor = models.BooleanField(_("require two-factor authentication"), default=True)

    class Retention(models.TextChoices):
        ANONYMISE = "anonymise", _("Anonymise (keep category, place, time and status)")
        DELETE = "delete", _("Delete")

    class Cadence(models.TextChoices):
        WEEKLY = "weekly", _("Every week")
        BIWEEKLY = "biweekly", _("Every other week")
        MONTHLY = "monthly", _("Every month")
        BIMONTHLY = "bimonthly", _("Every other month")

    meeting_cadence = models.CharField(_("meetings"), max_length=10, choices=Cadence.choices, default=Cadence.MONTHLY)
    # The responsible organisation is reminded this many days before an action is due.
    reminder_days = models.PositiveSmallIntegerField(_("remind about actions (days before due)"), default=3)
    # Deviations observed longer ago than this are anonymised or deleted by `lagesbild retention`.
    retention_months = models.PositiveSmallIntegerField(_("keep deviations for (months)"), null=True, blank=True)
    retention_action = models.CharField(_("after that"), max_length=10, choices=Retention.choices,
                                        default=Retention.ANONYMISE)
    created_at = models.DateTimeField(_("created"), default=now)

    class Meta:
        verbose_name = _("forum")
        verbose_name_plural = _("forums")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        validate_time_zone(self.timezone)  # also when saved from code or the admin, not only from forms
        super().save(*args, **kwargs)


class Organisation(models.Model):
    """A member organisation (aktör) of one forum."""

    class Kind(models.TextChoices):
        DISTRICT = "district", _("District administration")
        POLICE = "police", _("Police")
        HOUSING = "housing", _("Housing company")
        SCHOOL = "school", _("School")
        CHURCH = "church", _("Church")
        TRANSIT = "transit", _("Transit operator")
        NIGHT_WALKERS = "night_walkers", _("Night walkers")
        BUSINESS = "business", _("Business association")
        SECURITY = "security", _("Security guards")
        OTHER = "other", _("Other")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="organisations")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    created_at = models.DateTimeField(_("created"), default=now)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["forum", "name"], name="organisation_unique_name")]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    COORDINATOR = "coordinator", _("Forum coordinator")
    ORG_LEAD = "org_lead", _("Organisation lead")
    REPORTER = "reporter", _("Reporter")
    VIEWER = "viewer", _("Viewer")


class Membership(models.Model):
    """A user's place in one forum: which organisation they speak for and with which role."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.REPORTER)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["forum", "user"], name="membership_one_per_forum")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.forum} ({self.organisation}, {self.role})"

    # What each role may do. This is the one permission table: services, views and templates ask these,
    # and nothing else compares role names (tests/test_structure.py checks that).
    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def leads_organisation(self) -> bool:
        """An organisation lead: manages the organisation's members and owns its actions."""
        return self.role == Role.ORG_LEAD

    @property
    def can_report(self) -> bool:
        return self.role in {Role.COORDINATOR, Role.ORG_LEAD, Role.REPORTER}

    @property
    def can_comment(self) -> bool:
        return self.can_report

    @property
    def can_raise_for_meeting(self) -> bool:
        return self.can_report

    # The forum's own administration: settings, categories, places, meetings, organisations, the audit log.
    @property
    def can_administer_forum(self) -> bool:
        return self.is_coordinator

    @property
    def can_manage_members(self) -> bool:
        return self.role in {Role.COORDINATOR, Role.ORG_LEAD}

    def can_manage_members_of(self, organisation_id: int) -> bool:
        return self.is_coordinator or (self.leads_organisation and organisation_id == self.organisation_id)

    def assignable_roles(self) -> list[str]:
        """The roles this member may give others; an organisation lead makes nobody a coordinator."""
        if self.is_coordinator:
            return list(Role.values)
        if self.leads_organisation:
            return [Role.ORG_LEAD, Role.REPORTER, Role.VIEWER]
        return []

    @property
    def can_import(self) -> bool:
        """Bring in a file of deviations for the organisation; a coordinator may also bring in other
        organisations' rows (a forum's old spreadsheet)."""
        return self.role in {Role.COORDINATOR, Role.ORG_LEAD}

    @property
    def can_create_actions(self) -> bool:
        return self.role in {Role.COORDINATOR, Role.ORG_LEAD}

    def can_create_action_for(self, organisation_id: int) -> bool:
        return self.is_coordinator or (self.leads_organisation and organisation_id == self.organisation_id)

    def can_change_action(self, organisation_id: int, fields: set[str]) -> bool:
        """Coordinators change actions; the responsible organisation's lead may name the responsible person."""
        return self.is_coordinator or (self.leads_organisation and organisation_id == self.organisation_id
                                       and fields <= {"responsible_id"})

    def can_follow_up_for(self, organisation_id: int) -> bool:
        """Follow up an action of this responsible organisation."""
        return self.is_coordinator or (self.can_report and organisation_id == self.organisation_id)

    def can_edit_deviation_of(self, organisation_id: int, reporter_id: int | None) -> bool:
        """Reporters edit their own deviations; organisation leads those of their organisation."""
        if reporter_id == self.user_id and self.can_report:
            return True
        return self.leads_organisation and organisation_id == self.organisation_id

    @property
    def can_plan_walks(self) -> bool:
        """Plan a safety walk, arranged by the member's organisation."""
        return self.can_report

    def can_run_walk(self, organisation_id: int) -> bool:
        """Change, walk and record a safety walk: the arranging organisation's reporters, and coordinators."""
        return self.is_coordinator or (self.can_report and organisation_id == self.organisation_id)

    @property
    def can_flag_for_police(self) -> bool:
        """Mark a deviation they can see as one to report to the police, or take the mark away."""
        return self.can_report

    def can_unflag_police(self, flagged_by_organisation_id: int | None, organisation_id: int) -> bool:
        """Take the mark away: the organisation that set it, the deviation's own, or a coordinator."""
        return self.is_coordinator or (self.can_report and self.organisation_id in {
            flagged_by_organisation_id, organisation_id})

    def can_correct_police_report(self) -> bool:
        """Change a reference already recorded: the police and coordinators."""
        return self.is_coordinator or (self.can_report and self.organisation.kind == Organisation.Kind.POLICE)

    def can_record_police_report_of(self, organisation_id: int) -> bool:
        """Record that a police report was made, and its reference: the deviation's own organisation, the
        police, and coordinators."""
        return self.is_coordinator or (self.can_report and (
            organisation_id == self.organisation_id or self.organisation.kind == Organisation.Kind.POLICE))

    def can_hand_off(self, organisation_id: int, system_organisation_id: int) -> bool:
        """Pass a deviation to an owner's fault-report system: coordinators, and those who report for the
        deviation's own organisation or for the system's owner."""
        return self.is_coordinator or (self.can_report and self.organisation_id in {
            organisation_id, system_organisation_id})

    def can_change_status_of(self, organisation_id: int) -> bool:
        """Coordinators move any deviation through its statuses; organisation leads their organisation's."""
        return self.is_coordinator or (self.leads_organisation and organisation_id == self.organisation_id)


class Invitation(models.Model):
    """An e-mailed link that makes someone a member of a forum, for an organisation, with a role.

    Only a hash of the link's key is stored. It works once, and not after it expires.
    """

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="invitations")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.REPORTER)
    key_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=now)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.forum} ({self.organisation}, {self.role})"


class ApiToken(models.Model):
    """A bearer token for a machine client. Only a hash is stored; the token is shown once."""

    PREFIX = "lgb_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    # A token speaks for one organisation in one forum, whatever else its user is a member of.
    # (Nullable only for the table's history; a token without them is refused.)
    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, null=True, related_name="api_tokens")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, null=True, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.user} {self.name}".strip()

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, membership: Membership, name: str = "") -> tuple[ApiToken, str]:
        """A new token for the member's organisation in that forum. The key is returned once, never stored."""
        key = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user_id=membership.user_id, forum_id=membership.forum_id,
                                   organisation_id=membership.organisation_id, name=name, key_hash=cls.hash(key))
        return token, key
