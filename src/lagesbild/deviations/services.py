"""Domain functions for deviations. Views and API endpoints are thin wrappers around these.

`visible_deviations` is the one place that decides who sees what; every read goes through it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

import orjson
import shapely.geometry
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import geometry, inputs, personal_data, spatial_index
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import feature_json, shapes
from lagesbild.deviations import photos as photo_files
from lagesbild.deviations.derived import derived_fields, time_fields
from lagesbild.deviations.models import (
    Category,
    Comment,
    Deviation,
    DeviationCell,
    DeviationShare,
    HiddenCategory,
    Photo,
    Round,
)
from lagesbild.errors import Conflict, Forbidden, InvalidInput, NotFound
from lagesbild.forums.models import Forum, Membership, Organisation
from lagesbild.live import events as live

MAX_DESCRIPTION = 4000
MAX_PLACE_NAME = 200
MAX_COMMENT = 2000
MAX_QUERY = 200
DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000
# Phones and servers disagree by a little; "now" on the phone may be a minute ahead of the server.
CLOCK_SKEW = dt.timedelta(minutes=2)
# Nothing a forum records happened before this; an earlier date is a typing mistake (docs/api.md).
EARLIEST_OBSERVED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

Status = Deviation.Status
Visibility = Deviation.Visibility
# Django works a choices' values out afresh at every call; an import checks a million rows against them.
SEVERITIES = frozenset(Deviation.Severity.values)
VISIBILITIES = frozenset(Visibility.values)


# --- Reading -----------------------------------------------------------------------------------------

def _may_see(membership: Membership) -> Q:
    """The visibility rule: shared with the whole forum, reported by the member's organisation, or shared
    with it by name."""
    org_id = membership.organisation_id
    shared_with_org = DeviationShare.objects.filter(organisation_id=org_id).values("deviation_id")
    return (Q(visibility=Visibility.FORUM) | Q(organisation_id=org_id)
            | Q(visibility=Visibility.NAMED, id__in=shared_with_org))


def organisations_that_may_see(visibility: str, organisation_id: int, shared_with: Iterable[int]
                                ) -> frozenset[int] | None:
    """The organisations that may see one deviation with these fields, or None for the whole forum: the rule
    of `_may_see`, stated for one deviation so that the live picture can address its events without a query
    per reader. A test holds the two equal for every organisation."""
    if visibility == Visibility.FORUM:
        return None
    if visibility == Visibility.NAMED:
        return frozenset({organisation_id, *shared_with})
    return frozenset({organisation_id})


def _audience_now(deviation_id: int) -> frozenset[int] | None:
    """Who may see the deviation as it stands now, for its live events. Read after this transaction's own
    write and under the row's lock, so that a change of who may see it, made meanwhile by someone else, is
    not missed (the event would go to those who no longer may see it)."""
    with transaction.atomic():
        current = Deviation.objects.select_for_update().only("visibility", "organisation_id").get(pk=deviation_id)
        shared = (DeviationShare.objects.filter(deviation_id=deviation_id).values_list("organisation_id", flat=True)
                  if current.visibility == Visibility.NAMED else ())
        return organisations_that_may_see(current.visibility, current.organisation_id, shared)


def visible_deviations(membership: Membership) -> QuerySet[Deviation]:
    """Every deviation in the member's forum that their organisation may see. The only visibility rule."""
    return Deviation.objects.filter(forum_id=membership.forum_id, withdrawn_at__isnull=True).filter(
        _may_see(membership))


def restricted_visible_deviations(membership: Membership) -> list[QuerySet[Deviation]]:
    """What the member may see that the whole forum may not, in two parts that do not overlap: their
    organisation's own restricted deviations (found through the (forum, organisation, visibility) index), and
    those other organisations shared with it by name (through the shares). Few; the pre-aggregated counts hold
    the rest (deviations.counts). Together, the rule of `_may_see` less its first part."""
    restricted = Deviation.objects.filter(forum_id=membership.forum_id, withdrawn_at__isnull=True,
                                          visibility__in=[Visibility.ORGANISATION, Visibility.NAMED])
    shared_with_org = DeviationShare.objects.filter(organisation_id=membership.organisation_id).values("deviation_id")
    return [restricted.filter(organisation_id=membership.organisation_id),
            restricted.filter(visibility=Visibility.NAMED, id__in=shared_with_org).exclude(
                organisation_id=membership.organisation_id)]


def hidden_deviation_ids(membership: Membership) -> QuerySet[Deviation, Any]:
    """The ids of the forum's deviations (withdrawn ones too) that the member's organisation may not see:
    what the audit log leaves out for them."""
    return Deviation.objects.filter(forum_id=membership.forum_id).exclude(_may_see(membership)).values("pk")


def forum_wide_deviations(forum: Forum) -> QuerySet[Deviation]:
    """What every member of the forum may see. Figures shown to the whole forum at once (the meeting's
    shared screen, the published protocol, digests) come from these, so no restricted deviation is
    counted where an organisation that may not see it reads."""
    return Deviation.objects.filter(forum=forum, withdrawn_at__isnull=True, visibility=Visibility.FORUM)


def forum_wide_everywhere() -> QuerySet[Deviation]:
    """Deviations that the whole of their forum may see, in every forum: what the operators' admin shows."""
    return Deviation.objects.filter(withdrawn_at__isnull=True, visibility=Visibility.FORUM)


def get_visible_deviation(membership: Membership, deviation_id: int) -> Deviation:
    """One deviation the member may see. Missing and not-visible give the same 404, revealing nothing."""
    deviation = (
        visible_deviations(membership)
        .select_related("category", "category__parent", "organisation", "reporter")
        .filter(pk=deviation_id)
        .first()
    )
    if deviation is None:
        raise NotFound(_("No such deviation."))
    return deviation


