"""Meetings, agenda items and actions as JSON for the API."""

from __future__ import annotations

from typing import Any

from lagesbild.forums.models import Membership
from lagesbild.meetings import actions as action_services
from lagesbild.meetings.models import Action, FollowUp, Meeting
from lagesbild.meetings.services import ItemView, agenda


def meeting_summary(meeting: Meeting) -> dict[str, Any]:
    return {
        "id": meeting.pk, "title": meeting.title, "heldAt": meeting.held_at, "location": meeting.location,
        "periodStart": meeting.period_start, "periodEnd": meeting.period_end, "state": meeting.state,
        "protocolVersions": sorted(meeting.protocols.values_list("version", flat=True)),
    }


def meeting_detail(meeting: Meeting, viewer: Membership) -> dict[str, Any]:
    return {
        **meeting_summary(meeting),
        "attendingOrganisations": sorted(meeting.attending_organisations.values_list("pk", flat=True)),
        "attendees": sorted(meeting.attendees.values_list("pk", flat=True)),
        "agenda": [item_view(view) for view in agenda(meeting, viewer)],
    }


def item_view(view: ItemView) -> dict[str, Any]:
    item = view.item
    data: dict[str, Any] = {
        "id": item.pk, "position": item.position, "kind": item.kind, "title": item.title, "notes": item.notes,
        "decision": item.decision, "mapUrl": view.map_url, "place": item.place_id,
        "organisation": item.organisation_id,
        "actions": [action_summary(a) for a in view.actions],
        "decidedActions": [action_summary(a) for a in view.decided],
    }
    if view.place_count is not None:
        data["placeCount"] = {"count": view.place_count.count, "previous": view.place_count.previous,
                              "change": view.place_count.change}
    if view.categories:
        data["categories"] = [{"category": c.key, "name": c.name, "count": c.count, "previous": c.previous,
                               "change": c.change} for c in view.categories]
    if view.flag is not None:
        data["flag"] = {"text": view.flag.text, "organisation": view.flag.organisation.name,
                        "deviation": view.flag.deviation_id if view.flag_deviation_visible else None}
    return data


def action_summary(action: Action) -> dict[str, Any]:
    return {
        "id": action.pk, "title": action.title, "organisation": action.organisation_id,
        "organisationName": action.organisation.name, "responsible": action.responsible_id,
        "responsibleName": action.responsible.display_name if action.responsible else None,
        "dueDate": action.due_date, "status": action.status, "place": action.place_id,
        "lon": action.lon, "lat": action.lat, "meeting": action.meeting_id,
    }


def follow_up_out(entry: FollowUp) -> dict[str, Any]:
    return {"id": entry.pk, "body": entry.body, "status": entry.status or None, "at": entry.created_at,
            "author": entry.author.display_name if entry.author else None, "organisation": entry.organisation.name,
            "meeting": entry.meeting_id}


def action_detail(membership: Membership, action: Action) -> dict[str, Any]:
    return {
        **action_summary(action), "description": action.description, "result": action.result,
        "execution": action.execution, "executionNote": action.execution_note,
        "createdAt": action.created_at, "completedAt": action.completed_at,
        "deviations": [d.pk for d in action_services.linked_deviations(membership, action)],
        "followUps": [follow_up_out(f) for f in action.follow_ups.select_related("author", "organisation")],
        "canFollowUp": action_services.can_follow_up(membership, action),
    }
