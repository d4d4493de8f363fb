"""Meetings: scheduling them, the period they review, the agenda, flags raised for them, and publishing
the protocol. Actions are in `actions.py`, the comparison before and after an action in `effect.py`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lagesbild import geometry
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import Conflict, InvalidInput, NotFound
from lagesbild.forums.models import Forum, Membership, Organisation, User
from lagesbild.forums.services import require_coordinator
from lagesbild.meetings.models import Action, AgendaItem, Meeting, MeetingFlag, Protocol
from lagesbild.places import services as places
from lagesbild.places.models import Place

# Actions due within this many days of the meeting are on its agenda, as well as overdue ones.
DUE_WINDOW = dt.timedelta(days=14)
TOP_PLACES = 5
MAX_TITLE = 200
MAX_TEXT = 10_000


def last_meeting_at(forum: Forum) -> dt.datetime | None:
    """When the forum last met, for the map's "since the last meeting" period."""
    return (
        Meeting.objects.filter(forum=forum, held_at__lte=timezone.now())
        .order_by("-held_at")
        .values_list("held_at", flat=True)
        .first()
    )


def forum_meetings(membership: Membership) -> QuerySet[Meeting]:
    return Meeting.objects.filter(forum_id=membership.forum_id)


def get_meeting(membership: Membership, meeting_id: int) -> Meeting:
    meeting = forum_meetings(membership).filter(pk=meeting_id).first()
    if meeting is None:
        raise NotFound(_("No such meeting."))
    return meeting


def require_unlocked(meeting: Meeting) -> None:
    if meeting.is_locked:
        raise Conflict(_("The protocol is published and cannot be changed. Start a correction; it is published "
                         "as a new version."), code="published")


# --- Scheduling -------------------------------------------------------------------------------------------

def add_cadence(forum: Forum, when: dt.datetime, times: int = 1) -> dt.datetime:
    """`when` moved on by the forum's meeting cadence, in local time (so 14:00 stays 14:00 across DST)."""
    tz = ZoneInfo(forum.timezone)
    local = when.astimezone(tz)
    cadence = forum.meeting_cadence
    if cadence in {Forum.Cadence.WEEKLY, Forum.Cadence.BIWEEKLY}:
        days = (7 if cadence == Forum.Cadence.WEEKLY else 14) * times
        moved = local.replace(tzinfo=None) + dt.timedelta(days=days)
    else:
        months = (1 if cadence == Forum.Cadence.MONTHLY else 2) * times
        month_index = local.month - 1 + months
        year, month = local.year + month_index // 12, month_index % 12 + 1
        day = min(local.day, 28 if month == 2 else 30 if month in {4, 6, 9, 11} else 31)
        moved = local.replace(tzinfo=None, year=year, month=month, day=day)
    return moved.replace(tzinfo=tz).astimezone(dt.UTC)


