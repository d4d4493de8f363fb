"""Background tasks, run by `lagesbild db_worker` from the queue in the database."""

from __future__ import annotations

from django.core.mail import get_connection
from django_tasks import task

from lagesbild.alerts import services


@task()
def match_new_deviation(forum_id: int, deviation_id: int) -> int:
    """Alert the members whose saved views the new deviation matches; e-mail those who asked for it at once."""
    alerts = services.match_new_deviation(forum_id, deviation_id)
    messages = services.immediate_messages(alerts)
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    return len(alerts)
