from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lagesbild.demo import DEMO_PASSWORD, ORGANISATIONS, create_demo_forum
from lagesbild.forums.models import Forum


class Command(BaseCommand):
    help = "Load the demo forum Farsta with organisations, demo users and synthetic deviations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if any forum exists.")
        parser.add_argument("--count", type=int, default=2000, help="Number of deviations (default 2000).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Forum.objects.exists():
            self.stdout.write("The database already has a forum; the demo was not loaded.")
            return
        if Forum.objects.filter(slug="farsta").exists():
            self.stdout.write("The demo forum 'farsta' already exists.")
            return
        forum = create_demo_forum(count=options["count"])
        self.stdout.write(self.style.SUCCESS(
            f"Loaded {forum.name} with {forum.deviations.count()} deviations. Demo users (password "
            f"'{DEMO_PASSWORD}'):"))
        for _kind, org, email, _first, _last, role in ORGANISATIONS:
            self.stdout.write(f"  {email:32} {role:12} {org}")
