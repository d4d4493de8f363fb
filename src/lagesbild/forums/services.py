"""Domain functions for forums, organisations and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import ApiToken, Forum, Membership, Organisation, Role, User, validate_time_zone


def membership_for(user: User | AnonymousUser, forum_slug: str, token: ApiToken | None = None) -> Membership:
    """The user's active membership in the forum.

    A forum that does not exist and one the user is not a member of give the same answer, so that
    nobody learns which forums exist by guessing names. A request made with an API token reaches only
    the token's forum, and only while its user still speaks for the token's organisation there.
    """
    if not user.is_authenticated:
        raise NotFound(_("No such forum."))
    membership = (
        Membership.objects.select_related("forum", "organisation", "user")
        .filter(user=user, forum__slug=forum_slug, is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound(_("No such forum."))
    if token is not None and (token.forum_id != membership.forum_id
                              or token.organisation_id != membership.organisation_id):
        raise NotFound(_("No such forum."))
    return membership


def needs_two_factor_setup(user: User) -> bool:
    """True for a member of a forum that requires two-factor authentication who has no authenticator yet."""
    from allauth.mfa.models import Authenticator

    # One query: it runs on every signed-in request.
    has_totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP)
    return Membership.objects.filter(user=user, is_active=True, forum__require_two_factor=True).exclude(
        Exists(has_totp)).exists()


def memberships_of(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("forum", "organisation")
        .filter(user=user, is_active=True)
        .order_by("forum__name")
    )


def create_forum(slug: str, name: str, area: dict[str, Any] | None = None, time_zone: str = "Europe/Stockholm"
                 ) -> Forum:
    if area is not None:
        area = geometry.as_geojson(geometry.validate_area(area))
    _check_time_zone(time_zone)
    if Forum.objects.filter(slug=slug).exists():
        raise InvalidInput(_("A forum with that short name already exists."), field="slug")
    return Forum.objects.create(slug=slug, name=name, area=area, timezone=time_zone)


def _check_time_zone(name: str) -> None:
    try:
        validate_time_zone(name)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="timezone") from exc


@transaction.atomic
def add_member(
    forum: Forum,
    *,
    email: str,
    organisation: Organisation,
    role: str = Role.REPORTER,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Add a person to a forum, creating the user if the e-mail address is new."""
    if organisation.forum_id != forum.pk:
        raise InvalidInput(_("The organisation is not a member of this forum."), field="organisation")
    if role not in Role.values:
        raise InvalidInput(_("Unknown role."), field="role")
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, first_name=first_name, last_name=last_name)
    membership, _created = Membership.objects.update_or_create(
        forum=forum, user=user, defaults={"organisation": organisation, "role": role, "is_active": True}
    )
    return membership


def token_for_key(key: str) -> ApiToken | None:
    """The live token with this key, or None for an unknown, revoked or unscoped one."""
    if not key.startswith(ApiToken.PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=ApiToken.hash(key), revoked_at__isnull=True, user__is_active=True,
                forum__isnull=False, organisation__isnull=False)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Writing on every request would turn reads into writes; once a minute is enough to see use.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def require_coordinator(membership: Membership, reason: str, message: str | None = None) -> None:
    """Refuse (and audit) anyone but the forum's coordinators."""
    from lagesbild.audit import services as audit

    if not membership.can_administer_forum:
        raise audit.refused(membership, reason, message or _("Only the forum's coordinators can do this."))


SETTING_FIELDS = ("name", "area", "timezone", "meeting_cadence", "reminder_days", "require_two_factor",
                  "block_personal_data", "retention_months", "retention_action")


def update_settings(manager: Membership, changes: dict[str, Any]) -> Forum:
    """Change the forum's settings (coordinators only); every change is audited with its old and new value."""
    from lagesbild.audit import services as audit
    from lagesbild.audit.models import AuditEvent

    forum = manager.forum
    require_coordinator(manager, "settings by a non-coordinator",
                        _("Only the forum's coordinators can change its settings."))
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise InvalidInput(_("The field %(name)s cannot be changed.") % {"name": sorted(unknown)[0]},
                           field=sorted(unknown)[0])
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
        if not changes["name"] or len(changes["name"]) > 120:
            raise InvalidInput(_("Give the forum a name (at most 120 characters)."), field="name")
    if changes.get("area") is not None:
        changes["area"] = geometry.as_geojson(geometry.validate_area(changes["area"]))
    months = changes.get("retention_months")
    if months is not None and not 1 <= int(months) <= 240:
        raise InvalidInput(_("Keep deviations for 1 to 240 months, or leave it empty to keep them."),
                           field="retention_months")
    if "meeting_cadence" in changes and changes["meeting_cadence"] not in Forum.Cadence.values:
        raise InvalidInput(_("Choose how often the forum meets."), field="meeting_cadence")
    if "reminder_days" in changes and not 0 <= int(changes["reminder_days"]) <= 60:
        raise InvalidInput(_("Remind 0 to 60 days before an action is due."), field="reminder_days")
    if "retention_action" in changes and changes["retention_action"] not in Forum.Retention.values:
        raise InvalidInput(_("Choose what happens to old deviations."), field="retention_action")
    if "timezone" in changes:
        _check_time_zone(changes["timezone"])
    diff = {name: [getattr(forum, name), value] for name, value in changes.items() if getattr(forum, name) != value}
    if not diff:
        return forum
    with transaction.atomic():
        for name, (_old, value) in diff.items():
            setattr(forum, name, value)
        forum.save(update_fields=list(diff))
        # An area is long; the log says that it changed, not every coordinate.
        logged = {k: (["…", "…"] if k == "area" else v) for k, v in diff.items()}
        audit.record(manager, AuditEvent.Action.SETTINGS, forum, logged)
        if "timezone" in diff:
            # Weekdays, hours and months are stored in local time (deviations/derived.py): work them out
            # again for the new zone, in the background.
            from lagesbild.deviations.tasks import refresh_local_times

            forum_id = forum.pk
            transaction.on_commit(lambda: refresh_local_times.enqueue(forum_id))
    return forum
