"""Background tasks, run by `lagesbild db_worker` from the queue in the database."""

from __future__ import annotations

import logging

from django.core.mail import get_connection
from django_tasks import task

from lagesbild.alerts import services

log = logging.getLogger(__name__)


@task()
def match_new_deviation(forum_id: int, deviation_id: int) -> int:
    """Alert the members whose saved views the new deviation matches; e-mail those who asked for it at once.
    An e-mail the mail server refuses is left unmarked, and `lagesbild alerts` sends it later."""
    alerts = services.match_new_deviation(forum_id, deviation_id)
    messages = services.immediate_messages(alerts)
    if messages:
        with get_connection() as connection:
            for alert, message in messages:
                try:
                    connection.send_messages([message])
                except OSError:  # smtplib's errors too: one refused address must not stop the others' mail
                    log.exception("Alert %s not e-mailed; the daily run tries again", alert.pk)
                    continue
                services.emailed(alert)
    return len(alerts)
