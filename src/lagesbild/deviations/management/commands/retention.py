from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection

from lagesbild import data_version, spatial_index, task_queue
from lagesbild.deviations import counts
from lagesbild.deviations.retention import apply_retention, remove_orphan_photos
from lagesbild.forums.models import Forum
from lagesbild.interop.imports import remove_abandoned
from lagesbild.middleware import database_busy


class Command(BaseCommand):
    help = ("Anonymise or delete deviations older than each forum keeps them (its retention setting). "
            "Run daily, e.g. from cron.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--forum", help="Only this forum (short name).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except OperationalError as error:
            if not database_busy(error):
                raise
            # SQLite's write lock, held by another process longer than the busy timeout: no traceback for cron.
            raise CommandError("The database is busy: another process held its write lock too long. What was "
                               "done so far is kept; run `lagesbild retention` again later.") from error

    def _run(self, options: dict[str, Any]) -> None:
        forums = Forum.objects.all()
        if options["forum"]:
            forums = forums.filter(slug=options["forum"])
            if not forums.exists():
                raise CommandError(f"No forum with the short name {options['forum']!r}.")
        for forum in forums:
            result = apply_retention(forum, dry_run=options["dry_run"])
            if result is None:
                self.stdout.write(f"{forum.slug}: keeps deviations without limit.")
                continue
            verb = "would " + result.action if options["dry_run"] else result.action + "d"
            self.stdout.write(
                f"{forum.slug}: {verb} {result.deviations} deviations observed before "
                f"{result.cutoff:%Y-%m-%d} ({result.photos} photos, {result.comments} comments), and "
                f"{result.walks} safety walks.")
        if not options["dry_run"] and not options["forum"]:
            # Uploaded files that were never imported are not kept either.
            removed = remove_abandoned()
            self.stdout.write(f"Removed {removed} uploads older than a week that were never imported.")
            data_version.prune()  # the data versions stay; only the change log behind them shrinks
            counts.prune()  # counts left at nothing by what retention deleted
            orphans = remove_orphan_photos()
            self.stdout.write(f"Removed {orphans} photo files that no report kept (left by a process that died).")
            requeued = task_queue.requeue_abandoned()  # a worker's own restart does it for its machine at once
            self.stdout.write(f"Put {requeued} background tasks back in the queue, held by a worker that died.")
            # Last: on SQLite it holds the write lock for a while (2 s at 1 M deviations).
            spatial_index.refresh_statistics(connection)  # SQLite's planner statistics, as the data grows
