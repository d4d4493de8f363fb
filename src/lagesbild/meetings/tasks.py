"""Background tasks, run by `lagesbild db_worker` from the queue in the database."""

from __future__ import annotations

from django.core.mail import get_connection
from django_tasks import task

from lagesbild.meetings import reminders
from lagesbild.meetings.models import Action, Protocol


@task()
def send_action_reminder(action_id: int, kind: str) -> int:
    action = Action.objects.select_related("organisation", "responsible", "forum").filter(pk=action_id).first()
    if action is None or not action.is_open:
        return 0  # done or removed since the reminder was queued
    message = reminders.reminder_message(action, kind)
    return message.send() if message else 0


@task()
def send_protocol_digest(protocol_id: int) -> int:
    protocol = Protocol.objects.select_related("meeting", "meeting__forum").filter(pk=protocol_id).first()
    if protocol is None:
        return 0
    messages = reminders.digest_messages(protocol)
    with get_connection() as connection:
        return connection.send_messages(messages) or 0
