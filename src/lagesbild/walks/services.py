"""Safety walks: planning (stops on a route, participants), walking (the recorded track), the checklist at
each stop, and afterwards recording the findings as deviations (source "walk") and as proposals for the
forum's next meeting, where the forum decides the actions and gives each an owner."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Category, CategoryField, Deviation
from lagesbild.errors import Conflict, DomainError, InvalidInput, NotFound, TooLarge
from lagesbild.forums.models import Membership
from lagesbild.inputs import visible_text
from lagesbild.meetings import services as meetings
from lagesbild.walks.models import Walk, WalkCheck, WalkParticipant, WalkStop

MAX_TITLE = 120
MAX_MEETING_POINT = 200
MAX_NAME = 120
MAX_NOTE = 1000
MAX_PROPOSAL = 300
MAX_SUMMARY = 5000
MAX_STOPS = 40
MAX_PARTICIPANTS = 100
MAX_TRACK_POINTS = 20_000  # a point every 10 m is 200 km
MAX_POINTS_PER_SEND = 1_000
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_AHEAD = dt.timedelta(days=2 * 366)
# A phone's clock and its GPS fixes lag or lead a little; points this far outside the walk still belong to it.
TRACK_SLACK = dt.timedelta(minutes=5)
# Points further than this from the forum's area are a GPS fix gone astray, not the walk.
TRACK_MARGIN_DEG = 0.05

# The category a finding at each checklist point gets, unless the group chose one: the first of these the
# forum has (a forum may hide or lack any of them), else "other".
SUGGESTED_CATEGORIES: dict[str, tuple[str, ...]] = {
    WalkCheck.Aspect.LIGHTING: ("dark_place", "lighting"),
    WalkCheck.Aspect.SIGHT_LINES: ("physical", "unsafe_place"),
    WalkCheck.Aspect.VEGETATION: ("overgrown_vegetation", "physical"),
    WalkCheck.Aspect.SIGNAGE: ("physical",),
    WalkCheck.Aspect.MAINTENANCE: ("physical", "littering"),
    WalkCheck.Aspect.UNSAFE: ("perceived_unsafety", "unsafe_place"),
}
ASPECTS = tuple(WalkCheck.Aspect.values)


# --- Reading ----------------------------------------------------------------------------------------------

def forum_walks(membership: Membership) -> QuerySet[Walk]:
    """The forum's walks, newest planned first. Every member reads every walk: a walk is the forum's record,
    walked together with residents; what its findings became follows the deviations' visibility."""
    return (Walk.objects.filter(forum_id=membership.forum_id).select_related("organisation")
            .annotate(stop_count=Count("stops", distinct=True), participant_count=Count("participants",
                                                                                          distinct=True)))


def get_walk(membership: Membership, walk_id: int) -> Walk:
    walk = Walk.objects.filter(forum_id=membership.forum_id, pk=walk_id).select_related("organisation").first()
    if walk is None:
        raise NotFound(_("There is no such safety walk in this forum."))
    return walk


def may_run(membership: Membership, walk: Walk) -> bool:
    return membership.can_run_walk(walk.organisation_id)


def _runnable(membership: Membership, walk_id: int) -> Walk:
    """The walk, locked for the change, if the member may change it."""
    walk = Walk.objects.select_for_update().filter(forum_id=membership.forum_id, pk=walk_id).first()
    if walk is None:
        raise NotFound(_("There is no such safety walk in this forum."))
    if walk.anonymised_at is not None:
        raise Conflict(_("This walk was anonymised under the forum's retention rule and is no longer changed."))
    if not may_run(membership, walk):
        if not membership.can_report:
            raise audit.refused(membership, "walk changed by a viewer", _("Your role does not allow changing walks."),
                                walk)
        raise audit.refused(membership, "walk of another organisation",
                            _("Only the organisation that arranges the walk, and the forum's coordinators, may "
                              "change it."), walk)
    return walk


