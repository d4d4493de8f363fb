"""Reminder e-mails about actions, and the digest sent when a protocol is published.

`queue_reminders` runs daily (`lagesbild reminders`, from cron or a systemd timer). It records each
reminder once per action, kind and due date, and leaves the sending to the background worker.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lagesbild.forums.models import Forum, Membership, User
from lagesbild.meetings.models import Action, Protocol, Reminder


def _url(name: str, **kwargs: object) -> str:
    return settings.LAGESBILD_BASE_URL + reverse(name, kwargs=kwargs)


def due_for_reminder(forum: Forum, today: dt.date) -> list[tuple[Action, str]]:
    """Open actions due within the forum's reminder days, or overdue, not yet reminded of."""
    soon = today + dt.timedelta(days=forum.reminder_days)
    found: list[tuple[Action, str]] = []
    for action in Action.objects.filter(forum=forum, status__in=Action.OPEN, due_date__lte=soon).select_related(
            "organisation", "responsible"):
        kind = Reminder.Kind.OVERDUE if action.due_date < today else Reminder.Kind.DUE_SOON
        if not Reminder.objects.filter(action=action, kind=kind, due_date=action.due_date).exists():
            found.append((action, kind))
    return found


def queue_reminders(now: dt.datetime | None = None) -> int:
    """Queue the reminders that are due today in every forum; returns how many were queued."""
    from lagesbild.meetings.tasks import send_action_reminder

    now = now or timezone.now()
    queued = 0
    for forum in Forum.objects.all():
        today = now.astimezone(ZoneInfo(forum.timezone)).date()
        for action, kind in due_for_reminder(forum, today):
            try:
                with transaction.atomic():
                    Reminder.objects.create(forum=forum, action=action, kind=kind, due_date=action.due_date)
                    transaction.on_commit(partial(send_action_reminder.enqueue, action.pk, kind))
            except IntegrityError:
                continue  # another run recorded it first
            queued += 1
    return queued


def recipients(action: Action) -> list[str]:
    """The responsible person and the organisation's leads; with neither, everyone in it who reports."""
    members = Membership.objects.filter(forum_id=action.forum_id, organisation_id=action.organisation_id,
                                        is_active=True, user__is_active=True).select_related("user")
    chosen = {m.user.email for m in members if m.user_id == action.responsible_id or m.leads_organisation}
    if not chosen:
        chosen = {m.user.email for m in members if m.can_report}
    return sorted(chosen)


def reminder_message(action: Action, kind: str) -> EmailMessage | None:
    to = recipients(action)
    if not to:
        return None
    with translation.override("sv"):
        due = date_format(action.due_date, "j F Y")
        if kind == Reminder.Kind.OVERDUE:
            subject = _("Overdue action: %(title)s") % {"title": action.title}
            lead = _("The action below was due on %(due)s and is not marked done.") % {"due": due}
        else:
            subject = _("Action due %(due)s: %(title)s") % {"due": due, "title": action.title}
            lead = _("The action below is due on %(due)s.") % {"due": due}
        body = "\n\n".join([
            lead,
            f"{action.title}\n{_('Responsible')}: {action.organisation.name}"
            + (f" ({action.responsible.display_name})" if action.responsible else ""),
            _("Follow it up or mark it done here: %(url)s") % {
                "url": _url("action", forum=action.forum.slug, action_id=action.pk)},
            _("This reminder was sent by Lägesbild for %(forum)s.") % {"forum": action.forum.name},
        ])
    return EmailMessage(f"[{action.forum.name}] {subject}", body, to=to)


def digest_messages(protocol: Protocol) -> list[EmailMessage]:
    """One e-mail per member: the protocol is published, and their organisation's open actions."""
    meeting = protocol.meeting
    forum = meeting.forum
    members = Membership.objects.filter(forum=forum, is_active=True, user__is_active=True).select_related(
        "user", "organisation")
    open_by_org: dict[int, list[Action]] = {}
    for action in Action.objects.filter(forum=forum, status__in=Action.OPEN).order_by("due_date"):
        open_by_org.setdefault(action.organisation_id, []).append(action)
    content = protocol.content
    messages = []
    with translation.override("sv"):
        for member in members:
            user: User = member.user
            lines = [
                _("The protocol of %(title)s (version %(version)d) is published.") % {
                    "title": meeting.title, "version": protocol.version},
                _("Read it here: %(url)s") % {"url": _url("protocol", forum=forum.slug, meeting_id=meeting.pk)},
                _("%(items)d agenda items, %(new)d new actions, %(followed)d actions followed up.") % {
                    "items": len(content["items"]), "new": len(content["newActions"]),
                    "followed": len(content["followedUp"])},
            ]
            own = open_by_org.get(member.organisation_id, [])
            if own:
                lines.append(_("Open actions for %(organisation)s:") % {"organisation": member.organisation.name}
                             + "".join(f"\n- {a.title} ({date_format(a.due_date, 'j F Y')})" for a in own))
            subject = _("Protocol published: %(title)s") % {"title": meeting.title}
            messages.append(EmailMessage(f"[{forum.name}] {subject}", "\n\n".join(lines), to=[user.email]))
    return messages
