"""Actions (åtgärder): what the forum decided to do, where, by whom and by when, and their follow-up.

Coordinators create and change any action. An organisation lead may create actions for their own
organisation. Members of the responsible organisation who can report follow the action up and move
its status; everyone in the forum reads actions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Conflict, InvalidInput, NotFound
from lagesbild.forums.models import Membership, Organisation
from lagesbild.meetings.models import Action, ActionDeviation, AgendaItem, FollowUp
from lagesbild.meetings.services import require_unlocked
from lagesbild.places import services as places

MAX_TITLE = 200
MAX_TEXT = 10_000
MAX_DUE = dt.timedelta(days=10 * 366)  # an action due further ahead than this is a typing mistake


@dataclass
class ActionInput:
    title: str
    organisation_id: int | None
    due_date: dt.date | None
    description: str = ""
    responsible_id: int | None = None
    place_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    deviation_ids: list[int] = field(default_factory=list)
    agenda_item_id: int | None = None
    meeting_id: int | None = None


def forum_actions(membership: Membership) -> QuerySet[Action]:
    return Action.objects.filter(forum_id=membership.forum_id).select_related(
        "organisation", "responsible", "place", "meeting")


def get_action(membership: Membership, action_id: int) -> Action:
    action = forum_actions(membership).filter(pk=action_id).first()
    if action is None:
        raise NotFound(_("No such action."))
    return action


def my_open_actions(membership: Membership) -> QuerySet[Action]:
    """The open actions the member's organisation is responsible for, soonest due first."""
    return forum_actions(membership).filter(organisation_id=membership.organisation_id,
                                            status__in=Action.OPEN).order_by("due_date", "pk")


def today(membership: Membership) -> dt.date:
    return timezone.now().astimezone(ZoneInfo(membership.forum.timezone)).date()


def can_follow_up(membership: Membership, action: Action) -> bool:
    return membership.can_follow_up_for(action.organisation_id)


def _organisation(membership: Membership, organisation_id: int | None) -> Organisation:
    if not organisation_id:
        raise InvalidInput(_("Choose the organisation responsible for the action."), field="organisation")
    org = Organisation.objects.filter(forum_id=membership.forum_id, pk=organisation_id).first()
    if org is None:
        raise InvalidInput(_("Unknown organisation."), field="organisation")
    return org


def _responsible(membership: Membership, organisation: Organisation, user_id: int | None) -> int | None:
    if not user_id:
        return None
    if not organisation.memberships.filter(user_id=user_id, is_active=True).exists():
        raise InvalidInput(_("The responsible person must be a member of the responsible organisation."),
                           field="responsible")
    return user_id


def _check_due(membership: Membership, due: dt.date) -> dt.date:
    if due > today(membership) + MAX_DUE:
        raise InvalidInput(_("The due date can be at most ten years ahead."), field="due_date")
    return due


def _title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise InvalidInput(_("Say what will be done."), field="title")
    if len(title) > MAX_TITLE:
        raise InvalidInput(_("The text is too long (at most %(max)d characters).") % {"max": MAX_TITLE},
                           field="title")
    return title


def _text(text: str, name: str) -> str:
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("The text is too long (at most %(max)d characters).") % {"max": MAX_TEXT}, field=name)
    return text