def _before_end(walk: Walk) -> None:
    """The route is the walk's plan: it can change until the walk has ended, not in its record afterwards."""
    if walk.ended_at is not None:
        raise Conflict(_("The walk has ended, so its route is kept as it was walked."))


def stops_of(walk: Walk) -> list[WalkStop]:
    return list(walk.stops.prefetch_related("checks", "checks__category"))


def suggested_category(forum_categories: dict[str, Category], aspect: str) -> Category | None:
    for key in (*SUGGESTED_CATEGORIES.get(aspect, ()), "other"):
        if key in forum_categories:
            return forum_categories[key]
    return next(iter(forum_categories.values()), None)


def usable_categories(membership: Membership) -> dict[str, Category]:
    """The categories a finding may be reported under, by key: not hidden, and without own fields that must
    be filled in (the checklist does not ask for them)."""
    hidden = deviations.hidden_category_ids(membership.forum)
    required = {f.category_id for f in CategoryField.objects.filter(forum_id=membership.forum_id, required=True,
                                                                     removed_at__isnull=True)}
    usable = {}
    for category in deviations.forum_categories(membership.forum).select_related("parent"):
        # A subcategory's reports also ask for its main category's fields (deviations/fields.py).
        if category.pk in hidden or category.pk in required or category.parent_id in required:
            continue
        usable[category.key] = category
    return usable


# --- Planning ---------------------------------------------------------------------------------------------

@dataclass
class WalkInput:
    title: str
    planned_at: dt.datetime | None
    meeting_point: str = ""
    summary: str = ""


def _text(value: str) -> str:
    """A multi-line text as typed: a browser sends line breaks as CRLF but counts each as one character."""
    return value.replace("\r\n", "\n").strip()


@dataclass
class _Checked:
    title: str
    planned_at: dt.datetime
    meeting_point: str
    summary: str


def _checked(membership: Membership, data: WalkInput) -> _Checked:
    title = visible_text(data.title)
    if not title:
        raise InvalidInput(_("Give the walk a title."), field="title")
    if len(title) > MAX_TITLE:
        raise InvalidInput(_("The title may be at most %(max)d characters.") % {"max": MAX_TITLE}, field="title")
    meeting_point = visible_text(data.meeting_point)
    if len(meeting_point) > MAX_MEETING_POINT:
        raise InvalidInput(_("The meeting point may be at most %(max)d characters.") % {"max": MAX_MEETING_POINT},
                           field="meeting_point")
    if data.planned_at is None:
        raise InvalidInput(_("Say when the walk starts."), field="planned_at")
    if not EARLIEST <= data.planned_at <= timezone.now() + MAX_AHEAD:
        raise InvalidInput(_("A walk is planned from the year 2000 and at most two years ahead."), field="planned_at")
    summary = _text(data.summary)
    if len(summary) > MAX_SUMMARY:
        raise InvalidInput(_("The summary may be at most %(max)d characters.") % {"max": MAX_SUMMARY},
                           field="summary")
    deviations.guard_personal_data(membership.forum, {"title": title, "meeting_point": meeting_point,
                                                      "summary": summary})
    return _Checked(title=title, planned_at=data.planned_at, meeting_point=meeting_point, summary=summary)


def plan_walk(membership: Membership, data: WalkInput) -> Walk:
    if not membership.can_plan_walks:
        raise audit.refused(membership, "walk planned by a viewer", _("Your role does not allow planning walks."))
    checked = _checked(membership, data)
    with transaction.atomic():
        walk = Walk.objects.create(forum_id=membership.forum_id, organisation_id=membership.organisation_id,
                                   created_by_id=membership.user_id, title=checked.title,
                                   meeting_point=checked.meeting_point, planned_at=checked.planned_at,
                                   summary=checked.summary)
        audit.record(membership, AuditEvent.Action.CREATE, walk, {"title": walk.title,
                                                                  "planned_at": walk.planned_at.isoformat()})
    return walk


