"""API: meetings, their agenda and protocol; actions and their follow-up; flags for the next meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from lagesbild.api import Date, DateTime, Id, Lat, Lon, answers, member, openapi_body, parse_json_body
from lagesbild.deviations.api import aware
from lagesbild.errors import InvalidInput
from lagesbild.meetings import actions as action_services
from lagesbild.meetings import effect, presenters, protocol, services
from lagesbild.meetings.models import Action

router = Router(tags=["meetings"])


# --- Meetings ----------------------------------------------------------------------------------------------

class MeetingIn(Schema):
    model_config = ConfigDict(extra="forbid")

    held_at: DateTime | None = Field(None, description="When; defaults to the next one by the forum's cadence")
    title: str = ""
    location: str = ""
    period_start: DateTime | None = Field(None, description="Defaults to where the previous period ended")
    period_end: DateTime | None = Field(None, description="Defaults to the meeting's time")


class MeetingSummaryOut(Schema):
    id: int
    title: str
    heldAt: dt.datetime
    location: str
    periodStart: dt.datetime
    periodEnd: dt.datetime
    state: str = Field(description="open, published or correcting")
    protocolVersions: list[int]


class ActionSummaryOut(Schema):
    id: int
    title: str
    organisation: int
    organisationName: str
    responsible: int | None
    responsibleName: str | None
    dueDate: dt.date
    status: str
    place: int | None
    lon: float | None = Field(description="Only from the place or what the whole forum may see")
    lat: float | None
    meeting: int | None


class PlaceCountOut(Schema):
    count: int
    previous: int
    change: int


class CategoryCountOut(Schema):
    category: str
    name: str
    count: int
    previous: int
    change: int


class FlagOut(Schema):
    text: str
    organisation: str
    deviation: int | None = Field(description="Only when the asker may see the deviation")


class AgendaItemOut(Schema):
    id: int
    position: int
    kind: str
    title: str
    notes: str
    decision: str
    mapUrl: str
    place: int | None
    organisation: int | None
    actions: list[ActionSummaryOut]
    decidedActions: list[ActionSummaryOut]
    placeCount: PlaceCountOut | None = None
    categories: list[CategoryCountOut] | None = None
    flag: FlagOut | None = None


class MeetingOut(MeetingSummaryOut):
    """A meeting with its agenda; the figures count what the whole forum may see (a shared screen)."""

    attendingOrganisations: list[int]
    attendees: list[int]
    agenda: list[AgendaItemOut]


def _meeting_input(payload: MeetingIn, forum: Any) -> services.MeetingInput:
    return services.MeetingInput(held_at=aware(payload.held_at, forum, "held_at"), title=payload.title,
                                 location=payload.location,
                                 period_start=aware(payload.period_start, forum, "period_start"),
                                 period_end=aware(payload.period_end, forum, "period_end"))


@router.get("/{forum}/meetings", response=answers(list[MeetingSummaryOut]), summary="The forum's meetings")
def list_meetings(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    membership = member(request, forum)
    return [presenters.meeting_summary(m) for m in services.forum_meetings(membership).prefetch_related("protocols")]


@router.post("/{forum}/meetings", response=answers(MeetingOut, 201), summary="Schedule a meeting (coordinators)",
             openapi_extra=openapi_body(MeetingIn))
def create_meeting(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, MeetingIn)
    meeting = services.schedule_meeting(membership, _meeting_input(payload, membership.forum))
    return Status(201, presenters.meeting_detail(meeting, membership))


@router.get("/{forum}/meetings/{meeting_id}", response=answers(MeetingOut),
            summary="A meeting with its agenda; figures from what the whole forum may see")
def get_meeting(request: HttpRequest, forum: str, meeting_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    return presenters.meeting_detail(services.get_meeting(membership, meeting_id), membership)


@router.patch("/{forum}/meetings/{meeting_id}", response=answers(MeetingOut), summary="Change a meeting (coordinators)",
              openapi_extra=openapi_body(MeetingIn))
def patch_meeting(request: HttpRequest, forum: str, meeting_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, MeetingIn)
    meeting = services.update_meeting(membership, meeting_id, _meeting_input(payload, membership.forum))
    return presenters.meeting_detail(meeting, membership)


@router.delete("/{forum}/meetings/{meeting_id}", response=answers(None, 204),
               summary="Delete a meeting scheduled by mistake (coordinators; not once a protocol is published)")
def delete_meeting(request: HttpRequest, forum: str, meeting_id: Id) -> Status[None]:
    membership = member(request, forum)
    services.delete_meeting(membership, meeting_id)
    return Status(204, None)


class AttendanceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    organisations: list[Id] = []
    people: list[Id] = Field([], description="User ids of members who attended")


@router.put("/{forum}/meetings/{meeting_id}/attendance", response=answers(MeetingOut),
            summary="Who attended (coordinators)", openapi_extra=openapi_body(AttendanceIn))
def put_attendance(request: HttpRequest, forum: str, meeting_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, AttendanceIn)
    meeting = services.set_attendance(membership, meeting_id, payload.organisations, payload.people)
    return presenters.meeting_detail(meeting, membership)


@router.post("/{forum}/meetings/{meeting_id}/agenda", response=answers(MeetingOut),
             summary="Build the agenda: add the automatic items (coordinators)")
def build_agenda(request: HttpRequest, forum: str, meeting_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    services.build_agenda(membership, meeting_id)
    return presenters.meeting_detail(services.get_meeting(membership, meeting_id), membership)


class ItemIn(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str
    place: Id | None = None


class ItemPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    notes: str | None = None
    decision: str | None = None


class OrderIn(Schema):
    model_config = ConfigDict(extra="forbid")

    items: list[Id] = Field(description="Every item's id, in the new order")


class ItemCreatedOut(Schema):
    id: int
    title: str
    position: int


class ItemChangedOut(ItemCreatedOut):
    notes: str
    decision: str


@router.post("/{forum}/meetings/{meeting_id}/items", response=answers(ItemCreatedOut, 201),
             summary="Add an agenda item (coordinators)", openapi_extra=openapi_body(ItemIn))
def add_item(request: HttpRequest, forum: str, meeting_id: Id) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, ItemIn)
    item = services.add_item(membership, meeting_id, payload.title, payload.place)
    return Status(201, {"id": item.pk, "title": item.title, "position": item.position})


@router.put("/{forum}/meetings/{meeting_id}/items/order", response=answers(list[int]),
            summary="Reorder the agenda (coordinators)", openapi_extra=openapi_body(OrderIn))
def order_items(request: HttpRequest, forum: str, meeting_id: Id) -> list[int]:
    membership = member(request, forum)
    payload = parse_json_body(request, OrderIn)
    return [i.pk for i in services.reorder_items(membership, meeting_id, payload.items)]


@router.patch("/{forum}/meetings/{meeting_id}/items/{item_id}", response=answers(ItemChangedOut),
              summary="Notes, decision or title of an item (coordinators)", openapi_extra=openapi_body(ItemPatch))
def patch_item(request: HttpRequest, forum: str, meeting_id: Id, item_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, ItemPatch)
    item = services.update_item(membership, meeting_id, item_id, title=payload.title, notes=payload.notes,
                                decision=payload.decision)
    return {"id": item.pk, "title": item.title, "notes": item.notes, "decision": item.decision,
            "position": item.position}


@router.delete("/{forum}/meetings/{meeting_id}/items/{item_id}", response=answers(None, 204),
               summary="Remove an agenda item (coordinators)")
def delete_item(request: HttpRequest, forum: str, meeting_id: Id, item_id: Id) -> Status[None]:
    membership = member(request, forum)
    services.remove_item(membership, meeting_id, item_id)
    return Status(204, None)


class PublishIn(Schema):
    model_config = ConfigDict(extra="forbid")

    correction_reason: str = Field("", description="Required when publishing a correction")


class ProtocolOut(Schema):
    version: int
    publishedAt: dt.datetime
    correctionReason: str = ""
    content: dict[str, Any] = Field(description="The protocol as published, in Swedish; it never changes")


@router.post("/{forum}/meetings/{meeting_id}/protocols", response=answers(ProtocolOut, 201),
             summary="Publish the protocol, or a correction as its next version (coordinators)",
             openapi_extra=openapi_body(PublishIn))
def publish(request: HttpRequest, forum: str, meeting_id: Id) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, PublishIn)
    published = services.publish_protocol(membership, meeting_id, payload.correction_reason)
    return Status(201, {"version": published.version, "publishedAt": published.published_at,
                        "correctionReason": published.correction_reason, "content": published.content})


@router.post("/{forum}/meetings/{meeting_id}/correction", response=answers(MeetingSummaryOut),
             summary="Start correcting a published protocol (coordinators)")
def start_correction(request: HttpRequest, forum: str, meeting_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    return presenters.meeting_summary(services.start_correction(membership, meeting_id))


@router.get("/{forum}/meetings/{meeting_id}/protocols/{version}", response=answers(ProtocolOut),
            summary="One published version of the protocol")
def get_protocol(request: HttpRequest, forum: str, meeting_id: Id, version: Id) -> dict[str, Any]:
    membership = member(request, forum)
    published = services.get_protocol(membership, meeting_id, version)
    return {"version": published.version, "publishedAt": published.published_at,
            "correctionReason": published.correction_reason, "content": published.content}


@router.get("/{forum}/meetings/{meeting_id}/protocols/{version}/pdf", summary="The protocol as PDF",
            response=answers(None), openapi_extra={"responses": {"200": {"description": "The protocol", "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}})
def get_protocol_pdf(request: HttpRequest, forum: str, meeting_id: Id, version: Id) -> HttpResponse:
    membership = member(request, forum)
    return protocol_pdf_response(services.get_protocol(membership, meeting_id, version))


def protocol_pdf_response(published: Any) -> HttpResponse:
    response = HttpResponse(protocol.pdf_bytes(published.content), content_type="application/pdf")
    name = f"protokoll-{published.meeting.held_at:%Y-%m-%d}-v{published.version}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


class FlagIn(Schema):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What the meeting should take up")
    deviation: Id | None = None
    place: Id | None = None


class FlagCreatedOut(Schema):
    id: int
    text: str
    deviation: int | None
    place: int | None


@router.post("/{forum}/flags", response=answers(FlagCreatedOut, 201), summary="Raise something for the next meeting",
             openapi_extra=openapi_body(FlagIn))
def create_flag(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, FlagIn)
    flag = services.flag_for_meeting(membership, payload.text, payload.deviation, payload.place)
    return Status(201, {"id": flag.pk, "text": flag.text, "deviation": flag.deviation_id, "place": flag.place_id})


# --- Actions -------------------------------------------------------------------------------------------------

class ActionQuery(Schema):
    organisation: Id | None = Field(None, description="Responsible organisation")
    status: list[str] = Field([], description="Status; repeatable")
    mine: bool = Field(False, description="Only my organisation's open actions")


@router.get("/{forum}/actions", response=answers(list[ActionSummaryOut]), summary="Actions, soonest due first")
def list_actions(request: HttpRequest, forum: str, params: Query[ActionQuery]) -> list[dict[str, Any]]:
    membership = member(request, forum)
    queryset = (action_services.my_open_actions(membership) if params.mine
                else action_services.forum_actions(membership))
    if params.organisation:
        queryset = queryset.filter(organisation_id=params.organisation)
    for status in params.status:
        if status not in Action.Status.values:
            raise InvalidInput(_("Unknown status: %(status)s.") % {"status": status}, field="status")
    if params.status:
        queryset = queryset.filter(status__in=params.status)
    return [presenters.action_summary(a) for a in queryset[:1000]]


class ActionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="What will be done")
    organisation: Id | None = Field(None, description="The responsible organisation; required")
    due_date: Date | None = Field(None, description="Required; not before today")
    description: str = ""
    responsible: Id | None = Field(None, description="User id of the responsible person, in that organisation")
    place: Id | None = None
    lon: Lon | None = Field(None, description="Where, with lat, if not at a place")
    lat: Lat | None = None
    deviations: list[Id] = Field([], description="The deviations it deals with")
    agenda_item: Id | None = None
    meeting: Id | None = None


class FollowUpOut(Schema):
    id: int
    body: str
    status: str | None
    at: dt.datetime
    author: str | None
    organisation: str
    meeting: int | None


class ActionOut(ActionSummaryOut):
    description: str
    result: str
    execution: str = Field(description="fully, partly, not_at_all, or empty while open")
    executionNote: str
    createdAt: dt.datetime
    completedAt: dt.datetime | None
    deviations: list[int] = Field(description="Those of its deviations the asker may see")
    followUps: list[FollowUpOut]
    canFollowUp: bool


@router.post("/{forum}/actions", response=answers(ActionOut, 201),
             summary="Create an action (coordinators; organisation leads for their own organisation)",
             openapi_extra=openapi_body(ActionIn))
def create_action(request: HttpRequest, forum: str) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, ActionIn)
    action = action_services.create_action(membership, action_services.ActionInput(
        title=payload.title, organisation_id=payload.organisation, due_date=payload.due_date,
        description=payload.description, responsible_id=payload.responsible, place_id=payload.place,
        lon=payload.lon, lat=payload.lat, deviation_ids=payload.deviations, agenda_item_id=payload.agenda_item,
        meeting_id=payload.meeting))
    return Status(201, presenters.action_detail(membership, action_services.get_action(membership, action.pk)))


@router.get("/{forum}/actions/{action_id}", response=answers(ActionOut), summary="One action with its follow-up")
def get_action(request: HttpRequest, forum: str, action_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    return presenters.action_detail(membership, action_services.get_action(membership, action_id))


class ActionPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    organisation: Id | None = None
    responsible: Id | None = None
    due_date: Date | None = None
    place: Id | None = None


@router.patch("/{forum}/actions/{action_id}", response=answers(ActionOut),
              summary="Change an action (coordinators; the organisation's lead may name the person)",
              openapi_extra=openapi_body(ActionPatch))
def patch_action(request: HttpRequest, forum: str, action_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    payload = parse_json_body(request, ActionPatch)
    names = {"organisation": "organisation_id", "responsible": "responsible_id", "place": "place_id"}
    changes = {names.get(k, k): getattr(payload, k) for k in payload.model_fields_set}
    action = action_services.update_action(membership, action_id, changes)
    return presenters.action_detail(membership, action)


class FollowUpIn(Schema):
    model_config = ConfigDict(extra="forbid")

    body: str = ""
    status: str | None = Field(None, description="planned, in_progress, done or cancelled")
    result: str | None = None
    resolve_deviations: bool = Field(False, description="When done: mark its deviations resolved")
    meeting: Id | None = None
    execution: str | None = Field(None, description="When done or cancelled: fully, partly or not_at_all "
                                                    "(by default fully when done, not_at_all when cancelled)")
    execution_note: str | None = None


@router.post("/{forum}/actions/{action_id}/follow-ups", response=answers(FollowUpOut, 201),
             summary="Follow up an action (its organisation and the coordinators)",
             openapi_extra=openapi_body(FollowUpIn))
def add_follow_up(request: HttpRequest, forum: str, action_id: Id) -> Status[dict[str, Any]]:
    membership = member(request, forum)
    payload = parse_json_body(request, FollowUpIn)
    entry = action_services.follow_up(membership, action_id, payload.body, payload.status, payload.result,
                                      payload.resolve_deviations, payload.meeting, payload.execution,
                                      payload.execution_note)
    return Status(201, presenters.follow_up_out(entry))


class CategoryChangeOut(Schema):
    category: str
    before: int
    after: int


class WeekOut(Schema):
    place: int
    rest: int


class EffectOut(Schema):
    pivot: dt.datetime = Field(description="The action's completion, or its creation while it is open")
    days: int
    placeBefore: int
    placeAfter: int
    restBefore: int
    restAfter: int
    expectedAfter: float | None
    pValue: float | None = Field(description="From shuffling which weeks count as before and after")
    verdict: str = Field(description="too_early, too_few, decrease, increase or no_clear_change")
    message: str
    beforeStart: dt.datetime | None
    beforeEnd: dt.datetime | None = Field(description="Before ends here: the weeks that prompted it are left out")
    weeks: list[WeekOut] = Field(description="Per week, the weeks before first")
    byCategory: list[CategoryChangeOut]


@router.get("/{forum}/actions/{action_id}/effect", response=answers(EffectOut | None),
            summary="Deviations at the action's place before and after it, against the rest of the area")
def get_effect(request: HttpRequest, forum: str, action_id: Id) -> dict[str, Any] | None:
    membership = member(request, forum)
    result = effect.action_effect(membership, action_services.get_action(membership, action_id))
    return effect.as_dict(result) if result else None
