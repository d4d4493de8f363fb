"""API: safety walks (read), and the walked track a phone records (write)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from lagesbild.api import Id, Lat, Lon, answers, member, openapi_body, parse_json_body
from lagesbild.walks import services
from lagesbild.walks.models import Walk

router = Router(tags=["walks"])

# Seconds since 1970 UTC, from the year 2000 to 2100.
Seconds = Annotated[float, Field(ge=946_684_800, le=4_102_444_800, allow_inf_nan=False)]


class WalkSummary(Schema):
    id: int
    title: str
    organisation: str
    state: str = Field(description="planned, walking or walked")
    plannedAt: dt.datetime
    startedAt: dt.datetime | None
    endedAt: dt.datetime | None
    meetingPoint: str
    stops: int
    participants: int


class ParticipantOut(Schema):
    name: str
    affiliation: str


class CheckOut(Schema):
    aspect: str = Field(description="lighting, sight_lines, vegetation, signage, maintenance or unsafe")
    assessment: str = Field(description="ok or problem")
    note: str
    proposal: str
    deviation: int | None = Field(description="The deviation the finding became, if you may see it")
    raised: bool = Field(description="Whether the proposal was raised for the next meeting")


class StopOut(Schema):
    id: int
    number: int
    name: str
    lon: float
    lat: float
    checks: list[CheckOut]


class WalkOut(WalkSummary):
    summary: str
    participantList: list[ParticipantOut]
    stopList: list[StopOut]
    track: list[list[list[float]]] = Field(description="The walked track: a line of [lon, lat] per phone that "
                                                       "recorded it, in the order walked (when each point was "
                                                       "taken is the recorder's alone)")


class TrackIn(Schema):
    model_config = ConfigDict(extra="forbid")

    points: list[tuple[Lon, Lat, Seconds]] = Field(
        max_length=services.MAX_POINTS_PER_SEND,
        description="[lon, lat, seconds since 1970 UTC], as the phone recorded them")


class TrackOut(Schema):
    kept: int = Field(description="Points added to the track")
    repeated: int = Field(description="Points already in the track (sent before)")
    ignored: int = Field(description="Points from outside the walk's time, or far from the forum's area")
    total: int = Field(description="Points in the track now")


def _summary(walk: Walk, stops: int, participants: int) -> dict[str, Any]:
    return {"id": walk.pk, "title": walk.title, "organisation": walk.organisation.name, "state": walk.state,
            "plannedAt": walk.planned_at, "startedAt": walk.started_at, "endedAt": walk.ended_at,
            "meetingPoint": walk.meeting_point, "stops": stops, "participants": participants}


@router.get("/{forum}/walks", response=answers(list[WalkSummary]), summary="The forum's safety walks")
def list_walks(request: HttpRequest, forum: str) -> list[dict[str, Any]]:
    return [_summary(w, w.stop_count, w.participant_count)  # type: ignore[attr-defined]
            for w in services.forum_walks(member(request, forum))]


@router.get("/{forum}/walks/{walk_id}", response=answers(WalkOut), summary="A safety walk, with its findings")
def get_walk(request: HttpRequest, forum: str, walk_id: Id) -> dict[str, Any]:
    membership = member(request, forum)
    walk = services.get_walk(membership, walk_id)
    stops = services.stops_of(walk)
    visible = services.visible_findings(membership, [c for s in stops for c in s.checks.all()])
    participants = list(walk.participants.all())
    return {**_summary(walk, len(stops), len(participants)), "summary": walk.summary,
            "participantList": [{"name": p.name, "affiliation": p.affiliation} for p in participants],
            "stopList": [{"id": s.pk, "number": n, "name": s.name, "lon": s.lon, "lat": s.lat, "checks": [
                {"aspect": c.aspect, "assessment": c.assessment, "note": c.note, "proposal": c.proposal,
                 "deviation": c.deviation_id if c.deviation_id in visible else None,
                 "raised": c.recorded_at is not None and bool(c.proposal)}
                for c in s.checks.all()]} for n, s in enumerate(stops, start=1)],
            "track": services.track_lines(walk.track or [])}


@router.post("/{forum}/walks/{walk_id}/track", response=answers(TrackOut), url_name="walk_track",
             summary="Add to the walked track",
             description="The phone sends its points in batches while the walk is under way, and again from its "
                         "queue when the network returns. A point already in the track (the same time and place) "
                         "is counted as repeated and not added again; points from two phones are merged in time "
                         "order. The arranging organisation's members and the forum's coordinators only.",
             openapi_extra=openapi_body(TrackIn))
def add_track(request: HttpRequest, forum: str, walk_id: Id) -> dict[str, int]:
    membership = member(request, forum)
    payload = parse_json_body(request, TrackIn)
    result = services.add_track(membership, walk_id, payload.points)
    return {"kept": result.kept, "repeated": result.repeated, "ignored": result.ignored, "total": result.total}

