"""Managing a forum's members: invitations, roles, suspension and removal.

Coordinators manage every organisation's members; organisation leads manage their own organisation's,
and can make nobody a coordinator. Nobody changes their own role or membership, and a forum always keeps
at least one active coordinator. Refused attempts are audited like the changes themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.errors import Forbidden, InvalidInput, NotFound
from lagesbild.forums.models import Invitation, Membership, Organisation, Role, User

INVITATION_DAYS = 7


def _refuse(manager: Membership, message: str, target: Any) -> Forbidden:
    """Audit a refused attempt and return the error to raise."""
    audit.record(manager, AuditEvent.Action.REFUSED, target, {"reason": message})
    return Forbidden(message)


def can_manage(manager: Membership, organisation: Organisation) -> bool:
    return organisation.forum_id == manager.forum_id and manager.can_manage_members_of(organisation.pk)


def manageable_members(manager: Membership) -> QuerySet[Membership]:
    members = Membership.objects.filter(forum_id=manager.forum_id).select_related("user", "organisation")
    if manager.is_coordinator:
        return members.order_by("organisation__name", "user__email")
    if manager.can_manage_members:
        return members.filter(organisation_id=manager.organisation_id).order_by("user__email")
    return members.none()


def pending_invitations(manager: Membership) -> QuerySet[Invitation]:
    invitations = Invitation.objects.filter(forum_id=manager.forum_id, accepted_at__isnull=True,
                                            revoked_at__isnull=True, expires_at__gt=timezone.now())
    if not manager.is_coordinator:
        invitations = invitations.filter(organisation_id=manager.organisation_id)
    return invitations.select_related("organisation")


def _organisation(manager: Membership, organisation_id: int) -> Organisation:
    organisation = Organisation.objects.filter(pk=organisation_id, forum_id=manager.forum_id).first()
    if organisation is None:
        raise InvalidInput(_("Choose one of the forum's organisations."), field="organisation")
    return organisation


def _check_role(manager: Membership, role: str, target: Any) -> None:
    if role not in Role.values:
        raise InvalidInput(_("Unknown role."), field="role")
    if role not in manager.assignable_roles():
        raise _refuse(manager, _("Your role cannot give that role."), target)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def invite(manager: Membership, *, email: str, organisation_id: int, role: str, base_url: str) -> Invitation:
    """Invite someone by e-mail; the link is valid for a week and works once."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvalidInput(_("Write a valid e-mail address."), field="email")
    organisation = _organisation(manager, organisation_id)
    if not can_manage(manager, organisation):
        raise _refuse(manager, _("You can only invite people to your own organisation."), organisation)
    _check_role(manager, role, organisation)
    if Membership.objects.filter(forum_id=manager.forum_id, user__email__iexact=email, is_active=True).exists():
        raise InvalidInput(_("%(email)s is already a member of the forum.") % {"email": email}, field="email")
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            forum_id=manager.forum_id, organisation=organisation, email=email, role=role, key_hash=_key_hash(key),
            invited_by_id=manager.user_id, expires_at=timezone.now() + dt.timedelta(days=INVITATION_DAYS))
        audit.record(manager, AuditEvent.Action.INVITE, invitation, {"email": email, "role": role,
                                                                     "organisation": organisation.name})
    link = base_url.rstrip("/") + reverse("accept-invitation", kwargs={"key": key})
    send_mail(
        subject=_("Invitation to %(forum)s in Lägesbild") % {"forum": manager.forum.name},
        message=_(
            "%(name)s has invited you to %(forum)s in Lägesbild, the forum's shared situational picture, "
            "for %(organisation)s.\n\nAccept the invitation within %(days)d days:\n%(link)s\n\n"
            "If you did not expect this, you can ignore this message."
        ) % {"name": manager.user.display_name, "forum": manager.forum.name, "organisation": organisation.name,
             "days": INVITATION_DAYS, "link": link},
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )
    return invitation


def invitation_for(key: str) -> Invitation:
    """The invitation a link names, if it can still be used."""
    invitation = Invitation.objects.select_related("forum", "organisation").filter(key_hash=_key_hash(key)).first()
    if invitation is None or invitation.revoked_at is not None:
        _log_refused_link(invitation, "unknown or revoked invitation")
        raise NotFound(_("This invitation link is not valid. Ask for a new invitation."))
    if invitation.accepted_at is not None:
        _log_refused_link(invitation, "invitation already used")
        raise InvalidInput(_("This invitation has already been used. Sign in instead."), code="used")
    if invitation.expires_at <= timezone.now():
        _log_refused_link(invitation, "invitation expired")
        raise InvalidInput(_("This invitation has expired. Ask the person who invited you for a new one."),
                           code="expired")
    return invitation