def forum_categories(forum: Forum) -> QuerySet[Category]:
    """The default taxonomy plus the forum's own categories, hidden ones included (old deviations use them)."""
    return Category.objects.filter(Q(forum__isnull=True) | Q(forum=forum)).select_related("parent")


def hidden_category_ids(forum: Forum) -> set[int]:
    return set(HiddenCategory.objects.filter(forum=forum).values_list("category_id", flat=True))


@dataclass
class DeviationFilter:
    bbox: geometry.BBox | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    categories: Sequence[str] = ()
    organisations: Sequence[int] = ()
    statuses: Sequence[str] = ()
    q: str = ""
    round: int | None = None
    member: int | None = None  # the user filtering by `round`: only their own rounds
    fields: Sequence[str] = ()  # the forum's own fields, each "key:value" (deviations.fields)


def apply_filter(queryset: QuerySet[Deviation], forum: Forum, flt: DeviationFilter) -> QuerySet[Deviation]:
    if flt.start and flt.end and flt.start > flt.end:
        raise InvalidInput(_("The start of the period is after its end."), field="from")
    if flt.start:
        queryset = queryset.filter(observed_at__gte=flt.start)
    if flt.end:
        queryset = queryset.filter(observed_at__lte=flt.end)
    if flt.categories:
        queryset = queryset.filter(category_id__in=category_ids_with_children(forum, flt.categories))
    if flt.organisations:
        known = set(Organisation.objects.filter(forum=forum, pk__in=flt.organisations).values_list("pk", flat=True))
        unknown = [o for o in flt.organisations if o not in known]
        if unknown:
            raise InvalidInput(_("Unknown organisation: %(id)s.") % {"id": unknown[0]}, field="organisation")
        queryset = queryset.filter(organisation_id__in=flt.organisations)
    if flt.statuses:
        for status in flt.statuses:
            if status not in Status.values:
                raise InvalidInput(_("Unknown status: %(status)s.") % {"status": status}, field="status")
        queryset = queryset.filter(status__in=flt.statuses)
    if flt.fields:
        from lagesbild.deviations import fields  # builds on this module

        queryset = fields.filtered(queryset, forum, flt.fields)
    if flt.round is not None:
        # Only one's own rounds: a round of someone else's would gather another organisation's reports as one
        # person's evening. Another member's round and one that does not exist are answered alike.
        if flt.member is None or not Round.objects.filter(forum=forum, pk=flt.round,
                                                          started_by_id=flt.member).exists():
            raise InvalidInput(_("Unknown round: %(id)s.") % {"id": flt.round}, field="round")
        queryset = queryset.filter(round_id=flt.round)
    if flt.q:
        if len(flt.q) > MAX_QUERY:
            raise InvalidInput(_("The search text is too long."), field="q")
        queryset = queryset.filter(search_text__contains=flt.q.strip().lower())
    if flt.bbox:
        bounds = geometry.area_bounds(forum.area)
        if bounds and geometry.bbox_contains(flt.bbox, bounds):
            return queryset  # every deviation lies inside the forum's area, so the box selects them all
        queryset = spatial_index.filter_bbox(queryset, flt.bbox, selective=_box_is_selective(flt, bounds))
    return queryset


# A period up to this long selects few enough rows that reading them through the time index beats
# the spatial index, even for a small box on a busy square (see bench/bench_deviations.py).
SHORT_PERIOD = dt.timedelta(days=92)


def _box_is_selective(flt: DeviationFilter, forum_bounds: geometry.BBox | None) -> bool:
    """Whether the box, rather than the period, should choose the rows to read."""
    if flt.start is not None and (flt.end or timezone.now()) - flt.start <= SHORT_PERIOD:
        return False
    return forum_bounds is None or geometry.overlap_fraction(flt.bbox or forum_bounds, forum_bounds) < 0.5


def category_ids_with_children(forum: Forum, keys: Iterable[str]) -> set[int]:
    """The ids of the named categories; a parent category includes its subcategories."""
    by_key = {c.key: c for c in forum_categories(forum)}
    ids: set[int] = set()
    for key in keys:
        category = by_key.get(key)
        if category is None:
            raise InvalidInput(_("Unknown category: %(key)s.") % {"key": key}, field="category")
        ids.add(category.pk)
        ids.update(c.pk for c in by_key.values() if c.parent_id == category.pk)
    return ids


@dataclass
class Page:
    features: bytes  # a JSON array of GeoJSON features, as the database wrote them (deviations.feature_json)
    number_returned: int
    number_matched: int | None  # None when not counted
    next_cursor: str | None


