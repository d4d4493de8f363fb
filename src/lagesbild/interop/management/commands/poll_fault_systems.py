from typing import Any

from django.core.management.base import BaseCommand

from lagesbild.interop.handoff import poll


class Command(BaseCommand):
    help = ("Ask each fault-report system for the status of the deviations passed to it. Run every few minutes, "
            "e.g. from cron.")

    def handle(self, *args: Any, **options: Any) -> None:
        changed = poll()
        self.stdout.write(f"{changed} statuses changed.")