def create_action(membership: Membership, data: ActionInput) -> Action:
    """An action, from a deviation, a group of deviations, a place or an agenda item."""
    title = _title(data.title)
    organisation = _organisation(membership, data.organisation_id)
    if not membership.can_create_action_for(organisation.pk):
        raise audit.refused(membership, "action for another organisation",
                            _("Coordinators create actions; organisation leads only for their own organisation."))
    if data.due_date is None:
        raise InvalidInput(_("Give the action a due date."), field="due_date")
    if data.due_date < today(membership):
        raise InvalidInput(_("The due date cannot be before the day the action is created."), field="due_date")
    _check_due(membership, data.due_date)
    responsible = _responsible(membership, organisation, data.responsible_id)
    item = None
    meeting = None
    if data.agenda_item_id:
        item = AgendaItem.objects.filter(forum_id=membership.forum_id, pk=data.agenda_item_id).select_related(
            "meeting", "place").first()
        if item is None:
            raise NotFound(_("No such agenda item."))
        meeting = item.meeting
    elif data.meeting_id:
        from lagesbild.meetings.services import get_meeting

        meeting = get_meeting(membership, data.meeting_id)
    if meeting is not None:
        require_unlocked(meeting)
    place = places.get_place(membership, data.place_id) if data.place_id else (item.place if item else None)
    linked = list(deviations.visible_deviations(membership).filter(pk__in=data.deviation_ids))
    if len(linked) != len(set(data.deviation_ids)):
        raise NotFound(_("No such deviation."))
    lon, lat = data.lon, data.lat
    if (lon is None) != (lat is None):
        raise InvalidInput(_("Give both longitude and latitude, or neither."), field="lon" if lon is None else "lat")
    if lon is not None and lat is not None:
        geometry.check_lon_lat(lon, lat)
        if not geometry.area_contains(membership.forum.area, lon, lat):
            raise InvalidInput(_("The place lies outside the forum's area."), field="lon")
    elif place is not None:
        lon, lat = place.lon, place.lat
    elif linked:
        lon, lat = deviations.shared_centre(membership.forum, [d.pk for d in linked]) or (None, None)
    with transaction.atomic():
        action = Action.objects.create(
            forum_id=membership.forum_id, title=title, description=_text(data.description, "description"),
            organisation=organisation, responsible_id=responsible, due_date=data.due_date, place=place,
            lon=lon, lat=lat, meeting=meeting, agenda_item=item, created_by_id=membership.user_id)
        ActionDeviation.objects.bulk_create(
            [ActionDeviation(forum_id=membership.forum_id, action=action, deviation=d) for d in linked])
        deviations.start_action_on(membership, [d.pk for d in linked], action.pk)
        # The linked deviations are not named here: the log is read by coordinators who may not see them all,
        # and each deviation's own event records the action (see deviations.services.start_action_on).
        audit.record(membership, AuditEvent.Action.CREATE, action, {
            "title": title, "organisation": organisation.name, "due_date": data.due_date.isoformat(),
            "place": place.pk if place else None})
    return action


ADMIN_FIELDS = {"title", "description", "organisation_id", "responsible_id", "due_date", "place_id"}