def encode_cursor(observed_at: dt.datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{observed_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.split("|")
        when = dt.datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError(stamp)
        return inputs.check_datetime(when), inputs.parse_id(pk) or 0
    except (ValueError, binascii.Error, UnicodeDecodeError, InvalidInput) as exc:
        raise InvalidInput(_("The page cursor is not valid. Start again from the first page."),
                           field="cursor") from exc


def page_of_features(queryset: QuerySet[Deviation], limit: int = DEFAULT_LIMIT,
                     cursor: str | None = None, count: bool = True) -> Page:
    """A page of GeoJSON features, newest first, with the total number matched.

    Keyset pagination (observed_at, id) keeps later pages as fast as the first and stable while
    new deviations arrive.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(_("limit must be between 1 and %(max)d.") % {"max": MAX_LIMIT}, field="limit")
    ordered = queryset.order_by("-observed_at", "-id")
    if cursor:
        after_time, after_id = decode_cursor(cursor)
        ordered = ordered.filter(Q(observed_at__lt=after_time) | Q(observed_at=after_time, id__lt=after_id))
    rows: list[str] = list(ordered.annotate(feature=feature_json.feature_expression())
                           .values_list("feature", flat=True)[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        last = orjson.loads(rows[limit - 1])
        next_cursor = encode_cursor(dt.datetime.fromisoformat(last["properties"]["observedAt"]), last["id"])
    number_matched = None
    if count:
        # A first page that holds them all has counted them: the count query costs as much as the page.
        number_matched = len(rows) if not cursor and len(rows) <= limit else queryset.count()
    features = rows[:limit]
    return Page(features=("[" + ",".join(features) + "]").encode(), number_returned=len(features),
                number_matched=number_matched, next_cursor=next_cursor)


def points_in_box(queryset: QuerySet[Deviation], bbox: geometry.BBox, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` deviations of `queryset` in the box, newest first, as small GeoJSON points with their main
    category: for maps drawn from data embedded in a page (the meeting's shared screen)."""
    # The queryset is narrowed to a period already: SQLite reads it by time rather than through the box's index.
    rows = (spatial_index.filter_bbox(queryset, bbox, selective=False).order_by("-observed_at", "-id")
            .values_list("lon", "lat", "category__key", "category__parent__key")[:limit])
    return [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
             "properties": {"category": parent or key}} for lon, lat, key, parent in rows]


def grid_size(bbox: geometry.BBox, cells_across: int) -> tuple[float, float]:
    """Cell width and height in degrees: a power-of-two fraction of the globe, so cells stay put while
    the map pans, and about square on the ground."""
    wanted = (bbox[2] - bbox[0]) / cells_across
    width = 360.0 / 2 ** max(0, min(30, math.floor(math.log2(360.0 / wanted)) if wanted > 0 else 30))
    middle = math.radians((bbox[1] + bbox[3]) / 2)
    return width, width * max(math.cos(middle), 0.01)


@dataclass
class Aggregates:
    features: list[dict[str, Any]]  # one point per grid cell, at the mean position of what it counts
    cell_size: tuple[float, float]
    by_category: dict[str, int]  # top-level category key -> count, for the legend


def grid_aggregates(queryset: QuerySet[Deviation], forum: Forum, bbox: geometry.BBox,
                    cells_across: int = 32) -> Aggregates:
    """Counts per grid cell and per top-level category, in one pass over the rows.

    The map shows these instead of single points when the view holds more than it should download.
    """
    if not 4 <= cells_across <= 128:
        raise InvalidInput(_("cells must be between 4 and 128."), field="cells")
    width, height = grid_size(bbox, cells_across)
    rows = (
        queryset.order_by()
        .annotate(col=spatial_index.CellIndex(F("lon") / width), row=spatial_index.CellIndex(F("lat") / height))
        .values_list("col", "row", "category_id")
        .annotate(count=Count("id"), sum_lon=Sum("lon"), sum_lat=Sum("lat"))
    )
    # Naming categories here rather than joining them in SQL keeps the query on one table.
    top_key = {c.pk: (c.parent.key if c.parent else c.key) for c in forum_categories(forum)}
    cells: dict[tuple[int, int], list[float]] = {}
    by_category: dict[str, int] = {}
    for col, row, category_id, count, sum_lon, sum_lat in rows:
        cell = cells.setdefault((int(col), int(row)), [0, 0.0, 0.0])
        cell[0] += count
        cell[1] += sum_lon
        cell[2] += sum_lat
        key = top_key[category_id]
        by_category[key] = by_category.get(key, 0) + count
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(lon / n, 6), round(lat / n, 6)]},
            "properties": {"count": int(n), "cell": f"{col}:{row}"},
        }
        for (col, row), (n, lon, lat) in sorted(cells.items())
    ]
    # In key order: the order the database groups rows in can change with what else the table holds (rows the
    # reader may not see among them), and the answer's bytes, and so its ETag, must not.
    return Aggregates(features=features, cell_size=(width, height), by_category=dict(sorted(by_category.items())))


def history_of(deviation: Deviation) -> QuerySet[AuditEvent]:
    """What happened to the deviation. Who read it is for the audit log, not for every reader."""
    return (
        AuditEvent.objects.filter(object_type="deviation", object_id=deviation.pk)
        .exclude(action=AuditEvent.Action.READ)
        .select_related("actor", "organisation")
    )


def read_deviation(membership: Membership, deviation_id: int) -> Deviation:
    """A deviation opened in full. Reading a restricted one is audited: who, when, from where."""
    deviation = get_visible_deviation(membership, deviation_id)
    if deviation.visibility != Visibility.FORUM:
        audit.record(membership, AuditEvent.Action.READ, deviation)
    return deviation


# --- Permissions ----------------------------------------------------------------------------------------

def can_edit(membership: Membership, deviation: Deviation) -> bool:
    return membership.can_edit_deviation_of(deviation.organisation_id, deviation.reporter_id)


def can_change_status(membership: Membership, deviation: Deviation) -> bool:
    return membership.can_change_status_of(deviation.organisation_id)


# --- Writing ----------------------------------------------------------------------------------------------

@dataclass
class DeviationInput:
    """A deviation's editable fields, already parsed into Python types."""

    category: str
    lon: float
    lat: float
    observed_at: dt.datetime
    observed_until: dt.datetime | None = None
    place_name: str = ""
    description: str = ""
    severity: str = Deviation.Severity.MEDIUM
    visibility: str = Visibility.FORUM
    shared_with: list[int] = field(default_factory=list)
    fields: dict[str, Any] | None = None  # the forum's own fields of its category (deviations.fields)
    round: str = ""  # the key of the reporter's round it was reported on (deviations.rounds)
    # A line or area (GeoJSON LineString or Polygon) instead of a point; lon and lat then become its anchor.
    shape: dict[str, Any] | None = None