def suggested_next(forum: Forum, now: dt.datetime | None = None) -> dt.datetime:
    """When the next meeting would be by the forum's cadence: one cadence after the latest, and in the future."""
    now = now or timezone.now()
    latest = Meeting.objects.filter(forum=forum).order_by("-held_at").values_list("held_at", flat=True).first()
    if latest is None:
        local = (now + dt.timedelta(days=7)).astimezone(ZoneInfo(forum.timezone))
        return local.replace(hour=14, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    when = add_cadence(forum, latest)
    while when <= now:
        when = add_cadence(forum, when)
    return when


def default_period(forum: Forum, held_at: dt.datetime, exclude: int | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Since the previous meeting's period ended (or one cadence back), up to the meeting."""
    previous = (Meeting.objects.filter(forum=forum, held_at__lt=held_at).exclude(pk=exclude or 0)
                .order_by("-held_at").first())
    start = previous.period_end if previous else add_cadence(forum, held_at, times=-1)
    return min(start, held_at), held_at


@dataclass
class MeetingInput:
    held_at: dt.datetime | None = None
    title: str = ""
    location: str = ""
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None


def _check_period(forum: Forum, start: dt.datetime, end: dt.datetime, exclude: int | None = None) -> None:
    if start >= end:
        raise InvalidInput(_("The period's start must be before its end."), field="period_start")
    overlapping = (Meeting.objects.filter(forum=forum, period_start__lt=end, period_end__gt=start)
                   .exclude(pk=exclude or 0).order_by("held_at").first())
    if overlapping is not None:
        raise InvalidInput(_("The period overlaps the period of the meeting on %(date)s (%(start)s to %(end)s). "
                             "Each deviation is reviewed at one meeting.") % {
            "date": local_date(forum, overlapping.held_at),
            "start": local_date(forum, overlapping.period_start),
            "end": local_date(forum, overlapping.period_end - dt.timedelta(seconds=1))}, field="period_start")


def local_date(forum: Forum, when: dt.datetime) -> str:
    return date_format(when.astimezone(ZoneInfo(forum.timezone)), "j F Y")


def _clean(text: str, limit: int, field_name: str) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise InvalidInput(_("The text is too long (at most %(max)d characters).") % {"max": limit}, field=field_name)
    return text


# Meetings are recorded from 2000 on and planned at most this far ahead.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_AHEAD = dt.timedelta(days=5 * 366)


def _check_when(value: dt.datetime, field_name: str) -> dt.datetime:
    if not EARLIEST <= value <= timezone.now() + MAX_AHEAD:
        raise InvalidInput(_("Choose a time between the year 2000 and five years from now."), field=field_name)
    return value


def _minute(value: dt.datetime) -> dt.datetime:
    """Meetings and periods are kept to the minute, as forms show them, so a period that starts where the
    previous one ended (as shown) does not overlap it by a few seconds."""
    return value.replace(second=0, microsecond=0)


def schedule_meeting(membership: Membership, data: MeetingInput) -> Meeting:
    require_coordinator(membership, "meeting by a non-coordinator")
    forum = membership.forum
    held_at = _minute(_check_when(data.held_at or suggested_next(forum), "held_at"))
    start, end = default_period(forum, held_at)
    start = _minute(_check_when(data.period_start or start, "period_start"))
    end = _minute(_check_when(data.period_end or end, "period_end"))
    _check_period(forum, start, end)
    title = _clean(data.title, MAX_TITLE, "title") or _("Forum meeting %(date)s") % {"date": local_date(forum, held_at)}
    with transaction.atomic():
        meeting = Meeting.objects.create(forum=forum, held_at=held_at, title=title,
                                         location=_clean(data.location, 200, "location"),
                                         period_start=start, period_end=end)
        audit.record(membership, AuditEvent.Action.CREATE, meeting, {
            "title": title, "held_at": held_at.isoformat(), "period": [start.isoformat(), end.isoformat()]})
    return meeting


def update_meeting(membership: Membership, meeting_id: int, data: MeetingInput) -> Meeting:
    require_coordinator(membership, "meeting by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    values: dict[str, Any] = {
        "held_at": _minute(_check_when(data.held_at, "held_at")) if data.held_at else meeting.held_at,
        "title": _clean(data.title, MAX_TITLE, "title") or meeting.title,
        "location": _clean(data.location, 200, "location"),
        "period_start": _minute(_check_when(data.period_start, "period_start")) if data.period_start
        else meeting.period_start,
        "period_end": _minute(_check_when(data.period_end, "period_end")) if data.period_end else meeting.period_end,
    }
    _check_period(meeting.forum, values["period_start"], values["period_end"], exclude=meeting.pk)
    diff = {k: [_jsonable(getattr(meeting, k)), _jsonable(v)] for k, v in values.items() if getattr(meeting, k) != v}
    with transaction.atomic():
        Meeting.objects.filter(pk=meeting.pk).update(**values)
        if diff:
            audit.record(membership, AuditEvent.Action.UPDATE, meeting, diff)
    meeting.refresh_from_db()
    return meeting


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def set_attendance(membership: Membership, meeting_id: int, organisation_ids: list[int], user_ids: list[int]
                   ) -> Meeting:
    require_coordinator(membership, "attendance by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    organisations = list(Organisation.objects.filter(forum_id=meeting.forum_id, pk__in=organisation_ids))
    if len(organisations) != len(set(organisation_ids)):
        raise InvalidInput(_("Unknown organisation."), field="organisations")
    people = list(User.objects.filter(memberships__forum_id=meeting.forum_id, pk__in=user_ids))
    if len(people) != len(set(user_ids)):
        raise InvalidInput(_("Only members of the forum can be listed as attending."), field="people")
    with transaction.atomic():
        forum = {"forum_id": meeting.forum_id}
        meeting.attending_organisations.set(organisations, through_defaults=forum)
        meeting.attendees.set(people, through_defaults=forum)
        # Someone who attended speaks for their organisation: it attended too.
        member_orgs = Organisation.objects.filter(memberships__forum_id=meeting.forum_id,
                                                  memberships__user__in=people)
        meeting.attending_organisations.add(*member_orgs, through_defaults=forum)
        audit.record(membership, AuditEvent.Action.UPDATE, meeting, {
            "attendance": [sorted(o.name for o in meeting.attending_organisations.all()),
                           sorted(p.display_name for p in people)]})
    return meeting


def delete_meeting(membership: Membership, meeting_id: int) -> None:
    require_coordinator(membership, "meeting by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    if meeting.protocols.exists():
        raise Conflict(_("A meeting with a published protocol cannot be deleted."), code="published")
    with transaction.atomic():
        MeetingFlag.objects.filter(meeting=meeting).update(meeting=None)
        audit.record(membership, AuditEvent.Action.DELETE, meeting, {"title": meeting.title})
        meeting.delete()


# --- Flags: what members want the next meeting to take up ------------------------------------------------

def flag_for_meeting(membership: Membership, text: str, deviation_id: int | None = None,
                     place_id: int | None = None) -> MeetingFlag:
    if not membership.can_report:
        raise audit.refused(membership, "flag by a viewer", _("Your role does not allow this."))
    text = _clean(text, 500, "text")
    if not text:
        raise InvalidInput(_("Say what the meeting should take up."), field="text")
    deviation = deviations.get_visible_deviation(membership, deviation_id) if deviation_id else None
    place = places.get_place(membership, place_id) if place_id else None
    with transaction.atomic():
        flag = MeetingFlag.objects.create(forum_id=membership.forum_id, deviation=deviation, place=place, text=text,
                                          organisation_id=membership.organisation_id,
                                          flagged_by_id=membership.user_id)
        audit.record(membership, AuditEvent.Action.CREATE, flag, {"text": text, "deviation": deviation_id,
                                                                  "place": place_id})
    return flag


def open_flags(forum_id: int) -> QuerySet[MeetingFlag]:
    return MeetingFlag.objects.filter(forum_id=forum_id, meeting__isnull=True).select_related(
        "organisation", "flagged_by", "place")


# --- The agenda --------------------------------------------------------------------------------------------

def previous_period(meeting: Meeting) -> tuple[dt.datetime, dt.datetime]:
    """The period of equal length just before the meeting's."""
    length = meeting.period_end - meeting.period_start
    return meeting.period_start - length, meeting.period_start


def due_actions(meeting: Meeting) -> QuerySet[Action]:
    """Open actions due before the meeting or within DUE_WINDOW after it."""
    tz = ZoneInfo(meeting.forum.timezone)
    limit = (meeting.held_at.astimezone(tz) + DUE_WINDOW).date()
    return (Action.objects.filter(forum_id=meeting.forum_id, status__in=Action.OPEN, due_date__lte=limit)
            .select_related("organisation", "responsible", "place").order_by("due_date", "pk"))


def in_period(queryset: QuerySet[Deviation], start: dt.datetime, end: dt.datetime) -> QuerySet[Deviation]:
    return queryset.filter(observed_at__gte=start, observed_at__lt=end)


@dataclass
class PlaceCount:
    place: Place
    count: int
    previous: int

    @property
    def change(self) -> int:
        return self.count - self.previous


def busiest_places(meeting: Meeting, limit: int = TOP_PLACES) -> list[PlaceCount]:
    """Places with the most new deviations in the period (forum-wide ones), with the period before."""
    shared = deviations.forum_wide_deviations(meeting.forum)
    before = previous_period(meeting)
    counts = []
    for place in Place.objects.filter(forum_id=meeting.forum_id):
        count = places.count_in_period(place, shared, meeting.period_start, meeting.period_end)
        if count:
            counts.append(PlaceCount(place, count, places.count_in_period(place, shared, *before)))
    counts.sort(key=lambda c: (-c.count, c.place.name))
    return counts[:limit]


@dataclass
class CategoryCount:
    key: str
    name: str
    color: str
    count: int
    previous: int

    @property
    def change(self) -> int:
        return self.count - self.previous


def counts_by_category(forum: Forum, queryset: QuerySet[Deviation], start: dt.datetime, end: dt.datetime,
                       before: tuple[dt.datetime, dt.datetime]) -> list[CategoryCount]:
    """Deviations per main category in the period and the period before, most first."""
    def tally(period_start: dt.datetime, period_end: dt.datetime) -> Counter[str]:
        rows = in_period(queryset, period_start, period_end).values_list("category__parent__key", "category__key")
        return Counter(parent or key for parent, key in rows)

    now, then = tally(start, end), tally(*before)
    categories = {c.key: c for c in deviations.forum_categories(forum)}
    result = [CategoryCount(key, categories[key].name, categories[key].color, now[key], then[key])
              for key in set(now) | set(then) if key in categories]
    result.sort(key=lambda c: (-c.count, -c.previous, c.name))
    return result


def build_agenda(membership: Membership, meeting_id: int) -> list[AgendaItem]:
    """Add the automatic items to the agenda: (1) actions due or overdue, one item per responsible
    organisation; (2) the places with most new deviations; (3) new deviations by category; (4) what
    members flagged; (5) deviations marked to be reported to the police without a recorded report. Items
    already on the agenda are not added again, so building twice is harmless."""
    require_coordinator(membership, "agenda by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    existing = list(meeting.items.all())
    have = {(i.kind, i.organisation_id, i.place_id, i.flag_id) for i in existing}
    wanted: list[AgendaItem] = []
    organisations: dict[int, Organisation] = {}
    for action in due_actions(meeting):
        organisations.setdefault(action.organisation_id, action.organisation)
    for org in sorted(organisations.values(), key=lambda o: o.name):
        wanted.append(AgendaItem(kind=AgendaItem.Kind.ACTIONS_DUE, organisation=org,
                                 title=_("Follow-up of actions: %(organisation)s") % {"organisation": org.name}))
    for counted in busiest_places(meeting):
        wanted.append(AgendaItem(kind=AgendaItem.Kind.PLACE, place=counted.place,
                                 title=_("Place: %(name)s") % {"name": counted.place.name}))
    wanted.append(AgendaItem(kind=AgendaItem.Kind.CATEGORIES, title=_("New deviations by category")))
    if deviations.awaiting_police_report(deviations.forum_wide_deviations(meeting.forum)).exists():
        wanted.append(AgendaItem(kind=AgendaItem.Kind.POLICE, title=_("To report to the police")))
    flags = list(open_flags(meeting.forum_id).filter(created_at__lt=meeting.held_at + dt.timedelta(days=1)))
    for flag in flags:
        wanted.append(AgendaItem(kind=AgendaItem.Kind.FLAGGED, flag=flag, place=flag.place,
                                 title=flag.text[:MAX_TITLE]))
    position = max((i.position for i in existing), default=0)
    added = []
    with transaction.atomic():
        for item in wanted:
            if (item.kind, item.organisation_id, item.place_id, item.flag_id) in have:
                continue
            position += 1
            item.forum_id = meeting.forum_id
            item.meeting = meeting
            item.position = position
            item.save()
            added.append(item)
        MeetingFlag.objects.filter(pk__in=[f.pk for f in flags]).update(meeting=meeting)
        if added:
            audit.record(membership, AuditEvent.Action.UPDATE, meeting, {"agenda": [None, [i.title for i in added]]})
    return list(meeting.items.all())


def get_item(membership: Membership, meeting_id: int, item_id: int) -> AgendaItem:
    item = AgendaItem.objects.filter(forum_id=membership.forum_id, meeting_id=meeting_id, pk=item_id).select_related(
        "meeting").first()
    if item is None:
        raise NotFound(_("No such agenda item."))
    return item


def add_item(membership: Membership, meeting_id: int, title: str, place_id: int | None = None) -> AgendaItem:
    require_coordinator(membership, "agenda by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    title = _clean(title, MAX_TITLE, "title")
    if not title:
        raise InvalidInput(_("Give the item a title."), field="title")
    place = places.get_place(membership, place_id) if place_id else None
    position = (meeting.items.aggregate(m=Max("position"))["m"] or 0) + 1
    with transaction.atomic():
        item = AgendaItem.objects.create(forum_id=meeting.forum_id, meeting=meeting, position=position, title=title,
                                         kind=AgendaItem.Kind.PLACE if place else AgendaItem.Kind.OTHER, place=place)
        audit.record(membership, AuditEvent.Action.CREATE, item, {"title": title})
    return item


def update_item(membership: Membership, meeting_id: int, item_id: int, *, title: str | None = None,
                notes: str | None = None, decision: str | None = None) -> AgendaItem:
    require_coordinator(membership, "agenda by a non-coordinator")
    item = get_item(membership, meeting_id, item_id)
    require_unlocked(item.meeting)
    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = _clean(title, MAX_TITLE, "title")
        if not changes["title"]:
            raise InvalidInput(_("Give the item a title."), field="title")
    if notes is not None:
        changes["notes"] = _clean(notes, MAX_TEXT, "notes")
    if decision is not None:
        changes["decision"] = _clean(decision, MAX_TEXT, "decision")
    diff = {k: [getattr(item, k), v] for k, v in changes.items() if getattr(item, k) != v}
    if diff:
        with transaction.atomic():
            AgendaItem.objects.filter(pk=item.pk).update(**changes)
            audit.record(membership, AuditEvent.Action.UPDATE, item, diff)
        item.refresh_from_db()
    return item


def move_item(membership: Membership, meeting_id: int, item_id: int, offset: int) -> list[AgendaItem]:
    """Move an item up (negative offset) or down the agenda."""
    require_coordinator(membership, "agenda by a non-coordinator")
    item = get_item(membership, meeting_id, item_id)
    require_unlocked(item.meeting)
    items = list(item.meeting.items.all())
    index = next(i for i, other in enumerate(items) if other.pk == item.pk)
    target = max(0, min(len(items) - 1, index + offset))
    items.insert(target, items.pop(index))
    return _renumber(membership, item.meeting, items)


def reorder_items(membership: Membership, meeting_id: int, item_ids: list[int]) -> list[AgendaItem]:
    require_coordinator(membership, "agenda by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    items = {i.pk: i for i in meeting.items.all()}
    if sorted(item_ids) != sorted(items):
        raise InvalidInput(_("Name every item of the agenda once, in the new order."), field="items")
    return _renumber(membership, meeting, [items[pk] for pk in item_ids])


def _renumber(membership: Membership, meeting: Meeting, items: list[AgendaItem]) -> list[AgendaItem]:
    with transaction.atomic():
        for position, item in enumerate(items, start=1):
            if item.position != position:
                item.position = position
                item.save(update_fields=["position"])
        audit.record(membership, AuditEvent.Action.UPDATE, meeting, {"order": [None, [i.pk for i in items]]})
    return items


def remove_item(membership: Membership, meeting_id: int, item_id: int) -> None:
    """Take an item off the agenda. A member's flag goes back to wait for the next meeting."""
    require_coordinator(membership, "agenda by a non-coordinator")
    item = get_item(membership, meeting_id, item_id)
    require_unlocked(item.meeting)
    with transaction.atomic():
        if item.flag_id:
            MeetingFlag.objects.filter(pk=item.flag_id).update(meeting=None)
        audit.record(membership, AuditEvent.Action.DELETE, item, {"title": item.title})
        item.delete()


# --- Showing the agenda ----------------------------------------------------------------------------------

@dataclass
class ItemView:
    item: AgendaItem
    map_url: str
    actions: list[Action] = field(default_factory=list)
    place_count: PlaceCount | None = None
    categories: list[CategoryCount] = field(default_factory=list)
    flag: MeetingFlag | None = None
    flag_deviation_visible: bool = False
    decided: list[Action] = field(default_factory=list)
    police: list[Deviation] = field(default_factory=list)  # marked for a police report, none recorded


def map_url(forum: Forum, start: dt.datetime, end: dt.datetime, bbox: tuple[float, ...] | None = None,
            extra: dict[str, Any] | None = None) -> str:
    """A link that opens the map on this period (and place)."""
    tz = ZoneInfo(forum.timezone)
    query: dict[str, Any] = {"period": "custom", "from": start.astimezone(tz).date().isoformat(),
                             "to": (end - dt.timedelta(seconds=1)).astimezone(tz).date().isoformat()}
    if bbox:
        query["bbox"] = ",".join(f"{v:.5f}" for v in bbox)
    query.update(extra or {})
    return f"{reverse('map', kwargs={'forum': forum.slug})}?{urlencode(query, doseq=True)}"


POLICE_LISTED = 50  # deviations awaiting a police report listed on one agenda item


def agenda(meeting: Meeting, viewer: Membership | None) -> list[ItemView]:
    """The agenda with each item's figures, worked out now from what the whole forum may see: the
    meeting's screen is shared by every organisation in the room. A flagged deviation is linked for a
    viewer who may see it (with no viewer, for the protocol: only if the whole forum may)."""
    forum = meeting.forum
    shared = deviations.forum_wide_deviations(forum)
    before = previous_period(meeting)
    due = list(due_actions(meeting))
    place_counts: dict[int, PlaceCount] = {}
    readable = deviations.visible_deviations(viewer) if viewer else shared
    items = list(meeting.items.select_related("place", "organisation", "flag", "flag__organisation",
                                               "flag__deviation"))
    visible_ids = set(readable.filter(
        pk__in=[i.flag.deviation_id for i in items if i.flag and i.flag.deviation_id]
    ).values_list("pk", flat=True))
    views = []
    decided = list(Action.objects.filter(agenda_item__in=items).select_related("organisation", "responsible"))
    for item in items:
        view = ItemView(item=item, map_url=map_url(forum, meeting.period_start, meeting.period_end),
                        decided=[a for a in decided if a.agenda_item_id == item.pk])
        if item.kind == AgendaItem.Kind.ACTIONS_DUE:
            view.actions = [a for a in due if a.organisation_id == item.organisation_id]
        if item.place is not None:
            if item.place.pk not in place_counts:
                place_counts[item.place.pk] = PlaceCount(
                    item.place, places.count_in_period(item.place, shared, meeting.period_start, meeting.period_end),
                    places.count_in_period(item.place, shared, *before))
            view.place_count = place_counts[item.place.pk]
            view.map_url = map_url(forum, meeting.period_start, meeting.period_end, item.place.bbox)
        if item.kind == AgendaItem.Kind.CATEGORIES:
            view.categories = counts_by_category(forum, shared, meeting.period_start, meeting.period_end, before)
        if item.kind == AgendaItem.Kind.POLICE:
            view.police = list(deviations.awaiting_police_report(shared)[:POLICE_LISTED])
        if item.flag is not None:
            view.flag = item.flag
            view.flag_deviation_visible = item.flag.deviation_id in visible_ids
            if view.flag_deviation_visible and item.flag.deviation is not None:
                d = item.flag.deviation
                view.map_url = map_url(forum, meeting.period_start, meeting.period_end,
                                       (d.lon - 0.004, d.lat - 0.002, d.lon + 0.004, d.lat + 0.002)
                                       ) + f"#deviation-{d.pk}"
        views.append(view)
    return views


# --- Meeting mode: one item at a time on the shared screen --------------------------------------------

SCREEN_POINTS = 3000  # the item's map draws at most this many deviations


def screen_map(meeting: Meeting, view: ItemView) -> dict[str, Any]:
    """What the shared screen's map of an item shows: the forum-wide deviations of the period around the item
    (its place, the raised deviation, or the whole area), the place's outline, and the box to show."""
    forum = meeting.forum
    shared = in_period(deviations.forum_wide_deviations(forum), meeting.period_start, meeting.period_end)
    item = view.item
    outline = None
    if item.place is not None:
        bbox = geometry_padded(item.place.bbox, 0.8)
        outline = places.outline(item.place)
    elif view.flag is not None and view.flag.deviation is not None and view.flag.deviation.visibility == \
            Deviation.Visibility.FORUM:
        d = view.flag.deviation
        bbox = (d.lon - 0.006, d.lat - 0.003, d.lon + 0.006, d.lat + 0.003)
    else:
        bbox = geometry.area_bounds(forum.area) or (17.7, 59.2, 18.4, 59.45)
    rows = deviations.points_in_box(shared, bbox, SCREEN_POINTS)
    return {"bbox": list(bbox), "outline": outline, "area": forum.area,
            "points": {"type": "FeatureCollection", "features": rows}}


def geometry_padded(bbox: tuple[float, float, float, float], fraction: float) -> tuple[float, float, float, float]:
    dx, dy = (bbox[2] - bbox[0]) * fraction, (bbox[3] - bbox[1]) * fraction
    return (bbox[0] - dx, bbox[1] - dy, bbox[2] + dx, bbox[3] + dy)


def show_item(membership: Membership, meeting: Meeting, number: int) -> None:
    """The coordinator shows this item on the shared screen; everyone following the meeting follows."""
    if membership.can_administer_forum and meeting.presenting != number:
        Meeting.objects.filter(pk=meeting.pk).update(presenting=number)
        meeting.presenting = number


# --- The protocol --------------------------------------------------------------------------------------

def publish_protocol(membership: Membership, meeting_id: int, correction_reason: str = "") -> Protocol:
    """Publish the protocol as it stands: a snapshot that never changes. A meeting being corrected
    is published again as the next version, with the reason for the correction."""
    from lagesbild.meetings import protocol as protocols
    from lagesbild.meetings.tasks import send_protocol_digest

    require_coordinator(membership, "protocol by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    require_unlocked(meeting)
    reason = _clean(correction_reason, 2000, "correction_reason")
    correcting = meeting.state == Meeting.State.CORRECTING
    if correcting and not reason:
        raise InvalidInput(_("Say what the correction changes."), field="correction_reason")
    if not meeting.items.exists():
        raise InvalidInput(_("The agenda is empty: build it or add items before publishing the protocol."),
                           field="items")
    with transaction.atomic():
        # Lock the meeting row so two coordinators publishing at once do not both get version 2.
        locked = Meeting.objects.select_for_update().get(pk=meeting.pk)
        if locked.state == Meeting.State.PUBLISHED:
            raise Conflict(_("The protocol was just published by someone else."), code="published")
        version = (locked.protocols.aggregate(m=Max("version"))["m"] or 0) + 1
        protocol = Protocol.objects.create(
            forum_id=meeting.forum_id, meeting=meeting, version=version,
            content=protocols.snapshot(meeting, version=version, correction_reason=reason if correcting else ""),
            correction_reason=reason if correcting else "", published_by_id=membership.user_id)
        Meeting.objects.filter(pk=meeting.pk).update(state=Meeting.State.PUBLISHED)
        audit.record(membership, AuditEvent.Action.PUBLISH, meeting, {"version": version, "reason": reason})
        transaction.on_commit(lambda: send_protocol_digest.enqueue(protocol.pk))
    meeting.refresh_from_db()
    return protocol


def start_correction(membership: Membership, meeting_id: int) -> Meeting:
    require_coordinator(membership, "protocol by a non-coordinator")
    meeting = get_meeting(membership, meeting_id)
    if meeting.state != Meeting.State.PUBLISHED:
        raise Conflict(_("Only a published protocol can be corrected."), code="not_published")
    with transaction.atomic():
        Meeting.objects.filter(pk=meeting.pk).update(state=Meeting.State.CORRECTING)
        audit.record(membership, AuditEvent.Action.UPDATE, meeting, {"state": [meeting.state, "correcting"]})
    meeting.refresh_from_db()
    return meeting


def get_protocol(membership: Membership, meeting_id: int, version: int | None = None) -> Protocol:
    meeting = get_meeting(membership, meeting_id)
    protocols = meeting.protocols.all()
    protocol = protocols.filter(version=version).first() if version else protocols.order_by("-version").first()
    if protocol is None:
        raise NotFound(_("No protocol has been published for this meeting yet.") if not version
                       else _("No such version of the protocol."))
    return protocol


def upcoming_and_past(membership: Membership, now: dt.datetime | None = None
                      ) -> tuple[list[Meeting], list[Meeting]]:
    now = now or timezone.now()
    meetings: list[Meeting] = list(forum_meetings(membership).annotate(
        published=Max("protocols__version")).order_by("held_at"))
    today_start = now - dt.timedelta(hours=12)
    upcoming = [m for m in meetings if m.held_at >= today_start]
    past = [m for m in reversed(meetings) if m.held_at < today_start]
    return upcoming, past