def _log_refused_link(invitation: Invitation | None, reason: str) -> None:
    """A dead invitation link was opened: nobody is signed in to blame, but the forum sees it happened."""
    audit.keep_refusal(AuditEvent(
        forum=invitation.forum if invitation else None, action=AuditEvent.Action.REFUSED,
        object_type="invitation", object_id=invitation.pk if invitation else None,
        changes={"reason": reason, **({"email": invitation.email} if invitation else {})}, ip=audit.client_ip.get()))


@transaction.atomic
def accept_invitation(key: str, *, user: User | None = None, first_name: str = "", last_name: str = "",
                      password: str = "") -> Membership:
    """Use an invitation: the signed-in user, or a new account for the invited address, joins the forum."""
    invitation = invitation_for(key)
    # Lock the row so that two clicks on the same link cannot both use it.
    invitation = Invitation.objects.select_for_update().select_related("forum", "organisation").get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise InvalidInput(_("This invitation has already been used. Sign in instead."), code="used")
    if user is None:
        user = User.objects.filter(email__iexact=invitation.email).first()
        if user is not None:
            raise InvalidInput(_("You already have an account. Sign in first, then open the link again."),
                               code="sign_in")
        user = User.objects.create_user(email=invitation.email, password=password, first_name=first_name.strip(),
                                        last_name=last_name.strip())
    membership, _created = Membership.objects.update_or_create(
        forum=invitation.forum, user=user,
        defaults={"organisation": invitation.organisation, "role": invitation.role, "is_active": True})
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit.record(membership, AuditEvent.Action.JOIN, membership, {"invitation": invitation.pk,
                                                                  "invited_email": invitation.email})
    return membership


def _managed(manager: Membership, membership_id: int) -> Membership:
    target = Membership.objects.select_related("user", "organisation").filter(
        pk=membership_id, forum_id=manager.forum_id).first()
    if target is None:
        if Membership.objects.filter(pk=membership_id).exists():
            # Another forum's member, addressed by id: the same answer as for none, but logged.
            audit.record(manager, AuditEvent.Action.REFUSED, manager.forum,
                         {"reason": "membership of another forum", "membership": membership_id})
        raise NotFound(_("No such member."))
    if not can_manage(manager, target.organisation):
        raise _refuse(manager, _("You can only manage your own organisation's members."), target)
    if target.pk == manager.pk:
        raise _refuse(manager, _("You cannot change your own membership."), target)
    return target


def _keep_a_coordinator(manager: Membership, target: Membership) -> None:
    others = Membership.objects.filter(forum_id=target.forum_id, role=Role.COORDINATOR, is_active=True).exclude(
        pk=target.pk)
    if target.is_coordinator and not others.exists():
        raise InvalidInput(_("A forum needs at least one active coordinator."), field="role")


# Checks run before the write's transaction, so that a refused attempt's audit event is kept.

def change_role(manager: Membership, membership_id: int, role: str) -> Membership:
    target = _managed(manager, membership_id)
    _check_role(manager, role, target)
    if target.is_coordinator and not manager.is_coordinator:
        raise _refuse(manager, _("Only coordinators can change a coordinator's role."), target)
    if role != Role.COORDINATOR:
        _keep_a_coordinator(manager, target)
    old = target.role
    with transaction.atomic():
        target.role = role
        target.save(update_fields=["role"])
        audit.record(manager, AuditEvent.Action.ROLE, target, {"user": target.user.email, "role": [old, role]})
    return target


def set_active(manager: Membership, membership_id: int, active: bool) -> Membership:
    target = _managed(manager, membership_id)
    if not active:
        _keep_a_coordinator(manager, target)
    action = AuditEvent.Action.REACTIVATE if active else AuditEvent.Action.SUSPEND
    with transaction.atomic():
        target.is_active = active
        target.save(update_fields=["is_active"])
        audit.record(manager, action, target, {"user": target.user.email})
    return target


def remove(manager: Membership, membership_id: int) -> None:
    target = _managed(manager, membership_id)
    _keep_a_coordinator(manager, target)
    with transaction.atomic():
        audit.record(manager, AuditEvent.Action.REMOVE, target, {"user": target.user.email,
                                                                "organisation": target.organisation.name})
        target.delete()


def add_organisation(manager: Membership, *, name: str, kind: str) -> Organisation:
    if not manager.can_administer_forum:
        raise _refuse(manager, _("Only coordinators can add organisations."), manager.forum)
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidInput(_("Give the organisation a name (at most 120 characters)."), field="name")
    if kind not in Organisation.Kind.values:
        raise InvalidInput(_("Choose what kind of organisation it is."), field="kind")
    if Organisation.objects.filter(forum_id=manager.forum_id, name__iexact=name).exists():
        raise InvalidInput(_("The forum already has an organisation with that name."), field="name")
    with transaction.atomic():
        organisation = Organisation.objects.create(forum_id=manager.forum_id, name=name, kind=kind)
        audit.record(manager, AuditEvent.Action.CREATE, organisation, {"name": name, "kind": kind})
    return organisation
