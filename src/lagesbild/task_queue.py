"""The background tasks' queue (django-tasks-db, in the database): putting back what a dead worker held.

A worker marks a task RUNNING when it takes it, and SUCCESSFUL or FAILED when it is done. A worker killed in
between (kill -9, the out-of-memory killer, a power cut) leaves the task RUNNING for ever: the alerts of that
report never go out, an import never ends. So each worker is named after its machine and process, and
`requeue_abandoned` puts a RUNNING task back in the queue when the worker that took it is gone. `lagesbild
db_worker` does so as it starts (so a restarted service picks up what its predecessor died with), and `lagesbild
retention` daily for workers on other machines, once they have held a task for an hour.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

# Longer than any task takes (an import of a million rows takes a few minutes).
HELD_TOO_LONG = dt.timedelta(hours=1)


def _host() -> str:
    return socket.gethostname()[:40]


def worker_id() -> str:
    """This machine, this process, and a few random letters (a process id is reused in time)."""
    return f"{_host()}:{os.getpid()}:{get_random_string(8)}"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


def requeue_abandoned(held_too_long: dt.timedelta = HELD_TOO_LONG) -> int:
    """Put back in the queue the RUNNING tasks whose worker is gone: one of this machine whose process no longer
    runs, or any that has held its task for longer than `held_too_long`. Returns how many. A task put back
    runs again from its start; the tasks are written so that this is safe (an import rolls back whole)."""
    requeued = 0
    too_old = timezone.now() - held_too_long
    for task in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).only("worker_ids", "started_at"):
        host, _sep, rest = (task.worker_ids[-1] if task.worker_ids else "").partition(":")
        pid = rest.partition(":")[0]
        dead = host == _host() and pid.isdigit() and int(pid) != os.getpid() and _gone(int(pid))
        if dead or (task.started_at is not None and task.started_at < too_old):
            # Only if still RUNNING: another worker starting at the same moment may have put it back already.
            requeued += DBTaskResult.objects.filter(pk=task.pk, status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.READY, started_at=None)
    return requeued
