"""Background tasks for imports, run by `lagesbild db_worker` from the queue in the database."""

from __future__ import annotations

from django_tasks import task

from lagesbild.interop import imports


@task()
def check_import(batch_id: int) -> None:
    """The dry run of an uploaded file: every row read and checked, nothing written."""
    imports.check(batch_id)


@task()
def run_import(batch_id: int) -> None:
    """A checked file written in one transaction."""
    imports.run_import(batch_id)
