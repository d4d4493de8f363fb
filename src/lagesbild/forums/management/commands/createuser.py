import getpass
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lagesbild.errors import DomainError
from lagesbild.forums.models import Forum, Organisation, Role, User
from lagesbild.forums.services import add_member


class Command(BaseCommand):
    help = ("Create a user (or reuse one with the same e-mail address) and make them a member of a forum, "
            "for an organisation, with a role. The organisation is created if the forum does not have it yet.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--forum", required=True, help="The forum's short name.")
        parser.add_argument("--organisation", required=True, help="The organisation's name.")
        parser.add_argument("--kind", default=Organisation.Kind.OTHER, choices=Organisation.Kind.values,
                            help="The organisation's kind, if it is created.")
        parser.add_argument("--role", default=Role.REPORTER, choices=Role.values)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--password-stdin", action="store_true",
                            help="Read the password from standard input instead of asking for it.")

    def handle(self, *args: Any, **options: Any) -> None:
        forum = Forum.objects.filter(slug=options["forum"]).first()
        if forum is None:
            raise CommandError(f"No forum with the short name {options['forum']!r}.")
        password = None
        if not User.objects.filter(email__iexact=options["email"]).exists():
            if options["password_stdin"]:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass("Password: ")
            try:
                validate_password(password, User(email=options["email"]))
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        organisation, _created = Organisation.objects.get_or_create(
            forum=forum, name=options["organisation"], defaults={"kind": options["kind"]})
        try:
            membership = add_member(forum, email=options["email"], organisation=organisation, role=options["role"],
                                    password=password, first_name=options["first_name"],
                                    last_name=options["last_name"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f"{membership.user.email} is now {membership.get_role_display()} in {forum.name} "
            f"for {organisation.name}."))
