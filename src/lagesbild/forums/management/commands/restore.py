from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lagesbild import backup


class Command(BaseCommand):
    help = ("Restore a backup made by `lagesbild backup`: the database as it was then, and the files, each checked "
            "against the backup's row counts and checksums. Stop the app and the worker first.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The backup to restore")
        parser.add_argument("--replace", action="store_true",
                            help="Replace a database that holds forums already (everything in it is lost)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup.read_manifest(options["file"])
            if not options["replace"] and not backup.database_is_empty():
                raise CommandError("The database holds forums already. Add --replace to replace everything in it "
                                   "with the backup.")
            summary = backup.restore(options["file"])
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored {summary.tables} tables ({summary.rows} rows) and {summary.files} files into "
                          f"the {backup.describe_database()} and {settings.MEDIA_ROOT}; every table and file "
                          "matches the backup.")
        if summary.kept:
            self.stdout.write(f"The database as it was before is kept in {summary.kept}.")
