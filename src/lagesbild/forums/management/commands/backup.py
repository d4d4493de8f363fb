from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lagesbild import backup


class Command(BaseCommand):
    help = ("Back up the database and the uploaded files (photos, imports) into one tar file, with each table's row "
            "count and checksum. The app may keep running.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The backup to write, e.g. /var/backups/lagesbild-2026-12-01.tar")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = backup.backup(options["file"])
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Backed up the {backup.describe_database()} ({summary.tables} tables, {summary.rows} rows) "
                          f"and {summary.files} files from {settings.MEDIA_ROOT} to {options['file']} "
                          f"({summary.bytes / 1e6:.1f} MB).")
