from typing import Any

from django.core.management.base import BaseCommand

from lagesbild.meetings.reminders import queue_reminders


class Command(BaseCommand):
    help = ("Queue e-mail reminders about actions that are due soon or overdue, in every forum. Run daily, "
            "e.g. from cron; `lagesbild db_worker` sends them.")

    def handle(self, *args: Any, **options: Any) -> None:
        queued = queue_reminders()
        self.stdout.write(f"Queued {queued} reminders.")
