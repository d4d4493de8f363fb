"""Domain functions for forums, organisations and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import ApiToken, Forum, Membership, Organisation, Role, User


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

    if not Membership.objects.filter(user=user, is_active=True, forum__require_two_factor=True).exists():
        return False
    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def memberships_of(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("forum", "organisation")
        .filter(user=user, is_active=True)
        .order_by("forum__name")
    )


def create_forum(slug: str, name: str, area: dict[str, Any] | None = None) -> Forum:
    if area is not None:
        geometry.validate_area(area)
    if Forum.objects.filter(slug=slug).exists():
        raise InvalidInput(_("A forum with that short name already exists."), field="slug")
    return Forum.objects.create(slug=slug, name=name, area=area)


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