# The round is set when the deviation is reported, and stays.
EDITABLE_FIELDS = tuple(f.name for f in fields(DeviationInput) if f.name != "round")


def _validated(membership: Membership, data: DeviationInput, current_category: str | None = None
               ) -> tuple[Category, list[Organisation]]:
    """Check everything about the input against the forum; return the category and named organisations."""
    forum = membership.forum
    if data.shape is not None:
        # The shape decides the position: its anchor, worked out here, not what the client sent.
        drawn = shapes.parse(data.shape, forum.area)
        data.shape, data.lon, data.lat = drawn.geojson, drawn.lon, drawn.lat
    check_values(forum, data, timezone.now())
    category = forum_categories(forum).filter(key=data.category).first()
    if category is None:
        raise InvalidInput(_("Unknown category: %(key)s.") % {"key": data.category}, field="category")
    if data.category != current_category and HiddenCategory.objects.filter(forum=forum, category=category).exists():
        raise InvalidInput(_("The forum no longer uses the category %(name)s. Choose another.") % {
            "name": category.name}, field="category")
    named: list[Organisation] = []
    if data.visibility == Visibility.NAMED:
        wanted = set(data.shared_with) - {membership.organisation_id}
        named = list(Organisation.objects.filter(forum=forum, pk__in=wanted))
        if len(named) != len(wanted):
            outside = sorted(wanted - {org.pk for org in named})
            audit.record(membership, AuditEvent.Action.REFUSED, forum,
                         {"reason": "visibility names organisations outside the forum", "organisations": outside})
            raise InvalidInput(_("Only organisations in this forum can be named."), field="shared_with")
        if not named:
            raise InvalidInput(_("Name at least one other organisation, or choose another visibility."),
                               field="shared_with")
    return category, named


def check_values(forum: Forum, data: DeviationInput, now: dt.datetime, inside: bool | None = None
                 ) -> list[dict[str, str]]:
    """The checks of a deviation's values that need no database: position, times, lengths, choices and
    personal data. Returns the personal-data warnings (an error instead, in a forum that refuses it).

    Reporting and importing both use it, so a row of a file is held to the same rules as a report. An import
    works out `inside` (the forum's area) itself, with the outline prepared once for all its rows."""
    geometry.check_lon_lat(data.lon, data.lat)
    if not (geometry.area_contains(forum.area, data.lon, data.lat) if inside is None else inside):
        raise InvalidInput(_("The position lies outside the forum's area (%(forum)s).") % {"forum": forum.name},
                           field="lon")
    if timezone.is_naive(data.observed_at):
        raise InvalidInput(_("The time must include a time zone."), field="observed_at")
    if data.observed_at > now + CLOCK_SKEW:
        raise InvalidInput(_("The time it was noticed cannot be in the future."), field="observed_at")
    if data.observed_at < EARLIEST_OBSERVED:
        raise InvalidInput(_("The time it was noticed must be in the year 2000 or later."), field="observed_at")
    if data.observed_until is not None:
        if timezone.is_naive(data.observed_until):
            raise InvalidInput(_("The time must include a time zone."), field="observed_until")
        if data.observed_until < data.observed_at:
            raise InvalidInput(_("'Until' must be after the time it was noticed."), field="observed_until")
        if data.observed_until > now + CLOCK_SKEW:
            raise InvalidInput(_("'Until' cannot be in the future. Leave it empty if it is still going on."),
                               field="observed_until")
    if len(data.description) > MAX_DESCRIPTION:
        raise InvalidInput(_("The description may be at most %(max)d characters.") % {"max": MAX_DESCRIPTION},
                           field="description")
    if len(data.place_name) > MAX_PLACE_NAME:
        raise InvalidInput(_("The place name may be at most %(max)d characters.") % {"max": MAX_PLACE_NAME},
                           field="place_name")
    warnings = guard_personal_data(forum, {"place_name": data.place_name, "description": data.description})
    if data.severity not in SEVERITIES:
        raise InvalidInput(_("Unknown severity: %(value)s.") % {"value": data.severity}, field="severity")
    if data.visibility not in VISIBILITIES:
        raise InvalidInput(_("Unknown visibility: %(value)s.") % {"value": data.visibility}, field="visibility")
    return warnings


def guard_personal_data(forum: Forum, texts: dict[str, str]) -> list[dict[str, str]]:
    """The warnings for these texts; in a forum that refuses personal data, the first one as an error."""
    warnings = personal_data.warnings_for(texts)
    if warnings and forum.block_personal_data:
        first = warnings[0]
        raise InvalidInput(first["message"], field=first["field"], code="personal_data")
    return warnings


def search_text_for(place_name: str, description: str) -> str:
    return f"{place_name}\n{description}".lower()


CAPTURE_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


def report_once(membership: Membership, data: DeviationInput, photos: Sequence[UploadedFile] = (),
                capture_key: str = "") -> tuple[Deviation, bool]:
    """Report a new deviation that the phone gave a key (the Idempotency-Key header), once: sending it again,
    after a lost answer or from the offline queue, gives the deviation already made. Returns it and whether
    it is new."""
    if not CAPTURE_KEY.fullmatch(capture_key):
        raise InvalidInput(_("The Idempotency-Key header must be 8 to 64 letters, digits, '-' or '_'."),
                           field="Idempotency-Key")
    earlier = _captured(membership, capture_key)
    if earlier is not None:
        return earlier, False
    try:
        return report_deviation(membership, data, photos, capture_key=capture_key), True
    except IntegrityError:  # the same capture, sent twice at once: the other request made it
        earlier = _captured(membership, capture_key)
        if earlier is None:
            raise
        return earlier, False