def update_action(membership: Membership, action_id: int, changes: dict[str, Any]) -> Action:
    """Change what an action is, who owns it or when it is due (coordinators; the responsible
    organisation's lead may name the responsible person)."""
    action = get_action(membership, action_id)
    unknown = set(changes) - ADMIN_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(_("The field %(name)s cannot be changed.") % {"name": name}, field=name)
    if not membership.can_change_action(action.organisation_id, set(changes)):
        raise audit.refused(membership, "action change by a non-coordinator",
                            _("Only coordinators change an action; its organisation follows it up."), action)
    values: dict[str, Any] = {}
    if "title" in changes:
        values["title"] = _title(changes["title"])
    if "description" in changes:
        values["description"] = _text(changes["description"], "description")
    organisation = action.organisation
    if "organisation_id" in changes:
        organisation = _organisation(membership, changes["organisation_id"])
        values["organisation_id"] = organisation.pk
    if "responsible_id" in changes or "organisation_id" in changes:
        values["responsible_id"] = _responsible(membership, organisation,
                                                changes.get("responsible_id", action.responsible_id))
    if "due_date" in changes:
        due = changes["due_date"]
        if due is None:
            raise InvalidInput(_("Give the action a due date."), field="due_date")
        created = action.created_at.astimezone(ZoneInfo(membership.forum.timezone)).date()
        if due < created:
            raise InvalidInput(_("The due date cannot be before the day the action was created."), field="due_date")
        values["due_date"] = _check_due(membership, due)
    if "place_id" in changes:
        place = places.get_place(membership, changes["place_id"]) if changes["place_id"] else None
        values["place_id"] = place.pk if place else None
        if place:
            values["lon"], values["lat"] = place.lon, place.lat
    diff = {k: [_plain(getattr(action, k)), _plain(v)] for k, v in values.items() if getattr(action, k) != v}
    if diff:
        with transaction.atomic():
            Action.objects.filter(pk=action.pk).update(**values, updated_at=timezone.now())
            audit.record(membership, AuditEvent.Action.UPDATE, action, diff)
    return get_action(membership, action.pk)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def follow_up(membership: Membership, action_id: int, body: str = "", status: str | None = None,
              result: str | None = None, resolve_deviations: bool = False, meeting_id: int | None = None,
              execution: str | None = None, execution_note: str | None = None) -> FollowUp:
    """A follow-up note, and the status the action moves to. When an action is done, its linked
    deviations can be marked resolved at the same time.

    Closing an action records how it was carried out: in full, in part or not at all (done means in full and
    cancelled not at all, unless said otherwise), so that its effect is not judged on what was never done.
    """
    action = get_action(membership, action_id)
    if not can_follow_up(membership, action):
        raise audit.refused(membership, "follow-up by another organisation",
                            _("Only the responsible organisation and the coordinators follow up an action."), action)
    body = _text(body, "body")
    if status is not None and status not in Action.Status.values:
        raise InvalidInput(_("Unknown status: %(status)s.") % {"status": status}, field="status")
    new_status = status if status and status != action.status else ""
    if not body and not new_status and result is None and not execution and execution_note is None:
        raise InvalidInput(_("Write a follow-up, or choose a new status."), field="body")
    if resolve_deviations and (status or action.status) != Action.Status.DONE:
        raise InvalidInput(_("Deviations are marked resolved only when the action is done."),
                           field="resolve_deviations")
    closing = (status or action.status) in {Action.Status.DONE, Action.Status.CANCELLED}
    if execution and not closing:
        raise InvalidInput(_("Say how the action was carried out when it is done or cancelled."), field="execution")
    if execution and execution not in Action.Execution.values:
        raise InvalidInput(_("Choose how the action was carried out."), field="execution")
    if (status or action.status) == Action.Status.DONE and execution == Action.Execution.NOT_AT_ALL:
        raise InvalidInput(_("An action that was not carried out is cancelled, not done."), field="execution")
    if new_status and closing and not execution:
        execution = Action.Execution.FULLY if new_status == Action.Status.DONE else Action.Execution.NOT_AT_ALL
    meeting = None
    if meeting_id:
        from lagesbild.meetings.services import get_meeting

        meeting = get_meeting(membership, meeting_id)
    with transaction.atomic():
        # The status check and the write are one statement, so two people closing an action at once
        # do not both record the change.
        values: dict[str, Any] = {"updated_at": timezone.now()}
        if new_status:
            values["status"] = new_status
            values["completed_at"] = timezone.now() if new_status == Action.Status.DONE else None
        if result is not None:
            values["result"] = _text(result, "result")
        if execution:
            values["execution"] = execution
        if execution_note is not None:
            values["execution_note"] = _text(execution_note, "execution_note")
        if new_status and not closing:
            values["execution"] = ""  # reopened: how it was carried out is told again when it closes
        if not Action.objects.filter(pk=action.pk, status=action.status).update(**values):
            raise Conflict(_("Someone else changed this action while you were writing. Reload it and try again."),
                           field="status")
        entry = FollowUp.objects.create(forum_id=action.forum_id, action=action, body=body, status=new_status,
                                        author_id=membership.user_id, organisation_id=membership.organisation_id,
                                        meeting=meeting)
        changes: dict[str, Any] = {"body": body}
        if new_status:
            changes["status"] = [action.status, new_status]
        if result is not None:
            changes["result"] = [action.result, values["result"]]
        if "execution" in values and values["execution"] != action.execution:
            changes["execution"] = [action.execution, values["execution"]]
        if execution_note is not None:
            changes["execution_note"] = [action.execution_note, values["execution_note"]]
        audit.record(membership, AuditEvent.Action.FOLLOW_UP, action, changes)
        if resolve_deviations:
            ids = list(ActionDeviation.objects.filter(action=action).values_list("deviation_id", flat=True))
            deviations.resolve_for_action(membership, ids, action.pk)
    return entry


def linked_deviations(membership: Membership, action: Action) -> list[Deviation]:
    """The action's deviations that the member may see; the others are not mentioned."""
    return list(deviations.visible_deviations(membership).filter(actions=action)
                .select_related("category", "organisation").order_by("-observed_at"))
