import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lagesbild.errors import DomainError
from lagesbild.forums.services import create_forum


class Command(BaseCommand):
    help = "Create a forum. Its area is a GeoJSON Polygon (or a Feature with one) in WGS84."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Short name used in addresses, e.g. 'farsta'.")
        parser.add_argument("name", help="The forum's name, e.g. 'Farsta trygghetsforum'.")
        parser.add_argument("--area", type=Path, help="A GeoJSON file with the forum's area.")
        parser.add_argument("--timezone", default="Europe/Stockholm",
                            help="The forum's time zone (IANA name); default Europe/Stockholm.")

    def handle(self, *args: Any, **options: Any) -> None:
        area = None
        if options["area"]:
            try:
                area = json.loads(options["area"].read_text())
            except (OSError, ValueError, RecursionError) as exc:
                raise CommandError(f"Could not read the area: {exc}") from exc
            if not isinstance(area, dict):
                raise CommandError("The area file is not a GeoJSON object.")
            if area.get("type") == "Feature":
                area = area.get("geometry")
            elif area.get("type") == "FeatureCollection" and area.get("features"):
                area = area["features"][0].get("geometry")
        try:
            forum = create_forum(options["slug"], options["name"], area, options["timezone"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Created the forum {forum.name} ({forum.slug})."))
