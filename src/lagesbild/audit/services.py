"""Writing and reading the audit log (händelselogg)."""

from __future__ import annotations

import contextlib
import contextvars
import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.audit.models import AuditEvent
from lagesbild.csvfile import cell
from lagesbild.errors import Forbidden, InvalidInput
from lagesbild.forums.models import Forum, Membership, User

# The client address of the request being handled, set by lagesbild.middleware.AuditContextMiddleware.
# Services record events without being handed the request; this keeps "from where" in every event.
client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)
# Refused attempts noted during a request whose changes may be rolled back; lagesbild.middleware's
# WriteTransactionMiddleware writes them after the request's transaction has ended, whatever its outcome.
_refusals: contextvars.ContextVar[list[AuditEvent] | None] = contextvars.ContextVar("refusals", default=None)


def record(membership: Membership, action: str, obj: Model, changes: dict[str, Any] | None = None) -> AuditEvent:
    """Write one audit event for an action a member took in their forum."""
    event = AuditEvent(
        forum_id=membership.forum_id,
        actor_id=membership.user_id,
        organisation_id=membership.organisation_id,
        action=action,
        object_type=obj._meta.model_name or "",
        object_id=obj.pk,
        changes=changes or {},
        ip=client_ip.get(),
    )
    if action == AuditEvent.Action.REFUSED:
        return keep_refusal(event)
    event.save()
    return event


def keep_refusal(event: AuditEvent) -> AuditEvent:
    """Write a refused attempt so that it is kept even when the request's changes are rolled back."""
    pending = _refusals.get()
    if pending is None:
        event.save()
    else:
        pending.append(event)
    return event


@contextlib.contextmanager
def refusals_kept() -> Iterator[None]:
    """Collect the refusals recorded inside, and write them on the way out, after any rollback."""
    pending: list[AuditEvent] = []
    token = _refusals.set(pending)
    try:
        yield
    finally:
        _refusals.reset(token)
        for event in pending:
            event.save()


def refused(membership: Membership, reason: str, message: str, obj: Model | None = None) -> Forbidden:
    """Audit a refused attempt (kept even when the caller's transaction rolls back) and return the error."""
    record(membership, AuditEvent.Action.REFUSED, obj or membership.forum, {"reason": reason})
    return Forbidden(message)


def record_reads(membership: Membership, object_type: str, object_ids: Iterable[int],
                 changes: dict[str, Any] | None = None, batch: int = 2000) -> int:
    """A read event for each object, written in batches (an export reads many restricted deviations at once)."""
    written = 0
    events: list[AuditEvent] = []
    for object_id in object_ids:
        events.append(AuditEvent(forum_id=membership.forum_id, actor_id=membership.user_id,
                                 organisation_id=membership.organisation_id, action=AuditEvent.Action.READ,
                                 object_type=object_type, object_id=object_id, changes=changes or {},
                                 ip=client_ip.get()))
        if len(events) >= batch:
            written += len(AuditEvent.objects.bulk_create(events))
            events = []
    written += len(AuditEvent.objects.bulk_create(events))
    return written


def record_sign_in(user: User | None, action: str, email: str = "") -> AuditEvent:
    """Sign-ins belong to no forum: one event with the person (if known) and the address tried."""
    return AuditEvent.objects.create(
        actor=user, action=action, object_type="user", object_id=user.pk if user else None,
        changes={"email": email} if email else {}, ip=client_ip.get(),
    )


@dataclass
class AuditFilter:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    actions: Iterable[str] = ()
    organisation: int | None = None
    object_id: int | None = None


def forum_log(forum: Forum, flt: AuditFilter, hidden_deviations: QuerySet[Any] | None = None
              ) -> QuerySet[AuditEvent]:
    """The forum's events, newest first, and the sign-ins of its members.

    Events about the deviations in `hidden_deviations` (ids the reader's organisation may not see) are
    left out: a coordinator reads the log with their own organisation's rights, like everything else.
    """
    member_ids = Membership.objects.filter(forum=forum).values("user_id")
    events = AuditEvent.objects.filter(forum=forum) | AuditEvent.objects.filter(
        forum__isnull=True, actor_id__in=member_ids)
    if hidden_deviations is not None:
        events = events.exclude(object_type="deviation", object_id__in=hidden_deviations)
    if flt.start and flt.end and flt.start > flt.end:
        raise InvalidInput(_("The start of the period is after its end."), field="from")
    if flt.start:
        events = events.filter(at__gte=flt.start)
    if flt.end:
        events = events.filter(at__lte=flt.end)
    actions = list(flt.actions)
    for action in actions:
        if action not in AuditEvent.Action.values:
            raise InvalidInput(_("Unknown event type: %(action)s.") % {"action": action}, field="action")
    if actions:
        events = events.filter(action__in=actions)
    if flt.organisation:
        events = events.filter(organisation_id=flt.organisation)
    if flt.object_id:
        events = events.filter(object_id=flt.object_id)
    return events.select_related("actor", "organisation").order_by("-at", "-pk")


def as_csv(events: Iterable[AuditEvent]) -> str:
    """The events as CSV for a spreadsheet: times in the forum's time zone, one row per event."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Time"), _("Event"), _("Person"), _("E-mail address"), _("Organisation"), _("Object"),
                     _("Object id"), _("IP address"), _("Details")])
    for event in events:
        writer.writerow([cell(value) for value in (
            timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S"),
            event.get_action_display(),
            event.actor.display_name if event.actor else "",
            event.actor.email if event.actor else "",
            event.organisation.name if event.organisation else "",
            event.object_type,
            event.object_id or "",
            event.ip or "",
            json.dumps(event.changes, ensure_ascii=False) if event.changes else "",
        )])
    return out.getvalue()