def _captured(membership: Membership, capture_key: str) -> Deviation | None:
    earlier = Deviation.objects.filter(forum_id=membership.forum_id, reporter_id=membership.user_id,
                                       capture_key=capture_key).first()
    if earlier is not None and earlier.withdrawn_at is not None:
        raise Conflict(_("This deviation was sent before and has since been withdrawn."))
    return earlier


def report_deviation(
    membership: Membership,
    data: DeviationInput,
    photos: Sequence[UploadedFile] = (),
    source: str = Deviation.Source.MANUAL,
    capture_key: str | None = None,
) -> Deviation:
    """Report a new deviation, with its photos, all or nothing."""
    if not membership.can_report:
        raise Forbidden(_("Your role does not allow reporting deviations."))
    category, named = _validated(membership, data)
    own_fields = _own_fields(membership.forum, category, data.fields)
    round_id = None
    if data.round:
        round_id = Round.objects.filter(forum_id=membership.forum_id, started_by_id=membership.user_id,
                                        key=data.round).values_list("pk", flat=True).first()
        if round_id is None:
            raise InvalidInput(_("No such round of yours: start it first."), field="round")
    prepared = _prepare_photos(photos, already=0)
    written: list[str] = []
    try:
        with transaction.atomic():
            deviation = Deviation.objects.create(
                forum_id=membership.forum_id,
                category=category,
                lon=data.lon,
                lat=data.lat,
                **derived_fields(data.lon, data.lat, data.observed_at, membership.forum.timezone),
                place_name=data.place_name.strip(),
                observed_at=data.observed_at,
                observed_until=data.observed_until,
                organisation_id=membership.organisation_id,
                reporter_id=membership.user_id,
                description=data.description.strip(),
                severity=data.severity,
                visibility=data.visibility,
                source=source,
                search_text=search_text_for(data.place_name, data.description),
                capture_key=capture_key,
                round_id=round_id,
                fields=own_fields,
                **shape_columns(data.shape),
            )
            if deviation.shape:  # a point needs no hexagon rows, and a new one has none to remove
                replace_cells(deviation)
            _replace_shares(deviation, named)
            _store_photos(membership, deviation, prepared, written)
            audit.record(membership, AuditEvent.Action.CREATE, deviation, _snapshot(deviation, named))
            transaction.on_commit(partial(_alert_saved_views, membership.forum_id, deviation.pk))
            live.deviation_reported(membership.forum_id, deviation.pk, organisations_that_may_see(
                deviation.visibility, deviation.organisation_id, [org.pk for org in named]))
    except BaseException:
        photo_files.delete_files(written)
        raise
    return deviation


