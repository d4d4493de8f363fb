"""Passing a physical defect to its owner's fault-report system (felanmälan) over Open311, and following it.

A member passes a forum-wide deviation (broken lighting, damage, littering: whatever categories the operator
mapped) to a configured system. The system's id for it and its status there are kept with the deviation and
shown on it; `lagesbild poll-fault-systems` (run every few minutes) asks the systems for their statuses.

Only forum-wide deviations leave Lägesbild: one that only some organisations may see is not sent to a system
whose staff are none of them. What is sent is the category's service code, the position, the place name and
the description; never who reported it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.basemap_picture import USER_AGENT
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Conflict, DomainError, NotFound
from lagesbild.forums.models import Membership
from lagesbild.interop.models import FaultSystem, HandOff

log = logging.getLogger(__name__)
TIMEOUT = 15  # seconds for one call to a fault system
MAX_ANSWER = 2_000_000  # bytes read from an answer; a status list is far smaller
BATCH = 50  # requests asked for in one status call


class FaultSystemError(DomainError):
    """The fault system did not take it: unreachable, or it answered with an error."""

    status = 502
    code = "fault_system"


def systems_for(membership: Membership, deviation: Deviation) -> list[FaultSystem]:
    """The systems this member may pass the deviation to: those that take its category (or its main one)."""
    if deviation.visibility != Deviation.Visibility.FORUM:
        return []
    keys = {deviation.category.key, deviation.category.parent.key if deviation.category.parent else ""}
    return [system for system in FaultSystem.objects.filter(forum_id=membership.forum_id).order_by("name")
            if keys & set(system.services)
            and membership.can_hand_off(deviation.organisation_id, system.organisation_id)]


def describe(deviation: Deviation) -> dict[str, Any] | None:
    """What was passed on, and the status there as last polled; None if it was not."""
    hand_off = HandOff.objects.filter(deviation=deviation).select_related("system").first()
    if hand_off is None:
        return None
    return {"system": hand_off.system.name, "externalId": hand_off.external_id or None,
            "status": hand_off.status, "statusLabel": str(hand_off.get_status_display()),
            "statusNotes": hand_off.status_notes, "handedOffAt": hand_off.handed_off_at,
            "checkedAt": hand_off.checked_at, "updatedThereAt": hand_off.updated_there_at}


def hand_off(membership: Membership, deviation_id: int, system_id: int) -> HandOff:
    """Post the deviation to the system as a new service request, and keep the id it gets there.

    Nothing is stored unless the system took it; a deviation is passed at most once.
    """
    deviation = deviations.get_visible_deviation(membership, deviation_id)
    system = FaultSystem.objects.filter(forum_id=membership.forum_id, pk=system_id).first()
    if system is None:
        raise NotFound(_("No such fault-report system."))
    if deviation.visibility != Deviation.Visibility.FORUM:
        raise Conflict(_("Only deviations the whole forum may see are passed to a fault-report system."),
                       code="restricted")
    if not membership.can_hand_off(deviation.organisation_id, system.organisation_id):
        raise audit.refused(membership, "hand_off", _("Your role does not allow passing deviations on."),
                            deviation)
    if system not in systems_for(membership, deviation):
        raise Conflict(_("%(system)s does not take %(category)s.") % {
            "system": system.name, "category": deviation.category.name}, code="category")
    parent = deviation.category.parent
    code = system.services.get(deviation.category.key) or system.services.get(parent.key if parent else "", "")
    # The row is claimed before the call (one deviation, one hand-off), so two members pressing at once do not
    # both send it; it is removed again if the system does not take it.
    try:
        with transaction.atomic():
            claimed = HandOff.objects.create(
                forum_id=membership.forum_id, deviation=deviation, system=system, service_code=code,
                status=HandOff.Status.PENDING, handed_off_by_id=membership.user_id,
                organisation_id=membership.organisation_id)
    except IntegrityError as exc:
        raise Conflict(_("It has already been passed to a fault-report system."), code="handed_off") from exc
    try:
        form = {"service_code": code, "lat": f"{deviation.lat:.7f}", "long": f"{deviation.lon:.7f}",
                "description": deviation.description, "address_string": deviation.place_name}
        answer = _call(system, "requests.json", form=form)
        first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else {}
        external_id, token = str(first.get("service_request_id") or ""), str(first.get("token") or "")
        if not external_id and not token:
            raise FaultSystemError(_("%(system)s answered without an id for the request.") % {
                "system": system.name})
    except BaseException:
        HandOff.objects.filter(pk=claimed.pk).delete()
        raise
    with transaction.atomic():
        HandOff.objects.filter(pk=claimed.pk).update(
            external_id=external_id[:100], token=token[:100],
            status=HandOff.Status.OPEN if external_id else HandOff.Status.PENDING,
            notice=str(first.get("service_notice") or "")[:300], handed_off_at=timezone.now())
        audit.record(membership, AuditEvent.Action.UPDATE, deviation,
                     {"handed_off": [None, f"{system.name} {external_id or token}".strip()]})
    claimed.refresh_from_db()
    return claimed


ABANDONED = dt.timedelta(minutes=10)  # a claim older than this with neither id nor token was never finished


def poll(now: dt.datetime | None = None) -> int:
    """Ask every system for the status of what was passed to it and is not closed. Returns how many changed.

    A system that cannot be reached is noted on its hand-offs and asked again next time.
    """
    now = now or timezone.now()
    changed = 0
    # A claim whose sending process died before the system answered: free the deviation to be sent again.
    HandOff.objects.filter(external_id="", token="", handed_off_at__lt=now - ABANDONED).delete()
    for system in FaultSystem.objects.order_by("pk"):
        waiting = list(system.hand_offs.exclude(status=HandOff.Status.CLOSED).exclude(external_id="", token="")
                       .order_by("pk"))
        if not waiting:
            continue
        try:
            changed += _resolve_tokens(system, [h for h in waiting if not h.external_id], now)
            known = [h for h in waiting if h.external_id]
            for start in range(0, len(known), BATCH):
                changed += _update_statuses(system, known[start:start + BATCH], now)
        except FaultSystemError as exc:
            log.warning("Fault system %s: %s", system.name, exc.message)
            HandOff.objects.filter(pk__in=[h.pk for h in waiting]).update(check_error=exc.message[:300],
                                                                            checked_at=now)
    return changed


def _resolve_tokens(system: FaultSystem, pending: list[HandOff], now: dt.datetime) -> int:
    resolved = 0
    for hand_off in pending:
        answer = _call(system, f"tokens/{urllib.parse.quote(hand_off.token, safe='')}.json")
        first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else {}
        if first.get("service_request_id"):
            HandOff.objects.filter(pk=hand_off.pk).update(external_id=str(first["service_request_id"])[:100],
                                                          status=HandOff.Status.OPEN, checked_at=now, check_error="")
            resolved += 1
    return resolved


def _update_statuses(system: FaultSystem, hand_offs: list[HandOff], now: dt.datetime) -> int:
    answer = _call(system, "requests.json", query={"service_request_id": ",".join(h.external_id for h in hand_offs)})
    by_id = {str(r.get("service_request_id")): r for r in answer if isinstance(r, dict)} \
        if isinstance(answer, list) else {}
    changed = 0
    for hand_off in hand_offs:
        found = by_id.get(hand_off.external_id)
        if found is None:
            HandOff.objects.filter(pk=hand_off.pk).update(checked_at=now, check_error=_("Not found in the system."))
            continue
        status = HandOff.Status.CLOSED if str(found.get("status")).lower() == "closed" else HandOff.Status.OPEN
        notes = str(found.get("status_notes") or "")[:300]
        updated = _time(found.get("updated_datetime"))
        if (status, notes) != (hand_off.status, hand_off.status_notes):
            changed += 1
        HandOff.objects.filter(pk=hand_off.pk).update(status=status, status_notes=notes, updated_there_at=updated,
                                                      checked_at=now, check_error="")
    return changed


def _time(value: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else None


def _call(system: FaultSystem, path: str, query: dict[str, str] | None = None,
          form: dict[str, str] | None = None) -> Any:
    """One GeoReport v2 call in JSON, with the system's key; any failure is a FaultSystemError."""
    params = dict(query or {})
    if system.jurisdiction:
        params["jurisdiction_id"] = system.jurisdiction
    url = system.endpoint.rstrip("/") + "/" + path
    body = None
    if form is not None:
        body = urllib.parse.urlencode({**form, **params, "api_key": system.api_key}).encode()
    else:
        url += "?" + urllib.parse.urlencode({**params, "api_key": system.api_key})
    if not url.startswith(("https://", "http://")):
        raise FaultSystemError(_("%(system)s has no http(s) address.") % {"system": system.name})
    request = urllib.request.Request(url, data=body, method="POST" if form is not None else "GET",  # noqa: S310
                                     headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            data = response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        raise FaultSystemError(_("%(system)s refused it (HTTP %(status)s): %(detail)s") % {
            "system": system.name, "status": exc.code, "detail": _error_text(exc)}) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FaultSystemError(_("%(system)s could not be reached. Try again later.") % {
            "system": system.name}) from exc
    if len(data) > MAX_ANSWER:
        raise FaultSystemError(_("%(system)s answered with too much.") % {"system": system.name})
    try:
        return json.loads(data)
    except ValueError as exc:
        raise FaultSystemError(_("%(system)s did not answer in JSON.") % {"system": system.name}) from exc


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: followed, a POST would arrive as a GET without its form, and its answer could be
    taken for the system's."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _error_text(error: urllib.error.HTTPError) -> str:
    """The description from an Open311 error list, if the system sent one."""
    try:
        answer = json.loads(error.read(20_000))
        return str(answer[0].get("description", ""))[:200]
    except (ValueError, IndexError, AttributeError, KeyError, TypeError, OSError):
        return ""

