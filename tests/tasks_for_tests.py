"""A background task for tests/test_faults.py, importable by a worker in a process of its own."""

from __future__ import annotations

import time
from pathlib import Path

from django_tasks import task


@task()
def slow_the_first_time(marker: str) -> str:
    """Holds the worker for a minute the first time (long enough to kill it), and returns at once after."""
    path = Path(marker)
    if not path.exists():
        path.write_text("started")
        time.sleep(60)
        return "first"
    return "again"
