"""`lagesbild db_worker`: django-tasks-db's worker, which first puts back in the queue the tasks that a worker
of this machine died with (lagesbild.task_queue)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django_tasks_db.management.commands import db_worker

from lagesbild import task_queue


class Command(db_worker.Command):
    help = ("Run the background worker (e-mails, alerts, imports). It first puts back in the queue what a worker "
            "of this machine was running when it died.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        # Named after the machine and process, so that the next worker can tell whether this one is gone.
        parser.set_defaults(worker_id=task_queue.worker_id())

    def handle(self, *args: Any, **options: Any) -> None:
        requeued = task_queue.requeue_abandoned()
        if requeued:
            self.stdout.write(f"Put {requeued} tasks back in the queue: the worker running them had died.")
        super().handle(*args, **options)