def change_walk(membership: Membership, walk_id: int, data: WalkInput) -> Walk:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is not None and data.planned_at is None:
            data = WalkInput(data.title, walk.planned_at, data.meeting_point, data.summary)
        checked = _checked(membership, data)
        if walk.started_at is not None and checked.planned_at != walk.planned_at:
            raise Conflict(_("The walk has started, so the time it was planned for stays."), field="planned_at")
        walk.title, walk.meeting_point, walk.summary = checked.title, checked.meeting_point, checked.summary
        walk.planned_at = checked.planned_at
        walk.save(update_fields=["title", "meeting_point", "planned_at", "summary"])
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"title": walk.title})
    return walk


def delete_walk(membership: Membership, walk_id: int) -> None:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is not None:
            raise Conflict(_("A walk that has started is kept: it is the record of what the group saw."))
        audit.record(membership, AuditEvent.Action.WITHDRAW, walk, {"title": walk.title})
        walk.delete()


def add_stop(membership: Membership, walk_id: int, name: str, lon: float | None, lat: float | None) -> WalkStop:
    if lon is None or lat is None:
        raise InvalidInput(_("Click the map where the stop is, or give its coordinates."), field="lon")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInput(_("The coordinates must be numbers."), field="lon")
    geometry.check_lon_lat(lon, lat)
    if not geometry.area_contains(membership.forum.area, lon, lat):
        raise InvalidInput(_("The stop lies outside the forum's area (%(forum)s).") % {"forum": membership.forum.name},
                           field="lon")
    name = visible_text(name)
    if len(name) > MAX_NAME:
        raise InvalidInput(_("A name may be at most %(max)d characters.") % {"max": MAX_NAME}, field="name")
    # The stop's name becomes its findings' place name: held to the same rule now, not when they are recorded.
    deviations.guard_personal_data(membership.forum, {"name": name})
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        _before_end(walk)
        count = walk.stops.count()
        if count >= MAX_STOPS:
            raise InvalidInput(_("A walk has at most %(max)d stops.") % {"max": MAX_STOPS}, field="name")
        last = walk.stops.aggregate(last=Max("position"))["last"] or 0
        stop = WalkStop.objects.create(forum_id=membership.forum_id, walk=walk, position=last + 1,
                                       name=name or _("Stop %(number)d") % {"number": count + 1},
                                       lon=round(lon, 6), lat=round(lat, 6))
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"stop_added": stop.name})
    return stop


def _stop(walk: Walk, stop_id: int | None) -> WalkStop:
    stop = walk.stops.filter(pk=stop_id).first() if stop_id else None
    if stop is None:
        raise NotFound(_("There is no such stop on this walk."))
    return stop


def remove_stop(membership: Membership, walk_id: int, stop_id: int | None) -> None:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        _before_end(walk)
        stop = _stop(walk, stop_id)
        if stop.checks.filter(recorded_at__isnull=False).exists():
            raise Conflict(_("Findings at this stop are already recorded, so the stop stays."))
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"stop_removed": stop.name})
        stop.delete()


def move_stop(membership: Membership, walk_id: int, stop_id: int | None, step: int) -> None:
    """Move a stop one place earlier (-1) or later (+1) on the route."""
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        _before_end(walk)
        stop = _stop(walk, stop_id)
        stops = list(walk.stops.all())
        index = next(i for i, s in enumerate(stops) if s.pk == stop.pk)
        other = index + step
        if 0 <= other < len(stops):
            stops[index], stops[other] = stops[other], stops[index]
        for position, each in enumerate(stops, start=1):
            if each.position != position:
                each.position = position
                each.save(update_fields=["position"])


def add_participant(membership: Membership, walk_id: int, name: str, affiliation: str) -> WalkParticipant:
    name, affiliation = visible_text(name), visible_text(affiliation)
    if not name:
        raise InvalidInput(_("Give the participant's name."), field="participant_name")
    if len(name) > MAX_NAME or len(affiliation) > MAX_NAME:
        raise InvalidInput(_("A name may be at most %(max)d characters.") % {"max": MAX_NAME},
                           field="participant_name" if len(name) > MAX_NAME else "affiliation")
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.participants.count() >= MAX_PARTICIPANTS:
            raise InvalidInput(_("A walk has at most %(max)d participants.") % {"max": MAX_PARTICIPANTS},
                               field="participant_name")
        participant = WalkParticipant.objects.create(forum_id=membership.forum_id, walk=walk, name=name,
                                                     affiliation=affiliation)
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"participant_added": participant.pk})
    return participant