def edit_deviation(membership: Membership, deviation_id: int, changes: dict[str, Any], version: int) -> Deviation:
    """Change some fields of a deviation, if nobody else changed it since `version`."""
    deviation = get_visible_deviation(membership, deviation_id)
    unknown = set(changes) - set(EDITABLE_FIELDS) - {"status"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(_("The field %(name)s cannot be changed.") % {"name": name}, field=name)
    content_changes = {k: v for k, v in changes.items() if k != "status"}
    if content_changes and not can_edit(membership, deviation):
        raise Forbidden(_("You can only edit deviations you or your organisation reported."))
    if "status" in changes:
        if changes["status"] not in Status.values:
            raise InvalidInput(_("Unknown status: %(status)s.") % {"status": changes["status"]}, field="status")
        if changes["status"] != deviation.status and not can_change_status(membership, deviation):
            raise Forbidden(_("Your role does not allow changing the status of this deviation."))
    if version != deviation.version:
        raise Conflict(_("Someone else changed this deviation while you were editing. Reload it and try again."),
                       field="version")

    before = _snapshot(deviation, list(_shares(deviation)))
    merged = DeviationInput(**{name: before[name] for name in EDITABLE_FIELDS})
    merged.observed_at = deviation.observed_at
    merged.observed_until = deviation.observed_until
    for name, value in content_changes.items():
        setattr(merged, name, value)
    # A line or area is moved by drawing it again. Its anchor sent back as a list gives it (to 6 decimals, about
    # 10 cm) is no move; the anchor is worked out from the shape again below.
    if deviation.shape and "shape" not in content_changes and (
            abs(merged.lon - deviation.lon) > 1e-5 or abs(merged.lat - deviation.lat) > 1e-5):
        raise InvalidInput(_("This deviation is a line or an area: draw it again to move it, or remove the line "
                             "or area to make it a point."), field="shape")
    if "visibility" in content_changes and merged.visibility != Visibility.NAMED:
        merged.shared_with = []
    category, named = _validated(membership, merged, current_category=deviation.category.key)
    # The forum's own fields are checked when they are changed, or the category is: an edit of anything else
    # leaves them as they are, also when a field was added as required or removed since.
    own_fields = deviation.fields
    if "fields" in content_changes or category.pk != deviation.category_id:
        if "fields" not in content_changes:
            # A new category keeps what it shares with the old one; the rest of the old category's fields go.
            known = {d.key for d in _field_definitions(membership.forum, category)}
            merged.fields = {k: v for k, v in (merged.fields or {}).items() if k in known}
        own_fields = _own_fields(membership.forum, category, merged.fields)

    values: dict[str, Any] = {
        "category": category,
        "lon": merged.lon,
        "lat": merged.lat,
        "place_name": merged.place_name.strip(),
        "observed_at": merged.observed_at,
        "observed_until": merged.observed_until,
        "description": merged.description.strip(),
        "severity": merged.severity,
        "visibility": merged.visibility,
        "status": changes.get("status", deviation.status),
        "search_text": search_text_for(merged.place_name, merged.description),
        "fields": own_fields,
        **shape_columns(merged.shape),
    }
    values.update(derived_fields(merged.lon, merged.lat, merged.observed_at, membership.forum.timezone))
    with transaction.atomic():
        # The version check and the write are one statement, so two racing edits cannot both win.
        updated = Deviation.objects.filter(pk=deviation.pk, version=version).update(
            **values, version=F("version") + 1, updated_at=timezone.now()
        )
        if not updated:
            raise Conflict(_("Someone else changed this deviation while you were editing. Reload it and try again."),
                           field="version")
        deviation.refresh_from_db()
        if "shape" in content_changes:
            replace_cells(deviation)
        _replace_shares(deviation, named)
        after = _snapshot(deviation, named)
        diff = {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}
        if diff:
            # Who may see it is the change a coordinator looks for first, so it is its own kind of event.
            visibility_changed = "visibility" in diff or "shared_with" in diff
            action = AuditEvent.Action.VISIBILITY if visibility_changed else AuditEvent.Action.UPDATE
            audit.record(membership, action, deviation, diff)
            live.deviation_changed(
                deviation.forum_id, deviation.pk,
                organisations_that_may_see(before["visibility"], deviation.organisation_id, before["shared_with"]),
                organisations_that_may_see(after["visibility"], deviation.organisation_id, after["shared_with"]))
    return deviation


def _field_definitions(forum: Forum, category: Category) -> list[Any]:
    from lagesbild.deviations import fields  # builds on this module

    return fields.fields_for(forum, category)


def _own_fields(forum: Forum, category: Category, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The forum's own fields, checked; their text is looked at for personal data as the description is."""
    from lagesbild.deviations import fields  # builds on this module

    cleaned = fields.cleaned(forum, category, values)
    guard_personal_data(forum, {f"fields.{key}": value for key, value in (cleaned or {}).items()
                                if isinstance(value, str)})
    return cleaned


def _alert_saved_views(forum_id: int, deviation_id: int) -> None:
    """Hand the new deviation to the background worker, which alerts the members whose saved views it
    matches (lagesbild.alerts). Imports alert nobody: a file of old rows is not news."""
    from lagesbild.alerts.tasks import match_new_deviation  # the alerts app builds on this one

    match_new_deviation.enqueue(forum_id, deviation_id)


def withdraw_deviation(membership: Membership, deviation_id: int) -> None:
    """Withdraw a deviation reported by mistake. It disappears from the picture; its history stays."""
    deviation = get_visible_deviation(membership, deviation_id)
    if not can_edit(membership, deviation):
        raise Forbidden(_("You can only withdraw deviations you or your organisation reported."))
    with transaction.atomic():
        Deviation.objects.filter(pk=deviation.pk).update(withdrawn_at=timezone.now(), version=F("version") + 1)
        audit.record(membership, AuditEvent.Action.WITHDRAW, deviation)
        live.deviation_removed(deviation.forum_id, deviation.pk, _audience_now(deviation.pk))


# A police report's reference (diarienummer), e.g. 5000-K123456-26: letters, digits and separators.
POLICE_REFERENCE = re.compile(r"[0-9A-Za-zÅÄÖåäö][0-9A-Za-zÅÄÖåäö \-/.:]{0,39}")


def set_police_flag(membership: Membership, deviation_id: int, flagged: bool) -> Deviation:
    """Mark the deviation as one to report to the police (who and when are kept), or take the mark away."""
    deviation = get_visible_deviation(membership, deviation_id)
    if not membership.can_flag_for_police:
        raise Forbidden(_("Your role does not allow marking deviations for a police report."))
    if flagged == (deviation.police_flagged_at is not None):
        return deviation
    if not flagged and deviation.police_report_reference:
        raise InvalidInput(_("A police report has been recorded; the mark stays."), field="flagged")
    if not flagged and not membership.can_unflag_police(deviation.police_flagged_org_id, deviation.organisation_id):
        raise Forbidden(_("Only the organisation that set the mark, the reporting organisation or a coordinator can "
                          "take it away."))
    now = timezone.now()
    values: dict[str, Any] = ({"police_flagged_at": now, "police_flagged_by_id": membership.user_id,
                               "police_flagged_org_id": membership.organisation_id} if flagged else
                              {"police_flagged_at": None, "police_flagged_by_id": None, "police_flagged_org_id": None})
    with transaction.atomic():
        Deviation.objects.filter(pk=deviation.pk).update(**values, version=F("version") + 1, updated_at=now)
        audit.record(membership, AuditEvent.Action.UPDATE, deviation, {"police_flag": [not flagged, flagged]})
        _changed_in_place(deviation)
    return get_visible_deviation(membership, deviation_id)


def record_police_report(membership: Membership, deviation_id: int, reference: str) -> Deviation:
    """Record that a police report was made about the deviation, with its reference. It is marked too."""
    deviation = get_visible_deviation(membership, deviation_id)
    if not membership.can_record_police_report_of(deviation.organisation_id):
        raise Forbidden(_("Only the reporting organisation, the police and coordinators can record a police "
                          "report."))
    reference = " ".join(reference.split())
    if not reference:
        raise InvalidInput(_("Write the police report's reference."), field="reportReference")
    if not POLICE_REFERENCE.fullmatch(reference):
        raise InvalidInput(_("A reference has letters, digits and - / . : only, at most 40 characters "
                             "(e.g. 5000-K123456-26)."), field="reportReference")
    if deviation.police_report_reference:
        if deviation.police_report_reference == reference:
            return deviation  # recorded already
        if not membership.can_correct_police_report():
            raise Forbidden(_("A police report is recorded already; only the police or a coordinator can change "
                              "its reference."))
    now = timezone.now()
    values: dict[str, Any] = {"police_report_reference": reference, "police_reported_at": now}
    if deviation.police_flagged_at is None:
        values.update(police_flagged_at=now, police_flagged_by_id=membership.user_id,
                      police_flagged_org_id=membership.organisation_id)
    with transaction.atomic():
        Deviation.objects.filter(pk=deviation.pk).update(**values, version=F("version") + 1, updated_at=now)
        audit.record(membership, AuditEvent.Action.UPDATE, deviation,
                     {"police_report": [deviation.police_report_reference or None, reference]})
        _changed_in_place(deviation)
    return get_visible_deviation(membership, deviation_id)


def _changed_in_place(deviation: Deviation) -> None:
    """A change that leaves who may see the deviation as it was (call it after the change is written)."""
    audience = _audience_now(deviation.pk)
    live.deviation_changed(deviation.forum_id, deviation.pk, audience, audience)


def awaiting_police_report(queryset: QuerySet[Deviation]) -> QuerySet[Deviation]:
    """The deviations marked for a police report that has not been recorded, oldest mark first."""
    return (queryset.filter(police_flagged_at__isnull=False, police_report_reference="")
            .select_related("category", "category__parent", "police_flagged_org").order_by("police_flagged_at"))


def add_comment(membership: Membership, deviation_id: int, body: str) -> Comment:
    deviation = get_visible_deviation(membership, deviation_id)
    if not membership.can_comment:
        raise Forbidden(_("Your role does not allow commenting."))
    body = body.strip()
    if not body:
        raise InvalidInput(_("Write a comment first."), field="body")
    if len(body) > MAX_COMMENT:
        raise InvalidInput(_("A comment may be at most %(max)d characters.") % {"max": MAX_COMMENT}, field="body")
    guard_personal_data(membership.forum, {"body": body})
    with transaction.atomic():
        comment = Comment.objects.create(forum_id=deviation.forum_id, deviation=deviation,
                                         author_id=membership.user_id,
                                         organisation_id=membership.organisation_id, body=body)
        audit.record(membership, AuditEvent.Action.COMMENT, deviation, {"comment": comment.pk})
    return comment


def add_photos(membership: Membership, deviation_id: int, uploads: Sequence[UploadedFile]) -> list[Photo]:
    deviation = get_visible_deviation(membership, deviation_id)
    if not can_edit(membership, deviation):
        raise Forbidden(_("You can only add photos to deviations you or your organisation reported."))
    if not uploads:
        raise InvalidInput(_("Choose at least one photo."), field="photos")
    prepared = _prepare_photos(uploads, already=deviation.photos.count())
    written: list[str] = []
    try:
        with transaction.atomic():
            created = _store_photos(membership, deviation, prepared, written)
            audit.record(membership, AuditEvent.Action.PHOTO, deviation, {"photos": [p.pk for p in created]})
            _changed_in_place(deviation)
    except BaseException:
        photo_files.delete_files(written)
        raise
    return created


def get_visible_photo(membership: Membership, photo_id: int) -> Photo:
    """A photo, only if its deviation is visible to the member."""
    photo = Photo.objects.filter(pk=photo_id, deviation__in=visible_deviations(membership)).first()
    if photo is None:
        raise NotFound(_("No such photo."))
    return photo


# --- Helpers -------------------------------------------------------------------------------------------

def _prepare_photos(uploads: Sequence[UploadedFile], already: int) -> list[photo_files.PreparedPhoto]:
    limit = settings.LAGESBILD_PHOTOS_PER_DEVIATION
    if already + len(uploads) > limit:
        raise InvalidInput(_("A deviation can have at most %(max)d photos.") % {"max": limit}, field="photos")
    return [photo_files.prepare_photo(upload) for upload in uploads]


def _store_photos(membership: Membership, deviation: Deviation, prepared: list[photo_files.PreparedPhoto],
                  written: list[str]) -> list[Photo]:
    created = []
    for item in prepared:
        image_path, thumb_path = photo_files.write_photo_files(deviation.forum_id, item, written)
        created.append(Photo.objects.create(forum_id=deviation.forum_id, deviation=deviation, image=image_path,
                                            thumbnail=thumb_path, width=item.width, height=item.height,
                                            uploaded_by_id=membership.user_id))
    return created


def _shares(deviation: Deviation) -> QuerySet[Organisation]:
    return Organisation.objects.filter(pk__in=deviation.shares.values("organisation_id"))


def _replace_shares(deviation: Deviation, organisations: list[Organisation]) -> None:
    deviation.shares.all().delete()
    DeviationShare.objects.bulk_create(
        DeviationShare(forum_id=deviation.forum_id, deviation=deviation, organisation=org) for org in organisations
    )


def _snapshot(deviation: Deviation, named: Iterable[Organisation]) -> dict[str, Any]:
    """The audited fields as JSON-friendly values."""
    return {
        "category": deviation.category.key,
        "lon": deviation.lon,
        "lat": deviation.lat,
        "observed_at": deviation.observed_at.isoformat(),
        "observed_until": deviation.observed_until.isoformat() if deviation.observed_until else None,
        "place_name": deviation.place_name,
        "description": deviation.description,
        "severity": deviation.severity,
        "visibility": deviation.visibility,
        "shared_with": sorted(org.pk for org in named),
        "status": deviation.status,
        "fields": deviation.fields or {},
        "shape": deviation.shape,
    }


def shape_columns(drawn: dict[str, Any] | None) -> dict[str, Any]:
    """The shape and its extent (for the spatial index), or NULLs for a point."""
    if drawn is None:
        return {"shape": None, "shape_min_lon": None, "shape_min_lat": None, "shape_max_lon": None,
                "shape_max_lat": None}
    extent = shapely.geometry.shape(drawn).bounds
    return {"shape": drawn, "shape_min_lon": extent[0], "shape_min_lat": extent[1], "shape_max_lon": extent[2],
            "shape_max_lat": extent[3]}


def replace_cells(deviation: Deviation) -> None:
    """The hexagons a line or area lies in, for the hexagon maps (none for a point)."""
    DeviationCell.objects.filter(deviation=deviation).delete()
    if deviation.shape:
        DeviationCell.objects.bulk_create(
            DeviationCell(forum_id=deviation.forum_id, deviation=deviation, resolution=resolution, cell=cell)
            for resolution, found in shapes.cells(deviation.shape).items() for cell in sorted(found))


def _move_for_action(membership: Membership, deviation_ids: Iterable[int], action_id: int, new: str,
                     from_statuses: Sequence[str]) -> int:
    """Move the member's visible deviations among `deviation_ids` from one of `from_statuses` to `new`,
    each bumping its version and audited. Returns how many changed."""
    # In id order: the audit log then lists the changes in the same order however the database read them.
    rows = list(visible_deviations(membership).filter(pk__in=list(deviation_ids), status__in=from_statuses)
                .order_by("pk").values_list("pk", "status"))
    now = timezone.now()
    for pk, old in rows:
        # The status is checked again in the write, so a change made meanwhile is not overwritten.
        if Deviation.objects.filter(pk=pk, status=old).update(status=new, version=F("version") + 1, updated_at=now):
            audit.record(membership, AuditEvent.Action.UPDATE, Deviation(pk=pk),
                         {"status": [old, new], "action": action_id})
            _changed_in_place(Deviation(pk=pk, forum_id=membership.forum_id))
    return len(rows)


def start_action_on(membership: Membership, deviation_ids: Iterable[int], action_id: int) -> int:
    """The deviations an action was decided for now have an action under way."""
    return _move_for_action(membership, deviation_ids, action_id, Status.IN_PROGRESS,
                            [Status.NEW, Status.REVIEWED])


def resolve_for_action(membership: Membership, deviation_ids: Iterable[int], action_id: int) -> int:
    """Mark the deviations an action dealt with as resolved, when the action is done.

    The forum decided the action, so its responsible organisation may close what it was about, but only
    what that member can see. Returns how many changed.
    """
    return _move_for_action(membership, deviation_ids, action_id, Status.RESOLVED,
                            [Status.NEW, Status.REVIEWED, Status.IN_PROGRESS])


def newest_deviation_id() -> int:
    """The highest deviation id so far: what an import compares its rows with comes after it."""
    return Deviation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def withdraw_imported(batch_id: int, now: dt.datetime) -> int:
    """Withdraw every deviation an import brought in (undoing it); the import audits it once. How many."""
    return Deviation.objects.filter(import_batch_id=batch_id, withdrawn_at__isnull=True).update(
        withdrawn_at=now, version=F("version") + 1, updated_at=now)


def import_changed(forum_id: int, batch_id: int) -> None:
    """An import wrote or withdrew its deviations: the open maps of everyone who may see any of them load
    again (one event, not one a row)."""
    rows = Deviation.objects.filter(import_batch_id=batch_id)
    if rows.filter(visibility=Visibility.FORUM).exists():
        audience = None
    else:
        audience = frozenset(rows.values_list("organisation_id", flat=True).distinct()) | frozenset(
            DeviationShare.objects.filter(deviation__import_batch_id=batch_id, deviation__visibility=Visibility.NAMED)
            .values_list("organisation_id", flat=True).distinct())
    live.many_changed(forum_id, audience)


def changed_since_import(batch_id: int) -> int:
    """How many of an import's deviations someone has changed since."""
    return Deviation.objects.filter(import_batch_id=batch_id, withdrawn_at__isnull=True, version__gt=1).count()


def refresh_local_times(forum: Forum, batch: int = 2000) -> int:
    """Work out the stored local weekday, hour and month of every deviation of the forum again, after its
    time zone changed. These are derived columns, not a change anyone made: no version, no audit event."""
    done = 0
    last = 0
    while True:
        rows = list(Deviation.objects.filter(forum=forum, pk__gt=last).order_by("pk")
                    .values_list("pk", "observed_at")[:batch])
        if not rows:
            return done
        with transaction.atomic():
            for pk, observed_at in rows:
                Deviation.objects.filter(pk=pk).update(**time_fields(observed_at, forum.timezone))
        done += len(rows)
        last = rows[-1][0]


def shared_centre(forum: Forum, deviation_ids: Sequence[int]) -> tuple[float, float] | None:
    """The mean position of those of the deviations that the whole forum may see, or None.

    For a value every member reads (an action's position), so a restricted deviation never moves it.
    """
    centre = forum_wide_deviations(forum).filter(pk__in=list(deviation_ids)).aggregate(
        lon=Avg("lon"), lat=Avg("lat"), n=Count("id"))
    if not centre["n"]:
        return None
    return float(centre["lon"]), float(centre["lat"])
