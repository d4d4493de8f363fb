from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from lagesbild.forums.models import ApiToken, User
from lagesbild.forums.services import memberships_of


class Command(BaseCommand):
    help = "Manage API tokens for machine clients: create EMAIL, list EMAIL, revoke ID."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it (it is shown only once).")
        create.add_argument("email")
        create.add_argument("--forum", help="The forum's short name; needed when the user is in several forums.")
        create.add_argument("--name", default="", help="What the token is for.")
        listing = sub.add_parser("list", help="List a user's tokens.")
        listing.add_argument("email")
        revoke = sub.add_parser("revoke", help="Revoke a token by its id.")
        revoke.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "revoke":
            if not ApiToken.objects.filter(pk=options["id"], revoked_at__isnull=True).update(
                    revoked_at=timezone.now()):
                raise CommandError(f"No active token with id {options['id']}.")
            self.stdout.write(f"Revoked token {options['id']}.")
            return
        user = User.objects.filter(email__iexact=options["email"]).first()
        if user is None:
            raise CommandError(f"No user with the e-mail address {options['email']}.")
        if action == "create":
            memberships = memberships_of(user)
            if options["forum"]:
                memberships = memberships.filter(forum__slug=options["forum"])
            if len(memberships) != 1:
                raise CommandError(
                    f"{user.email} is a member of {len(memberships)} matching forums; name one with --forum."
                    if memberships else f"{user.email} is not a member of that forum.")
            membership = memberships[0]
            token, key = ApiToken.issue(membership, options["name"])
            # The key alone on stdout, so scripts can capture it; the rest goes to stderr.
            self.stderr.write(f"Token {token.pk} for {user.email} as {membership.organisation} in "
                              f"{membership.forum}. Send it as 'Authorization: Bearer <token>'.")
            self.stdout.write(key)
        else:
            for token in user.api_tokens.order_by("pk"):
                state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                scope = f"{token.forum.slug if token.forum else '-'}/{token.organisation or '-'}"
                self.stdout.write(f"{token.pk:5}  {state:18} last used {used:16}  {scope}  {token.name}")