def remove_participant(membership: Membership, walk_id: int, participant_id: int | None) -> None:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        participant = walk.participants.filter(pk=participant_id).first() if participant_id else None
        if participant is None:
            raise NotFound(_("There is no such participant on this walk."))
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"participant_removed": participant.pk})
        participant.delete()


# --- Walking ----------------------------------------------------------------------------------------------

def start_walk(membership: Membership, walk_id: int) -> Walk:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is not None:
            raise Conflict(_("The walk has already started."))
        walk.started_at = timezone.now()
        walk.save(update_fields=["started_at"])
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"started_at": walk.started_at.isoformat()})
    return walk


def end_walk(membership: Membership, walk_id: int) -> Walk:
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is None:
            raise Conflict(_("Start the walk before ending it."))
        if walk.ended_at is not None:
            raise Conflict(_("The walk has already ended."))
        walk.ended_at = timezone.now()
        walk.save(update_fields=["ended_at"])
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"ended_at": walk.ended_at.isoformat()})
    return walk


@dataclass
class TrackResult:
    kept: int
    repeated: int  # already in the track: sent again
    ignored: int  # outside the walk's time or far from the forum's area
    total: int


def add_track(membership: Membership, walk_id: int, points: Sequence[tuple[float, float, float]]) -> TrackResult:
    """Add the phone's points [(lon, lat, seconds since 1970 UTC)] to the walk's track, in time order.

    The phone sends what it recorded in batches, again after a lost answer or from its queue when the network
    returns, so a point already in the track (the same time and place) is not added twice; two phones on the
    same walk both add theirs. Points from outside the walk's time, or far from the forum's area (a GPS fix
    gone astray), are ignored and counted."""
    if len(points) > MAX_POINTS_PER_SEND:
        raise TooLarge(_("Send at most %(max)d points at a time.") % {"max": MAX_POINTS_PER_SEND}, field="points")
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is None:
            raise Conflict(_("Start the walk before recording its track."))
        earliest = (walk.started_at - TRACK_SLACK).timestamp()
        latest = min(walk.ended_at or timezone.now(), timezone.now()).timestamp() + TRACK_SLACK.total_seconds()
        bounds = geometry.area_bounds(membership.forum.area)
        track: list[list[float]] = list(walk.track or [])
        known = {tuple(p[:3]) for p in track}
        new: list[list[float]] = []
        repeated = 0
        for lon, lat, seconds in points:
            if not (math.isfinite(lon) and math.isfinite(lat) and math.isfinite(seconds)):
                continue
            point = (round(lon, 6), round(lat, 6), round(seconds, 1))  # as stored, so a repeat compares equal
            if point in known:
                repeated += 1
                continue
            if not earliest <= point[2] <= latest:
                continue
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                continue
            if bounds is not None and not (bounds[0] - TRACK_MARGIN_DEG <= lon <= bounds[2] + TRACK_MARGIN_DEG
                                           and bounds[1] - TRACK_MARGIN_DEG <= lat <= bounds[3] + TRACK_MARGIN_DEG):
                continue
            new.append([*point, membership.user_id])  # who recorded it: each phone's points make a line
            known.add(point)
        if len(track) + len(new) > MAX_TRACK_POINTS:
            raise TooLarge(_("The walk's track is full (%(max)d points).") % {"max": MAX_TRACK_POINTS},
                           field="points")
        if new:
            # Mostly the new points follow the last; sorting keeps a late batch (a phone back online) in place.
            walk.track = sorted(track + new, key=lambda p: p[2])
            walk.save(update_fields=["track"])
    return TrackResult(kept=len(new), repeated=repeated, ignored=len(points) - len(new) - repeated,
                       total=len(track) + len(new))


def track_lines(track: Sequence[Sequence[float]]) -> list[list[list[float]]]:
    """The track as lines of [lon, lat], one per phone that recorded it (two phones on one walk, a few metres
    apart, would zig-zag as one line), each in time order."""
    lines: dict[float, list[list[float]]] = {}
    for point in track:
        lines.setdefault(point[3] if len(point) > 3 else 0, []).append([point[0], point[1]])
    return list(lines.values())


def track_length_m(track: Sequence[Sequence[float]]) -> float:
    """The walked length in metres, of the longest phone's line, in SWEREF 99 TM (true to a few parts in ten
    thousand in Sweden)."""
    lengths = [0.0]
    for line in track_lines(track):
        if len(line) < 2:
            continue
        xs, ys = geometry.to_sweref99tm_many([p[0] for p in line], [p[1] for p in line])
        lengths.append(sum(math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]) for i in range(1, len(xs))))
    return max(lengths)


# --- The checklist ----------------------------------------------------------------------------------------

@dataclass
class CheckInput:
    aspect: str
    assessment: str  # "", "ok" or "problem"; "" takes the point off the list
    note: str = ""
    proposal: str = ""
    category: str = ""  # a category key; "" lets the aspect suggest one


def save_checks(membership: Membership, walk_id: int, stop_id: int | None, entries: Sequence[CheckInput]) -> None:
    """Save a stop's checklist as the group assessed it. A point already recorded is not changed here any more
    (its deviation is changed instead); the page sends it no longer."""
    categories = usable_categories(membership)
    cleaned: list[CheckInput] = []
    for entry in entries:
        if entry.aspect not in ASPECTS:
            raise InvalidInput(_("Unknown checklist point: %(value)s.") % {"value": entry.aspect[:40]},
                               field="aspect")
        field = f"{entry.aspect}"
        if entry.assessment not in ("", *WalkCheck.Assessment.values):
            raise InvalidInput(_("Choose fine, a problem, or not assessed."), field=f"{field}-assessment")
        note, proposal = _text(entry.note), visible_text(entry.proposal)
        if len(note) > MAX_NOTE:
            raise InvalidInput(_("A note may be at most %(max)d characters.") % {"max": MAX_NOTE},
                               field=f"{field}-note")
        if len(proposal) > MAX_PROPOSAL:
            raise InvalidInput(_("A proposal may be at most %(max)d characters.") % {"max": MAX_PROPOSAL},
                               field=f"{field}-proposal")
        if entry.category and entry.category not in categories:
            raise InvalidInput(_("Unknown category: %(key)s.") % {"key": entry.category[:40]},
                               field=f"{field}-category")
        if (note or proposal) and not entry.assessment:
            raise InvalidInput(_("Say whether it was fine or a problem, or leave the note empty."),
                               field=f"{field}-assessment")
        deviations.guard_personal_data(membership.forum, {f"{field}-note": note, f"{field}-proposal": proposal})
        cleaned.append(CheckInput(entry.aspect, entry.assessment, note, proposal, entry.category))
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.started_at is None:
            raise Conflict(_("The checklists open when the walk starts."))
        stop = _stop(walk, stop_id)
        existing = {check.aspect: check for check in stop.checks.all()}
        for entry in cleaned:
            check = existing.get(entry.aspect)
            category = categories.get(entry.category) if entry.category else None
            if check is not None and check.recorded_at is not None:
                if (check.assessment, check.note, check.proposal) != (entry.assessment, entry.note, entry.proposal):
                    raise Conflict(_("%(aspect)s at %(stop)s is already recorded; change the deviation instead.") % {
                        "aspect": WalkCheck.Aspect(entry.aspect).label, "stop": stop.name})
                continue
            if not entry.assessment:
                if check is not None:
                    check.delete()
                continue
            if check is None:
                check = WalkCheck(forum_id=membership.forum_id, stop=stop, aspect=entry.aspect)
            check.assessment, check.note, check.proposal, check.category = (entry.assessment, entry.note,
                                                                            entry.proposal, category)
            check.save()
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"checklist": stop.name})


# --- Afterwards -------------------------------------------------------------------------------------------

@dataclass
class Recorded:
    deviations: int
    proposals: int


def record_findings(membership: Membership, walk_id: int) -> Recorded:
    """Report each problem found as a deviation (source "walk") at its stop, and raise each proposed action
    for the next meeting. All or nothing; a finding is recorded once (`recorded_at`), also after retention
    or a withdrawal has removed what it became."""
    made = raised = 0
    with transaction.atomic():
        walk = _runnable(membership, walk_id)
        if walk.ended_at is None or walk.started_at is None:
            raise Conflict(_("End the walk before recording its findings."))
        categories = usable_categories(membership)
        now = timezone.now()
        # Stored texts are written in the forum's language, whoever records them.
        with translation.override(settings.LANGUAGE_CODE):
            for stop in walk.stops.all():
                for check in stop.checks.select_related("category").filter(recorded_at__isnull=True):
                    if check.assessment != WalkCheck.Assessment.PROBLEM and not check.proposal:
                        continue  # nothing to record: it stays open to correction
                    if check.assessment == WalkCheck.Assessment.PROBLEM:
                        check.deviation = _report(membership, walk, stop, check, categories)
                        check.category = check.deviation.category  # the category it was reported under
                        made += 1
                    if check.proposal:
                        check.flag = meetings.flag_for_meeting(
                            membership, _proposal_text(walk, stop, check), deviation_id=check.deviation_id)
                        raised += 1
                    check.recorded_at = now
                    check.save(update_fields=["deviation", "category", "flag", "recorded_at"])
        audit.record(membership, AuditEvent.Action.UPDATE, walk, {"findings_recorded": made,
                                                                  "proposals_raised": raised})
    return Recorded(deviations=made, proposals=raised)


def walk_heading(title: str) -> str:
    """"Safety walk: <title>", unless the title says so already ("Trygghetsvandring i Farsta")."""
    word = _("Safety walk")
    return title if word.lower() in title.lower() else _("Safety walk: %(title)s") % {"title": title}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _proposal_text(walk: Walk, stop: WalkStop, check: WalkCheck) -> str:
    """The flag's text: the proposal in full (300 characters), with where it came from shortened to fit 500."""
    return _("%(walk)s, %(stop)s: %(proposal)s") % {
        "walk": walk_heading(_short(walk.title, 70)), "stop": _short(stop.name, 60), "proposal": check.proposal}


def _report(membership: Membership, walk: Walk, stop: WalkStop, check: WalkCheck,
            categories: dict[str, Category]) -> Deviation:
    category = check.category if check.category and check.category.key in categories else \
        suggested_category(categories, check.aspect)
    if category is None:
        raise InvalidInput(_("The forum has no category to report the findings under."), field="category")
    aspect = WalkCheck.Aspect(check.aspect).label
    description = f"{aspect}: {check.note}" if check.note else str(aspect)
    description += "\n\n" + walk_heading(walk.title) + "."
    data = deviations.DeviationInput(
        category=category.key, lon=stop.lon, lat=stop.lat, observed_at=walk.started_at,  # type: ignore[arg-type]
        place_name=stop.name[:deviations.MAX_PLACE_NAME], description=description[:deviations.MAX_DESCRIPTION])
    try:
        return deviations.report_deviation(membership, data, source=Deviation.Source.WALK)
    except DomainError as exc:
        raise type(exc)(_("%(stop)s, %(aspect)s: %(message)s") % {"stop": stop.name, "aspect": aspect,
                                                                   "message": exc.message},
                        field=exc.field, code=exc.code) from exc


def visible_findings(membership: Membership, checks: Iterable[WalkCheck]) -> dict[int, Category]:
    """Of the deviations these findings became, those the member may see, with their category now."""
    ids = {c.deviation_id for c in checks if c.deviation_id}
    return {d.pk: d.category for d in deviations.visible_deviations(membership).filter(pk__in=ids)
            .select_related("category").only("pk", "category")}
